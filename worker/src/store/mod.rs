//! Storing one page in one transaction, one file per job:
//!
//! - [`check`]: every record is a JSON object with a valid Id and stamp; the others are set
//!   aside alone.
//! - [`plan`]: the records' fields matched to the table's columns.
//! - [`direct`]: new records (a full import) first try one COPY straight into the table,
//!   gated by how such attempts went on the table's last pages.
//! - [`staged`]: otherwise, and whenever that fails, COPY into a temporary staging table, then
//!   one `INSERT … SELECT … ON CONFLICT (sfid) DO UPDATE … WHERE stored.systemmodstamp <
//!   incoming` that de-duplicates by Id (newest wins) and takes row locks in Id order, so
//!   concurrent workers cannot deadlock each other; split around records the database refuses.
//! - [`deletes`]: getDeleted pages and `--hard-delete`.
//! - [`book`]: the page's bookkeeping, in the same transaction.
//! - [`copy`] and [`sql`]: the COPY text and the statements' text.
//!
//! COPY then one set-based upsert is the fastest batch path measured (see
//! `docs/architecture.md`).

mod book;
mod check;
mod copy;
pub use copy::Sanitized;
mod deletes;
pub mod direct;
mod pending;
pub use pending::Conflict;
mod plan;
mod sql;
mod staged;

use common::{
    dead_letter::{Attempts, RecordIndex},
    message::PageKind,
};
use serde_json::value::RawValue;

use self::{
    check::{Valid, check_records},
    direct::DirectCopyGate,
    plan::plan,
};
use crate::{
    decode::Page,
    error::{ErrorClass, PageError},
    table::TableShapes,
};

/// What a worker keeps about its target tables between pages.
#[derive(Default)]
pub struct Tables {
    /// Their columns.
    pub shapes: TableShapes,
    /// Whether their next page tries a direct COPY (new rows, as in a full import).
    pub direct: DirectCopyGate,
}

/// A record that could not be stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// Position in the page's `records`.
    pub index: RecordIndex,
    pub sfid: Option<String>,
    pub class: ErrorClass,
    pub message: String,
}

/// What storing a page did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageOutcome {
    pub records: u64,
    /// Rows inserted or updated; records older than (or as old as) the stored row change nothing.
    pub rows_written: u64,
    /// Records set aside for the dead-letter queue.
    pub failed: Vec<FailedRecord>,
    /// Values stored with their NUL characters left out, by field.
    pub sanitized: Sanitized,
    /// Local changes in conflict with Salesforce, set aside for the dead-letter queue (the
    /// `reject` policy; see [`pending`]).
    pub conflicts: Vec<Conflict>,
}

/// How a page's outcome is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// A page from the producer: one `page_results` row, one `dead_letters` row per failure.
    Page,
    /// One record put back by `dlq replay`: resolves (or updates) its `dead_letters` row.
    Replay { record_index: RecordIndex },
}

/// Stores one page in one transaction; records that cannot be stored come back in
/// [`PageOutcome::failed`] (already booked), the rest are committed.
///
/// # Errors
/// [`PageError::Transient`] for connection trouble, deadlocks and the like: nothing was
/// committed and the caller retries the whole page. [`PageError::Permanent`] only when even
/// the bookkeeping cannot be written (sfsync's own tables are missing).
pub async fn store_page(
    pool: &deadpool_postgres::Pool,
    tables: &Tables,
    page: &Page<'_>,
    booking: Booking,
    attempts: Attempts,
) -> Result<PageOutcome, PageError> {
    let (valid, failed) = check_records(page);
    let mut client = pool.get().await?;
    match store_valid(
        &mut client,
        tables,
        page,
        &valid,
        failed.clone(),
        booking,
        attempts,
    )
    .await
    {
        Err(PageError::Permanent { class, message }) => {
            // The whole page cannot be stored (e.g. its table is missing): every record is
            // dead-lettered with that reason, so each can be replayed once it is fixed.
            let mut all = failed;
            all.extend(valid.iter().map(|v| FailedRecord {
                index: v.index,
                sfid: Some(v.id.to_string()),
                class,
                message: message.clone(),
            }));
            all.sort_by_key(|f| f.index);
            let tx = client.transaction().await?;
            book::book(&tx, page, booking, &all, attempts).await?;
            tx.commit().await?;
            Ok(PageOutcome {
                records: page.records.len() as u64,
                rows_written: 0,
                failed: all,
                sanitized: Sanitized::default(),
                conflicts: Vec::new(),
            })
        }
        other => other,
    }
}

