//! `producer reconcile`: proves a table right against the org, and repairs it when it is not,
//! without a full re-import.
//!
//! The org's `Id, SystemModstamp, IsDeleted` (cheap: three short fields through queryAll) is
//! streamed page by page into a temporary table next to the target table, so neither side is
//! ever held in memory; PostgreSQL then sorts every row into one category:
//! - **in step**: same stamp and deleted flag;
//! - **missing**: in the org, not in the table;
//! - **stale**: in both, but the stamp or the deleted flag differ (a row edited or restored by
//!   hand, a sync that was off while records changed);
//! - **gone**: in the table, no longer in the org at all (hard-deleted after getDeleted's
//!   window), and not yet marked deleted.
//!
//! Repair re-pulls missing and stale records by Id and publishes them as forced pages (the
//! stored stamp may claim to be newer than the org's), and publishes the gone Ids as deletions.
//! Workers apply both like any other page.
//!
//! # Layout
//! - this file: what a reconcile is asked and what it reports; the steps in order.
//! - `snapshot`: the org's Ids and stamps into a temporary table, through REST or Bulk.
//! - `census`: the SQL that sorts rows into categories, counts them and lists their Ids.
//! - `repair`: publishing the re-pulled records and the deletions; waiting for the workers.
//! - `refresh`: runs of refresh pages, some fields of every record re-read (formula fields; a
//!   new column's back-fill, which `sync` starts).
//! - `formulas`: `reconcile --formulas` and the `--formula-refresh` cadence of watch mode.

pub(crate) mod census;
mod formulas;
pub(crate) mod refresh;
mod repair;
pub(crate) mod snapshot;

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use self::census::Census;
pub(crate) use self::formulas::record_refresh;
pub use self::formulas::{FormulaOptions, FormulaReport, refresh_due, refresh_formulas};
use crate::broker::Broker;
use crate::{
    objects::{self, ObjectSettings},
    publisher::PagePublisher,
    runs,
    salesforce::{Describe, SalesforceClient},
    sync::envelope::Envelope,
    tables::{self, FieldSelection},
};

/// What a reconcile found and did.
#[derive(Debug, Clone, Serialize)]
pub struct ReconcileReport {
    pub object: String,
    pub before: Census,
    /// After the repair was applied by the workers; `None` for a dry run.
    pub after: Option<Census>,
    /// Records re-pulled and published (missing + stale).
    pub republished: u64,
    /// Ids published as deletions (gone).
    pub deletions: u64,
    pub run_id: Option<Uuid>,
    /// Salesforce API calls this reconcile made.
    pub api_calls: u64,
}

/// What a reconcile is asked to do.
#[derive(Debug, Clone)]
pub struct ReconcileOptions {
    pub object: String,
    /// Only report.
    pub dry_run: bool,
    /// Remove gone rows instead of marking them deleted.
    pub hard_delete: bool,
    /// How long to wait for the workers to apply the repair before reporting.
    pub wait: Duration,
    /// Take the org snapshot through Bulk API 2.0 (a few calls) rather than REST (one call per
    /// 2,000 records).
    pub bulk: bool,
    /// The object's `sfsync.toml` section: table name and fields.
    pub settings: ObjectSettings,
}

/// An object described, its fields chosen, its table created or extended: where a reconcile and
/// a formula refresh start.
struct Prepared {
    describe: Describe,
    selection: FieldSelection,
    /// The object's name as describe spells it.
    object: String,
    table: String,
}

async fn prepare(
    sf: &SalesforceClient,
    pool: &PgPool,
    object: &str,
    settings: &ObjectSettings,
) -> anyhow::Result<Prepared> {
    let describe = sf.describe(object).await?;
    let selection = tables::select_fields(&describe)?;
    let selection = objects::filter_fields(&describe, settings, selection)?;
    let object = describe.name.clone();
    let table = settings.table(&object);
    tables::ensure_table(pool, &object, &table, &selection).await?;
    Ok(Prepared {
        describe,
        selection,
        object,
        table,
    })
}

/// Reconciles one object; see the module docs.
///
/// # Errors
/// Salesforce, the broker or the database failed, or the workers did not apply the repair
/// within `wait`.
pub async fn reconcile_object(
    sf: &SalesforceClient,
    pool: &PgPool,
    broker: &Broker,
    options: &ReconcileOptions,
) -> anyhow::Result<ReconcileReport> {
    let calls_before = sf.usage().calls();
    let Prepared {
        describe,
        selection,
        object,
        table,
    } = prepare(sf, pool, &options.object, &options.settings).await?;
    let has_is_deleted = describe.fields.iter().any(|f| f.name == "IsDeleted");

    // One connection for the whole reconcile: the snapshot is a temporary table.
    let mut db = pool.acquire().await.context("connecting to PostgreSQL")?;
    // By the object's replication key and with its filter, for the snapshot and the re-pull.
    let query = crate::soql::Query {
        stamp: selection.stamp.as_deref(),
        filter: options.settings.filter.as_deref(),
        ..crate::soql::Query::all(&object)
    };
    let org = snapshot::Snapshot {
        query,
        has_is_deleted,
    };
    let seen = snapshot::take(sf, &mut db, org, options.bulk).await?;
    tracing::info!(object, records = seen, "Org snapshot taken.");
    let before = census::count(&mut db, &table, options.hard_delete).await?;

    let mut report = ReconcileReport {
        object: object.clone(),
        before,
        after: None,
        republished: 0,
        deletions: 0,
        run_id: None,
        api_calls: 0,
    };
    if options.dry_run || before.differences() == 0 {
        if !options.dry_run {
            report.after = Some(before);
        }
        report.api_calls = sf.usage().calls() - calls_before;
        return Ok(report);
    }

    let run_id = Uuid::now_v7();
    runs::start(pool, run_id, &object)
        .await
        .context("recording the run in sfsync.runs")?;
    let channel = broker.channel().await?;
    let mut publisher = PagePublisher::new(channel.clone(), 16)
        .await
        .context("putting the AMQP channel in confirm mode")?
        .with_in_flight_gauge(sf.metrics().pages_in_flight());
    let envelope = Envelope::new(&object, run_id, options.hard_delete, &options.settings)
        .with_stamp(selection.stamp.as_deref());
    let fields = selection.field_names();
    let published = repair::publish(
        sf,
        &mut db,
        &mut publisher,
        &envelope,
        query,
        &fields,
        &table,
    )
    .await;
    common::amqp::close_channel(&channel.channel, "reconcile published").await;
    let repaired = match published {
        Ok(repaired) => repaired,
        Err(e) => {
            runs::finish(pool, run_id, 0, 0, Some(&format!("{e:#}")))
                .await
                .ok();
            return Err(e);
        }
    };
    let records = repaired.republished + repaired.deletions;
    runs::finish(pool, run_id, repaired.pages, records, None)
        .await
        .context("recording the end of the run in sfsync.runs")?;
    repair::wait_until_applied(pool, run_id, repaired.pages, options.wait).await?;
    report.after = Some(census::count(&mut db, &table, options.hard_delete).await?);
    report.run_id = Some(run_id);
    report.republished = repaired.republished;
    report.deletions = repaired.deletions;
    report.api_calls = sf.usage().calls() - calls_before;
    Ok(report)
}
