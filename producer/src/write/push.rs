//! `producer push`: sends every pending change of each writable object and waits until each is
//! applied or refused. Rounds of claim → publish → wait repeat until nothing is pending: a
//! record's changes made while its create was in flight go out in the next round, with the Id
//! the create brought back.

use std::time::Duration;

use std::collections::BTreeMap;

use anyhow::Context as _;
use common::{push::MESSAGE_TYPE, topology};
use lapin::{BasicProperties, options::ConfirmSelectOptions};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{
    dispatch, external_id_field,
    links::{self, ParentLink},
};
use common::confirm::Patience;

use crate::broker::BrokerChannel;
use crate::{
    cli::PushArgs,
    objects::{ObjectSettings, ObjectsConfig},
    session::Session,
};

/// Records claimed per round.
const CLAIM: i64 = 10_000;
/// How long the broker may take to confirm one batch.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(60);

/// What a push of one object did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PushReport {
    pub object: String,
    /// Changes Salesforce took.
    pub applied: u64,
    /// Changes Salesforce refused (their reasons are in `sfsync.outbox.error`).
    pub failed: u64,
    /// Changes folded into others or cancelled before they were sent.
    pub merged: u64,
    /// Batches published (one sObject Collections call each, retries aside).
    pub batches: u64,
    /// Records whose changes wait for a create that Salesforce refused (they need its Id):
    /// they go once the create is replayed.
    pub waiting: u64,
}

impl PushReport {
    /// Adds a later pass over the same object; `waiting` is what the later pass left.
    fn add(&mut self, pass: &PushReport) {
        self.object.clone_from(&pass.object);
        self.applied += pass.applied;
        self.failed += pass.failed;
        self.merged += pass.merged;
        self.batches += pass.batches;
        self.waiting = pass.waiting;
    }
}

/// Pushes `object`'s pending changes; waits at most `wait` for the workers to apply each round.
/// An object with nothing pending costs no API call. A push that loses the broker goes on
/// over a new connection (see [`crate::broker::Broker::with_reconnects`]); changes it claimed
/// but could not publish are put back first.
///
/// # Errors
/// The object has no `write`, a service failed, or the workers did not apply a round in time.
pub async fn push_object(
    session: &mut Session,
    object: &str,
    config: &ObjectsConfig,
    wait: Duration,
    cancel: &CancellationToken,
) -> anyhow::Result<PushReport> {
    let settings = &config.settings(object);
    if settings.write.is_none() {
        anyhow::bail!(
            "{object} has no `write` in its [objects.{object}] section of sfsync.toml: nothing of it is written back"
        );
    }
    let table = settings.table(object);
    if !has_work(&session.pool, &table).await? {
        return Ok(PushReport {
            object: object.to_owned(),
            ..PushReport::default()
        });
    }
    // The describe names the fields, and tells whether the org's API usage allows a push.
    let describe = session.sf.describe(object).await?;
    // Over --max-api-usage, nothing is claimed: the changes wait in the outbox.
    session.sf.usage().check().with_context(|| {
        format!("{object}: changes wait in sfsync.outbox until the org's API usage falls")
    })?;
    let external_id = external_id_field(&describe, settings.external_id.as_deref())?;
    let fields = dispatch::field_names(&describe);
    let read_back = dispatch::read_back(&session.pool, &table, &fields).await?;
    let columns = dispatch::table_columns(&session.pool, &table).await?;
    let links = links::links(&describe, &columns, |parent| {
        config.settings(parent).table(parent)
    });
    // Children of one parent in one batch: Salesforce locks the parent while writing a child.
    let parent = fields.contains_key("accountid").then_some("accountid");
    let target = Target {
        pool: &session.pool,
        object: &describe.name,
        table: &table,
        external_id: &external_id,
        fields: &fields,
        read_back: &read_back,
        links: &links,
        parent,
        wait,
    };
    let metrics = session.sf.metrics();
    session
        .broker
        .with_reconnects(&describe.name, metrics, cancel, |channel| {
            push_rounds(&target, channel)
        })
        .await
}

