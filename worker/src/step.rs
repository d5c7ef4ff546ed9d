//! One delivery in, its outcome out: decode → store → dead-letter → what to do with the
//! delivery. The consume loop runs [`process`] for each delivery and then [`settle`]s it; tests
//! run [`process`] directly, without a consume loop.
//!
//! The order is the worker's promise: a page's rows and bookkeeping are committed, then its
//! dead letters are confirmed by the broker, and only then is the page acked. A crash at any
//! moment leaves each record stored, dead-lettered or still queued.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable};
use common::{
    dead_letter::{self as dl, Attempts},
    metrics::RetryCause,
};
use lapin::{
    message::Delivery,
    options::{BasicAckOptions, BasicNackOptions},
    types::FieldTable,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::{
    dead_letter::{self, DeadLetter, DeadLetterPublisher},
    decode::{Page, decode},
    error::{ErrorClass, PageError},
    metrics::{ObjectMetrics, WorkerMetrics},
    store::{Booking, PageOutcome, Sanitized, Tables, store_page},
};
use common::health::Health;

/// What every delivery's step shares.
pub struct Context {
    pub pool: deadpool_postgres::Pool,
    pub tables: Tables,
    pub dead_letters: DeadLetterPublisher,
    pub metrics: Arc<WorkerMetrics>,
    /// `/readyz`'s checks: storing pages fails the database check until a page is stored.
    pub health: Arc<Health>,
    /// Cancelled when the shutdown grace period is over: retries stop, and pages still in work
    /// are left unacked for redelivery.
    pub hard_stop: CancellationToken,
    /// The (run, object, field) whose sanitized values were logged already: once per field and
    /// run is enough to find them, and a field full of NULs would otherwise log every page.
    sanitized_logged: Mutex<HashSet<(Uuid, String, String)>>,
}

/// How many (run, object, field) entries [`Context`] remembers before it starts over (a field
/// then logs once more).
const SANITIZED_LOGGED_MAX: usize = 10_000;

impl Context {
    /// A context with empty caches and a fresh hard-stop token.
    pub fn new(
        pool: deadpool_postgres::Pool,
        dead_letters: DeadLetterPublisher,
        metrics: Arc<WorkerMetrics>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            pool,
            tables: Tables::default(),
            dead_letters,
            metrics,
            health,
            hard_stop: CancellationToken::new(),
            sanitized_logged: Mutex::default(),
        }
    }

    /// Counts the values stored with NUL characters left out, and logs each field once per run.
    fn sanitized(&self, page: &Page<'_>, sanitized: &Sanitized) {
        for (field, values) in &sanitized.0 {
            self.metrics.sanitized(&page.object, field, *values);
            let mut logged = self
                .sanitized_logged
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if logged.len() >= SANITIZED_LOGGED_MAX {
                logged.clear();
            }
            if logged.insert((page.run_id, page.object.clone(), field.clone())) {
                tracing::warn!(
                    run_id = %page.run_id, field, values,
                    "NUL characters removed from this field's values: PostgreSQL text cannot hold them (logged once per field and run; sfsync_values_sanitized_total counts them)."
                );
            }
        }
    }
}

/// A delivery as the step reads it: lapin's [`Delivery`] without its acker, so that a test can
/// make one.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The AMQP `message_id` ("" when absent).
    pub message_id: &'a str,
    /// The AMQP `type`.
    pub message_type: Option<&'a str>,
    pub headers: Option<&'a FieldTable>,
    pub body: &'a [u8],
}

impl<'a> Incoming<'a> {
    /// The parts of `delivery` the step reads.
    pub fn of(delivery: &'a Delivery) -> Self {
        Self {
            message_id: delivery
                .properties
                .message_id()
                .as_ref()
                .map_or("", |s| s.as_str()),
            message_type: delivery.properties.kind().as_ref().map(|s| s.as_str()),
            headers: delivery.properties.headers().as_ref(),
            body: &delivery.data,
        }
    }
}

