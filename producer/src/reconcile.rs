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

use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use common::{
    message::{PageKind, PageMessage},
    schema::qualified,
    sfid::SalesforceId,
};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::{AssertSqlSafe, PgConnection, PgPool};
use uuid::Uuid;

use crate::{
    objects::{self, ObjectSettings},
    publisher::{OutgoingPage, PagePublisher},
    runs,
    salesforce::{SalesforceClient, page::QueryPage},
    soql, tables,
};

/// How many rows fall in each category.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Census {
    pub in_step: i64,
    pub missing: i64,
    pub stale: i64,
    pub gone: i64,
}

impl Census {
    pub fn differences(&self) -> i64 {
        self.missing + self.stale + self.gone
    }
}

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

/// Records re-pulled per query: `WHERE Id IN (…)` of 200 Ids keeps the URL near 5 KB.
const IDS_PER_QUERY: usize = 200;

const TEMP_TABLE: &str = "_sfsync_org";

/// Reconciles one object; see the module docs.
///
/// # Errors
/// Salesforce, the broker or the database failed, or the workers did not apply the repair
/// within `wait`.
pub async fn reconcile_object(
    sf: &SalesforceClient,
    pool: &PgPool,
    connection: &lapin::Connection,
    options: &ReconcileOptions,
) -> anyhow::Result<ReconcileReport> {
    let calls_before = sf.usage().calls();
    let describe = sf.describe(&options.object).await?;
    let selection = tables::select_fields(&describe)?;
    let selection = objects::filter_fields(&describe, &options.settings, selection)?;
    let object = describe.name.clone();
    let table = options.settings.table(&object);
    tables::ensure_table(pool, &object, &table, &selection).await?;
    let has_is_deleted = describe.fields.iter().any(|f| f.name == "IsDeleted");

    // One connection for the whole reconcile: the snapshot is a temporary table.
    let mut db = pool.acquire().await.context("connecting to PostgreSQL")?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS {TEMP_TABLE} (sfid varchar(18) PRIMARY KEY, stamp timestamptz NOT NULL, isdeleted boolean NOT NULL)"
    )))
    .execute(&mut *db)
    .await?;
    sqlx::query(AssertSqlSafe(format!("TRUNCATE {TEMP_TABLE}")))
        .execute(&mut *db)
        .await?;
    let seen = if options.bulk {
        snapshot_org_bulk(sf, &mut db, &object, has_is_deleted).await?
    } else {
        snapshot_org_rest(sf, &mut db, &object, has_is_deleted).await?
    };
    tracing::info!(object, records = seen, "Org snapshot taken.");
    let before = census(&mut db, &table, options.hard_delete).await?;

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
    let channel = connection
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    let mut publisher = PagePublisher::new(channel.clone(), 16)
        .await
        .context("putting the AMQP channel in confirm mode")?
        .with_in_flight_gauge(sf.metrics().pages_in_flight());
    let fields = selection.field_names();
    let published = repair(
        sf,
        &mut db,
        &mut publisher,
        &object,
        &fields,
        run_id,
        options,
    )
    .await;
    common::amqp::close_channel(&channel, "reconcile published").await;
    let (pages, republished, deletions) = match published {
        Ok(counts) => counts,
        Err(e) => {
            runs::finish(pool, run_id, 0, 0, Some(&format!("{e:#}")))
                .await
                .ok();
            return Err(e);
        }
    };
    runs::finish(pool, run_id, pages, republished + deletions, None)
        .await
        .context("recording the end of the run in sfsync.runs")?;
    wait_until_applied(pool, run_id, pages, options.wait).await?;
    report.after = Some(census(&mut db, &table, options.hard_delete).await?);
    report.run_id = Some(run_id);
    report.republished = republished;
    report.deletions = deletions;
    report.api_calls = sf.usage().calls() - calls_before;
    Ok(report)
}

#[derive(Deserialize)]
struct IdStamp<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "SystemModstamp")]
    stamp: &'a str,
    #[serde(rename = "IsDeleted", default)]
    is_deleted: bool,
}

