//! Storing one page. New records (a full import) first try one COPY straight into the table
//! ([`crate::direct`]). Otherwise, and whenever that fails: COPY the records into a temporary
//! staging table, then one
//! `INSERT … SELECT … ON CONFLICT (sfid) DO UPDATE … WHERE stored.systemmodstamp < incoming`
//! that de-duplicates by Id (newest wins) and takes row locks in Id order, so concurrent
//! workers cannot deadlock each other. COPY then one set-based upsert was the fastest path
//! measured (DESIGN.md).
//!
//! A record the database refuses does not sink its page: the upsert runs under a savepoint,
//! and on a record-level error the staged rows are split in halves and retried, so one bad
//! record among 2,000 costs about 2·log2(2000) ≈ 22 statements, not 2,000. The page's
//! bookkeeping (`sfsync.page_results`, `sfsync.dead_letters`) is written in the same
//! transaction.

use std::collections::HashMap;

use bytes::Bytes;
use common::message::PageKind;
use common::{
    schema::{column_name, qualified, quote_ident},
    sfid::SalesforceId,
    sftime::parse_datetime,
};
use futures::SinkExt;
use serde_json::value::RawValue;
use tokio_postgres::SimpleQueryMessage;
use uuid::Uuid;

use crate::{
    copy_text::{push_null, push_text, push_value},
    decode::{Page, RawRecord, fields},
    deletes,
    direct::{Attempt, DirectCopyGate},
    error::{ErrorClass, PageError},
    table::{Column, TableShape, TableShapes},
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
    pub index: usize,
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
}

/// How a page's outcome is booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// A page from the producer: one `page_results` row, one `dead_letters` row per failure.
    Page,
    /// One record put back by `dlq replay`: resolves (or updates) its `dead_letters` row.
    Replay { record_index: i32 },
}

/// A record that passed the checks, with its Id.
struct Valid<'a> {
    index: usize,
    id: SalesforceId,
    fields: RawRecord<'a>,
}

/// Parses every record and checks its Id and SystemModstamp; the failures are per record.
fn check_records<'a>(page: &Page<'a>) -> (Vec<Valid<'a>>, Vec<FailedRecord>) {
    let mut valid = Vec::with_capacity(page.records.len());
    let mut failed = Vec::new();
    let mut expected_fields = 0;
    for (index, raw) in page.records.iter().enumerate() {
        let mapping = |sfid: Option<String>, message: String| FailedRecord {
            index,
            sfid,
            class: ErrorClass::Mapping,
            message,
        };
        let record = match fields(raw, expected_fields) {
            Ok(r) => {
                expected_fields = r.len();
                r
            }
            Err(e) => {
                failed.push(mapping(None, e));
                continue;
            }
        };
        let id_raw = record.get("Id").map_or("null", |v| v.get());
        let id = match serde_json::from_str::<String>(id_raw) {
            Ok(s) => SalesforceId::parse(&s).map_err(|e| e.to_string()),
            Err(_) => Err(format!("record has no valid Id (Id is {id_raw})")),
        };
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                failed.push(mapping(None, e));
                continue;
            }
        };
        let stamp_raw = record.get("SystemModstamp").map_or("null", |v| v.get());
        if !serde_json::from_str::<String>(stamp_raw).is_ok_and(|s| parse_datetime(&s).is_ok()) {
            failed.push(mapping(
                Some(id.to_string()),
                format!("SystemModstamp {stamp_raw} is not a Salesforce datetime"),
            ));
            continue;
        }
        valid.push(Valid {
            index,
            id,
            fields: record,
        });
    }
    (valid, failed)
}

/// The columns a page writes, in COPY order: (field name as the records have it, its usual
/// position in a record, column).
struct PagePlan<'a> {
    fields: Vec<(&'a str, usize, Column)>,
}

