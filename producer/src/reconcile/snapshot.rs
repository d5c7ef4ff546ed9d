//! The org snapshot: every `Id`, stamp (the replication key: SystemModstamp, LastModifiedDate
//! or CreatedDate) and `IsDeleted` of the object, streamed page by page (REST) or chunk by chunk
//! (Bulk API 2.0) into a temporary table next to the target table, so that neither side is
//! ever held in memory. An object without a stamp gets [`NO_STAMP`], as its rows do; one with a
//! `where` setting is read through it. Reconcile compares the table with it, and a sync finds
//! the deletions getDeleted cannot report with it.

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use common::{message::NO_STAMP, sfid::SalesforceId};
use serde::Deserialize;
use sqlx::{AssertSqlSafe, PgConnection};

use crate::{
    salesforce::{SalesforceClient, bulk::SNAPSHOT_ROWS_PER_CHUNK, page::QueryPage},
    soql,
    sync::{BulkRefusals, is_bulk_refusal},
};

/// The temporary table holding the snapshot; it lives as long as the connection.
pub(crate) const TEMP_TABLE: &str = "_sfsync_org";

/// What a snapshot reads: `query`'s object, stamp and filter (its window is ignored), and
/// `IsDeleted` when the object has it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot<'a> {
    pub query: soql::Query<'a>,
    pub has_is_deleted: bool,
}

impl Snapshot<'_> {
    /// `SELECT Id[, stamp][, IsDeleted] FROM object [WHERE filter]`.
    fn soql(&self) -> anyhow::Result<String> {
        let mut fields = vec!["Id"];
        fields.extend(self.query.stamp);
        if self.has_is_deleted {
            fields.push("IsDeleted");
        }
        let query = soql::Query {
            since: None,
            until: None,
            ..self.query
        };
        Ok(query.select(&fields, soql::Order::None)?)
    }

    /// A record's stamp: its value, or [`NO_STAMP`] for an object without one.
    fn stamp(&self, value: Option<&str>) -> anyhow::Result<DateTime<Utc>> {
        let text = match (self.query.stamp, value) {
            (None, _) => NO_STAMP,
            (Some(_), Some(v)) => v,
            (Some(field), None) => anyhow::bail!(
                "a record of the {} snapshot has no {field}",
                self.query.object
            ),
        };
        Ok(common::sftime::parse_datetime(text)?)
    }
}

/// Takes the snapshot into an empty [`TEMP_TABLE`] on `db`, through Bulk API 2.0 when `bulk`
/// is set, else REST; returns how many records the org has. An object the Bulk API does not
/// support is read through REST.
pub(crate) async fn take(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    snapshot: Snapshot<'_>,
    bulk: bool,
) -> anyhow::Result<u64> {
    take_remembering(sf, db, snapshot, bulk, &BulkRefusals::default()).await
}

/// [`take`], through REST for the objects in `refusals`, and remembering there an object the
/// Bulk API refuses (so that a `--watch` producer asks once).
pub(crate) async fn take_remembering(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    snapshot: Snapshot<'_>,
    bulk: bool,
    refusals: &BulkRefusals,
) -> anyhow::Result<u64> {
    let object = snapshot.query.object;
    let bulk = bulk && !refusals.refused(object);
    match take_once(sf, db, snapshot, bulk).await {
        Err(e) if bulk && is_bulk_refusal(&e) => {
            refusals.remember(object, &e);
            take_once(sf, db, snapshot, false).await
        }
        taken => taken,
    }
}

/// [`take`] through one API.
async fn take_once(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    snapshot: Snapshot<'_>,
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
        through_bulk(sf, db, snapshot).await
    } else {
        through_rest(sf, db, snapshot).await
    }
}

/// Drops the snapshot (it can hold millions of rows, and the connection goes back to the pool).
///
/// # Errors
/// The database refused the statement.
pub(crate) async fn drop_table(db: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {TEMP_TABLE}")))
        .execute(&mut *db)
        .await?;
    Ok(())
}

/// One snapshot record: the query asks for one of the three stamps at most.
#[derive(Deserialize)]
struct IdStamp<'a> {
    #[serde(rename = "Id")]
    id: &'a str,
    #[serde(rename = "SystemModstamp", default)]
    system_modstamp: Option<&'a str>,
    #[serde(rename = "LastModifiedDate", default)]
    last_modified: Option<&'a str>,
    #[serde(rename = "CreatedDate", default)]
    created: Option<&'a str>,
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

/// Streams the org's Ids, stamps and deleted flags into the temporary table through a Bulk API
/// 2.0 job: a handful of calls whatever the size (REST would cost one call per 2,000 records,
/// as much as a full import), one result chunk in memory at a time.
async fn through_bulk(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    snapshot: Snapshot<'_>,
) -> anyhow::Result<u64> {
    let job = sf.create_query_job(&snapshot.soql()?).await?;
    // The CSV columns, in the order asked for.
    let stamp_at = snapshot.query.stamp.map(|_| 1);
    let deleted_at = snapshot
        .has_is_deleted
        .then(|| 1 + stamp_at.map_or(0, |_| 1));
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
            stamps.push(snapshot.stamp(stamp_at.and_then(|i| row.get(i)))?);
            deleted.push(deleted_at.and_then(|i| row.get(i)) == Some("true"));
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
    snapshot: Snapshot<'_>,
) -> anyhow::Result<u64> {
    let object = snapshot.query.object;
    let mut body = sf.query(&snapshot.soql()?, true, 2000).await?;
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
            stamps.push(snapshot.stamp(r.system_modstamp.or(r.last_modified).or(r.created))?);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_reads_the_replication_key_through_the_filter() {
        let snapshot = |stamp, filter, has_is_deleted| Snapshot {
            query: soql::Query {
                stamp,
                filter,
                since: Some(Utc::now()),
                ..soql::Query::all("X")
            },
            has_is_deleted,
        };
        assert_eq!(
            snapshot(Some("SystemModstamp"), None, true).soql().unwrap(),
            "SELECT Id, SystemModstamp, IsDeleted FROM X"
        );
        assert_eq!(
            snapshot(Some("LastModifiedDate"), Some("A = 'b'"), false)
                .soql()
                .unwrap(),
            "SELECT Id, LastModifiedDate FROM X WHERE (A = 'b')"
        );
        let none = snapshot(None, None, false);
        assert_eq!(none.soql().unwrap(), "SELECT Id FROM X");
        assert_eq!(
            none.stamp(None).unwrap(),
            common::sftime::parse_datetime(NO_STAMP).unwrap()
        );
        let err = snapshot(Some("CreatedDate"), None, false)
            .stamp(None)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "a record of the X snapshot has no CreatedDate"
        );
    }
}
