//! The org snapshot: every `Id, SystemModstamp, IsDeleted` of the object, streamed page by page
//! (REST) or chunk by chunk (Bulk API 2.0) into a temporary table next to the target table, so
//! that neither side is ever held in memory.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use common::sfid::SalesforceId;
use serde::Deserialize;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::{
    salesforce::{SalesforceClient, bulk::SNAPSHOT_ROWS_PER_CHUNK, page::QueryPage},
    soql,
};

/// The temporary table holding the snapshot; it lives as long as the connection.
pub(super) const TEMP_TABLE: &str = "_sfsync_org";

/// Takes the snapshot into an empty [`TEMP_TABLE`] on `db`, through Bulk API 2.0 when `bulk`
/// is set, else REST; returns how many records the org has.
pub(super) async fn take(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    object: &str,
    has_is_deleted: bool,
    bulk: bool,
) -> anyhow::Result<u64> {
    sqlx::query(AssertSqlSafe(format!(
        "CREATE TEMP TABLE IF NOT EXISTS {TEMP_TABLE} (sfid varchar(18) PRIMARY KEY, stamp timestamptz NOT NULL, isdeleted boolean NOT NULL)"
    )))
    .execute(&mut *db)
    .await?;
    sqlx::query(AssertSqlSafe(format!("TRUNCATE {TEMP_TABLE}")))
        .execute(&mut *db)
        .await?;
    if bulk {
        through_bulk(sf, db, object, has_is_deleted).await
    } else {
        through_rest(sf, db, object, has_is_deleted).await
    }
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
async fn insert(
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

fn fields(has_is_deleted: bool) -> &'static [&'static str] {
    if has_is_deleted {
        &["Id", "SystemModstamp", "IsDeleted"]
    } else {
        &["Id", "SystemModstamp"]
    }
}

/// Streams the org's Ids, stamps and deleted flags into the temporary table through a Bulk API
/// 2.0 job: a handful of calls whatever the size (REST would cost one call per 2,000 records,
/// as much as a full import), one result chunk in memory at a time.
async fn through_bulk(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    object: &str,
    has_is_deleted: bool,
) -> anyhow::Result<u64> {
    let job = sf
        .create_query_job(&soql::select_from(object, fields(has_is_deleted))?)
        .await?;
    let job = sf.wait_for_job(&job.id).await?;
    let mut seen = 0u64;
    let mut locator: Option<String> = None;
    loop {
        let (csv, next) = sf
            .job_results(&job.id, locator.as_deref(), SNAPSHOT_ROWS_PER_CHUNK)
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
        insert(db, &ids, &stamps, &deleted).await?;
        match next {
            Some(n) => locator = Some(n),
            None => break,
        }
    }
    sf.delete_job(&job.id).await;
    Ok(seen)
}

/// Streams the org's Ids, stamps and deleted flags into the temporary table, a REST page at a time.
async fn through_rest(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    object: &str,
    has_is_deleted: bool,
) -> anyhow::Result<u64> {
    let query = soql::select_from(object, fields(has_is_deleted))?;
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
        insert(db, &ids, &stamps, &deleted).await?;
        match page.next() {
            Some(next) => {
                let next = next.to_owned();
                body = sf.query_more(&next, 2000).await?;
            }
            None => return Ok(seen),
        }
    }
}