/// What [`push_rounds`] pushes.
struct Target<'a> {
    pool: &'a sqlx::PgPool,
    object: &'a str,
    table: &'a str,
    external_id: &'a str,
    fields: &'a BTreeMap<String, String>,
    read_back: &'a BTreeMap<String, String>,
    links: &'a [ParentLink],
    parent: Option<&'static str>,
    wait: Duration,
}

/// Rounds of claim → publish → wait on `channel` until nothing is pending.
async fn push_rounds(target: &Target<'_>, channel: BrokerChannel) -> anyhow::Result<PushReport> {
    let BrokerChannel { channel, blocked } = channel;
    let Target { pool, table, .. } = *target;
    let unsent = requeue_unsent(pool, table).await?;
    if unsent > 0 {
        tracing::warn!(
            object = target.object,
            changes = unsent,
            "Changes claimed by a push that stopped before publishing them are pending again."
        );
    }
    topology::declare(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut report = PushReport {
        object: target.object.to_owned(),
        ..PushReport::default()
    };
    loop {
        let started = std::time::Instant::now();
        let claimed =
            dispatch::claim_linked(pool, table, target.parent, target.links, CLAIM).await?;
        tracing::debug!(batches = claimed.batches.len(), took = ?started.elapsed(), "Claimed.");
        report.merged += claimed.merged;
        if claimed.batches.is_empty()
            && (claimed.waiting == 0 || in_flight(pool, table).await? == 0)
        {
            // Records still waiting with no create in flight wait for one that was refused.
            report.waiting = claimed.waiting;
            break;
        }
        let mut ids = Vec::with_capacity(claimed.batches.len());
        for batch in &claimed.batches {
            let message = batch.message(
                target.object,
                target.external_id,
                target.fields,
                target.read_back,
            );
            let body = serde_json::to_vec(&message)?;
            let properties = BasicProperties::default()
                .with_type(MESSAGE_TYPE.into())
                .with_message_id(batch.id.to_string().into())
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            common::confirm::publish_confirmed(
                &channel,
                topology::EXCHANGE,
                topology::PUSH_ROUTING_KEY,
                &body,
                properties,
                Patience::new(CONFIRM_TIMEOUT, blocked.clone()),
            )
            .await
            .with_context(|| format!("publishing push batch {}", batch.id))?;
            ids.push(batch.id);
        }
        mark_sent(pool, &ids).await?;
        report.batches += ids.len() as u64;
        let (applied, failed) = wait_for(pool, table, &ids, target.wait).await?;
        report.applied += applied;
        report.failed += failed;
        tracing::info!(
            object = target.object,
            batches = ids.len(),
            applied,
            failed,
            "Push round done."
        );
    }
    Ok(report)
}

/// Whether `table` has changes to send: pending ones, or in-flight ones never published.
async fn has_work(pool: &sqlx::PgPool, table: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sfsync.outbox
                         WHERE table_name = $1
                           AND (state = 'pending' OR (state = 'in_flight' AND sent_at IS NULL)))",
    )
    .bind(table)
    .fetch_one(pool)
    .await
}

/// Puts back to pending the changes of `table` that were claimed but whose batch was never
/// confirmed by the broker (the push that claimed them stopped first); returns how many.
/// Should the batch have reached the queue after all, applying it finds its changes pending
/// and leaves them so: they are sent once more, which is harmless (see the worker's apply).
async fn requeue_unsent(pool: &sqlx::PgPool, table: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query(
        "UPDATE sfsync.outbox SET state = 'pending', batch_id = NULL
          WHERE table_name = $1 AND state = 'in_flight' AND sent_at IS NULL",
    )
    .bind(table)
    .execute(pool)
    .await?
    .rows_affected())
}

