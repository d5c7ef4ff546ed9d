//! Publishing a message and waiting for the broker's confirm, never for ever.
//!
//! Every message sfsync publishes is confirmed before anything depends on it: the producer
//! moves its watermark only past confirmed pages, a worker acks a page only after its dead
//! letters are confirmed, and `dlq replay` removes a letter only after its copy on the work
//! queue is confirmed. A confirm that is pending when the connection dies, or while the network
//! stalls, may never resolve in lapin; so each wait watches the channel and gives up after a
//! timeout, and the caller treats the message as not published. Time the broker blocks the
//! connection (a memory or disk alarm, see [`crate::blocked`]) does not count towards that
//! timeout: a confirm cannot come while blocked, and the message is not lost.
//!
//! Publishing is split in two ([`publish`] then [`PendingConfirm::wait`]) so that the producer
//! can keep a window of confirms outstanding; [`publish_confirmed`] does both.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Confirmation, PublisherConfirm, options::BasicPublishOptions,
    types::ShortString,
};

use crate::blocked::BlockWatch;

/// How often a wait looks at the channel's state, so that a closed channel ends it at once.
const CHANNEL_CHECK: Duration = Duration::from_millis(500);

/// Why a message does not count as published. In every case the caller must act as if the
/// broker does not have it (it may, after a timeout or a closed channel: publishing it again is
/// harmless, as every consumer of sfsync's messages is idempotent).
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    /// The publish itself failed (the channel or connection is gone).
    #[error("publishing failed: {0}")]
    Publish(#[source] lapin::Error),
    /// The confirm failed in lapin (the channel or connection failed while waiting).
    #[error("waiting for the broker's confirm failed: {0}")]
    Broker(#[source] lapin::Error),
    /// The broker refused the message (`basic.nack`): a queue limit or an internal error.
    #[error("the broker refused the message (basic.nack)")]
    Nacked,
    /// Published with `mandatory` but no queue is bound where it was sent.
    #[error(
        "the message was returned as unroutable ({reply}): no queue is bound to exchange {exchange:?}; was the topology deleted?"
    )]
    Unroutable { exchange: String, reply: String },
    /// The channel was not put in confirm mode: a programming error, never retried into success.
    #[error("the channel is not in confirm mode, so the message cannot be confirmed")]
    NotInConfirmMode,
    /// The channel closed before the confirm came.
    #[error("the broker connection closed before the message was confirmed")]
    Closed,
    /// No confirm within the time allowed (a stalled network; time blocked by the broker's
    /// alarms is not counted).
    #[error("the broker did not confirm the message within {0:?}")]
    TimedOut(Duration),
}

/// How long a publish, or its confirm, may take: `limit`, not counting the time the broker
/// blocks the connection, when the connection's [`BlockWatch`] is given. A block starts the
/// limit over: the broker stops reading a connection when it blocks it, which may be a moment
/// before the client hears of it, so what was sent just before waits out the block too.
#[derive(Debug, Clone)]
pub struct Patience {
    limit: Duration,
    blocked: Option<BlockWatch>,
}

impl Patience {
    /// `limit`, paused while `blocked` says the connection is blocked.
    pub fn new(limit: Duration, blocked: BlockWatch) -> Self {
        Self {
            limit,
            blocked: Some(blocked),
        }
    }

    /// The same, with another limit.
    #[must_use]
    pub fn with_limit(self, limit: Duration) -> Self {
        Self { limit, ..self }
    }

    /// Runs `work` until it ends, `channel` closes, or the time allowed is spent. That time
    /// runs from the start, or from the end of the last block if that came later, and not at
    /// all while the connection is blocked. It is measured against the clock, not summed over
    /// polls: a wait that is not polled for a while (a confirm in the producer's window while
    /// the next page is read) loses no time it was blocked.
    async fn run<F: Future>(&self, channel: &Channel, work: F) -> Result<F::Output, ConfirmError> {
        let mut work = std::pin::pin!(work);
        let began = tokio::time::Instant::now();
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                () = tokio::time::sleep(CHANNEL_CHECK.min(self.limit)) => {
                    if !channel.status().connected() {
                        return Err(ConfirmError::Closed);
                    }
                    let from = match &self.blocked {
                        Some(watch) if watch.is_blocked() => continue,
                        Some(watch) => watch.unblocked_at().map_or(began, |ended| ended.max(began)),
                        None => began,
                    };
                    if from.elapsed() >= self.limit {
                        return Err(ConfirmError::TimedOut(self.limit));
                    }
                }
            }
        }
    }
}

/// A plain limit: for a connection whose blocks nobody follows.
impl From<Duration> for Patience {
    fn from(limit: Duration) -> Self {
        Self {
            limit,
            blocked: None,
        }
    }
}

/// A published message whose confirm has not been seen yet.
#[must_use = "a message counts as published only once its confirm is waited for"]
pub struct PendingConfirm {
    confirm: PublisherConfirm,
    channel: Channel,
    exchange: String,
}

/// Publishes `body` with `mandatory` set (an unroutable message comes back instead of being
/// dropped silently) on a channel in confirm mode. The publish itself is given `timeout`: a
/// stalled connection can hold it up too.
///
/// # Errors
/// [`ConfirmError::Publish`] when the channel refuses the publish, [`ConfirmError::TimedOut`]
/// when it does not complete in time.
pub async fn publish(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
    timeout: impl Into<Patience>,
) -> Result<PendingConfirm, ConfirmError> {
    let options = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let publish = channel.basic_publish(
        ShortString::from(exchange),
        ShortString::from(routing_key),
        options,
        body,
        properties,
    );
    let confirm = timeout
        .into()
        .run(channel, publish)
        .await?
        .map_err(ConfirmError::Publish)?;
    Ok(PendingConfirm {
        confirm,
        channel: channel.clone(),
        exchange: exchange.to_owned(),
    })
}

impl PendingConfirm {
    /// Waits for the broker's confirm, at most `timeout` (not counting time blocked), and ends
    /// early when the channel closes.
    ///
    /// # Errors
    /// Any answer but a plain ack of a routed message, a closed channel, or no answer in time.
    pub async fn wait(self, timeout: impl Into<Patience>) -> Result<(), ConfirmError> {
        let PendingConfirm {
            confirm,
            channel,
            exchange,
        } = self;
        let answer = timeout.into().run(&channel, confirm).await?;
        match answer.map_err(ConfirmError::Broker)? {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) => Err(ConfirmError::Unroutable {
                exchange,
                reply: returned.reply_text.to_string(),
            }),
            Confirmation::Nack(_) => Err(ConfirmError::Nacked),
            Confirmation::NotRequested => Err(ConfirmError::NotInConfirmMode),
        }
    }
}

/// [`publish`], then [`PendingConfirm::wait`], each with `timeout`.
///
/// # Errors
/// As for [`publish`] and [`PendingConfirm::wait`].
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    body: &[u8],
    properties: BasicProperties,
    timeout: impl Into<Patience>,
) -> Result<(), ConfirmError> {
    let timeout = timeout.into();
    publish(
        channel,
        exchange,
        routing_key,
        body,
        properties,
        timeout.clone(),
    )
    .await?
    .wait(timeout)
    .await
}
