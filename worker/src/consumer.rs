//! The consume loop: per-consumer prefetch, at most `concurrency` pages in work, ack only after
//! commit and after the page's dead letters are confirmed, and a graceful drain on shutdown.
//!
//! A transient failure is retried here, in-process, holding the delivery: on RabbitMQ 3.10
//! every return of a delivery raises its delivery count, so requeueing on a database outage
//! would walk healthy pages into the dead-letter queue (DESIGN.md).
//!
//! A lost broker connection is not fatal either: the worker reconnects with backoff, declares
//! the topology and its QoS again, and consumes on (see [`Session`]).

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use backon::{ExponentialBuilder, Retryable};
use common::metrics::{MetricsListener, ObjectMetrics, RetryCause, WorkerMetrics};
use futures::StreamExt;
use lapin::{
    Channel, Connection, Consumer,
    message::Delivery,
    options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicQosOptions},
    types::{FieldTable, ShortString},
};
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::WorkerArgs,
    dead_letter::{self, DeadLetterPublisher},
    decode::{Page, decode},
    error::PageError,
    store::{Booking, PageOutcome, Tables, store_page},
};

/// What every page task shares.
struct Context {
    pool: deadpool_postgres::Pool,
    tables: Tables,
    dead_letters: DeadLetterPublisher,
    metrics: Arc<WorkerMetrics>,
    /// Cancelled when the shutdown grace period is over: retries stop, and pages still in work
    /// are left unacked for redelivery.
    hard_stop: CancellationToken,
}

/// One broker connection with this worker's consumer on it.
///
/// When the connection breaks, the worker opens a new `Session` itself (see [`reconnect`])
/// rather than using lapin's `enable_auto_recover`: a fresh connection redeclares the topology
/// and sets the QoS through the same code as at start (lapin before 4.12.1 lost the QoS on
/// recovery), there is no half-recovered state in which a delivery's ack silently returns
/// `Ok(false)`, and the dead-letter publisher simply moves to the new connection. Pages in work
/// on the old connection cannot be acked any more; the broker redelivers them, which the
/// guarded upsert makes harmless.
struct Session {
    connection: Arc<Connection>,
    channel: Channel,
    consumer: Consumer,
}

impl Session {
    /// Connects, declares the topology, sets the prefetch and starts consuming.
    async fn open(args: &WorkerArgs) -> anyhow::Result<Self> {
        let connection =
            Arc::new(common::amqp::connect(&args.services.amqp_url, "sfsync-worker").await?);
        Self::set_up(connection, args).await
    }

    /// Everything after the connection: topology, prefetch, consumer.
    async fn set_up(connection: Arc<lapin::Connection>, args: &WorkerArgs) -> anyhow::Result<Self> {
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

    /// Closes the channel, then the connection; errors (it may be gone already) are ignored,
    /// and a broker that does not answer is not waited for long.
    async fn close(&self, reason: &str) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            let _ = self.channel.close(200, ShortString::from(reason)).await;
            let _ = self.connection.close(200, ShortString::from(reason)).await;
        })
        .await;
    }
}