/// Records that batches `ids` are on the queue.
async fn mark_sent(pool: &sqlx::PgPool, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query("UPDATE sfsync.outbox SET sent_at = now() WHERE batch_id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

/// Changes of `table` sent and not yet answered.
async fn in_flight(pool: &sqlx::PgPool, table: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "SELECT count(*) FROM sfsync.outbox WHERE table_name = $1 AND state = 'in_flight'",
    )
    .bind(table)
    .fetch_one(pool)
    .await
}

/// Waits until no change of `table` is in flight (those of batches `ids` among them, and the
/// creates that records left waiting need); returns the changes of `ids` applied and failed.
async fn wait_for(
    pool: &sqlx::PgPool,
    table: &str,
    ids: &[Uuid],
    wait: Duration,
) -> anyhow::Result<(u64, u64)> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let pending = in_flight(pool, table).await?;
        if pending == 0 {
            let (applied, failed): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE state = 'applied'),
                        count(*) FILTER (WHERE state = 'failed')
                   FROM sfsync.outbox WHERE batch_id = ANY($1)",
            )
            .bind(ids)
            .fetch_one(pool)
            .await?;
            return Ok((applied as u64, failed as u64));
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{pending} changes still in flight after {wait:?}: are workers running with Salesforce credentials (SF_LOGIN_URL and the rest)? \
             Run producer push again later to wait for them; nothing is sent twice"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `producer push`: each object in turn; see [`push_object`].
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a push failed.
pub async fn run_push(args: &PushArgs) -> anyhow::Result<Vec<PushReport>> {
    let mut session = Session::open(args.into(), None).await?;
    let pushed = async {
        let mut reports: Vec<PushReport> = args
            .objects
            .iter()
            .map(|object| PushReport {
                object: object.clone(),
                ..PushReport::default()
            })
            .collect();
        // Passes over the objects until one applies nothing more: a record that waited for a
        // parent of another object (pushed after it) goes in the next pass.
        loop {
            let mut progress = false;
            for (object, total) in args.objects.iter().zip(&mut reports) {
                let cancel = CancellationToken::new();
                let pass = push_object(
                    &mut session,
                    object,
                    &args.object_config,
                    args.wait,
                    &cancel,
                )
                .await?;
                progress |= pass.applied > 0;
                total.add(&pass);
            }
            if !progress || reports.iter().all(|r| r.waiting == 0) {
                break;
            }
        }
        anyhow::Ok(reports)
    }
    .await;
    session.close().await;
    pushed
}

/// One line per object: what its push did.
fn report_line(r: &PushReport) -> String {
    let waiting = if r.waiting > 0 {
        format!(", {} waiting for a refused create", r.waiting)
    } else {
        String::new()
    };
    format!(
        "{}: {} applied, {} refused, {} merged, {} batches{waiting}",
        r.object, r.applied, r.failed, r.merged, r.batches
    )
}

/// `producer push`, printed: one line per object; an error (exit 1) when Salesforce refused
/// some changes.
///
/// # Errors
/// As for [`run_push`], and when changes were refused.
pub async fn push_and_print(args: &PushArgs) -> anyhow::Result<()> {
    let reports = run_push(args).await?;
    for r in &reports {
        println!("{}", report_line(r));
    }
    let refused: u64 = reports.iter().map(|r| r.failed).sum();
    anyhow::ensure!(
        refused == 0,
        "Salesforce refused {refused} changes; their reasons: SELECT table_name, row_id, op, error FROM sfsync.outbox WHERE state = 'failed'"
    );
    let waiting: u64 = reports.iter().map(|r| r.waiting).sum();
    anyhow::ensure!(
        waiting == 0,
        "{waiting} records' changes wait for a create Salesforce refused (their own, or their parent's); fix it and run producer dlq replay --error-class salesforce, then push again"
    );
    Ok(())
}

/// The channel the capture trigger notifies (the payload is the table).
pub const NOTIFY_CHANNEL: &str = "sfsync_outbox";

