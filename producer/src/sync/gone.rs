//! Deletions found by comparing Ids, where getDeleted cannot report them: objects it does not
//! serve (not replicateable, like `UserLogin` and the `*Share` objects, or without a stamp), and
//! windows its delete log no longer covers. After the record pages, the org's Ids go into a
//! temporary table (reconcile's snapshot, through the object's `where` setting), and the
//! table's rows the org no longer has (reconcile's "gone") are published as deletions.

use anyhow::Context as _;
use chrono::Utc;
use common::schema::qualified;
use sqlx::{AssertSqlSafe, PgConnection};

use super::{
    ApiChoice, Target, deletions,
    refusals::BulkRefusals,
    run::{Progress, Run},
};
use crate::{
    publisher::PagePublisher,
    reconcile::{
        census,
        snapshot::{self, Snapshot},
    },
};

/// Publishes a deletion for every row of the table whose record the org no longer has;
/// returns how many.
pub(super) async fn publish_gone(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    target: &Target,
    refusals: &BulkRefusals,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let object = run.object();
    let hard_delete = run.options.hard_delete;
    // One connection throughout: the snapshot is a temporary table.
    let mut db = run
        .pool
        .acquire()
        .await
        .context("connecting to PostgreSQL")?;
    let rows = rows_that_could_go(&mut db, &target.table, hard_delete).await?;
    if rows == 0 {
        return Ok(0);
    }
    let org = Snapshot {
        query: run.query(),
        has_is_deleted: target.has_is_deleted,
    };
    let bulk = match run.options.api {
        ApiChoice::Rest => false,
        ApiChoice::Bulk => true,
        // A snapshot costs one REST call per 2,000 records, a Bulk job a handful.
        ApiChoice::Auto => rows > run.options.bulk_threshold,
    };
    let seen = snapshot::take_remembering(run.sf, &mut db, org, bulk, refusals)
        .await
        .context("reading the org's Ids to find deleted records")?;
    let gone = census::gone(&mut db, &target.table, hard_delete).await?;
    snapshot::drop_table(&mut db).await?;
    tracing::info!(
        object,
        rows,
        org = seen,
        gone = gone.len(),
        "Compared the table's Ids with the org's."
    );
    let deleted_at = common::sftime::format_rest(Utc::now());
    let deleted: Vec<(String, String)> = gone
        .into_iter()
        .map(|id| (id, deleted_at.clone()))
        .collect();
    deletions::publish_ids(run, publisher, &deleted, progress).await
}

/// How many rows of `table` could be gone: all of them with `--hard-delete`, else those not
/// yet marked deleted. None: nothing to compare, no snapshot to pay for.
async fn rows_that_could_go(
    db: &mut PgConnection,
    table: &str,
    hard_delete: bool,
) -> anyhow::Result<u64> {
    let filter = if hard_delete {
        ""
    } else {
        " WHERE NOT isdeleted"
    };
    let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM {}{filter}",
        qualified(table)
    )))
    .fetch_one(&mut *db)
    .await
    .with_context(|| format!("counting the rows of {table}"))?;
    Ok(rows as u64)
}