/// Matches the records' field names to the table's columns. Returns the names with no column.
fn plan<'a>(records: &[Valid<'a>], shape: &TableShape) -> (PagePlan<'a>, Vec<&'a str>) {
    // (name, position in the first record that has it)
    let mut names: Vec<(&'a str, usize)> = Vec::new();
    let mut previous: Option<&RawRecord<'a>> = None;
    for record in records {
        // Records of a page nearly always share one field order: only a record whose names
        // differ from the one before it can add a name.
        if previous.is_some_and(|p| p.same_names(&record.fields)) {
            continue;
        }
        previous = Some(&record.fields);
        for (position, key) in record.fields.names().enumerate() {
            if key != "attributes" && !names.iter().any(|(n, _)| *n == key) {
                names.push((key, position));
            }
        }
    }
    let mut fields = Vec::with_capacity(names.len());
    let mut unmatched = Vec::new();
    for (name, position) in names {
        match shape.columns.get(&column_name(name)) {
            Some(column) => fields.push((name, position, column.clone())),
            None => unmatched.push(name),
        }
    }
    (PagePlan { fields }, unmatched)
}

/// Writes one record's fields as COPY text, tab-separated, in the plan's column order (no row
/// end); `Err` when a value cannot be written.
fn copy_fields(out: &mut Vec<u8>, record: &Valid<'_>, plan: &PagePlan<'_>) -> Result<(), String> {
    for (i, (name, hint, column)) in plan.fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        if column.name == "sfid" {
            // Stored in its 18-character form, whatever length Salesforce sent.
            push_text(out, record.id.as_str()).map_err(|e| e.to_string())?;
            continue;
        }
        match record.fields.get_at(*hint, name) {
            Some(raw) => push_value(out, raw).map_err(|e| format!("field {name} {e}"))?,
            None => push_null(out),
        }
    }
    Ok(())
}

/// The staged row a failed statement names, when its error detail names exactly one of the
/// range's Ids ("Failing row contains (…, 003…, …)" for CHECK and NOT NULL violations).
fn failing_position(
    detail: Option<&str>,
    positions: &HashMap<&str, usize>,
    lo: usize,
    hi: usize,
) -> Option<usize> {
    let mut found = None;
    for token in detail?
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() == 18)
    {
        match positions.get(token) {
            Some(&p) if (lo..hi).contains(&p) && found.is_none_or(|f| f == p) => found = Some(p),
            Some(&p) if (lo..hi).contains(&p) => return None, // two Ids: cannot tell
            _ => {}
        }
    }
    found
}

/// The upsert of staged rows `_n` in `[lo, hi)` into the target table.
fn upsert_sql(
    table: &str,
    plan: &PagePlan<'_>,
    run_id: Uuid,
    lo: usize,
    hi: usize,
    force: bool,
) -> String {
    let table = qualified(table);
    let names: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| quote_ident(&c.name))
        .collect();
    let casts: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| format!("s.{}::{}", quote_ident(&c.name), c.base_type))
        .collect();
    let data: Vec<&String> = plan
        .fields
        .iter()
        .zip(&names)
        .filter(|((_, _, c), _)| c.name != "sfid")
        .map(|(_, n)| n)
        .collect();
    let updates: Vec<String> = data.iter().map(|n| format!("{n} = EXCLUDED.{n}")).collect();
    let stored: Vec<String> = data.iter().map(|n| format!("t.{n}")).collect();
    let incoming: Vec<String> = data.iter().map(|n| format!("EXCLUDED.{n}")).collect();
    // The guard: a newer SystemModstamp wins. An equal one wins only if the data differs:
    // Salesforce stamps to the second, so two saves within one second share a stamp, and an
    // identical re-read must not rewrite the row. A forced page (reconcile) wins whenever the
    // data differs, even over a stored stamp that claims to be newer.
    let changed = format!(
        "({}) IS DISTINCT FROM ({})",
        stored.join(", "),
        incoming.join(", ")
    );
    let guard = if force {
        changed
    } else {
        format!(
            "t.systemmodstamp < EXCLUDED.systemmodstamp OR (t.systemmodstamp = EXCLUDED.systemmodstamp AND {changed})"
        )
    };
    format!(
        "INSERT INTO {table} AS t ({cols}, _sfsync_run_id, _sfsync_synced_at)
         SELECT DISTINCT ON (s.sfid COLLATE \"C\") {casts}, '{run_id}'::uuid, now()
           FROM _sfsync_stage s
          WHERE s._n >= {lo} AND s._n < {hi}
          ORDER BY s.sfid COLLATE \"C\", s.systemmodstamp::timestamptz DESC
         ON CONFLICT (sfid) DO UPDATE SET {updates}, _sfsync_run_id = EXCLUDED._sfsync_run_id, _sfsync_synced_at = EXCLUDED._sfsync_synced_at
          WHERE {guard}",
        cols = names.join(", "),
        casts = casts.join(", "),
        updates = updates.join(", "),
    )
}