/// `producer push --watch`: pushes every object, then sleeps until the capture trigger
/// notifies a change, `--poll-interval` passes, or a signal comes (which lets the push in
/// progress finish, then returns `Ok`). An object whose push fails is logged and tried again
/// at the next wake-up; refused changes are on the dead-letter queue and do not stop it.
/// Each wake-up with nothing pending costs no API call.
///
/// # Errors
/// Connecting failed at the start.
pub async fn watch_push(args: &PushArgs, cancel: &CancellationToken) -> anyhow::Result<()> {
    let listener = args.metrics.bind().await?;
    let mut session = Session::open(args.into(), listener).await?;
    let result = async {
        let mut changes = sqlx::postgres::PgListener::connect_with(&session.pool).await?;
        changes.listen(NOTIFY_CHANNEL).await?;
        tracing::info!(objects = ?args.objects, poll = ?args.poll_interval, "Watching the write-back outbox.");
        while !cancel.is_cancelled() {
            // A record waiting for a parent that this pass created goes at once, not at the
            // next wake-up.
            let (mut applied, mut waiting) = (false, false);
            for object in &args.objects {
                let settings = args.object_config.settings(object);
                // Not the signal's token: a push that has started is finished.
                let pushed = push_object(
                    &mut session,
                    object,
                    &args.object_config,
                    args.wait,
                    &CancellationToken::new(),
                )
                .await;
                if let Ok(r) = &pushed {
                    applied |= r.applied > 0;
                    waiting |= r.waiting > 0;
                }
                match pushed {
                    Ok(r) if r.batches > 0 || r.merged > 0 => {
                        println!("{}", report_line(&r));
                        if r.failed > 0 {
                            tracing::warn!(object, refused = r.failed, "Salesforce refused changes; they are on the dead-letter queue (producer dlq list).");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(object, error = format!("{error:#}"), "Push failed; tried again at the next wake-up.");
                    }
                }
                if let Err(error) = export_outbox(&session, object, &settings).await {
                    tracing::warn!(object, error = %error, "Could not read the outbox for the metrics.");
                }
            }
            if applied && waiting {
                continue;
            }
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(args.poll_interval) => {}
                woken = changes.recv() => {
                    if let Err(error) = woken {
                        // The listener reconnects on the next recv; notifications sent
                        // meanwhile are lost, which the poll covers.
                        tracing::warn!(error = %error, "Lost the database notifications; listening again.");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    // Changes of one burst wake once.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while changes.next_buffered().is_some() {}
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    session.close().await;
    result
}

/// Sets the outbox gauges of `object` from the table.
async fn export_outbox(
    session: &Session,
    object: &str,
    settings: &ObjectSettings,
) -> sqlx::Result<()> {
    let (pending, oldest): (i64, f64) = sqlx::query_as(
        "SELECT count(*),
                coalesce(extract(epoch FROM now() - min(captured_at))::float8, 0)
           FROM sfsync.outbox WHERE table_name = $1 AND state = 'pending'",
    )
    .bind(settings.table(object))
    .fetch_one(&session.pool)
    .await?;
    session.sf.metrics().outbox(object, pending, oldest);
    Ok(())
}

/// The outbox of one writable table, by state, as `producer status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxStatus {
    pub table_name: String,
    pub pending: i64,
    pub in_flight: i64,
    pub applied: i64,
    pub failed: i64,
    /// Seconds since the oldest pending change was made.
    pub oldest_pending_secs: Option<i64>,
}

/// Each table with write-back changes, by state.
///
/// # Errors
/// The database refused the query.
pub async fn outbox_status(pool: &sqlx::PgPool) -> sqlx::Result<Vec<OutboxStatus>> {
    sqlx::query_as(
        "SELECT table_name,
                count(*) FILTER (WHERE state = 'pending') AS pending,
                count(*) FILTER (WHERE state = 'in_flight') AS in_flight,
                count(*) FILTER (WHERE state = 'applied') AS applied,
                count(*) FILTER (WHERE state = 'failed') AS failed,
                extract(epoch FROM now() - min(captured_at) FILTER (WHERE state = 'pending'))::bigint
                    AS oldest_pending_secs
           FROM sfsync.outbox GROUP BY table_name ORDER BY table_name",
    )
    .fetch_all(pool)
    .await
}
