//! A page's bookkeeping, written in the page's own transaction so that it is exact: one
//! `sfsync.page_results` row per page, one `sfsync.dead_letters` row per record set aside, and
//! for a replayed record the resolution of its dead-letter row.

use common::dead_letter::Attempts;

use super::{Booking, FailedRecord};
use crate::{decode::Page, error::PageError};

/// Writes the page's bookkeeping in `tx`.
///
/// # Errors
/// The bookkeeping tables are missing (permanent) or the connection failed (transient).
pub(super) async fn book(
    tx: &deadpool_postgres::Transaction<'_>,
    page: &Page<'_>,
    booking: Booking,
    failed: &[FailedRecord],
    attempts: Attempts,
) -> Result<(), PageError> {
    let index_of = |f: &FailedRecord| match booking {
        Booking::Page => f.index,
        Booking::Replay { record_index } => record_index,
    };
    let page_number = page.page as i64;
    for f in failed {
        tx.execute(
            "INSERT INTO sfsync.dead_letters (run_id, page, record_index, object, sfid, error_class, error, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run_id, page, record_index) DO UPDATE
                SET sfid = EXCLUDED.sfid, error_class = EXCLUDED.error_class, error = EXCLUDED.error,
                    attempts = EXCLUDED.attempts, failed_at = now(), resolved_at = NULL",
            &[&page.run_id, &page_number, &index_of(f), &page.object, &f.sfid, &f.class.as_str(), &f.message, &attempts],
        )
        .await?;
    }
    match booking {
        Booking::Page => {
            let records = page.records.len() as i64;
            let dead = failed.len() as i64;
            tx.execute(
                "INSERT INTO sfsync.page_results (run_id, page, object, records, records_stored, records_dead)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (run_id, page) DO UPDATE
                    SET records = EXCLUDED.records, records_stored = EXCLUDED.records_stored,
                        records_dead = EXCLUDED.records_dead, processed_at = now()",
                &[&page.run_id, &page_number, &page.object, &records, &(records - dead), &dead],
            )
            .await?;
        }
        Booking::Replay { record_index } if failed.is_empty() => {
            tx.execute(
                "UPDATE sfsync.dead_letters SET resolved_at = now() WHERE run_id = $1 AND page = $2 AND record_index = $3 AND resolved_at IS NULL",
                &[&page.run_id, &page_number, &record_index],
            )
            .await?;
        }
        Booking::Replay { .. } => {}
    }
    Ok(())
}