/// The size of the pieces a page's COPY text is handed to the connection in.
const COPY_PIECE: usize = 128 * 1024;

/// Sends COPY text in pieces of [`COPY_PIECE`] bytes (slices of one buffer, not copies).
/// tokio-postgres copies each piece into the connection's write buffer, which it writes out
/// before taking the next; a page sent whole grew that buffer to the page's size (2 MB) in
/// every pooled connection.
async fn send_copy_text(
    mut sink: std::pin::Pin<&mut tokio_postgres::CopyInSink<Bytes>>,
    rows: Vec<u8>,
) -> Result<(), tokio_postgres::Error> {
    let rows = Bytes::from(rows);
    let mut start = 0;
    while start < rows.len() {
        let end = rows.len().min(start + COPY_PIECE);
        sink.as_mut().feed(rows.slice(start..end)).await?;
        start = end;
    }
    Ok(())
}

/// Inserts the records with one COPY straight into the target table, under a savepoint, when
/// none of them is there yet (see [`crate::direct`]). `None` when that did not work out and
/// nothing was written: a row existed, a value was refused, or a record cannot be written as
/// COPY text; the page then goes through the staging table and the guarded upsert.
async fn copy_direct(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    run_id: Uuid,
    valid: &[Valid<'_>],
    order: &[usize],
    plan: &PagePlan<'_>,
    gate: &DirectCopyGate,
) -> Result<Option<u64>, PageError> {
    let run_id = run_id.to_string();
    let mut rows = Vec::with_capacity(valid.len() * 512);
    for &i in order {
        if copy_fields(&mut rows, &valid[i], plan).is_err() {
            return Ok(None); // the staging path sets that record aside
        }
        rows.push(b'\t');
        rows.extend_from_slice(run_id.as_bytes());
        rows.push(b'\n');
    }
    let names: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| quote_ident(&c.name))
        .collect();
    // `_sfsync_synced_at` is left to its default, now(): the upsert writes now() as well.
    let copy = format!(
        "COPY {} ({}, _sfsync_run_id) FROM STDIN",
        qualified(table),
        names.join(", ")
    );
    tx.batch_execute("SAVEPOINT sfsync_direct").await?;
    let attempt = async {
        let sink = tx.copy_in(&copy).await?;
        futures::pin_mut!(sink);
        send_copy_text(sink.as_mut(), rows).await?;
        sink.finish().await
    }
    .await;
    match attempt {
        Ok(written) => {
            tx.batch_execute("RELEASE SAVEPOINT sfsync_direct").await?;
            gate.record(table, Attempt::Inserted);
            Ok(Some(written))
        }
        Err(e) => match e.as_db_error() {
            Some(db) => {
                let conflict = *db.code() == tokio_postgres::error::SqlState::UNIQUE_VIOLATION;
                tracing::debug!(
                    table,
                    sqlstate = db.code().code(),
                    error = db.message(),
                    "Direct COPY refused; upserting the page instead."
                );
                tx.batch_execute("ROLLBACK TO SAVEPOINT sfsync_direct")
                    .await?;
                gate.record(
                    table,
                    if conflict {
                        Attempt::Conflict
                    } else {
                        Attempt::Refused
                    },
                );
                Ok(None)
            }
            // The connection broke: the caller retries the page.
            None => Err(e.into()),
        },
    }
}

