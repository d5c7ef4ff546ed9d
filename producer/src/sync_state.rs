//! The per-object watermark in `sfsync.sync_state`. It only moves forward, and only past pages
//! the broker has confirmed. Beside it, until when the object's deletions are published, which
//! is where the next run's getDeleted window starts.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The watermark of an object, if it was ever synced.
///
/// # Errors
/// The query failed.
pub async fn load(pool: &PgPool, object: &str) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar("SELECT watermark FROM sfsync.sync_state WHERE object = $1")
        .bind(object)
        .fetch_optional(pool)
        .await
}

/// Moves the watermark to `stamp` unless it is already later.
///
/// # Errors
/// The update failed.
pub async fn advance(
    pool: &PgPool,
    object: &str,
    stamp: DateTime<Utc>,
    run_id: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sfsync.sync_state (object, watermark, last_run_id) VALUES ($1, $2, $3)
         ON CONFLICT (object) DO UPDATE
            SET watermark = greatest(sfsync.sync_state.watermark, EXCLUDED.watermark),
                last_run_id = EXCLUDED.last_run_id, updated_at = now()",
    )
    .bind(object)
    .bind(stamp)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Until when the object's deletions are reflected in its table, if a run recorded it.
///
/// # Errors
/// The query failed.
pub async fn deletions_checked_until(
    pool: &PgPool,
    object: &str,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    Ok(sqlx::query_scalar(
        "SELECT deletions_checked_until FROM sfsync.sync_state WHERE object = $1",
    )
    .bind(object)
    .fetch_optional(pool)
    .await?
    .flatten())
}

/// Records that the object's deletions until `until` are published (the broker confirmed
/// them); never moves back. An object without a watermark has no row, and its next sync reads
/// every record anyway.
///
/// # Errors
/// The update failed.
pub async fn deletions_checked(
    pool: &PgPool,
    object: &str,
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE sfsync.sync_state
            SET deletions_checked_until = greatest(deletions_checked_until, $2), updated_at = now()
          WHERE object = $1",
    )
    .bind(object)
    .bind(until)
    .execute(pool)
    .await?;
    Ok(())
}

/// Stamp ranges `[from, to)` of the object stored beyond its watermark by the slices of a run
/// that stopped before its end (see `sync::coverage`), in order; empty when none.
///
/// # Errors
/// The query failed, or the ranges recorded are not ranges.
pub async fn load_ahead(
    pool: &PgPool,
    object: &str,
) -> anyhow::Result<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
    let ranges: Option<String> =
        sqlx::query_scalar("SELECT ranges::text FROM sfsync.confirmed_ahead WHERE object = $1")
            .bind(object)
            .fetch_optional(pool)
            .await?;
    let Some(ranges) = ranges else {
        return Ok(Vec::new());
    };
    let ranges: Vec<(DateTime<Utc>, DateTime<Utc>)> = serde_json::from_str(&ranges)
        .map_err(|e| {
            anyhow::anyhow!(
                "sfsync.confirmed_ahead holds {ranges} for {object}, not a list of [from, to] instants ({e}); \
                 delete that row and the next sync reads from the watermark"
            )
        })?;
    Ok(ranges)
}

/// Records the ranges stored beyond the watermark (none: the row is removed).
///
/// # Errors
/// The statement failed.
pub async fn record_ahead(
    pool: &PgPool,
    object: &str,
    ahead: &[(DateTime<Utc>, DateTime<Utc>)],
    run_id: Uuid,
) -> sqlx::Result<()> {
    if ahead.is_empty() {
        sqlx::query("DELETE FROM sfsync.confirmed_ahead WHERE object = $1")
            .bind(object)
            .execute(pool)
            .await?;
        return Ok(());
    }
    let ranges = serde_json::to_string(ahead).unwrap_or_else(|_| "[]".to_owned());
    sqlx::query(
        "INSERT INTO sfsync.confirmed_ahead (object, ranges, run_id) VALUES ($1, $2::jsonb, $3)
         ON CONFLICT (object) DO UPDATE
            SET ranges = EXCLUDED.ranges, run_id = EXCLUDED.run_id, updated_at = now()",
    )
    .bind(object)
    .bind(ranges)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(())
}
