//! The consume loop: per-consumer prefetch, at most `concurrency` pages in work, ack only after
//! commit, reject (to the dead-letter exchange) only for permanent errors, and a graceful
//! drain on shutdown.
//!
//! A transient failure is retried here, in-process, holding the delivery: on RabbitMQ 3.10
//! every return of a delivery raises its delivery count, so requeueing on a database outage
//! would walk healthy pages into the dead-letter queue (DESIGN.md).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use backon::{ExponentialBuilder, Retryable};
use futures::StreamExt;
use lapin::{
    message::Delivery,
    options::{
        BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions,
        BasicRejectOptions,
    },
    types::{FieldTable, ShortString},
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::WorkerArgs,
    decode::decode,
    error::PageError,
    store::{Stored, store_page},
    table::TableShapes,
};

/// What every page task shares.
struct Context {
    pool: deadpool_postgres::Pool,
    shapes: TableShapes,
    /// Cancelled when the shutdown grace period is over: retries stop, and pages still in work
    /// are left unacked for redelivery.
    hard_stop: CancellationToken,
}

/// Runs a worker until `cancel` fires (then drains and returns `Ok`) or the broker connection
/// is lost (an error).
///
/// # Errors
/// A setting is wrong, a service is unreachable at start, or the broker connection was lost.
pub async fn run(args: WorkerArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let control = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&control).await?;
    control.close().await;
    let pool = crate::pool::build(&args.services.database_url, usize::from(args.concurrency))?;

    let connection = common::amqp::connect(&args.services.amqp_url, "sfsync-worker").await?;
    let channel = connection
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    common::topology::declare(&channel)
        .await
        .context("declaring the sfsync exchanges and queues")?;
    // Per consumer (global=false): global QoS on a quorum queue closes the connection.
    channel
        .basic_qos(
            args.prefetch.max(args.concurrency),
            BasicQosOptions { global: false },
        )
        .await
        .context("setting the prefetch limit")?;
    let mut consumer = channel
        .basic_consume(
            ShortString::from(common::topology::WORK_QUEUE),
            ShortString::from(""),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .context("starting to consume sfsync.records")?;
    tracing::info!(
        prefetch = args.prefetch,
        concurrency = args.concurrency,
        "Worker consuming."
    );

    let ctx = Arc::new(Context {
        pool,
        shapes: TableShapes::default(),
        hard_stop: CancellationToken::new(),
    });
    let permits = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = JoinSet::new();
    let result = loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            permit = permits.clone().acquire_owned() => permit.context("page permits closed")?,
        };
        let next = tokio::select! {
            () = cancel.cancelled() => break Ok(()),
            next = consumer.next() => next,
        };
        match next {
            Some(Ok(delivery)) => {
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    handle(delivery, &ctx).await;
                    drop(permit);
                });
            }
            Some(Err(e)) => break Err(anyhow::anyhow!("lost the RabbitMQ connection: {e}")),
            None => {
                break Err(anyhow::anyhow!(
                    "the broker cancelled this worker's consumer; was {} deleted?",
                    common::topology::WORK_QUEUE
                ));
            }
        }
        while tasks.try_join_next().is_some() {}
    };

    // Stop deliveries first; what was prefetched but not started is requeued when the channel closes.
    let _ = channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await;
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "Finishing pages in work.");
    }
    if tokio::time::timeout(args.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!(
            left = tasks.len(),
            "Shutdown timeout passed; unfinished pages will be redelivered."
        );
        ctx.hard_stop.cancel();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    let _ = channel
        .close(200, ShortString::from("worker stopping"))
        .await;
    let _ = connection
        .close(200, ShortString::from("worker stopping"))
        .await;
    tracing::info!("Worker stopped.");
    result
}

/// Processes one delivery and settles it.
async fn handle(delivery: Delivery, ctx: &Context) {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    match process(&delivery, ctx).await {
        Ok(stored) => {
            tracing::debug!(
                message_id,
                records = stored.records,
                rows_written = stored.rows_written,
                "Page stored."
            );
            match delivery.acker.ack(BasicAckOptions::default()).await {
                Ok(true) => {}
                // Not sent (the channel was recovered since): the page will come again, harmlessly.
                Ok(false) => {
                    tracing::warn!(message_id, "Ack not sent; the page will be redelivered.")
                }
                Err(e) => {
                    tracing::warn!(message_id, error = %e, "Ack failed; the page will be redelivered.")
                }
            }
        }
        Err(PageError::Permanent { class, message }) => {
            tracing::error!(message_id, error_class = class.as_str(), error = %message, "Page cannot be stored; rejecting it to the dead-letter queue.");
            if let Err(e) = delivery
                .acker
                .reject(BasicRejectOptions { requeue: false })
                .await
            {
                tracing::warn!(message_id, error = %e, "Reject failed; the page will be redelivered.");
            }
        }
        Err(PageError::Transient(e)) => {
            tracing::warn!(message_id, error = %e, "Stopped retrying at shutdown; the page will be redelivered.");
        }
    }
}

/// Decodes and stores a page, retrying transient failures until they pass or the hard stop.
async fn process(delivery: &Delivery, ctx: &Context) -> Result<Stored, PageError> {
    let message_type = delivery.properties.kind().as_ref().map(|s| s.as_str());
    let page = decode(message_type, &delivery.data)?;
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(30))
        .with_jitter()
        .without_max_times();
    (|| store_page(&ctx.pool, &ctx.shapes, &page))
        .retry(backoff)
        .when(|e| matches!(e, PageError::Transient(_)) && !ctx.hard_stop.is_cancelled())
        .notify(|e, after| tracing::warn!(object = %page.object, page = page.page, error = %e, retry_in = ?after, "Storing a page failed; retrying."))
        .await
}
