//! Operator commands on the dead-letter queue: list, replay, purge.
//!
//! RabbitMQ has no way to browse a queue, so every command takes the dead letters with
//! `basic.get` *without* acking them, acts on the ones that match its filter, and closes its
//! channel, which puts every untouched letter back. A replayed letter is removed (acked) only
//! after its copy on the work queue is confirmed: a crash in between leaves it on both queues,
//! and replaying a record twice is harmless (the upsert is idempotent).

use std::collections::BTreeMap;

use anyhow::Context as _;
use common::{
    dead_letter::{DeadLetterInfo, ErrorClass, dead_header},
    topology,
};
use lapin::{
    BasicProperties, Channel, Connection,
    message::BasicGetMessage,
    options::{BasicAckOptions, BasicGetOptions, ConfirmSelectOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, ShortString},
};

/// How long `replay` waits for the work queue to confirm one letter before it stops (the letter
/// then stays on the dead-letter queue).
const REPLAY_CONFIRM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Which dead letters a command acts on.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DlqFilter {
    /// Only letters of this object (API name, e.g. Contact).
    #[arg(long)]
    pub object: Option<String>,
    /// Only letters of this error class.
    #[arg(long, value_enum)]
    pub error_class: Option<ErrorClass>,
    /// Act on at most this many letters.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl DlqFilter {
    fn matches(&self, info: &DeadLetterInfo) -> bool {
        self.object.as_ref().is_none_or(|o| {
            info.object
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(o))
        }) && self
            .error_class
            .as_ref()
            .is_none_or(|c| info.error_class == Some(*c))
    }
}

/// One dead letter as `list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Letter {
    pub message_id: Option<String>,
    #[serde(flatten)]
    pub info: DeadLetterInfo,
}

/// Takes up to the number of letters present at the start (so letters that come back while
/// the command runs are not taken twice) and hands each to `act`; returns how many it took.
async fn for_each_letter<F, Fut>(channel: &Channel, mut act: F) -> anyhow::Result<()>
where
    F: FnMut(BasicGetMessage, DeadLetterInfo) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let queue = channel
        .queue_declare(
            ShortString::from(topology::DEAD_QUEUE),
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .context("looking up the dead-letter queue")?;
    for _ in 0..queue.message_count() {
        let Some(message) = channel
            .basic_get(
                ShortString::from(topology::DEAD_QUEUE),
                BasicGetOptions { no_ack: false },
            )
            .await
            .context("reading the dead-letter queue")?
        else {
            break;
        };
        let info = DeadLetterInfo::from_headers(message.delivery.properties.headers().as_ref());
        if !act(message, info).await? {
            break;
        }
    }
    Ok(())
}

/// Reads the letters matching `filter` (all are left on the queue).
///
/// # Errors
/// The broker could not be read.
pub async fn list(connection: &Connection, filter: &DlqFilter) -> anyhow::Result<Vec<Letter>> {
    let channel = connection.create_channel().await?;
    let mut letters = Vec::new();
    for_each_letter(&channel, |message, info| {
        if filter.matches(&info) {
            letters.push(Letter {
                message_id: message
                    .delivery
                    .properties
                    .message_id()
                    .as_ref()
                    .map(|s| s.to_string()),
                info,
            });
        }
        async { Ok(true) }
    })
    .await?;
    common::amqp::close_channel(&channel, "dlq list done").await; // puts every letter back
    Ok(letters)
}