/// Appends one batch of (Id, stamp, deleted) to the snapshot.
async fn insert_snapshot(
    db: &mut PgConnection,
    ids: &[String],
    stamps: &[DateTime<Utc>],
    deleted: &[bool],
) -> anyhow::Result<()> {
    sqlx::query(AssertSqlSafe(format!("INSERT INTO {TEMP_TABLE} SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::boolean[]) ON CONFLICT (sfid) DO NOTHING")))
        .bind(ids)
        .bind(stamps)
        .bind(deleted)
        .execute(&mut *db)
        .await?;
    Ok(())
}

fn snapshot_fields(has_is_deleted: bool) -> &'static [&'static str] {
    if has_is_deleted {
        &["Id", "SystemModstamp", "IsDeleted"]
    } else {
        &["Id", "SystemModstamp"]
    }
}

/// Streams the org's Ids, stamps and deleted flags into the temporary table through a Bulk API
/// 2.0 job: a handful of calls whatever the size (REST would cost one call per 2,000 records,
/// as much as a full import), one result chunk in memory at a time.
async fn snapshot_org_bulk(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    object: &str,
    has_is_deleted: bool,
) -> anyhow::Result<u64> {
    let job = sf
        .create_query_job(&soql::select_all(object, snapshot_fields(has_is_deleted))?)
        .await?;
    let job = sf.wait_for_job(&job.id).await?;
    let mut seen = 0u64;
    let mut locator: Option<String> = None;
    loop {
        let (csv, next) = sf
            .job_results(
                &job.id,
                locator.as_deref(),
                crate::salesforce::bulk::SNAPSHOT_ROWS_PER_CHUNK,
            )
            .await?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(&csv[..]);
        let (mut ids, mut stamps, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for row in reader.records() {
            let row = row.context("Bulk results of the snapshot unreadable")?;
            ids.push(SalesforceId::parse(row.get(0).unwrap_or_default())?.to_string());
            stamps.push(common::sftime::parse_datetime(
                row.get(1).unwrap_or_default(),
            )?);
            deleted.push(row.get(2) == Some("true"));
        }
        seen += ids.len() as u64;
        insert_snapshot(db, &ids, &stamps, &deleted).await?;
        match next {
            Some(n) => locator = Some(n),
            None => break,
        }
    }
    sf.delete_job(&job.id).await;
    Ok(seen)
}

/// Streams the org's Ids, stamps and deleted flags into the temporary table, a REST page at a time.
async fn snapshot_org_rest(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    object: &str,
    has_is_deleted: bool,
) -> anyhow::Result<u64> {
    let fields = snapshot_fields(has_is_deleted);
    let query = soql::select_all(object, fields)?;
    let mut body = sf.query(&query, true, 2000).await?;
    let mut seen = 0u64;
    loop {
        let page = QueryPage::parse(&body, "query")?;
        let mut ids = Vec::with_capacity(page.records.len());
        let mut stamps: Vec<DateTime<Utc>> = Vec::with_capacity(page.records.len());
        let mut deleted = Vec::with_capacity(page.records.len());
        for raw in &page.records {
            let r: IdStamp<'_> = serde_json::from_str(raw.get()).with_context(|| {
                format!(
                    "a record of the {object} snapshot is not understood: {}",
                    raw.get()
                )
            })?;
            ids.push(SalesforceId::parse(r.id)?.to_string());
            stamps.push(common::sftime::parse_datetime(r.stamp)?);
            deleted.push(r.is_deleted);
        }
        seen += ids.len() as u64;
        insert_snapshot(db, &ids, &stamps, &deleted).await?;
        match page.next() {
            Some(next) => {
                let next = next.to_owned();
                body = sf.query_more(&next, 2000).await?;
            }
            None => return Ok(seen),
        }
    }
}

/// Counts the categories (see the module docs).
async fn census(db: &mut PgConnection, table: &str, hard_delete: bool) -> anyhow::Result<Census> {
    let table = qualified(table);
    // A row the org no longer has is in step once marked deleted, unless rows must go entirely.
    let gone_done = if hard_delete { "false" } else { "t.isdeleted" };
    let sql = format!(
        "SELECT count(*) FILTER (WHERE o.sfid IS NOT NULL AND t.sfid IS NOT NULL AND t.systemmodstamp = o.stamp AND t.isdeleted = o.isdeleted)
                  + count(*) FILTER (WHERE o.sfid IS NULL AND {gone_done}) AS in_step,
                count(*) FILTER (WHERE t.sfid IS NULL) AS missing,
                count(*) FILTER (WHERE o.sfid IS NOT NULL AND t.sfid IS NOT NULL AND (t.systemmodstamp <> o.stamp OR t.isdeleted <> o.isdeleted)) AS stale,
                count(*) FILTER (WHERE o.sfid IS NULL AND NOT {gone_done}) AS gone
           FROM {TEMP_TABLE} o FULL JOIN {table} t ON t.sfid = o.sfid"
    );
    Ok(sqlx::query_as::<_, Census>(AssertSqlSafe(sql))
        .fetch_one(&mut *db)
        .await?)
}

