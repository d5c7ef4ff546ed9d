//! The producer's broker connection: connecting and declaring the topology, following the
//! broker's blocks of it, and running a sync again on a new connection (to the next node of a
//! cluster) when the broker was lost under it.

use std::{future::Future, sync::Arc, time::Duration};

use anyhow::Context as _;
use backon::{BackoffBuilder, ExponentialBuilder};
use common::{
    amqp::{BlockWatch, BrokerNodes},
    health::Health,
    metrics::{Gauge, RetryCause},
};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use crate::{metrics::ProducerMetrics, publisher::PublishError};

/// A sync that lost the broker is started again on a new connection this many times. It
/// resumes from the watermark, which only confirmed pages advanced, so nothing is skipped.
const BROKER_RETRIES: usize = 5;

/// How the producer names its connection in the broker's management UI.
const CONNECTION_NAME: &str = "sfsync-producer";

/// Connects to the broker and declares the topology.
///
/// # Errors
/// The broker cannot be reached, refuses the login, or refuses a declaration.
pub async fn connect(
    amqp_url: &SecretString,
    connection_name: &str,
) -> anyhow::Result<lapin::Connection> {
    let connection = common::amqp::connect(amqp_url, connection_name).await?;
    declared(connection).await
}

/// Declares the topology on a new connection.
async fn declared(connection: lapin::Connection) -> anyhow::Result<lapin::Connection> {
    let channel = common::topology::declare_on(&connection).await?;
    common::amqp::close_channel(&channel, "declared").await;
    Ok(connection)
}

/// A channel on the producer's connection, with that connection's [`BlockWatch`], so that
/// confirm waits pause while the broker blocks publishing.
#[derive(Debug, Clone)]
pub struct BrokerChannel {
    pub channel: lapin::Channel,
    pub blocked: BlockWatch,
}

/// Whether an error came from the broker connection (worth reconnecting for).
fn is_broker_error(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.is::<lapin::Error>() || cause.is::<PublishError>())
}

/// The producer's connection to the broker, replaced when it is lost.
pub struct Broker {
    connection: lapin::Connection,
    /// Whether the broker blocks `connection` (a resource alarm).
    blocked: BlockWatch,
    /// `sfsync_broker_blocked`, which each connection's watch keeps.
    gauge: Gauge,
    /// For reconnecting after the connection is lost, to the next node first.
    nodes: Arc<BrokerNodes>,
    /// `/readyz`: the broker check fails while a lost connection is being replaced.
    health: Arc<Health>,
}

impl Broker {
    /// Connects and declares the topology; `blocked` is the gauge kept at 1 while the broker
    /// blocks the connection.
    ///
    /// # Errors
    /// As for [`connect`].
    pub async fn open(
        amqp_url: &SecretString,
        blocked: Gauge,
        health: Arc<Health>,
    ) -> anyhow::Result<Self> {
        let nodes = Arc::new(BrokerNodes::parse(amqp_url)?);
        let connection = declared(nodes.connect(CONNECTION_NAME).await?).await?;
        health.pass(crate::session::BROKER);
        Ok(Self {
            blocked: BlockWatch::follow(&connection, CONNECTION_NAME, Some(blocked.clone())),
            connection,
            gauge: blocked,
            nodes,
            health,
        })
    }

    pub fn connection(&self) -> &lapin::Connection {
        &self.connection
    }

    /// Whether the broker blocks the connection now.
    pub fn blocked(&self) -> &BlockWatch {
        &self.blocked
    }

    /// Opens a channel for publishing.
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn channel(&self) -> anyhow::Result<BrokerChannel> {
        let channel = self
            .connection
            .create_channel()
            .await
            .context("opening an AMQP channel")?;
        Ok(BrokerChannel {
            channel,
            blocked: self.blocked.clone(),
        })
    }

    /// Runs `work` on a new channel. When it fails because of the broker (the connection
    /// broke, or a page was not confirmed), it runs again on a new connection, up to
    /// [`BROKER_RETRIES`] times and not once `cancel` is cancelled. The pause before each
    /// retry doubles from 1 s, capped at 30 s, plus up to as much again of jitter so that many
    /// producers do not reconnect in step; each retry is counted in
    /// `sfsync_retries_total{cause="broker_reconnect"}` and logged at WARN. `object` names what
    /// `work` syncs, for that log.
    ///
    /// The loop draws its pauses from backon's backoff instead of wrapping `work` in
    /// `Retryable`: between two attempts it replaces the connection the next one runs on, and a
    /// retried closure cannot hold `&mut self` across attempts. `RetryableWithContext` could
    /// thread it through; the loop says the same more plainly.
    ///
    /// # Errors
    /// What `work` failed with last, or an error opening its channel.
    pub async fn with_reconnects<T, F, Fut>(
        &mut self,
        object: &str,
        metrics: &ProducerMetrics,
        cancel: &CancellationToken,
        work: F,
    ) -> anyhow::Result<T>
    where
        F: Fn(BrokerChannel) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut pauses = ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(BROKER_RETRIES)
            .with_jitter()
            .build();
        let mut attempt = 0;
        loop {
            let error = match self.on_new_channel(&work).await {
                Err(e) if is_broker_error(&e) && !cancel.is_cancelled() => e,
                done => return done,
            };
            self.health.fail(
                crate::session::BROKER,
                format!("lost the broker ({error:#}); reconnecting"),
            );
            let Some(pause) = pauses.next() else {
                return Err(error);
            };
            attempt += 1;
            metrics.retry(RetryCause::BrokerReconnect);
            tracing::warn!(object, attempt, error = format!("{error:#}"), retry_in = ?pause, "Lost the broker; reconnecting and syncing again from the watermark.");
            tokio::time::sleep(pause).await;
            self.reconnect().await;
        }
    }

    /// Runs `work` on a channel of its own, closed after it.
    async fn on_new_channel<T, F, Fut>(&self, work: &F) -> anyhow::Result<T>
    where
        F: Fn(BrokerChannel) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let channel = self.channel().await?;
        let result = work(channel.clone()).await;
        common::amqp::close_channel(&channel.channel, "sync done").await;
        result
    }

    /// Replaces the connection, starting with the next node of a cluster. When that fails the
    /// old one stays, so the next attempt fails on it and counts as one more retry.
    async fn reconnect(&mut self) {
        let fresh = match self.nodes.reconnect(CONNECTION_NAME).await {
            Ok(connection) => declared(connection).await,
            Err(e) => Err(e),
        };
        match fresh {
            Ok(connection) => {
                self.blocked =
                    BlockWatch::follow(&connection, CONNECTION_NAME, Some(self.gauge.clone()));
                self.connection = connection;
                self.health.pass(crate::session::BROKER);
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "Reconnecting to RabbitMQ failed."),
        }
    }

    pub async fn close(&self) {
        common::amqp::close_connection(&self.connection, "producer done").await;
    }
}
