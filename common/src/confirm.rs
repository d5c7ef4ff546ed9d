//! Publishing a message and waiting for the broker's confirm, never for ever.
//!
//! Every message sfsync publishes is confirmed before anything depends on it: the producer
//! moves its watermark only past confirmed pages, a worker acks a page only after its dead
//! letters are confirmed, and `dlq replay` removes a letter only after its copy on the work
//! queue is confirmed. A confirm that is pending when the connection dies, or while the broker
//! is blocked or the network stalls, may never resolve in lapin; so each wait watches the
//! channel and gives up after a timeout, and the caller treats the message as not published.
//!
//! Publishing is split in two ([`publish`] then [`PendingConfirm::wait`]) so that the producer
//! can keep a window of confirms outstanding; [`publish_confirmed`] does both.

use std::time::Duration;

use lapin::{
    BasicProperties, Channel, Confirmation, PublisherConfirm, options::BasicPublishOptions,
    types::ShortString,
};

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
    /// No confirm within the time allowed (a blocked broker, a stalled network).
    #[error("the broker did not confirm the message within {0:?}")]
    TimedOut(Duration),
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
/// stalled connection can block it too.
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
    timeout: Duration,
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
    let confirm = tokio::time::timeout(timeout, publish)
        .await
        .map_err(|_| ConfirmError::TimedOut(timeout))?
        .map_err(ConfirmError::Publish)?;
    Ok(PendingConfirm {
        confirm,
        channel: channel.clone(),
        exchange: exchange.to_owned(),
    })
}

impl PendingConfirm {
    /// Waits for the broker's confirm, at most `timeout`, and ends early when the channel
    /// closes.
    ///
    /// # Errors
    /// Any answer but a plain ack of a routed message, a closed channel, or no answer in time.
    pub async fn wait(self, timeout: Duration) -> Result<(), ConfirmError> {
        let PendingConfirm {
            confirm,
            channel,
            exchange,
        } = self;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut confirm = std::pin::pin!(confirm);
        let answer = loop {
            let check = tokio::time::Instant::now() + CHANNEL_CHECK;
            tokio::select! {
                answer = &mut confirm => break answer,
                () = tokio::time::sleep_until(check.min(deadline)) => {
                    if !channel.status().connected() {
                        return Err(ConfirmError::Closed);
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Err(ConfirmError::TimedOut(timeout));
                    }
                }
            }
        };
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
    timeout: Duration,
) -> Result<(), ConfirmError> {
    publish(channel, exchange, routing_key, body, properties, timeout)
        .await?
        .wait(timeout)
        .await
}
