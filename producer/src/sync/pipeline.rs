//! Fetching one page ahead of publishing: a fetcher (REST or Bulk) turns pages into message
//! bodies and hands them over a channel to the publisher, so that the HTTP round trip and the
//! broker's confirms overlap; the publisher books each confirmed page (tally, progress bar,
//! `sfsync.runs`, the watermark). REST pages come in stamp order and move the watermark page
//! by page; a Bulk job's do not, and the watermark moves once, after the last page.

use std::io::IsTerminal;

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::mpsc;

use super::{
    bulk::fetch_bulk,
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

/// A page a fetcher hands to the publisher.
pub(super) struct Fetched {
    /// Records the query will return in all, for the progress bar.
    pub total_size: u64,
    pub message: OutgoingPage,
    /// Held until the message's buffer is given back (or the message is dropped).
    pub _slot: Slot,
}

/// Reads every record from `source` and publishes it, one page ahead; returns once every
/// page is confirmed (or the run was cancelled, which is then the error).
pub(super) async fn publish_records(
    run: &Run<'_>,
    publisher: &mut PagePublisher,
    source: Source<'_>,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Fetched>(MESSAGES_AT_ONCE);
    // What the watermark may move to once every page is confirmed (a Bulk job's creation).
    let fetch = async {
        match source {
            Source::Rest(typed) => fetch_pages(run, typed, tx).await.map(|()| None),
            Source::Bulk(typed) => fetch_bulk(run, typed, tx).await,
        }
    };
    let bar = progress_bar(run.options.progress);
    let publish = async {
        // Owned by this future: when publishing fails, the receiver is dropped with it, so a
        // fetcher waiting to hand over its next page is released instead of waiting for ever.
        let mut rx = rx;
        let mut last_reported = 0u64;
        while let Some(fetched) = rx.recv().await {
            bar.set_length(fetched.total_size);
            tracing::debug!(
                page = fetched.message.page,
                records = fetched.message.records,
                "Publishing page."
            );
            let done = publisher.publish(&fetched.message).await?;
            run.messages.give(fetched.message.body);
            confirmed(run, &done, progress, &bar).await?;
            // Keep `producer status` current without a write per page.
            if progress.pages >= last_reported + 20 {
                last_reported = progress.pages;
                runs::progress(run.pool, run.run_id(), progress.pages, progress.records)
                    .await
                    .context("updating sfsync.runs")?;
            }
        }
        let done = publisher.finish().await?;
        confirmed(run, &done, progress, &bar).await?;
        anyhow::Ok(())
    };
    let (fetched_all, published) = tokio::join!(fetch, publish);
    bar.finish_and_clear();
    published?;
    let at_the_end = fetched_all?;
    anyhow::ensure!(
        !run.cancel.is_cancelled(),
        "interrupted by a shutdown signal before the last page"
    );
    if let Some(stamp) = at_the_end {
        advance(run, stamp).await?;
    }
    Ok(())
}

/// Books confirmed pages: counters, progress bar, and the watermark (pages come in stamp order,
/// so the last confirmed page's last stamp is how far the table is guaranteed to reach).
async fn confirmed(
    run: &Run<'_>,
    done: &[Confirmed],
    progress: &mut Progress,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    for c in done {
        progress.pages += 1;
        progress.records += c.records;
        bar.inc(c.records);
    }
    run.count_published(done);
    if let Some(stamp) = done.iter().filter_map(|c| c.last_stamp).max() {
        advance(run, stamp).await?;
    }
    Ok(())
}

/// Moves the watermark forward to `stamp` (never back).
async fn advance(run: &Run<'_>, stamp: DateTime<Utc>) -> anyhow::Result<()> {
    sync_state::advance(run.pool, run.object(), stamp, run.run_id())
        .await
        .context("advancing the watermark in sfsync.sync_state")?;
    run.sf.metrics().watermark(run.object(), stamp);
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
