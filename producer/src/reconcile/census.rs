//! The categories a row falls in (see [`super`]): counting them, and listing the Ids the
//! repair acts on. The SQL of all three lives here, so that the counts and the lists cannot
//! come to disagree on what "stale" or "gone" means.

use common::schema::qualified;
use futures::TryStreamExt;
use serde::Serialize;
use sqlx::{AssertSqlSafe, PgConnection};

use super::snapshot::TEMP_TABLE;

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

/// Counts the categories of `table` against the snapshot.
pub(super) async fn count(
    db: &mut PgConnection,
    table: &str,
    hard_delete: bool,
) -> anyhow::Result<Census> {
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

/// The Ids of missing and stale rows, in order: what the repair re-pulls.
pub(super) async fn missing_or_stale(
    db: &mut PgConnection,
    table: &str,
) -> anyhow::Result<Vec<String>> {
    let table = qualified(table);
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT o.sfid::text FROM {TEMP_TABLE} o LEFT JOIN {table} t ON t.sfid = o.sfid
          WHERE t.sfid IS NULL OR t.systemmodstamp <> o.stamp OR t.isdeleted <> o.isdeleted ORDER BY 1"
    )))
    .fetch(&mut *db)
    .try_collect()
    .await?)
}

/// The Ids of gone rows, in order: what the repair publishes as deletions, and what a sync
/// publishes for an object getDeleted does not answer for.
pub(crate) async fn gone(
    db: &mut PgConnection,
    table: &str,
    hard_delete: bool,
) -> anyhow::Result<Vec<String>> {
    let table = qualified(table);
    let gone_filter = if hard_delete {
        ""
    } else {
        "AND NOT t.isdeleted"
    };
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT t.sfid::text FROM {table} t LEFT JOIN {TEMP_TABLE} o ON o.sfid = t.sfid WHERE o.sfid IS NULL {gone_filter} ORDER BY 1"
    )))
    .fetch(&mut *db)
    .try_collect()
    .await?)
}
