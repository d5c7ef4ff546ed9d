//! The usual way a page is stored: COPY its rows into a staging table, then one guarded, sorted
//! upsert. A record the database refuses does not sink its page: the upsert runs under a
//! savepoint, and on a record-level error the staged rows are split around the culprit (when
//! the error names it) or in halves, so one bad record among 2,000 costs about
//! 2·log2(2000) ≈ 22 statements, not 2,000.

use std::collections::HashMap;

use common::message::PageKind;
use tokio_postgres::SimpleQueryMessage;

use super::{
    FailedRecord,
    check::Valid,
    copy::{self, Sanitized},
    plan::PagePlan,
    sql,
};
use crate::{
    decode::Page,
    error::{ErrorClass, PageError},
};

/// What staging and upserting a page did.
pub(super) struct Staged {
    pub written: u64,
    /// Records the database refused, or that could not be written as COPY text.
    pub refused: Vec<FailedRecord>,
    pub sanitized: Sanitized,
    /// Local changes set aside by the `reject` conflict policy.
    pub conflicts: Vec<super::pending::Conflict>,
}

/// Stages the valid records (in `order`, Id order) and upserts them, splitting around records
/// the database refuses; with `keep_local`, the staged rows first give way to local changes
/// still waiting to be written back (see [`super::pending`]).
///
/// # Errors
/// A page-level error (a missing table or column) or a transient one.
pub(super) async fn stage_and_upsert(
    tx: &deadpool_postgres::Transaction<'_>,
    page: &Page<'_>,
    valid: &[Valid<'_>],
    order: Vec<usize>,
    plan: &PagePlan<'_>,
    keep_local: bool,
) -> Result<Staged, PageError> {
    let mut rows = Vec::with_capacity(valid.len() * 512);
    let mut sanitized = Sanitized::default();
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
        match copy::copy_fields(&mut rows, record, plan, &mut sanitized) {
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
        return Ok(Staged {
            written: 0,
            refused: failed,
            sanitized,
            conflicts: Vec::new(),
        });
    }
    tx.batch_execute(&sql::create_stage(plan)).await?;
    copy::copy_in(tx, &sql::copy_into_stage(plan), rows).await?;
    let table = page.target_table();
    let conflicts = if keep_local {
        super::pending::keep_local_changes(tx, &table, plan).await?
    } else {
        Vec::new()
    };

    let positions: HashMap<&str, usize> = staged
        .iter()
        .enumerate()
        .map(|(p, &i)| (valid[i].id.as_str(), p))
        .collect();
    let mode = match (page.kind, page.force) {
        (PageKind::Refresh, _) => sql::Mode::ExistingOnly,
        (_, true) => sql::Mode::Forced,
        (_, false) => sql::Mode::Guarded,
    };
    let mut written = 0u64;
    let mut indexed = false;
    let mut ranges = vec![(0usize, staged.len())];
    while let Some((lo, hi)) = ranges.pop() {
        // One round trip per attempt: savepoint, upsert and release go as one simple query
        // (the values in the statement are a uuid and two integers, written as literals).
        let attempt = format!(
            "SAVEPOINT sfsync_range; {}; RELEASE SAVEPOINT sfsync_range",
            sql::upsert(&table, plan, page.run_id, lo, hi, mode)
        );
        let error = match tx.simple_query(&attempt).await {
            Ok(messages) => {
                written += messages
                    .iter()
                    .map(|m| match m {
                        SimpleQueryMessage::CommandComplete(n) => *n,
                        _ => 0,
                    })
                    .sum::<u64>();
                continue;
            }
            Err(e) => e,
        };
        let detail = error
            .as_db_error()
            .and_then(|d| d.detail())
            .map(str::to_owned);
        let (class, message) = match PageError::from(error) {
            PageError::Permanent { class, message } if class.is_per_record() => (class, message),
            other => return Err(other),
        };
        tx.batch_execute("ROLLBACK TO SAVEPOINT sfsync_range")
            .await?;
        if !indexed {
            // From here on each attempt reads a slice of the staged rows.
            tx.batch_execute("CREATE INDEX ON _sfsync_stage (_n); ANALYZE _sfsync_stage")
                .await?;
            indexed = true;
        }
        let culprit = if hi - lo == 1 {
            Some(lo)
        } else {
            failing_position(detail.as_deref(), &positions, lo, hi)
        };
        match culprit {
            Some(p) => {
                // Rows before it went in fine before the statement failed.
                let record = &valid[staged[p]];
                failed.push(FailedRecord {
                    index: record.index,
                    sfid: Some(record.id.to_string()),
                    class,
                    message,
                });
                ranges.extend([(p + 1, hi), (lo, p)].into_iter().filter(|(a, b)| a < b));
            }
            None => {
                let mid = lo + (hi - lo) / 2;
                ranges.push((mid, hi));
                ranges.push((lo, mid));
            }
        }
    }
    Ok(Staged {
        written,
        refused: failed,
        sanitized,
        conflicts,
    })
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
}
