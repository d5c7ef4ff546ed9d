//! The `sfsync.runs` rows the producer keeps, and the `status` report that joins them with the
//! workers' `sfsync.page_results`.

use common::amqp::{Block, BlockWatch};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// Records the start of a run.
///
/// # Errors
/// The database refused the insert.
pub async fn start(pool: &PgPool, run_id: Uuid, object: &str) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO sfsync.runs (run_id, object) VALUES ($1, $2)")
        .bind(run_id)
        .bind(object)
        .execute(pool)
        .await?;
    Ok(())
}

/// Updates the published counters while the run goes on.
///
/// # Errors
/// The database refused the update.
pub async fn progress(pool: &PgPool, run_id: Uuid, pages: u64, records: u64) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sfsync.runs SET pages_published = $2, records_published = $3 WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(pages as i64)
    .bind(records as i64)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records on the run that the broker blocks its publishing since `block.since`, or (`None`)
/// that it no longer does.
///
/// # Errors
/// The database refused the update.
pub async fn blocked(pool: &PgPool, run_id: Uuid, block: Option<&Block>) -> sqlx::Result<()> {
    sqlx::query("UPDATE sfsync.runs SET blocked_since = $2, blocked_reason = $3 WHERE run_id = $1")
        .bind(run_id)
        .bind(block.map(|b| b.since))
        .bind(block.map(|b| b.reason.as_str()))
        .execute(pool)
        .await?;
    Ok(())
}

/// Keeps the run's `blocked_since` and `blocked_reason` up to date with `watch` until the
/// task is aborted (at the end of the run) or the connection is gone. A failed update is
/// logged, never fatal: it only feeds `producer status`.
pub async fn follow_blocked(pool: PgPool, run_id: Uuid, mut watch: BlockWatch) {
    let mut shown = None;
    loop {
        let now = watch.current();
        if now != shown {
            if let Err(e) = blocked(&pool, run_id, now.as_ref()).await {
                tracing::warn!(%run_id, error = %e, "Could not record in sfsync.runs that the broker blocks publishing.");
            }
            shown = now;
        }
        if !watch.changed().await {
            return;
        }
    }
}

/// Marks the run finished: `published` when every page was confirmed, else `failed` with the reason.
///
/// # Errors
/// The database refused the update.
pub async fn finish(
    pool: &PgPool,
    run_id: Uuid,
    pages: u64,
    records: u64,
    error: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sfsync.runs SET pages_published = $2, records_published = $3, finished_at = now(),
                blocked_since = NULL, blocked_reason = NULL,
                status = CASE WHEN $4::text IS NULL THEN 'published' ELSE 'failed' END, error = $4
          WHERE run_id = $1",
    )
    .bind(run_id)
    .bind(pages as i64)
    .bind(records as i64)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// How many pages of the run the workers have processed (their rows in `sfsync.page_results`).
///
/// # Errors
/// The database refused the query.
pub async fn pages_processed(pool: &PgPool, run_id: Uuid) -> sqlx::Result<u64> {
    let done: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
            .bind(run_id)
            .fetch_one(pool)
            .await?;
    Ok(done as u64)
}

/// One line of `producer status`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunStatus {
    pub run_id: Uuid,
    pub object: String,
    pub status: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pages_published: i64,
    pub records_published: i64,
    pub pages_processed: i64,
    pub records_stored: i64,
    pub records_dead: i64,
    pub error: Option<String>,
    /// Since when the broker blocks the run's publishing (a memory or disk alarm), if it does.
    pub blocked_since: Option<chrono::DateTime<chrono::Utc>>,
    pub blocked_reason: Option<String>,
}

/// The newest runs with what the workers have done of them.
///
/// # Errors
/// The query failed.
pub async fn status(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<RunStatus>> {
    sqlx::query_as::<_, RunStatus>(
        // Dead letters that a replay later stored count as stored, the rest as dead.
        "SELECT r.run_id, r.object, r.status, r.started_at, r.finished_at, r.pages_published, r.records_published,
                coalesce(p.pages, 0)::bigint AS pages_processed,
                (coalesce(p.stored, 0) + coalesce(d.resolved, 0))::bigint AS records_stored,
                coalesce(d.dead, 0)::bigint AS records_dead,
                r.error, r.blocked_since, r.blocked_reason
           FROM sfsync.runs r
           LEFT JOIN (SELECT run_id, count(*) AS pages, sum(records_stored) AS stored
                        FROM sfsync.page_results GROUP BY run_id) p USING (run_id)
           LEFT JOIN (SELECT run_id, count(*) FILTER (WHERE resolved_at IS NULL) AS dead,
                             count(*) FILTER (WHERE resolved_at IS NOT NULL) AS resolved
                        FROM sfsync.dead_letters GROUP BY run_id) d USING (run_id)
          ORDER BY r.started_at DESC
          LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await
}
