//! `producer push`: sends every pending change of each writable object and waits until each is
//! applied or refused. Rounds of claim → publish → wait repeat until nothing is pending: a
//! record's changes made while its create was in flight go out in the next round, with the Id
//! the create brought back.

use std::time::Duration;

use anyhow::Context as _;
use common::{push::MESSAGE_TYPE, topology};
use lapin::{BasicProperties, options::ConfirmSelectOptions};
use uuid::Uuid;

use super::{dispatch, external_id_field};
use crate::{cli::PushArgs, objects::ObjectSettings, session::Session};

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

/// Pushes `object`'s pending changes; waits at most `wait` for the workers to apply each round.
///
/// # Errors
/// The object has no `write`, a service failed, or the workers did not apply a round in time.
pub async fn push_object(
    session: &Session,
    object: &str,
    settings: &ObjectSettings,
    wait: Duration,
) -> anyhow::Result<PushReport> {
    let describe = session.sf.describe(object).await?;
    if settings.write.is_none() {
        anyhow::bail!(
            "{} has no `write` in its [objects.{}] section of sfsync.toml: nothing of it is written back",
            describe.name,
            describe.name
        );
    }
    let table = settings.table(&describe.name);
    let external_id = external_id_field(&describe, settings.external_id.as_deref())?;
    let fields = dispatch::field_names(&describe);
    // Children of one parent in one batch: Salesforce locks the parent while writing a child.
    let parent = fields.contains_key("accountid").then_some("accountid");
    let channel = session
        .broker
        .connection()
        .create_channel()
        .await
        .context("opening a channel to publish push batches")?;
    topology::declare(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let mut report = PushReport {
        object: describe.name.clone(),
        ..PushReport::default()
    };
    loop {
        let started = std::time::Instant::now();
        let claimed = dispatch::claim(&session.pool, &table, parent, CLAIM).await?;
        tracing::debug!(batches = claimed.batches.len(), took = ?started.elapsed(), "Claimed.");
        report.merged += claimed.merged;
        if claimed.batches.is_empty()
            && (claimed.waiting == 0 || in_flight(&session.pool, &table).await? == 0)
        {
            // Records still waiting with no create in flight wait for one that was refused.
            report.waiting = claimed.waiting;
            break;
        }
        let mut ids = Vec::with_capacity(claimed.batches.len());
        for batch in &claimed.batches {
            let message = batch.message(&describe.name, &external_id, &fields);
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
                CONFIRM_TIMEOUT,
            )
            .await
            .with_context(|| format!("publishing push batch {}", batch.id))?;
            ids.push(batch.id);
        }
        report.batches += ids.len() as u64;
        let (applied, failed) = wait_for(&session.pool, &table, &ids, wait).await?;
        report.applied += applied;
        report.failed += failed;
        tracing::info!(object = %describe.name, batches = ids.len(), applied, failed, "Push round done.");
    }
    let _ = channel.close(200, "push done".into()).await;
    Ok(report)
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
    let session = Session::open(args.into(), None).await?;
    let pushed = async {
        let mut reports = Vec::with_capacity(args.objects.len());
        for object in &args.objects {
            let settings = args.object_config.settings(object);
            reports.push(push_object(&session, object, &settings, args.wait).await?);
        }
        anyhow::Ok(reports)
    }
    .await;
    session.close().await;
    pushed
}

/// `producer push`, printed: one line per object; an error (exit 1) when Salesforce refused
/// some changes.
///
/// # Errors
/// As for [`run_push`], and when changes were refused.
pub async fn push_and_print(args: &PushArgs) -> anyhow::Result<()> {
    let reports = run_push(args).await?;
    for r in &reports {
        let waiting = if r.waiting > 0 {
            format!(", {} waiting for a refused create", r.waiting)
        } else {
            String::new()
        };
        println!(
            "{}: {} applied, {} refused, {} merged, {} batches{waiting}",
            r.object, r.applied, r.failed, r.merged, r.batches
        );
    }
    let refused: u64 = reports.iter().map(|r| r.failed).sum();
    anyhow::ensure!(
        refused == 0,
        "Salesforce refused {refused} changes; their reasons: SELECT table_name, row_id, op, error FROM sfsync.outbox WHERE state = 'failed'"
    );
    let waiting: u64 = reports.iter().map(|r| r.waiting).sum();
    anyhow::ensure!(
        waiting == 0,
        "{waiting} records' changes wait for a create Salesforce refused; fix it and run producer dlq replay --error-class salesforce, then push again"
    );
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
