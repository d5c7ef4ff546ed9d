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
use common::metrics::RetryCause;
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
    pub channel: Channel,
    pub consumer: Consumer,
}

impl Session {
    /// Connects, declares the topology, sets the prefetch and starts consuming.
    ///
    /// # Errors
    /// The broker cannot be reached, refuses the login, or refuses a setup step.
    pub async fn open(args: &WorkerArgs) -> anyhow::Result<Self> {
        let connection =
            Arc::new(common::amqp::connect(&args.services.amqp_url, "sfsync-worker").await?);
        Self::set_up(connection, args).await
    }

    /// Everything after the connection: topology, prefetch, consumer.
    ///
    /// # Errors
    /// The broker refused a declaration, the QoS or the consumer.
    pub async fn set_up(connection: Arc<Connection>, args: &WorkerArgs) -> anyhow::Result<Self> {
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

/// Opens a new session, retrying for as long as it takes (or until `cancel`): jittered
/// exponential backoff from 200 ms, capped at 5 s (at most 10 s with the jitter), each attempt
/// counted in `sfsync_retries_total{cause="broker_reconnect"}` and each failed one logged at
/// WARN. `None` when cancelled first.
pub async fn reconnect(
    args: &WorkerArgs,
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
        Session::open(args)
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