/// What became of a delivery, and so what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every record is stored or confirmed on the dead-letter queue: ack.
    Done {
        /// Records committed to their table.
        stored: u64,
        /// Dead letters confirmed (records, or the whole message).
        dead_lettered: u64,
    },
    /// Nothing may be acked: the page must come again. Its committed rows (if any) make the
    /// second time harmless.
    Again {
        /// Why, for the log.
        reason: String,
    },
}

/// Processes one delivery: decode, store (retrying transient failures until the hard stop),
/// dead-letter what cannot be stored, and say whether it may be acked. Runs in a span named
/// `delivery` with the message id, object and page, so every log line of a page can be found
/// by its id.
pub async fn process(ctx: &Context, incoming: &Incoming<'_>) -> Outcome {
    let span = tracing::info_span!(
        "delivery",
        message_id = incoming.message_id,
        object = tracing::field::Empty,
        page = tracing::field::Empty,
    );
    process_in_span(ctx, incoming).instrument(span).await
}

async fn process_in_span(ctx: &Context, incoming: &Incoming<'_>) -> Outcome {
    let _in_flight = ctx.metrics.page_started();
    let (letters, stored, object) = match decode(incoming.message_type, incoming.body) {
        Err(e) => {
            let error = e.to_string();
            tracing::error!(error_class = %ErrorClass::Decode, error, "Message is not an sfsync page; dead-lettering it whole.");
            let letter = whole_message(incoming, ErrorClass::Decode, &error);
            (vec![letter], 0, ctx.metrics.object("unknown"))
        }
        Ok(page) => {
            let span = tracing::Span::current();
            span.record("object", page.object.as_str());
            span.record("page", page.page);
            let object = ctx.metrics.object(&page.object);
            match store(ctx, incoming, &page, &object).await {
                Ok((letters, stored)) => (letters, stored, object),
                Err(reason) => return Outcome::Again { reason },
            }
        }
    };
    if let Err(e) = send_with_retries(ctx, &letters).await {
        let reason = format!("dead letters not confirmed: {e}");
        tracing::error!(error = %e, "Dead letters not confirmed; the page is not acked and will come again.");
        return Outcome::Again { reason };
    }
    let dead_lettered = letters.len() as u64;
    if dead_lettered > 0 {
        object.dead_lettered(dead_lettered);
    }
    Outcome::Done {
        stored,
        dead_lettered,
    }
}

/// Stores a decoded page; returns its dead letters and the records committed, or why the page
/// must come again.
async fn store(
    ctx: &Context,
    incoming: &Incoming<'_>,
    page: &Page<'_>,
    object: &ObjectMetrics,
) -> Result<(Vec<DeadLetter>, u64), String> {
    let replayed = dl::replayed(incoming.headers);
    let (booking, attempts) = match replayed {
        Some(r) => (
            Booking::Replay {
                record_index: r.record_index,
            },
            r.attempts + 1,
        ),
        None => (Booking::Page, 1),
    };
    match store_with_retries(page, booking, attempts, ctx, object).await {
        Ok(outcome) => {
            let stored = outcome.records - outcome.failed.len() as u64;
            // Committed: count it now, whatever happens to the ack.
            object.stored(stored, outcome.rows_written);
            ctx.sanitized(page, &outcome.sanitized);
            tracing::debug!(
                records = outcome.records,
                rows_written = outcome.rows_written,
                failed = outcome.failed.len(),
                "Page stored."
            );
            for f in &outcome.failed {
                tracing::error!(
                    record_index = f.index, sfid = f.sfid.as_deref().unwrap_or(""),
                    error_class = %f.class, error = %f.message, "Record cannot be stored; dead-lettering it."
                );
            }
            let mut letters = dead_letter::for_records(
                page,
                &outcome.failed,
                incoming.message_id,
                replayed.map(|r| r.record_index),
                attempts,
            );
            for conflict in &outcome.conflicts {
                let record = conflict.batch.records.first();
                tracing::error!(
                    sfid = record.and_then(|r| r.sfid.as_deref()).unwrap_or(""),
                    row_id = record.map(|r| r.row_id).unwrap_or_default(),
                    error_class = %ErrorClass::Conflict,
                    "A local change conflicts with Salesforce and the object's policy is reject; dead-lettering it."
                );
                letters.push(dead_letter::for_conflict(conflict, incoming.message_id));
            }
            Ok((letters, stored))
        }
        Err(PageError::Transient(e)) => {
            tracing::warn!(error = %e, "Stopped retrying at shutdown; the page will be redelivered.");
            Err(format!("stopped retrying at shutdown: {e}"))
        }
        Err(PageError::Permanent { class, message }) => {
            tracing::error!(error_class = %class, error = %message, "Page cannot even be booked; dead-lettering it whole.");
            Ok((vec![whole_message(incoming, class, &message)], 0))
        }
    }
}