/// Stages the valid records and upserts them, bisecting around records the database refuses.
/// Returns rows written and the refused records. A page-level error (missing table or column)
/// or a transient one is returned as `Err`.
async fn upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    page: &Page<'_>,
    valid: &[Valid<'_>],
    plan: &PagePlan<'_>,
    gate: &DirectCopyGate,
) -> Result<(u64, Vec<FailedRecord>), PageError> {
    // Staged in Id order (byte order, as the upsert sorts with COLLATE "C"), so that when a
    // statement fails on one row, every row before it in the range is known to be good.
    let mut order: Vec<usize> = (0..valid.len()).collect();
    order.sort_by(|&a, &b| valid[a].id.cmp(&valid[b].id));
    let table = page.target_table();
    if gate.should_try(&table)
        && let Some(written) =
            copy_direct(tx, &table, page.run_id, valid, &order, plan, gate).await?
    {
        return Ok((written, Vec::new()));
    }
    let mut rows = Vec::with_capacity(valid.len() * 512);
    let mut staged: Vec<usize> = Vec::with_capacity(valid.len()); // position -> index in `valid`
    let mut failed = Vec::new();
    for i in order {
        let record = &valid[i];
        let start = rows.len();
        {
            use std::io::Write as _;
            let _ = write!(rows, "{}", staged.len()); // writing into a Vec cannot fail
        }
        if !plan.fields.is_empty() {
            rows.push(b'\t');
        }
        match copy_fields(&mut rows, record, plan) {
            Ok(()) => {
                rows.push(b'\n');
                staged.push(i);
            }
            Err(message) => {
                rows.truncate(start);
                failed.push(FailedRecord {
                    index: record.index,
                    sfid: Some(record.id.to_string()),
                    class: ErrorClass::Mapping,
                    message,
                });
            }
        }
    }
    if staged.is_empty() {
        return Ok((0, failed));
    }
    let stage_columns: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| format!("{} text", quote_ident(&c.name)))
        .collect();
    let stage_names: Vec<String> = plan
        .fields
        .iter()
        .map(|(_, _, c)| quote_ident(&c.name))
        .collect();
    // Dropped at commit: no staging state outlives the page, whatever the table looks like next.
    tx.batch_execute(&format!(
        "CREATE TEMP TABLE _sfsync_stage (_n integer, {}) ON COMMIT DROP",
        stage_columns.join(", ")
    ))
    .await?;
    let sink = tx
        .copy_in(&format!(
            "COPY _sfsync_stage (_n, {}) FROM STDIN",
            stage_names.join(", ")
        ))
        .await?;
    futures::pin_mut!(sink);
    send_copy_text(sink.as_mut(), rows).await?;
    sink.finish().await?;

    let positions: HashMap<&str, usize> = staged
        .iter()
        .enumerate()
        .map(|(p, &i)| (valid[i].id.as_str(), p))
        .collect();
    let mut written = 0u64;
    let mut indexed = false;
    let mut ranges = vec![(0usize, staged.len())];
    while let Some((lo, hi)) = ranges.pop() {
        // One round trip per attempt: savepoint, upsert and release go as one simple query
        // (the values in the statement are a uuid and two integers, written as literals).
        let attempt = format!(
            "SAVEPOINT sfsync_range; {}; RELEASE SAVEPOINT sfsync_range",
            upsert_sql(&page.target_table(), plan, page.run_id, lo, hi, page.force)
        );
        match tx.simple_query(&attempt).await {
            Ok(messages) => {
                written += messages
                    .iter()
                    .map(|m| {
                        if let SimpleQueryMessage::CommandComplete(n) = m {
                            *n
                        } else {
                            0
                        }
                    })
                    .sum::<u64>();
            }
            Err(e) => {
                let detail = e.as_db_error().and_then(|d| d.detail()).map(str::to_owned);
                match PageError::from(e) {
                    PageError::Permanent { class, message } if class.is_per_record() => {
                        tx.batch_execute("ROLLBACK TO SAVEPOINT sfsync_range")
                            .await?;
                        if !indexed {
                            // From here on each attempt reads a slice of the staged rows.
                            tx.batch_execute(
                                "CREATE INDEX ON _sfsync_stage (_n); ANALYZE _sfsync_stage",
                            )
                            .await?;
                            indexed = true;
                        }
                        let culprit = if hi - lo == 1 {
                            Some(lo)
                        } else {
                            failing_position(detail.as_deref(), &positions, lo, hi)
                        };
                        if let Some(p) = culprit {
                            // Rows before it went in fine before the statement failed.
                            let record = &valid[staged[p]];
                            failed.push(FailedRecord {
                                index: record.index,
                                sfid: Some(record.id.to_string()),
                                class,
                                message,
                            });
                            ranges
                                .extend([(p + 1, hi), (lo, p)].into_iter().filter(|(a, b)| a < b));
                        } else {
                            let mid = lo + (hi - lo) / 2;
                            ranges.push((mid, hi));
                            ranges.push((lo, mid));
                        }
                    }
                    other => return Err(other),
                }
            }
        }
    }
    Ok((written, failed))
}

