//! The worker's broker connection with its consumer on it, and reconnecting when it is lost.
//!
//! When the connection breaks, the worker opens a new [`Session`] itself (see [`reconnect`])
//! rather than using lapin's `enable_auto_recover`: a fresh connection redeclares the topology
//! and sets the QoS through the same code as at start (lapin before 4.12.1 lost the QoS on
//! recovery), there is no half-recovered state in which a delivery's ack silently returns
//! `Ok(false)`, and the dead-letter publisher simply moves to the new connection. Pages in work
//! on the old connection cannot be acked any more; the broker redelivers them, which the
//! guarded upsert makes harmless.

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use backon::{ExponentialBuilder, Retryable};
use common::{
    amqp::{BlockWatch, BrokerNodes},
    metrics::RetryCause,
};
use lapin::{
    Channel, Connection, Consumer,
    options::{BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::{FieldTable, ShortString},
};
use tokio_util::sync::CancellationToken;

use crate::{cli::WorkerArgs, metrics::WorkerMetrics};

/// One broker connection with this worker's consumer on it.
pub struct Session {
    pub connection: Arc<Connection>,
    /// Whether the broker blocks the connection (dead letters are published on it).
    pub blocked: BlockWatch,
    pub channel: Channel,
    pub consumer: Consumer,
}

/// How the worker names its connection in the broker's management UI.
pub const CONNECTION_NAME: &str = "sfsync-worker";

impl Session {
    /// Connects (to the node after the one the lost connection was on, when `after_loss`),
    /// declares the topology, sets the prefetch and starts consuming.
    ///
    /// # Errors
    /// No node can be reached, or the broker refuses the login or a setup step.
    pub async fn open(
        args: &WorkerArgs,
        nodes: &BrokerNodes,
        metrics: &WorkerMetrics,
        after_loss: bool,
    ) -> anyhow::Result<Self> {
        let connection = if after_loss {
            nodes.reconnect(CONNECTION_NAME).await?
        } else {
            nodes.connect(CONNECTION_NAME).await?
        };
        Self::set_up(Arc::new(connection), args, metrics).await
    }

    /// Everything after the connection: following its blocks, topology, prefetch, consumer.
    ///
    /// # Errors
    /// The broker refused a declaration, the QoS or the consumer.
    pub async fn set_up(
        connection: Arc<Connection>,
        args: &WorkerArgs,
        metrics: &WorkerMetrics,
    ) -> anyhow::Result<Self> {
        let blocked =
            BlockWatch::follow(&connection, CONNECTION_NAME, Some(metrics.broker_blocked()));
        let channel = common::topology::declare_on(&connection).await?;
        // Per consumer (global=false): global QoS on a quorum queue closes the connection.
        channel
            .basic_qos(
                args.prefetch.max(args.concurrency),
                BasicQosOptions { global: false },
            )
            .await
            .context("setting the prefetch limit")?;
        let consumer = channel
            .basic_consume(
                ShortString::from(common::topology::WORK_QUEUE),
                ShortString::from(""),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .context("starting to consume sfsync.records")?;
        Ok(Self {
            connection,
            blocked,
            channel,
            consumer,
        })
    }

    /// Stops deliveries; what was prefetched but not started is requeued when the channel
    /// closes.
    pub async fn stop_consuming(&self) {
        let _ = tokio::time::timeout(
            common::amqp::CLOSE_TIMEOUT,
            self.channel
                .basic_cancel(self.consumer.tag(), BasicCancelOptions::default()),
        )
        .await;
    }

    /// Closes the channel, then the connection; errors (it may be gone already) are ignored,
    /// and a broker that does not answer is not waited for long.
    pub async fn close(&self, reason: &str) {
        common::amqp::close_channel(&self.channel, reason).await;
        common::amqp::close_connection(&self.connection, reason).await;
    }
}

/// Opens a new session, starting with the node after the one the lost connection was on and
/// retrying for as long as it takes (or until `cancel`): jittered exponential backoff from
/// 200 ms, capped at 5 s (at most 10 s with the jitter), each attempt counted in
/// `sfsync_retries_total{cause="broker_reconnect"}` and each failed one logged at WARN. `None`
/// when cancelled first.
pub async fn reconnect(
    args: &WorkerArgs,
    nodes: &BrokerNodes,
    metrics: &WorkerMetrics,
    cancel: &CancellationToken,
) -> Option<Session> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    let open = || {
        metrics.retry(RetryCause::BrokerReconnect);
        Session::open(args, nodes, metrics, true)
    };
    let attempts = open
        .retry(backoff)
        .notify(|e, after| {
            tracing::warn!(error = format!("{e:#}"), retry_in = ?after, "Reconnecting to RabbitMQ failed; retrying.");
        });
    tokio::select! {
        () = cancel.cancelled() => None,
        session = attempts => session.ok(),
    }
}
