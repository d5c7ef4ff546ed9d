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
