//! The deletions a run publishes after its record pages, as [`PageKind::Deleted`] pages: what
//! getDeleted reports (records removed from the recycle bin, which queryAll can no longer
//! show), or, where getDeleted cannot report everything, what comparing Ids finds (see
//! `gone`). A table is never left as if it were complete when the delete log says it cannot be.
//!
//! The window starts where the last run's deletions reached (`sync_state`), minus the overlap:
//! not at the watermark, which stands still while an object does not change.

use anyhow::Context;
use chrono::{DateTime, Utc};
use common::message::PageKind;

use super::{
    Target, gone,
    refusals::BulkRefusals,
    run::{Progress, Run},
};
use crate::{publisher::PagePublisher, salesforce::deleted::DeleteLog, sync_state};

/// getDeleted answers windows of at most 30 days (and keeps about 15).
const DELETED_WINDOW_DAYS: i64 = 29;

/// Publishes the deletions since they were last checked (until `until`, when the run started),
/// records how far they now reach, and returns how many.
pub(super) async fn publish_deletions(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    target: &Target,
    until: DateTime<Utc>,
    refusals: &BulkRefusals,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let published = match find(run, target, until).await? {
        Found::NotLooked => return Ok(0),
        Found::None => 0,
        Found::Log(deleted) => publish_ids(run, publisher, &deleted, progress).await?,
        Found::CompareIds => gone::publish_gone(run, publisher, target, refusals, progress).await?,
    };
    sync_state::deletions_checked(run.pool, run.object(), until)
        .await
        .context("recording the deletions checked in sfsync.sync_state")?;
    Ok(published)
}

/// Where a run's deletions come from.
enum Found {
    /// Not looked for: a full read of a replicateable object into a table that was there
    /// before and whose deletions were never checked reads every record, as before, and leaves
    /// them to the next run.
    NotLooked,
    /// None can concern the table: it was just filled.
    None,
    /// getDeleted's complete answer.
    Log(Vec<(String, String)>),
    /// Comparing the table's Ids with the org's.
    CompareIds,
}

/// Where the run's deletions come from, asking getDeleted when it can answer.
async fn find(run: &Run<'_>, target: &Target, until: DateTime<Utc>) -> anyhow::Result<Found> {
    let object = run.object();
    if target.created {
        return Ok(Found::None);
    }
    let checked = sync_state::deletions_checked_until(run.pool, object)
        .await
        .context("reading sfsync.sync_state")?;
    if let (Some(cadence), Some(checked)) = (run.options.cadence, checked)
        && until - checked < chrono::Duration::from_std(cadence.deletions).unwrap_or_default()
    {
        // `sync --watch` between two checks: the next one covers this pass's window too.
        return Ok(Found::NotLooked);
    }
    if !target.describe.replicateable || run.stamp.is_none() {
        // getDeleted refuses the object, or it has no stamp to sync by: its deletions are found
        // by comparing Ids on every sync.
        return Ok(Found::CompareIds);
    }
    // From where the last run left them; before any run recorded that, from the read's start.
    let overlap = chrono::Duration::from_std(run.options.overlap).unwrap_or_default();
    let Some(since) = checked.map(|c| c - overlap).or(run.since) else {
        return Ok(Found::NotLooked);
    };
    Ok(match deleted_since(run, since, until).await? {
        DeleteLog::Complete(deleted) => Found::Log(deleted),
        DeleteLog::Incomplete(why) => {
            tracing::warn!(
                object,
                from = %since,
                to = %until,
                reason = why,
                "getDeleted cannot report every record deleted in this window: comparing the table's Ids with the org's instead, so that no deletion is missed."
            );
            Found::CompareIds
        }
    })
}

/// What getDeleted says about `[since, until]`.
async fn deleted_since(
    run: &Run<'_>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> anyhow::Result<DeleteLog> {
    let earliest = until - chrono::Duration::days(DELETED_WINDOW_DAYS);
    if since < earliest {
        return Ok(DeleteLog::Incomplete(format!(
            "deletions were last checked at {since}, longer ago than the {DELETED_WINDOW_DAYS} days getDeleted answers for"
        )));
    }
    // The end is rounded up past the current minute, which getDeleted would otherwise leave out.
    let end = until + chrono::Duration::minutes(1);
    run.sf
        .deleted_between(run.object(), since, end)
        .await
        .context("asking getDeleted for records removed from the recycle bin")
}

/// Publishes (Id, deletion time) pairs as deletion pages numbered after the run's pages;
/// returns how many.
pub(super) async fn publish_ids(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    deleted: &[(String, String)],
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    for chunk in deleted.chunks(run.options.page_size as usize) {
        let page = run.next_page();
        let records: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(id, when)| run.envelope.deletion(id, when))
            .collect();
        let message = run
            .envelope
            .message(PageKind::Deleted, page, records.as_slice());
        let done = publisher
            .publish(&run.envelope.unstamped(&message)?)
            .await?;
        run.count_published(&done);
        progress.pages += done.len() as u64;
    }
    let done = publisher.finish().await?;
    run.count_published(&done);
    progress.pages += done.len() as u64;
    Ok(deleted.len() as u64)
}
