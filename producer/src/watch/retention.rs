//! Bounded bookkeeping: `sync --watch` adds a run to `sfsync.runs` and its pages to
//! `sfsync.page_results` for every object on every pass that syncs it. Runs finished longer ago
//! than `--retention` are deleted with their page results, a few hundred at a time, so that no
//! statement holds locks for long (workers insert page results of current runs meanwhile).
//! Each object keeps its latest run whatever its age, and `sfsync.dead_letters` is never pruned:
//! its rows are what a replay resolves.

use std::time::Duration;

use sqlx::PgPool;

/// Runs deleted per statement.
const BATCH: i64 = 500;

/// What a prune removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub runs: u64,
    pub page_results: u64,
}

/// Deletes runs (and their page results) finished more than `retention` ago.
///
/// # Errors
/// The database refused a statement; what was deleted before stays deleted.
pub async fn prune(pool: &PgPool, retention: Duration) -> sqlx::Result<Pruned> {
    let age = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut pruned = Pruned::default();
    loop {
        let (runs, pages): (i64, i64) = sqlx::query_as(
            "WITH old AS (
                 SELECT run_id FROM sfsync.runs r
                  WHERE r.finished_at < now() - $1::interval
                    AND r.run_id <> (SELECT l.run_id FROM sfsync.runs l WHERE l.object = r.object
                                      ORDER BY l.started_at DESC LIMIT 1)
                  LIMIT $2),
             pages AS (DELETE FROM sfsync.page_results WHERE run_id IN (SELECT run_id FROM old)
                       RETURNING 1),
             runs AS (DELETE FROM sfsync.runs WHERE run_id IN (SELECT run_id FROM old) RETURNING 1)
             SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM pages)",
        )
        .bind(age)
        .bind(BATCH)
        .fetch_one(pool)
        .await?;
        pruned.runs += runs as u64;
        pruned.page_results += pages as u64;
        if runs < BATCH {
            return Ok(pruned);
        }
    }
}