/// How many times sending a page's dead letters is tried again before the page is handed back.
const DEAD_LETTER_RETRIES: usize = 3;

/// Sends the dead letters, trying again a few times (each try bounded by the confirm timeout)
/// while the broker connection lives: a confirm lost to a passing fault should not cost the
/// page a redelivery. A closed connection ends it at once (the broker redelivers the page).
async fn send_with_retries(
    ctx: &Context,
    letters: &[DeadLetter],
) -> Result<(), dead_letter::DeadLetterError> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_jitter()
        .with_max_times(DEAD_LETTER_RETRIES);
    (|| ctx.dead_letters.send(letters))
        .retry(backoff)
        .when(|e| e.connection_alive() && !ctx.hard_stop.is_cancelled())
        .notify(|e, after| {
            tracing::warn!(error = %e, retry_in = ?after, "Sending dead letters failed; retrying.");
        })
        .await
}

/// The dead letter for a whole message, as it came.
fn whole_message(incoming: &Incoming<'_>, class: ErrorClass, error: &str) -> DeadLetter {
    dead_letter::for_message(
        incoming.body,
        incoming.message_type,
        incoming.message_id,
        class,
        error,
    )
}

/// Stores a page, retrying transient failures until they pass or the hard stop.
async fn store_with_retries(
    page: &Page<'_>,
    booking: Booking,
    attempts: Attempts,
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
            ctx.health.pass(crate::consumer::DATABASE);
        }
        stored
    };
    attempt
        .retry(backoff)
        .when(|e| matches!(e, PageError::Transient(_)) && !ctx.hard_stop.is_cancelled())
        .notify(|e, after| {
            ctx.metrics.retry(RetryCause::Database);
            ctx.health.fail(
                crate::consumer::DATABASE,
                format!("storing a page failed ({e}); retrying"),
            );
            tracing::warn!(error = %e, retry_in = ?after, "Storing a page failed; retrying.");
        })
        .await
}

/// Acks a [`Outcome::Done`] delivery. An [`Outcome::Again`] one is handed back to the broker
/// (`basic.nack` with requeue) while its channel lives, so that it does not hold a prefetch slot
/// until the connection closes; on a closed channel the broker redelivers it anyway.
pub async fn settle(delivery: &Delivery, outcome: &Outcome) {
    let result = match outcome {
        Outcome::Done { .. } => delivery.acker.ack(BasicAckOptions::default()).await,
        Outcome::Again { .. } => {
            delivery
                .acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        }
    };
    match result {
        Ok(true) => {}
        // Not sent (the channel was recovered since): the page will come again, harmlessly.
        Ok(false) => tracing::warn!("Ack not sent; the page will be redelivered."),
        Err(e) => tracing::warn!(error = %e, "Ack failed; the page will be redelivered."),
    }
}