/// Counts by (object, error class).
pub fn summarize(letters: &[Letter]) -> BTreeMap<(String, String), usize> {
    let mut counts = BTreeMap::new();
    for l in letters {
        let key = (
            l.info.object.clone().unwrap_or_else(|| "-".into()),
            l.info
                .error_class
                .map_or_else(|| "-".into(), |c| c.as_str().to_owned()),
        );
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// How many letters a replay moved, by the queue they went back to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Pages and records, onto the work queue.
    pub records: usize,
    /// Refused write-back changes, onto the push queue.
    pub push: usize,
}

impl Replayed {
    pub fn total(self) -> usize {
        self.records + self.push
    }
}

/// Whether a letter is a write-back change (a push batch), which goes back to the push queue.
fn is_push_letter(message: &BasicGetMessage) -> bool {
    message
        .delivery
        .properties
        .kind()
        .as_ref()
        .is_some_and(|t| t.as_str() == common::push::MESSAGE_TYPE)
}

/// Moves matching letters back onto the queue they came from: pages and records onto the work
/// queue, write-back changes onto the push queue.
///
/// # Errors
/// The broker failed; letters not yet confirmed on their queue stay on the DLQ.
pub async fn replay(connection: &Connection, filter: &DlqFilter) -> anyhow::Result<Replayed> {
    let take = connection.create_channel().await?;
    let publish = connection.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    topology::declare(&publish)
        .await
        .context("declaring the sfsync exchanges and queues")?;
    let mut moved = Replayed::default();
    let limit = filter.limit.unwrap_or(usize::MAX);
    for_each_letter(&take, |message, info| {
        let publish = publish.clone();
        let wanted = moved.total() < limit && filter.matches(&info);
        let is_push = is_push_letter(&message);
        if wanted && is_push {
            moved.push += 1;
        } else if wanted {
            moved.records += 1;
        }
        async move {
            if !wanted {
                return Ok(true);
            }
            let delivery = message.delivery;
            let mut headers = delivery.properties.headers().clone().unwrap_or_default();
            // A record put back carries its origin, so the worker books its outcome against
            // the original dead-letter row rather than as a new page.
            if info.record_index.is_some() {
                headers.insert(ShortString::from(dead_header::REPLAY), AMQPValue::Boolean(true));
            }
            let mut properties = BasicProperties::default()
                .with_delivery_mode(2)
                .with_content_type(ShortString::from(common::message::CONTENT_TYPE))
                .with_app_id(ShortString::from("sfsync-dlq-replay"))
                .with_headers(headers);
            if let Some(t) = delivery.properties.kind() {
                properties = properties.with_type(t.clone());
            }
            if let Some(id) = delivery.properties.message_id() {
                properties = properties.with_message_id(id.clone());
            }
            // A refused write-back change goes back to the push queue, anything else to the
            // work queue.
            let routing_key = if is_push {
                topology::PUSH_ROUTING_KEY
            } else {
                topology::ROUTING_KEY
            };
            common::confirm::publish_confirmed(
                &publish,
                topology::EXCHANGE,
                routing_key,
                &delivery.data,
                properties,
                REPLAY_CONFIRM_TIMEOUT,
            )
            .await
            .context("a replayed letter was not confirmed on the work queue; it stays on the dead-letter queue")?;
            anyhow::ensure!(delivery.acker.ack(BasicAckOptions::default()).await?, "a replayed letter could not be removed from the dead-letter queue; it may be replayed again (harmless)");
            Ok(true)
        }
    })
    .await?;
    common::amqp::close_channel(&take, "dlq replay done").await;
    common::amqp::close_channel(&publish, "dlq replay done").await;
    Ok(moved)
}

/// What a purge removed.
#[derive(Debug, Default)]
pub struct Purged {
    pub removed: usize,
    /// The write-back changes among them, as (batch, row id): given up for good, so their
    /// outbox rows are marked discarded (see [`discard_changes`]).
    pub changes: Vec<(uuid::Uuid, i64)>,
}

/// Deletes matching letters.
///
/// # Errors
/// The broker failed.
pub async fn purge(connection: &Connection, filter: &DlqFilter) -> anyhow::Result<Purged> {
    let take = connection.create_channel().await?;
    let mut purged = Purged::default();
    let limit = filter.limit.unwrap_or(usize::MAX);
    for_each_letter(&take, |message, info| {
        let wanted = purged.removed < limit && filter.matches(&info);
        if wanted {
            purged.removed += 1;
            if is_push_letter(&message)
                && let Ok(batch) =
                    serde_json::from_slice::<common::push::PushBatch>(&message.delivery.data)
            {
                purged
                    .changes
                    .extend(batch.records.iter().map(|r| (batch.batch_id, r.row_id)));
            }
        }
        async move {
            if wanted {
                message
                    .delivery
                    .acker
                    .ack(BasicAckOptions::default())
                    .await?;
            }
            Ok(true)
        }
    })
    .await?;
    common::amqp::close_channel(&take, "dlq purge done").await;
    Ok(purged)
}

/// Marks the outbox rows of purged write-back changes discarded: their local values no longer
/// hold off the pull, and `producer status` no longer counts them as refused.
///
/// # Errors
/// The database refused the statement.
pub async fn discard_changes(
    pool: &sqlx::PgPool,
    changes: &[(uuid::Uuid, i64)],
) -> sqlx::Result<u64> {
    let (batches, rows): (Vec<uuid::Uuid>, Vec<i64>) = changes.iter().copied().unzip();
    let done = sqlx::query(
        "UPDATE sfsync.outbox o SET state = 'discarded'
           FROM unnest($1::uuid[], $2::bigint[]) AS p(batch_id, row_id)
          WHERE o.batch_id = p.batch_id AND o.row_id = p.row_id AND o.state = 'failed'",
    )
    .bind(&batches)
    .bind(&rows)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}
