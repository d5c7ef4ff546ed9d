//! The per-object watermark in `sfsync.sync_state`. It only moves forward, and only past pages
//! the broker has confirmed.

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