/// Writes the page's bookkeeping in the page's transaction.
async fn book(
    tx: &deadpool_postgres::Transaction<'_>,
    page: &Page<'_>,
    booking: Booking,
    failed: &[FailedRecord],
    attempts: i32,
) -> Result<(), PageError> {
    let index_of = |f: &FailedRecord| match booking {
        Booking::Page => f.index as i32,
        Booking::Replay { record_index } => record_index,
    };
    for f in failed {
        tx.execute(
            "INSERT INTO sfsync.dead_letters (run_id, page, record_index, object, sfid, error_class, error, attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (run_id, page, record_index) DO UPDATE
                SET sfid = EXCLUDED.sfid, error_class = EXCLUDED.error_class, error = EXCLUDED.error,
                    attempts = EXCLUDED.attempts, failed_at = now(), resolved_at = NULL",
            &[&page.run_id, &(page.page as i64), &index_of(f), &page.object, &f.sfid, &f.class.as_str(), &f.message, &attempts],
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
                &[&page.run_id, &(page.page as i64), &page.object, &records, &(records - dead), &dead],
            )
            .await?;
        }
        Booking::Replay { record_index } if failed.is_empty() => {
            tx.execute(
                "UPDATE sfsync.dead_letters SET resolved_at = now() WHERE run_id = $1 AND page = $2 AND record_index = $3 AND resolved_at IS NULL",
                &[&page.run_id, &(page.page as i64), &record_index],
            )
            .await?;
        }
        Booking::Replay { .. } => {}
    }
    Ok(())
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
    attempts: i32,
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
            book(&tx, page, booking, &all, attempts).await?;
            tx.commit().await?;
            Ok(PageOutcome {
                records: page.records.len() as u64,
                rows_written: 0,
                failed: all,
            })
        }
        other => other,
    }
}

async fn store_valid(
    client: &mut deadpool_postgres::Client,
    tables: &Tables,
    page: &Page<'_>,
    valid: &[Valid<'_>],
    mut failed: Vec<FailedRecord>,
    booking: Booking,
    attempts: i32,
) -> Result<PageOutcome, PageError> {
    let table = page.target_table();
    let mut shape = tables.shapes.get(client, &table, &page.object).await?;
    let (mut page_plan, mut unmatched) = plan(valid, &shape);
    if !unmatched.is_empty() {
        // The producer may have added columns since the shape was cached.
        shape = tables.shapes.reload(client, &table, &page.object).await?;
        (page_plan, unmatched) = plan(valid, &shape);
        if !unmatched.is_empty() {
            tracing::debug!(object = %page.object, fields = ?unmatched, "Fields without a column are not stored.");
        }
    }
    let tx = client.transaction().await?;
    let (rows_written, refused) = match page.kind {
        PageKind::Records => {
            let (written, refused) = upsert(&tx, page, valid, &page_plan, &tables.direct).await?;
            if page.hard_delete {
                let gone: Vec<&str> = valid
                    .iter()
                    .filter(|v| v.fields.get("IsDeleted").is_some_and(|d| d.get() == "true"))
                    .map(|v| v.id.as_str())
                    .collect();
                deletes::remove_deleted(&tx, &table, &gone).await?;
            }
            (written, refused)
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
            )
        }
    };
    failed.extend(refused);
    failed.sort_by_key(|f| f.index);
    book(&tx, page, booking, &failed, attempts).await?;
    tx.commit().await?;
    Ok(PageOutcome {
        records: page.records.len() as u64,
        rows_written,
        failed,
    })
}

