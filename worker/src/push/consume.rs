//! Consuming the push queue: one batch at a time per worker (each is one sObject Collections
//! call of up to 200 records; several workers give several calls at once). A batch is acked
//! once its outcome is committed; a batch that cannot be applied now (Salesforce or the
//! database unreachable) is held and tried again with backoff, as pages are. A message that is
//! not a push batch is rejected to the dead-letter queue, kept whole; each change Salesforce
//! refuses goes there as a one-record batch (class `salesforce`) before the ack. A lost broker
//! connection is reconnected with backoff.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use common::{
    amqp::{BlockWatch, BrokerNodes},
    push::PushBatch,
    topology,
};
use futures::StreamExt;
use lapin::{
    Connection,
    options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions},
    types::FieldTable,
};
use salesforce::SalesforceClient;
use tokio_util::sync::CancellationToken;

use super::apply::{self, apply};
use crate::{
    dead_letter::{self, DeadLetterPublisher},
    metrics::WorkerMetrics,
};

/// The `op` label of `sfsync_push_records_total`.
fn op_name(op: common::push::PushOp) -> &'static str {
    match op {
        common::push::PushOp::Create => "create",
        common::push::PushOp::Update => "update",
        common::push::PushOp::Delete => "delete",
    }
}

/// How long the broker may take to confirm a dead letter.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

/// How long write-back pauses when the org's API usage is past `--max-api-usage`, before one
/// call finds out whether it still is.
const QUOTA_PAUSE: Duration = Duration::from_secs(300);

/// How the push consumer names its connection in the broker's management UI.
const CONNECTION_NAME: &str = "sfsync-worker-push";

/// Longest pause between two tries of a batch, or two reconnects.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Applies push batches until `cancel` fires (the batch in hand is finished first).
pub async fn run(
    nodes: Arc<BrokerNodes>,
    pool: deadpool_postgres::Pool,
    sf: Arc<SalesforceClient<WorkerMetrics>>,
    cancel: CancellationToken,
) {
    let mut pause = Duration::from_millis(500);
    let mut after_loss = false;
    while !cancel.is_cancelled() {
        match consume(&nodes, after_loss, &pool, &sf, &cancel).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), retry_in = ?pause, "The push consumer lost RabbitMQ; reconnecting.");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_PAUSE);
                after_loss = true;
            }
        }
    }
}

/// One connection's life: consume until cancelled (`Ok`) or the connection is lost (`Err`).
async fn consume(
    nodes: &BrokerNodes,
    after_loss: bool,
    pool: &deadpool_postgres::Pool,
    sf: &SalesforceClient<WorkerMetrics>,
    cancel: &CancellationToken,
) -> anyhow::Result<()> {
    let connection: Arc<Connection> = Arc::new(if after_loss {
        nodes.reconnect(CONNECTION_NAME).await?
    } else {
        nodes.connect(CONNECTION_NAME).await?
    });
    let blocked = BlockWatch::follow(
        &connection,
        CONNECTION_NAME,
        Some(sf.metrics().broker_blocked()),
    );
    let dead_letters = DeadLetterPublisher::new(connection.clone(), blocked, CONFIRM_TIMEOUT);
    let channel = topology::declare_on(&connection).await?;
    channel.basic_qos(1, BasicQosOptions::default()).await?;
    let mut consumer = channel
        .basic_consume(
            topology::PUSH_QUEUE.into(),
            "sfsync-push".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("consuming the push queue")?;
    tracing::info!("Applying write-back batches from {}.", topology::PUSH_QUEUE);
    'batches: loop {
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            next = consumer.next() => next,
        };
        let delivery = match next {
            Some(Ok(delivery)) => delivery,
            Some(Err(e)) => anyhow::bail!("lost the RabbitMQ connection: {e}"),
            None => anyhow::bail!("the broker cancelled the push consumer"),
        };
        let batch: PushBatch = match serde_json::from_slice(&delivery.data) {
            Ok(batch) => batch,
            Err(e) => {
                tracing::error!(error = %e, message_id = ?delivery.properties.message_id(), "Not a push batch; set aside on the dead-letter queue as it came.");
                delivery
                    .reject(BasicRejectOptions { requeue: false })
                    .await?;
                continue;
            }
        };
        let span = tracing::info_span!("push", batch = %batch.batch_id, object = %batch.object, op = ?batch.op);
        let _entered = span.enter();
        let mut pause = Duration::from_millis(500);
        loop {
            match apply(pool, sf, &batch).await {
                Ok(outcome) => {
                    tracing::info!(
                        applied = outcome.applied,
                        failed = outcome.failed.len(),
                        superseded = outcome.superseded,
                        "Push batch applied."
                    );
                    sf.metrics().pushed(
                        &batch.object,
                        op_name(batch.op),
                        outcome.applied,
                        outcome.failed.len() as u64,
                        outcome.superseded,
                    );
                    for failure in &outcome.failed {
                        tracing::warn!(row_id = failure.row_id, code = %failure.error.status_code, message = %failure.error.message, fields = ?failure.error.fields, "Salesforce refused a change; it goes to the dead-letter queue.");
                    }
                    let source = delivery
                        .properties
                        .message_id()
                        .as_ref()
                        .map_or_else(|| batch.batch_id.to_string(), ToString::to_string);
                    let letters: Vec<_> = outcome
                        .failed
                        .iter()
                        .map(|f| dead_letter::for_push(&batch, f, &source))
                        .collect();
                    // The batch is acked only once its letters are confirmed; if they are not,
                    // it comes again and is applied again (every call of it may be repeated).
                    dead_letters
                        .send(&letters)
                        .await
                        .context("dead-lettering refused changes")?;
                    break;
                }
                Err(apply::ApplyError::Salesforce(e @ salesforce::SfError::Quota { .. })) => {
                    // Paused, not failing: one call each QUOTA_PAUSE tells when usage fell.
                    tracing::warn!(error = %e, retry_in = ?QUOTA_PAUSE, "Write-back paused: API quota.");
                    tokio::select! {
                        () = cancel.cancelled() => break 'batches,
                        () = tokio::time::sleep(QUOTA_PAUSE) => {}
                    }
                    sf.usage().forget();
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "Applying the push batch failed; trying again.");
                    // Held, not requeued: every return of a delivery counts toward the
                    // queue's delivery limit. At shutdown it is left unacked: the broker
                    // gives it to another worker (applying it again is safe).
                    tokio::select! {
                        () = cancel.cancelled() => break 'batches,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
        delivery.ack(BasicAckOptions::default()).await?;
    }
    let _ = channel.close(200, "push consumer stopping".into()).await;
    let _ = connection.close(200, "push consumer stopping".into()).await;
    Ok(())
}