/// How long closing a broker connection may take before the worker moves on.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens a new session, retrying for as long as it takes (or until `cancel`): jittered
/// exponential backoff from 200 ms, capped at 5 s (at most 10 s with the jitter), each attempt
/// counted in `sfsync_retries_total{cause="broker_reconnect"}` and each failed one logged at
/// WARN. `None` when cancelled first.
async fn reconnect(
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

/// Runs a worker until `cancel` fires, then drains and returns `Ok`. A lost broker connection
/// (or a consumer the broker cancelled) is not an error: the worker reconnects with backoff
/// and carries on.
///
/// # Errors
/// A setting is wrong, or a service is unreachable at start.
pub async fn run(args: WorkerArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let listener = args.metrics.bind().await?;
    run_with_metrics(args, listener, cancel).await
}

/// [`run`] with the metrics address already bound (`None`: no metrics endpoint), so that a
/// caller binding port 0 knows where to scrape.
///
/// # Errors
/// As for [`run`].
pub async fn run_with_metrics(
    args: WorkerArgs,
    listener: Option<MetricsListener>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(WorkerMetrics::new());
    let _server = common::metrics::serve(listener, metrics.clone());
    let control = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&control).await?;
    control.close().await;
    let pool = crate::pool::build(&args.services.database_url, usize::from(args.concurrency))?;
    // One pooled connection now, so that a TLS or login problem of the hot-path client (a
    // different library than the control connection's) fails the start, not every page.
    let probe = pool.get().await.map_err(|e| {
        let text = crate::pool::describe(&e);
        let hint = common::db::tls_hint(&text).map_or(String::new(), |h| format!(". {h}"));
        anyhow::anyhow!("DATABASE_URL: the worker's connection pool cannot connect: {text}{hint}")
    })?;
    drop(probe); // back to the pool

    // A wrong URL, password or host fails fast. Once connected, a refused setup step is
    // retried like a reconnect: RabbitMQ 3.10 can refuse the first consumers of a quorum queue
    // declared a moment earlier (INTERNAL_ERROR, `{badmatch,{error,noproc}}` in its log) when
    // several workers start together.
    let connection =
        Arc::new(common::amqp::connect(&args.services.amqp_url, "sfsync-worker").await?);
    let mut session = match Session::set_up(connection, &args).await {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "Setting up the consumer failed; retrying."
            );
            match reconnect(&args, &metrics, &cancel).await {
                Some(session) => session,
                None => return Ok(()),
            }
        }
    };
    tracing::info!(
        prefetch = args.prefetch,
        concurrency = args.concurrency,
        "Worker consuming."
    );

    let ctx = Arc::new(Context {
        pool,
        tables: Tables::default(),
        dead_letters: DeadLetterPublisher::new(session.connection.clone()),
        metrics,
        hard_stop: CancellationToken::new(),
    });
    let permits = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.context("page permits closed")?,
        };
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            next = session.consumer.next() => next,
        };
        while tasks.try_join_next().is_some() {}
        let lost = match next {
            Some(Ok(delivery)) => {
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    handle(delivery, &ctx).await;
                    drop(permit);
                });
                continue;
            }
            Some(Err(e)) => format!("lost the RabbitMQ connection: {e}"),
            None => format!(
                "the broker cancelled this worker's consumer (was {} deleted?)",
                common::topology::WORK_QUEUE
            ),
        };
        drop(permit);
        tracing::warn!(
            error = lost,
            in_flight = tasks.len(),
            "Reconnecting to RabbitMQ; pages in work will not be acked and come again."
        );
        session.close("worker reconnecting").await;
        match reconnect(&args, &ctx.metrics, &cancel).await {
            Some(fresh) => {
                session = fresh;
                ctx.dead_letters
                    .use_connection(session.connection.clone())
                    .await;
                tracing::info!("Reconnected to RabbitMQ; consuming again.");
            }
            None => break,
        }
    }

    // Stop deliveries first; what was prefetched but not started is requeued when the channel closes.
    let _ = session
        .channel
        .basic_cancel(session.consumer.tag(), BasicCancelOptions::default())
        .await;
    while tasks.try_join_next().is_some() {}
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
    session.close("worker stopping").await;
    tracing::info!("Worker stopped.");
    Ok(())
}

