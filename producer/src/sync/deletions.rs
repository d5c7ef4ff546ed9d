//! The deletions a run publishes after its record pages, as [`PageKind::Deleted`] pages: what
//! getDeleted reports (records removed from the recycle bin, which queryAll can no longer
//! show), or, where getDeleted cannot report everything, what comparing Ids finds (see
//! `gone`). A table is never left as if it were complete when the delete log says it cannot be.

use anyhow::Context;
use chrono::{DateTime, Utc};
use common::message::PageKind;

use super::{
    Target, gone,
    refusals::BulkRefusals,
    run::{Progress, Run},
};
use crate::{publisher::PagePublisher, salesforce::deleted::DeleteLog};

/// getDeleted answers windows of at most 30 days (and keeps about 15).
const DELETED_WINDOW_DAYS: i64 = 29;

/// Publishes the deletions since the run's `since` (until `until`, when the run started);
/// returns how many.
pub(super) async fn publish_deletions(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    target: &Target,
    until: DateTime<Utc>,
    refusals: &BulkRefusals,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let object = run.object();
    if !target.describe.replicateable || run.stamp.is_none() {
        // getDeleted refuses the object, or it has no stamp to window by: its deletions are
        // found by Ids on every sync (a table just created has no rows to lose).
        if target.created {
            return Ok(0);
        }
        return gone::publish_gone(run, publisher, target, refusals, progress).await;
    }
    // A full read of a replicateable object publishes no deletions, as before.
    let Some(since) = run.since else {
        return Ok(0);
    };
    match deleted_since(run, since, until).await? {
        DeleteLog::Complete(deleted) => publish_ids(run, publisher, &deleted, progress).await,
        DeleteLog::Incomplete(why) => {
            tracing::warn!(
                object,
                from = %since,
                to = %until,
                reason = why,
                "getDeleted cannot report every record deleted in this window: comparing the table's Ids with the org's instead, so that no deletion is missed."
            );
            gone::publish_gone(run, publisher, target, refusals, progress).await
        }
    }
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
            "the watermark {since} is older than the {DELETED_WINDOW_DAYS} days getDeleted answers for"
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
    let mut page = progress.pages;
    for chunk in deleted.chunks(run.options.page_size as usize) {
        page += 1;
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
