//! Deletions: records Salesforce reports as deleted after they left the recycle bin
//! (getDeleted), and `--hard-delete`, which removes rows instead of marking them.
//!
//! Soft deletes go through the modstamp guard like every other change, so an older page
//! replayed later cannot undo them. Hard deletes leave no row to guard: a replay of a page
//! older than the deletion brings the record back until the next sync deletes it again.

use common::schema::qualified;
use uuid::Uuid;

use crate::error::PageError;

/// Applies a page of getDeleted entries (Id, deletion time): existing rows are marked
/// `isdeleted` (when the deletion is newer than the row) or removed; no row is created.
///
/// # Errors
/// Database errors, classified as usual.
pub async fn apply_deletions(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    run_id: Uuid,
    deleted: &[(&str, String)],
    hard: bool,
) -> Result<u64, PageError> {
    let table = qualified(table);
    let mut sorted: Vec<&(&str, String)> = deleted.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0)); // row locks in Id order, like the upsert
    let ids: Vec<&str> = sorted.iter().map(|(id, _)| *id).collect();
    let stamps: Vec<&str> = sorted.iter().map(|(_, stamp)| stamp.as_str()).collect();
    let changed = if hard {
        tx.execute(
            &format!(
                "DELETE FROM {table} t USING unnest($1::text[]) AS d(sfid) WHERE t.sfid = d.sfid"
            ),
            &[&ids],
        )
        .await?
    } else {
        tx.execute(
            &format!(
                "UPDATE {table} t SET isdeleted = true, systemmodstamp = d.stamp::timestamptz, _sfsync_run_id = $3, _sfsync_synced_at = now()
                   FROM unnest($1::text[], $2::text[]) AS d(sfid, stamp)
                  WHERE t.sfid = d.sfid AND t.systemmodstamp < d.stamp::timestamptz"
            ),
            &[&ids, &stamps, &run_id],
        )
        .await?
    };
    Ok(changed)
}

/// After a page is upserted with `--hard-delete`: removes the rows of its deleted records.
///
/// # Errors
/// Database errors, classified as usual.
pub async fn remove_deleted(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    ids: &[&str],
) -> Result<u64, PageError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let table = qualified(table);
    Ok(tx
        .execute(
            &format!("DELETE FROM {table} WHERE sfid = ANY($1::text[]) AND isdeleted"),
            &[&ids],
        )
        .await?)
}
