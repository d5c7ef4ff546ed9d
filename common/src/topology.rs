//! The RabbitMQ topology (`docs/architecture.md`, "The broker topology"), declared the same way
//! by producer and worker so that either may start first. Every limit is explicit: RabbitMQ 3.10
//! has no default delivery limit.

use anyhow::Context as _;
use lapin::{
    Channel, Connection, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions},
    types::{AMQPValue, FieldTable, LongString, ShortString},
};

/// Direct exchange the producer publishes pages to.
pub const EXCHANGE: &str = "sfsync";
/// Routing key of page messages.
pub const ROUTING_KEY: &str = "records";
/// Work queue the workers consume.
pub const WORK_QUEUE: &str = "sfsync.records";
/// Routing key of push messages (write-back batches).
pub const PUSH_ROUTING_KEY: &str = "push";
/// Queue of push messages, which workers with Salesforce credentials consume.
pub const PUSH_QUEUE: &str = "sfsync.push";
/// Fanout exchange for dead letters: the work queue's DLX, and where workers publish failed records.
pub const DEAD_EXCHANGE: &str = "sfsync.dead";
/// Queue holding dead letters until they are replayed or purged.
pub const DEAD_QUEUE: &str = "sfsync.dead";
/// Deliveries of one message before RabbitMQ dead-letters it as poison. On 3.10 every return
/// (crash, lost connection, nack) counts, so this is generous: a healthy page only returns when
/// a worker dies holding it.
pub const DELIVERY_LIMIT: i64 = 20;

fn long_str(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s))
}

/// Opens a channel on `connection` and declares the topology on it; the channel is left open
/// for the caller (to consume on, or to close).
///
/// # Errors
/// The channel cannot be opened, or a declaration is refused (see [`declare`]); the message
/// says which.
pub async fn declare_on(connection: &Connection) -> anyhow::Result<Channel> {
    let channel = connection
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    declare(&channel)
        .await
        .context("declaring the sfsync exchanges and queues")?;
    Ok(channel)
}

/// Declares exchanges, queues and bindings; idempotent.
///
/// # Errors
/// Fails if the broker refuses a declaration, e.g. because a queue of that name already exists
/// with other arguments (PRECONDITION_FAILED), which closes the channel.
pub async fn declare(channel: &Channel) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    channel
        .exchange_declare(
            ShortString::from(EXCHANGE),
            ExchangeKind::Direct,
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .exchange_declare(
            ShortString::from(DEAD_EXCHANGE),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await?;

    let queue_options = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };

    let mut dead_args = FieldTable::default();
    // Quorum: replicated on a cluster, survives broker restarts, and supports delivery limits.
    dead_args.insert("x-queue-type".into(), long_str("quorum"));
    channel
        .queue_declare(ShortString::from(DEAD_QUEUE), queue_options, dead_args)
        .await?;
    channel
        .queue_bind(
            ShortString::from(DEAD_QUEUE),
            ShortString::from(DEAD_EXCHANGE),
            ShortString::from(""),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let mut work_args = FieldTable::default();
    work_args.insert("x-queue-type".into(), long_str("quorum"));
    // Poison messages (a worker crashing on them again and again) leave after this many deliveries.
    work_args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    work_args.insert("x-dead-letter-exchange".into(), long_str(DEAD_EXCHANGE));
    // At-least-once dead-lettering needs reject-publish too; without it 3.10 silently falls back
    // to at-most-once (measured; `docs/architecture.md`, "The broker topology").
    work_args.insert("x-dead-letter-strategy".into(), long_str("at-least-once"));
    work_args.insert("x-overflow".into(), long_str("reject-publish"));
    // The push queue has the same arguments: a batch that keeps crashing its workers is set
    // aside in the dead-letter queue, never dropped.
    channel
        .queue_declare(
            ShortString::from(PUSH_QUEUE),
            queue_options,
            work_args.clone(),
        )
        .await?;
    channel
        .queue_declare(ShortString::from(WORK_QUEUE), queue_options, work_args)
        .await?;
    for (queue, key) in [(WORK_QUEUE, ROUTING_KEY), (PUSH_QUEUE, PUSH_ROUTING_KEY)] {
        channel
            .queue_bind(
                ShortString::from(queue),
                ShortString::from(EXCHANGE),
                ShortString::from(key),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