/// Stores the records that passed the checks, with `failed` (those that did not) booked beside
/// them.
async fn store_valid(
    client: &mut deadpool_postgres::Client,
    tables: &Tables,
    page: &Page<'_>,
    valid: &[Valid<'_>],
    mut failed: Vec<FailedRecord>,
    booking: Booking,
    attempts: Attempts,
) -> Result<PageOutcome, PageError> {
    let table = page.target_table();
    let mut shape = tables.shapes.get(client, &table, &page.object).await?;
    let (mut page_plan, mut unmatched) = plan(valid, &shape, page.stamp_field());
    if !unmatched.is_empty() {
        // The producer may have added columns since the shape was cached.
        shape = tables.shapes.reload(client, &table, &page.object).await?;
        (page_plan, unmatched) = plan(valid, &shape, page.stamp_field());
        if !unmatched.is_empty() {
            tracing::debug!(object = %page.object, fields = ?unmatched, "Fields without a column are not stored.");
        }
    }
    let tx = client.transaction().await?;
    // sfsync's own writes are never captured for write-back; and local changes still waiting
    // to be written back are kept (see `pending`).
    let keep_local = pending::mark_and_check(&tx, &table).await?;
    let mut conflicts = Vec::new();
    let (rows_written, refused, sanitized) = match page.kind {
        PageKind::Records | PageKind::Refresh => {
            // In Id order (byte order, as the upsert sorts with COLLATE "C"), so that when a
            // statement fails on one row, every row before it in the range is known to be good.
            let mut order: Vec<usize> = (0..valid.len()).collect();
            order.sort_by(|&a, &b| valid[a].id.cmp(&valid[b].id));
            // A refresh page updates existing rows only: never the direct COPY of new rows.
            // Nor when local changes are pending: the direct COPY would bring back a record
            // the application deleted.
            let direct = if page.kind == PageKind::Records
                && !keep_local
                && tables.direct.should_try(&table)
            {
                direct::copy_direct(
                    &tx,
                    &table,
                    page.run_id,
                    valid,
                    &order,
                    &page_plan,
                    &tables.direct,
                )
                .await?
            } else {
                None
            };
            let (written, refused, sanitized) = match direct {
                Some((written, sanitized)) => (written, Vec::new(), sanitized),
                None => {
                    let staged =
                        staged::stage_and_upsert(&tx, page, valid, order, &page_plan, keep_local)
                            .await?;
                    conflicts = staged.conflicts;
                    (staged.written, staged.refused, staged.sanitized)
                }
            };
            if page.hard_delete {
                let gone: Vec<&str> = valid
                    .iter()
                    .filter(|v| v.fields.get("IsDeleted").is_some_and(|d| d.get() == "true"))
                    .map(|v| v.id.as_str())
                    .collect();
                deletes::remove_deleted(&tx, &table, &gone).await?;
            }
            (written, refused, sanitized)
        }
        PageKind::Deleted => {
            let stamps: Vec<(&str, String)> = valid
                .iter()
                .map(|v| {
                    (
                        v.id.as_str(),
                        v.fields
                            .get("SystemModstamp")
                            .and_then(|s| serde_json::from_str::<String>(s.get()).ok())
                            .unwrap_or_default(),
                    )
                })
                .collect();
            (
                deletes::apply_deletions(&tx, &table, page.run_id, &stamps, page.hard_delete)
                    .await?,
                Vec::new(),
                Sanitized::default(),
            )
        }
    };
    failed.extend(refused);
    failed.sort_by_key(|f| f.index);
    book::book(&tx, page, booking, &failed, attempts).await?;
    tx.commit().await?;
    Ok(PageOutcome {
        records: page.records.len() as u64,
        rows_written,
        failed,
        sanitized,
        conflicts,
    })
}

/// The raw JSON of a page's record, for dead-lettering it.
pub fn raw_record<'a>(page: &Page<'a>, index: RecordIndex) -> Option<&'a RawValue> {
    usize::try_from(index)
        .ok()
        .and_then(|i| page.records.get(i))
        .copied()
}
