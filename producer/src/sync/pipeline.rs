//! Fetching ahead of publishing: fetchers (REST or Bulk), one per slice of the run's stamp
//! window, turn pages into message bodies and hand them over a channel to the publisher, so
//! that the HTTP round trips, of every slice at once, and the broker's confirms overlap; the
//! publisher books each confirmed page (tally, progress bar, `sfsync.runs`, the watermark).
//! REST pages come in stamp order and move their slice's progress page by page; a Bulk job's
//! do not, and its slice counts only once finished. The watermark follows the slices'
//! [`Coverage`]: past a slice only once it is finished.

use std::io::IsTerminal;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use super::{
    bulk::fetch_bulk,
    coverage::Coverage,
    rest::fetch_pages,
    run::{Progress, Run},
};
use crate::{
    buffers::{MESSAGES_AT_ONCE, Slot},
    publisher::{Confirmed, OutgoingPage, PagePublisher},
    runs,
    salesforce::bulk::CsvType,
    sync_state,
};

/// Where the records come from, with each field's CSV type (REST reads a window through Bulk
/// when Salesforce times it out even one second wide).
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    Rest(&'a [(&'a str, CsvType)]),
    /// Bulk API 2.0.
    Bulk(&'a [(&'a str, CsvType)]),
}

/// What a fetcher hands to the publisher.
pub(super) enum Handed {
    Page(Fetched),
    /// The fetcher of this slice read its last page; for a slice open above, what it covers
    /// beyond its last stamp (a Bulk job's creation).
    Finished {
        slice: usize,
        reached: Option<DateTime<Utc>>,
    },
}

/// A page a fetcher hands to the publisher (its message says which slice it belongs to).
pub(super) struct Fetched {
    /// Records the slice's query will return in all, for the progress bar.
    pub total_size: u64,
    pub message: OutgoingPage,
    /// Held until the message's buffer is given back (or the message is dropped).
    pub _slot: Slot,
}

/// Reads every record of `coverage`'s slices (consecutive stamp windows, each read by its own
/// fetcher, all at once) from `source` and publishes it; returns once every page is confirmed
/// (or the run was cancelled, which is then the error).
pub(super) async fn publish_records(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    source: Source<'_>,
    mut coverage: Coverage,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let slices = coverage.windows();
    let (tx, rx) = mpsc::channel::<Handed>(MESSAGES_AT_ONCE);
    let fetch = futures::future::try_join_all(slices.iter().enumerate().map(|(slice, &window)| {
        let tx = tx.clone();
        async move {
            match source {
                Source::Rest(typed) => fetch_pages(run, typed, (slice, window), tx).await,
                Source::Bulk(typed) => fetch_bulk(run, typed, (slice, window), tx).await,
            }
        }
    }));
    drop(tx);
    let bar = progress_bar(run.options.progress);
    let publish = async {
        // Owned by this future: when publishing fails, the receiver is dropped with it, so a
        // fetcher waiting to hand over its next page is released instead of waiting for ever.
        let mut rx = rx;
        let mut last_reported = 0u64;
        let mut totals = vec![0u64; slices.len()];
        while let Some(handed) = rx.recv().await {
            let fetched = match handed {
                Handed::Page(fetched) => fetched,
                Handed::Finished { slice, reached } => {
                    coverage.finished(slice, reached);
                    advance(run, &mut coverage).await?;
                    continue;
                }
            };
            if let Some(total) = totals.get_mut(fetched.message.slice) {
                *total = fetched.total_size;
            }
            bar.set_length(totals.iter().sum());
            tracing::debug!(
                page = fetched.message.page,
                slice = fetched.message.slice,
                records = fetched.message.records,
                "Publishing page."
            );
            coverage.handed(fetched.message.slice);
            let done = publisher.publish(&fetched.message).await?;
            run.messages.give(fetched.message.body);
            confirmed(run, &done, progress, &bar, &mut coverage).await?;
            // Keep `producer status` current without a write per page.
            if progress.pages >= last_reported + 20 {
                last_reported = progress.pages;
                runs::progress(run.pool, run.run_id(), progress.pages, progress.records)
                    .await
                    .context("updating sfsync.runs")?;
            }
        }
        let done = publisher.finish().await?;
        confirmed(run, &done, progress, &bar, &mut coverage).await?;
        anyhow::Ok(())
    };
    let (fetched_all, published) = tokio::join!(fetch, publish);
    bar.finish_and_clear();
    published?;
    fetched_all?;
    anyhow::ensure!(
        !run.cancel.is_cancelled(),
        "interrupted by a shutdown signal before the last page"
    );
    anyhow::ensure!(
        coverage.complete(),
        "a slice of the run ended before its last page was confirmed"
    );
    Ok(())
}

/// Books confirmed pages: counters, progress bar, each slice's progress and the watermark.
async fn confirmed(
    run: &Run<'_>,
    done: &[Confirmed],
    progress: &mut Progress,
    bar: &ProgressBar,
    coverage: &mut Coverage,
) -> anyhow::Result<()> {
    for c in done {
        progress.pages += 1;
        progress.records += c.records;
        bar.inc(c.records);
        coverage.confirmed(c.slice, c.last_stamp);
    }
    run.count_published(done);
    if !done.is_empty() {
        advance(run, coverage).await?;
    }
    Ok(())
}

/// Moves the watermark forward to where `coverage` reaches (never back), and records what
/// later slices stored beyond it, for a resumed run.
async fn advance(run: &Run<'_>, coverage: &mut Coverage) -> anyhow::Result<()> {
    if let Some(stamp) = coverage.watermark() {
        sync_state::advance(run.pool, run.object(), stamp, run.run_id())
            .await
            .context("advancing the watermark in sfsync.sync_state")?;
        run.sf.metrics().watermark(run.object(), stamp);
    }
    if let Some(ahead) = coverage.ahead_changed() {
        sync_state::record_ahead(run.pool, run.object(), &ahead, run.run_id())
            .await
            .context("recording the slices confirmed ahead in sfsync.confirmed_ahead")?;
    }
    Ok(())
}

fn progress_bar(wanted: bool) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {pos}/{len} records  {per_sec}  eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}