/// The raw JSON of a page's record, for dead-lettering it.
pub fn raw_record<'a>(page: &Page<'a>, index: usize) -> Option<&'a RawValue> {
    page.records.get(index).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_row_is_found_from_the_error_detail() {
        let ids = [
            "003000000000001AAA",
            "003000000000002AAA",
            "003000000000003AAA",
        ];
        let positions: HashMap<&str, usize> =
            ids.iter().enumerate().map(|(p, id)| (*id, p)).collect();
        let detail = "Failing row contains (7, 003000000000002AAA, 2024-01-01 00:00:00+00, f, x).";
        assert_eq!(failing_position(Some(detail), &positions, 0, 3), Some(1));
        assert_eq!(
            failing_position(Some(detail), &positions, 2, 3),
            None,
            "outside the range"
        );
        let two = "Failing row contains (003000000000001AAA, 003000000000003AAA).";
        assert_eq!(
            failing_position(Some(two), &positions, 0, 3),
            None,
            "ambiguous"
        );
        assert_eq!(failing_position(None, &positions, 0, 3), None);
    }

    #[test]
    fn upsert_dedupes_sorts_and_guards_on_modstamp() {
        let fields = [
            ("Id", "sfid", "character varying"),
            (
                "SystemModstamp",
                "systemmodstamp",
                "timestamp with time zone",
            ),
            ("LastName", "lastname", "text"),
        ];
        let plan = PagePlan {
            fields: fields
                .iter()
                .enumerate()
                .map(|(i, (f, c, t))| {
                    (
                        *f,
                        i,
                        Column {
                            name: (*c).into(),
                            base_type: (*t).into(),
                        },
                    )
                })
                .collect(),
        };
        let sql = upsert_sql("contact", &plan, Uuid::nil(), 10, 20, false);
        assert!(sql.contains(r#"DISTINCT ON (s.sfid COLLATE "C")"#), "{sql}");
        assert!(
            sql.contains(r#"ORDER BY s.sfid COLLATE "C", s.systemmodstamp::timestamptz DESC"#),
            "{sql}"
        );
        assert!(sql.contains(r#"s."lastname"::text"#), "{sql}");
        assert!(sql.contains("WHERE s._n >= 10 AND s._n < 20"), "{sql}");
        assert!(
            sql.contains("'00000000-0000-0000-0000-000000000000'::uuid"),
            "{sql}"
        );
        assert!(
            sql.contains("WHERE t.systemmodstamp < EXCLUDED.systemmodstamp"),
            "{sql}"
        );
        assert!(
            sql.contains(r#"OR (t.systemmodstamp = EXCLUDED.systemmodstamp AND (t."systemmodstamp", t."lastname") IS DISTINCT FROM (EXCLUDED."systemmodstamp", EXCLUDED."lastname"))"#),
            "{sql}"
        );
        assert!(
            !sql.contains(r#""sfid" = EXCLUDED"#),
            "the key is never updated: {sql}"
        );
    }

    #[test]
    fn records_without_id_or_modstamp_fail_alone() {
        let body = br#"{"format":1,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[
            {"Id":"003000000000001AAA","SystemModstamp":"2024-01-01T00:00:00.000+0000"},
            {"Id":"bad","SystemModstamp":"2024-01-01T00:00:00.000+0000"},
            {"Id":"003000000000002AAA","SystemModstamp":"yesterday"},
            {"SystemModstamp":"2024-01-01T00:00:00.000+0000"}]}"#;
        let page = crate::decode::decode(None, body).unwrap();
        let (valid, failed) = check_records(&page);
        assert_eq!(valid.iter().map(|v| v.index).collect::<Vec<_>>(), [0]);
        assert_eq!(
            failed.iter().map(|f| f.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            failed[0]
                .message
                .contains(r#"Salesforce Id "bad" has 3 characters"#),
            "{}",
            failed[0].message
        );
        assert!(
            failed[1].message.contains("SystemModstamp \"yesterday\""),
            "{}",
            failed[1].message
        );
        assert!(
            failed[2].message.contains("no valid Id"),
            "{}",
            failed[2].message
        );
    }
}