/// Processes one delivery and settles it: store what can be stored, dead-letter the rest
/// (confirmed), then ack. Nothing is acked before its dead letters are confirmed.
async fn handle(delivery: Delivery, ctx: &Context) {
    let _in_flight = ctx.metrics.page_started();
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let message_type = delivery.properties.kind().as_ref().map(|s| s.as_str());
    // The page's object, once decoded: its dead letters are counted there.
    let mut counted = None;
    let letters = match decode(message_type, &delivery.data) {
        Err(PageError::Permanent { class, message }) => {
            tracing::error!(message_id, error_class = class.as_str(), error = %message, "Message is not an sfsync page; dead-lettering it whole.");
            vec![dead_letter::for_message(
                &delivery.data,
                message_type,
                &message_id,
                class,
                &message,
            )]
        }
        Err(PageError::Transient(_)) => unreachable_transient(),
        Ok(page) => {
            let replay = dead_letter::replay_of(delivery.properties.headers().as_ref());
            let (booking, attempts) = match replay {
                Some((record_index, attempts)) => (
                    Booking::Replay {
                        record_index: record_index as i32,
                    },
                    attempts + 1,
                ),
                None => (Booking::Page, 1),
            };
            let object = counted.insert(ctx.metrics.object(&page.object));
            match store_with_retries(&page, booking, attempts as i32, ctx, object).await {
                Ok(outcome) => {
                    // Committed: count it now, whatever happens to the ack.
                    object.stored(
                        outcome.records - outcome.failed.len() as u64,
                        outcome.rows_written,
                    );
                    tracing::debug!(
                        message_id,
                        records = outcome.records,
                        rows_written = outcome.rows_written,
                        failed = outcome.failed.len(),
                        "Page stored."
                    );
                    for f in &outcome.failed {
                        tracing::error!(
                            message_id, object = %page.object, page = page.page, record_index = f.index, sfid = f.sfid.as_deref().unwrap_or(""),
                            error_class = f.class.as_str(), error = %f.message, "Record cannot be stored; dead-lettering it."
                        );
                    }
                    dead_letter::for_records(
                        &page,
                        &outcome.failed,
                        &message_id,
                        replay.map(|(index, _)| index),
                        attempts,
                    )
                }
                Err(PageError::Transient(e)) => {
                    tracing::warn!(message_id, error = %e, "Stopped retrying at shutdown; the page will be redelivered.");
                    return;
                }
                Err(PageError::Permanent { class, message }) => {
                    tracing::error!(message_id, error_class = class.as_str(), error = %message, "Page cannot even be booked; dead-lettering it whole.");
                    vec![dead_letter::for_message(
                        &delivery.data,
                        message_type,
                        &message_id,
                        class,
                        &message,
                    )]
                }
            }
        }
    };
    if let Err(e) = ctx.dead_letters.send(&letters).await {
        tracing::error!(message_id, error = %e, "Dead letters not confirmed; leaving the page unacked for redelivery.");
        return;
    }
    if !letters.is_empty() {
        counted
            .unwrap_or_else(|| ctx.metrics.object("unknown"))
            .dead_lettered(letters.len() as u64);
    }
    match delivery.acker.ack(BasicAckOptions::default()).await {
        Ok(true) => {}
        // Not sent (the channel was recovered since): the page will come again, harmlessly.
        Ok(false) => tracing::warn!(message_id, "Ack not sent; the page will be redelivered."),
        Err(e) => {
            tracing::warn!(message_id, error = %e, "Ack failed; the page will be redelivered.")
        }
    }
}

/// `decode` never reports a transient error; keeps `handle`'s match total without a panic path.
fn unreachable_transient() -> Vec<dead_letter::DeadLetter> {
    Vec::new()
}

/// Stores a page, retrying transient failures until they pass or the hard stop.
async fn store_with_retries(
    page: &Page<'_>,
    booking: Booking,
    attempts: i32,
    ctx: &Context,
    object: &ObjectMetrics,
) -> Result<PageOutcome, PageError> {
    // Capped at 5 s (at most 10 s with the jitter), so a worker resumes soon after the
    // database comes back.
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .without_max_times();
    let attempt = || async {
        let started = std::time::Instant::now();
        let stored = store_page(&ctx.pool, &ctx.tables, page, booking, attempts).await;
        if stored.is_ok() {
            object.upsert_took(started.elapsed());
        }
        stored
    };
    attempt
        .retry(backoff)
        .when(|e| matches!(e, PageError::Transient(_)) && !ctx.hard_stop.is_cancelled())
        .notify(|e, after| {
            ctx.metrics.retry(RetryCause::Database);
            tracing::warn!(object = %page.object, page = page.page, error = %e, retry_in = ?after, "Storing a page failed; retrying.");
        })
        .await
}
