//! Publishing what getDeleted reports: records removed from the recycle bin, which queryAll
//! can no longer show, as [`PageKind::Deleted`] pages after the run's record pages.

use anyhow::Context;
use chrono::{DateTime, Utc};
use common::message::PageKind;

use super::run::{Progress, Run};
use crate::publisher::PagePublisher;

/// getDeleted keeps about 15 days and answers windows of at most 30.
const DELETED_WINDOW_DAYS: i64 = 29;

/// Publishes what getDeleted reports for `[since, until)`. Returns how many.
pub(super) async fn publish_deletions(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let object = run.object();
    let earliest = until - chrono::Duration::days(DELETED_WINDOW_DAYS);
    if since < earliest {
        tracing::warn!(object, since = %since, "The watermark is older than getDeleted's window: records purged before then cannot be seen; run a reconcile.");
    }
    // getDeleted works in whole minutes and needs a non-empty window.
    let start = since.max(earliest);
    // The end is rounded up past the current minute, which getDeleted would otherwise leave out.
    let end = until + chrono::Duration::minutes(1);
    let deleted = run
        .sf
        .get_deleted(object, start, end)
        .await
        .context("asking getDeleted for records removed from the recycle bin")?;
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