/// Publishes the repair; returns (pages, records re-pulled, deletions).
async fn repair(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    publisher: &mut PagePublisher,
    object: &str,
    fields: &[&str],
    run_id: Uuid,
    options: &ReconcileOptions,
) -> anyhow::Result<(u64, u64, u64)> {
    let table = qualified(&options.settings.table(object));
    let mut page = 0u64;
    let mut republished = 0u64;

    // Missing and stale: re-pull by Id, in chunks.
    let repull: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT o.sfid::text FROM {TEMP_TABLE} o LEFT JOIN {table} t ON t.sfid = o.sfid
          WHERE t.sfid IS NULL OR t.systemmodstamp <> o.stamp OR t.isdeleted <> o.isdeleted ORDER BY 1"
    )))
    .fetch(&mut *db)
    .try_collect()
    .await?;
    for chunk in repull.chunks(IDS_PER_QUERY) {
        // The Ids came out of the org snapshot, which parsed each one as a SalesforceId.
        let in_list = chunk
            .iter()
            .map(|id| format!("'{id}'"))
            .collect::<Vec<_>>()
            .join(",");
        let query = format!(
            "{} WHERE Id IN ({in_list})",
            soql::select_all(object, fields)?
        );
        let body = sf.query(&query, true, 2000).await?;
        let parsed = QueryPage::parse(&body, "query")?;
        if parsed.records.is_empty() {
            continue; // vanished since the snapshot
        }
        page += 1;
        republished += parsed.records.len() as u64;
        let message = PageMessage {
            force: true,
            hard_delete: options.hard_delete,
            table: options.settings.table_override(object),
            ..PageMessage::records(object.to_owned(), run_id, page, &parsed.records)
        };
        publisher
            .publish(&OutgoingPage {
                object: object.to_owned(),
                run_id,
                page,
                records: parsed.records.len() as u64,
                last_stamp: None,
                body: serde_json::to_vec(&message)?,
            })
            .await?;
    }

    // Gone: rows whose Id the org no longer has.
    let gone_filter = if options.hard_delete {
        ""
    } else {
        "AND NOT t.isdeleted"
    };
    let gone: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT t.sfid::text FROM {table} t LEFT JOIN {TEMP_TABLE} o ON o.sfid = t.sfid WHERE o.sfid IS NULL {gone_filter} ORDER BY 1"
    )))
    .fetch(&mut *db)
    .try_collect()
    .await?;
    let now = common::sftime::format_rest(Utc::now());
    for chunk in gone.chunks(2000) {
        page += 1;
        let records: Vec<Box<RawValue>> = chunk
            .iter()
            .filter_map(|id| RawValue::from_string(serde_json::json!({"attributes": {"type": object}, "Id": id, "SystemModstamp": now}).to_string()).ok())
            .collect();
        let message = PageMessage {
            kind: PageKind::Deleted,
            hard_delete: options.hard_delete,
            table: options.settings.table_override(object),
            ..PageMessage::records(object.to_owned(), run_id, page, &records)
        };
        publisher
            .publish(&OutgoingPage {
                object: object.to_owned(),
                run_id,
                page,
                records: records.len() as u64,
                last_stamp: None,
                body: serde_json::to_vec(&message)?,
            })
            .await?;
    }
    publisher.finish().await?;
    Ok((page, republished, gone.len() as u64))
}

/// Waits until the workers have processed every page of the run.
async fn wait_until_applied(
    pool: &PgPool,
    run_id: Uuid,
    pages: u64,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(pool)
                .await?;
        if done as u64 >= pages {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the workers applied {done} of the {pages} repair pages of run {run_id} within {wait:?}; are workers running? (--wait gives them longer)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
