//! What the commands print on stdout for people (and, with `--json`, for scripts). Logs go to
//! stderr, so stdout carries only these reports.

use crate::{
    dlq::{self, Letter},
    reconcile::{Census, FormulaReport, ReconcileReport},
    sync::{Api, SyncMode, SyncReport},
};

/// What `dlq replay` moved, and where to.
pub fn replayed_line(moved: dlq::Replayed) -> String {
    match (moved.records, moved.push) {
        (records, 0) => format!(
            "replayed {records} dead letters onto {}",
            common::topology::WORK_QUEUE
        ),
        (0, push) => format!(
            "replayed {push} dead letters onto {}",
            common::topology::PUSH_QUEUE
        ),
        (records, push) => format!(
            "replayed {} dead letters: {records} onto {}, {push} onto {}",
            records + push,
            common::topology::WORK_QUEUE,
            common::topology::PUSH_QUEUE
        ),
    }
}

/// One line per finished sync.
pub fn print_report(r: &SyncReport) {
    let mode = match r.mode {
        SyncMode::Full => "full".to_owned(),
        SyncMode::Incremental { since } => {
            format!("incremental since {}", common::sftime::format_soql(since))
        }
    };
    let api = match r.api {
        Api::Rest => "REST",
        Api::Bulk => "Bulk API 2.0",
    };
    println!(
        "run {} {} ({mode}, {api}): {} pages, {} records, {} deletions published; {} API calls",
        r.run_id, r.object, r.pages, r.records, r.deletions, r.api_calls
    );
}

/// A reconcile's census before and after, or one JSON object.
///
/// # Errors
/// The report could not be serialized (it cannot: every field is plain data).
pub fn print_reconcile(r: &ReconcileReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let line = |label: &str, c: &Census| {
        println!(
            "  {label:<7} in step {:>9}  missing {:>7}  stale {:>7}  gone {:>7}",
            c.in_step, c.missing, c.stale, c.gone
        )
    };
    println!("{}:", r.object);
    line("before", &r.before);
    match &r.after {
        Some(after) => {
            line("after", after);
            println!(
                "  re-pulled {} records, published {} deletions; {} API calls",
                r.republished, r.deletions, r.api_calls
            );
        }
        None => println!("  dry run: nothing changed; {} API calls", r.api_calls),
    }
    Ok(())
}

/// What `reconcile --formulas` did for one object, or one JSON object.
///
/// # Errors
/// The report could not be serialized (it cannot: every field is plain data).
pub fn print_formula_refresh(r: &FormulaReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    if r.fields.is_empty() {
        println!(
            "{}: no formula fields to refresh; {} API calls",
            r.object, r.api_calls
        );
    } else {
        println!(
            "{}: {} formula fields re-read: {} records, {} pages published and applied; {} API calls",
            r.object,
            r.fields.len(),
            r.records,
            r.pages,
            r.api_calls
        );
    }
    Ok(())
}

/// `dlq list`: one JSON object per letter, or counts by object and class and then a table of
/// the letters; at most `limit` letters (the table shows 50 unless told).
///
/// # Errors
/// A letter could not be serialized (it cannot: every field is plain data).
pub fn print_letters(letters: &[Letter], limit: Option<usize>, json: bool) -> anyhow::Result<()> {
    if json {
        for l in letters.iter().take(limit.unwrap_or(usize::MAX)) {
            println!("{}", serde_json::to_string(l)?);
        }
        return Ok(());
    }
    let shown = limit.unwrap_or(50);
    println!("{} dead letters", letters.len());
    for ((object, class), n) in dlq::summarize(letters) {
        println!("  {n:>8}  {object:<20} {class}");
    }
    if letters.is_empty() {
        return Ok(());
    }
    println!();
    println!(
        "{:<18}  {:<16} {:<10} {:<24} {:>3}  error",
        "sfid", "object", "class", "failed_at", "try"
    );
    for l in letters.iter().take(shown) {
        let i = &l.info;
        println!(
            "{:<18}  {:<16} {:<10} {:<24} {:>3}  {}",
            i.sfid.as_deref().unwrap_or("-"),
            i.object.as_deref().unwrap_or("-"),
            i.error_class.map_or("-", |c| c.as_str()),
            i.failed_at.as_deref().unwrap_or("-"),
            i.attempts,
            one_line(i.error.as_deref().unwrap_or("-"), 140)
        );
    }
    if letters.len() > shown {
        println!(
            "… and {} more (--limit N shows more, --json gives all)",
            letters.len() - shown
        );
    }
    Ok(())
}

/// The text on one line, cut to `max` characters (the table view; `--json` has it whole).
fn one_line(text: &str, max: usize) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_says_which_queue_its_letters_went_to() {
        let line = |records, push| replayed_line(dlq::Replayed { records, push });
        assert_eq!(line(3, 0), "replayed 3 dead letters onto sfsync.records");
        assert_eq!(line(0, 2), "replayed 2 dead letters onto sfsync.push");
        assert_eq!(
            line(3, 2),
            "replayed 5 dead letters: 3 onto sfsync.records, 2 onto sfsync.push"
        );
    }
}
