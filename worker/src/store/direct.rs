//! Trying a page's records as plain new rows: one `COPY` straight into the target table instead
//! of COPY into a staging table and the guarded upsert ([`copy_direct`]), and when to try it
//! ([`DirectCopyGate`]).
//!
//! A full import writes rows the table does not have yet, and for those the upsert does about
//! twice the database work of a plain COPY (a staging table created, filled, read, cast and
//! dropped per page). A direct COPY inserts the same rows at raw-COPY cost. It is only an
//! attempt, under a savepoint: any row that already exists (unique violation on `sfid`), a
//! duplicate Id within the page, or any value the table refuses makes the COPY fail and the
//! page go the usual way, so what ends up in the table is the same either way.
//!
//! Failed attempts cost a wasted COPY, so after a page whose rows already existed (an
//! incremental sync, a redelivery, a re-import) the gate skips the attempt for the table's next
//! pages, twice as many after each such failure, up to [`MAX_SKIP`]; a successful attempt
//! resets it.

use std::{collections::HashMap, sync::Mutex};

use uuid::Uuid;

use super::{
    check::Valid,
    copy::{self, Sanitized},
    plan::PagePlan,
    sql,
};
use crate::error::PageError;

/// Pages skipped after the first conflict on a table.
const FIRST_SKIP: u32 = 4;
/// At most this many pages are skipped between two attempts.
pub const MAX_SKIP: u32 = 1024;

#[derive(Debug, Clone, Copy)]
struct TableGate {
    /// Pages still to go the usual way before the next attempt.
    skip_remaining: u32,
    /// Pages to skip after the next conflict.
    next_skip: u32,
}

impl Default for TableGate {
    fn default() -> Self {
        Self {
            skip_remaining: 0,
            next_skip: FIRST_SKIP,
        }
    }
}

/// How a direct COPY attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Every row went in.
    Inserted,
    /// A row already existed: the table holds (some of) these records.
    Conflict,
    /// Something else was refused (a value, a constraint): says nothing about the table.
    Refused,
}

/// Per-table decisions of one worker process.
#[derive(Debug, Default)]
pub struct DirectCopyGate {
    tables: Mutex<HashMap<String, TableGate>>,
}

impl DirectCopyGate {
    /// Whether the next page for `table` should try a direct COPY (counts a skipped page).
    pub fn should_try(&self, table: &str) -> bool {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let gate = tables.entry(table.to_owned()).or_default();
        if gate.skip_remaining > 0 {
            gate.skip_remaining -= 1;
            false
        } else {
            true
        }
    }

    /// Records how an attempt on `table` ended.
    pub fn record(&self, table: &str, attempt: Attempt) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let gate = tables.entry(table.to_owned()).or_default();
        match attempt {
            Attempt::Inserted => *gate = TableGate::default(),
            Attempt::Conflict => {
                gate.skip_remaining = gate.next_skip;
                gate.next_skip = (gate.next_skip * 2).min(MAX_SKIP);
            }
            Attempt::Refused => {}
        }
    }
}

/// Inserts the records with one COPY straight into the target table, under a savepoint, in
/// `order` (Id order); returns the rows written and the values sanitized. `None` when that did not work out and nothing was written: a row existed,
/// a value was refused, or a record cannot be written as COPY text; the page then goes through
/// the staging table and the guarded upsert, which sets such a record aside.
///
/// # Errors
/// The connection broke (the caller retries the page).
pub(super) async fn copy_direct(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    run_id: Uuid,
    valid: &[Valid<'_>],
    order: &[usize],
    plan: &PagePlan<'_>,
    gate: &DirectCopyGate,
) -> Result<Option<(u64, Sanitized)>, PageError> {
    let run_id = run_id.to_string();
    let mut rows = Vec::with_capacity(valid.len() * 512);
    let mut sanitized = Sanitized::default();
    for &i in order {
        if copy::copy_fields(&mut rows, &valid[i], plan, &mut sanitized).is_err() {
            return Ok(None);
        }
        rows.push(b'\t');
        rows.extend_from_slice(run_id.as_bytes());
        rows.push(b'\n');
    }
    tx.batch_execute("SAVEPOINT sfsync_direct").await?;
    match copy::copy_in(tx, &sql::copy_into_table(table, plan), rows).await {
        Ok(written) => {
            tx.batch_execute("RELEASE SAVEPOINT sfsync_direct").await?;
            gate.record(table, Attempt::Inserted);
            Ok(Some((written, sanitized)))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tries(gate: &DirectCopyGate, table: &str, pages: usize) -> usize {
        (0..pages).filter(|_| gate.should_try(table)).count()
    }

    #[test]
    fn conflicts_back_off_doubling_and_success_resets() {
        let gate = DirectCopyGate::default();
        assert!(gate.should_try("contact"));
        gate.record("contact", Attempt::Conflict);
        assert_eq!(tries(&gate, "contact", 4), 0, "skips 4 pages");
        assert!(gate.should_try("contact"));
        gate.record("contact", Attempt::Conflict);
        assert_eq!(tries(&gate, "contact", 8), 0, "then 8");
        assert!(gate.should_try("contact"));
        gate.record("contact", Attempt::Inserted);
        assert_eq!(
            tries(&gate, "contact", 3),
            3,
            "a success tries every page again"
        );
        gate.record("contact", Attempt::Conflict);
        assert_eq!(
            tries(&gate, "contact", 5),
            1,
            "and starts the back-off over at 4"
        );
    }

    #[test]
    fn tables_are_independent_and_refusals_do_not_back_off() {
        let gate = DirectCopyGate::default();
        gate.record("contact", Attempt::Conflict);
        assert!(gate.should_try("account"));
        gate.record("account", Attempt::Refused);
        assert!(gate.should_try("account"));
        assert!(!gate.should_try("contact"));
    }

    #[test]
    fn the_skip_is_capped() {
        let gate = DirectCopyGate::default();
        for _ in 0..20 {
            while !gate.should_try("t") {}
            gate.record("t", Attempt::Conflict);
        }
        assert_eq!(tries(&gate, "t", MAX_SKIP as usize + 1), 1);
    }
}
