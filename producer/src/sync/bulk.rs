//! Fetching through a Bulk API 2.0 query job: the CSV results, a chunk at a time (several
//! at once from a far org, through `resultPages`), become messages whose records read as
//! REST's would (see [`crate::salesforce::bulk`]).
//!
//! The job's SOQL has no ORDER BY: ORDER BY turns off the split by Id (PK chunking) that lets
//! Salesforce run big jobs without timing out. Its results therefore come in no stamp order,
//! and its pages carry no stamp for the watermark; the watermark moves once, after every page
//! is confirmed, to the job's creation time (see "Bulk jobs and the watermark" in
//! `docs/architecture.md` for why that, and not the greatest stamp read, is safe).

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use common::message::PageKind;
use tokio::sync::mpsc;

use super::{
    pipeline::{Fetched, Handed},
    run::Run,
    slices,
    windows::Window,
};
use crate::{
    publisher::OutgoingPage,
    salesforce::{
        Describe, SfError,
        bulk::{self, CsvType, Job},
    },
    soql,
};

/// Result pages downloaded at once, at most (fewer with a lower `--parallel`). Each holds its
/// chunk in memory until its records are handed over (10,000 plain Contacts are about 7 MB of
/// CSV; Salesforce chooses its own page size). Measured with 300,000 Contacts 300 ms away,
/// four at once took 6.5 s and eight 6.3 s: the database is then the limit, and eight held
/// 86 MiB against 58.
const DOWNLOADS_AT_ONCE: usize = 4;

/// Each queried field with its CSV type, from describe.
pub(super) fn csv_types<'a>(describe: &Describe, fields: &[&'a str]) -> Vec<(&'a str, CsvType)> {
    fields
        .iter()
        .map(|name| {
            let sf_type = describe.fields.iter().find(|f| f.name == *name);
            (
                *name,
                sf_type.map_or(CsvType::Text, |f| CsvType::of(&f.sf_type)),
            )
        })
        .collect()
}

/// Reads one slice of the run's stamp window through a Bulk API 2.0 job (see [`read_job`]),
/// then hands over [`Handed::Finished`] with what the slice covers once every page is
/// confirmed: for the slice open above, until the job's creation (nothing for an object
/// without a stamp). Hands over nothing more when cancelled.
///
/// # Errors
/// Salesforce refused or failed the job, or its results were not understood.
pub(super) async fn fetch_bulk(
    run: &Run<'_>,
    typed: &[(&str, CsvType)],
    (slice, window): (usize, Window),
    tx: mpsc::Sender<Handed>,
) -> anyhow::Result<()> {
    let soql = window
        .apply(run.query())
        .select(run.fields, soql::Order::None)?;
    let created = read_job(run, (typed, &soql), None, slice, &tx).await?;
    if !run.cancel.is_cancelled() {
        let reached = run.query().stamp.map(|_| created);
        // The publisher may have stopped meanwhile; its error is the one to report.
        let _ = tx.send(Handed::Finished { slice, reached }).await;
    }
    Ok(())
}

/// Runs `soql` (whose fields are `typed`) as a Bulk API 2.0 job: create, wait, then download
/// the result chunks, converting and handing over each page (of `slice`, numbered by the run,
/// each carrying `page_stamp` for the watermark). Returns when the job was created. Stops
/// early, without error, when the run is cancelled or the publisher stopped.
///
/// The chunks come one after the other, following `Sforce-Locator`, unless the job holds more
/// than `--parallel-above` records and the org is far (see [`slices::org_is_far`]): then
/// `--parallel` of them at once (at most [`DOWNLOADS_AT_ONCE`]), through the URLs
/// `resultPages` lists.
///
/// # Errors
/// Salesforce refused or failed the job, or its results were not understood.
pub(super) async fn read_job(
    run: &Run<'_>,
    (typed, soql): (&[(&str, CsvType)], &str),
    page_stamp: Option<DateTime<Utc>>,
    slice: usize,
    tx: &mpsc::Sender<Handed>,
) -> anyhow::Result<DateTime<Utc>> {
    let (sf, object) = (run.sf, run.object());
    // Measured while the job is created, so that it costs no round trip of its own.
    let (job, far) = tokio::join!(sf.create_query_job(soql), async {
        run.options.parallel > 1 && sf.has_result_pages() && slices::org_is_far(run).await
    });
    let job = job?;
    tracing::info!(object, job = %job.id, created = job.created_date, "Bulk query job created; waiting for Salesforce to run it.");
    let created = match created(&job) {
        Ok(created) => created,
        Err(e) => {
            sf.delete_job(&job.id).await;
            return Err(e);
        }
    };
    let job = sf.wait_for_job(&job.id).await?;
    let chunk = Chunk {
        run,
        typed,
        job_id: &job.id,
        total_size: job.records_processed.unwrap_or(0),
        page_stamp,
        slice,
        tx,
    };
    if far && chunk.total_size > run.options.parallel_above {
        download_at_once(&chunk, run.options.parallel.min(DOWNLOADS_AT_ONCE)).await?;
    } else {
        download_in_turn(&chunk).await?;
    }
    sf.delete_job(&job.id).await;
    Ok(created)
}

/// Downloads the job's chunks in turn, following `Sforce-Locator`, the next one while this one
/// is converted and handed over: the org renders (and compresses) the next chunk, and the
/// producer inflates it, while this one is published. Two chunks are in memory at most.
async fn download_in_turn(chunk: &Chunk<'_, '_>) -> anyhow::Result<()> {
    let sf = chunk.run.sf;
    let fetch = |locator: Option<String>| async move {
        sf.job_results(chunk.job_id, locator.as_deref(), bulk::RECORDS_PER_CHUNK)
            .await
    };
    let mut fetched = Some(fetch(None).await?);
    while let Some((csv, next)) = fetched.take() {
        if chunk.run.cancel.is_cancelled() {
            sf.recycle_body(csv);
            break;
        }
        let (more, after) = tokio::join!(chunk.send(&csv), async {
            match next {
                Some(locator) => fetch(Some(locator)).await.map(Some),
                None => Ok(None),
            }
        });
        sf.recycle_body(csv);
        if !more? {
            if let Ok(Some((unused, _))) = after {
                sf.recycle_body(unused);
            }
            break;
        }
        fetched = after?;
    }
    Ok(())
}

/// Downloads the job's chunks `downloads` at a time: one task follows `resultPages` (five
/// result URLs an answer) while the URLs it found are fetched, each chunk converted and handed
/// over as it arrives. Each download holds its chunk until its pages are handed over.
async fn download_at_once(chunk: &Chunk<'_, '_>, downloads: usize) -> anyhow::Result<()> {
    use futures::{StreamExt as _, TryStreamExt as _};

    let sf = chunk.run.sf;
    let (urls_tx, urls_rx) = mpsc::channel::<String>(64);
    let list = async move {
        let mut next: Option<String> = None;
        loop {
            let pages = sf.job_result_pages(chunk.job_id, next.as_deref()).await?;
            for url in pages.urls {
                if urls_tx.send(url).await.is_err() {
                    return Ok(()); // the downloads stopped; their error is the one to report
                }
            }
            match pages.next {
                Some(more) => next = Some(more),
                None => return Ok::<(), anyhow::Error>(()),
            }
        }
    };
    let fetch = futures::stream::unfold(urls_rx, |mut rx| async move {
        rx.recv().await.map(|url| (url, rx))
    })
    .take_while(|_| std::future::ready(!chunk.run.cancel.is_cancelled()))
    .map(|url| async move {
        let csv = sf.job_result_page(&url).await?;
        let more = chunk.send(&csv).await;
        sf.recycle_body(csv);
        Ok::<bool, anyhow::Error>(more?)
    })
    .buffer_unordered(downloads.max(1))
    // Stop at the first error, or once the publisher stopped.
    .try_take_while(|more| std::future::ready(Ok(*more)))
    .try_for_each(|_| std::future::ready(Ok(())));
    tokio::try_join!(list, fetch)?;
    Ok(())
}

/// What every chunk of one job is converted with.
struct Chunk<'r, 'a> {
    run: &'r Run<'a>,
    typed: &'r [(&'r str, CsvType)],
    job_id: &'r str,
    /// Records the job returns in all, for the progress bar.
    total_size: u64,
    page_stamp: Option<DateTime<Utc>>,
    slice: usize,
    tx: &'r mpsc::Sender<Handed>,
}

impl Chunk<'_, '_> {
    /// Converts one CSV chunk into pages and hands each over; `false` when the publisher
    /// stopped (its error is the one to report).
    ///
    /// # Errors
    /// The chunk is not the CSV asked for.
    async fn send(&self, csv: &[u8]) -> Result<bool, SfError> {
        let run = self.run;
        let protocol = |detail| SfError::Protocol {
            url: format!("Bulk job {}", self.job_id),
            detail,
        };
        let mut pages = bulk::CsvPages::new(csv, run.object(), self.typed).map_err(protocol)?;
        loop {
            let page = run.next_page();
            let splice = run
                .envelope
                .message(PageKind::Records, page, ())
                .split_around_records()
                .map_err(|e| protocol(e.to_string()))?;
            // The records are written straight into the message buffer, between the
            // envelope's head and tail.
            let (mut body, slot) = run.messages.take().await;
            body.extend_from_slice(splice.head());
            let written = pages
                .next_page(run.options.page_size as usize, &mut body)
                .map_err(protocol)?;
            if written.records == 0 {
                run.messages.give(body);
                return Ok(true);
            }
            body.extend_from_slice(splice.tail());
            let fetched = Fetched {
                total_size: self.total_size,
                message: OutgoingPage {
                    slice: self.slice,
                    ..run
                        .envelope
                        .outgoing(page, written.records, self.page_stamp, body)
                },
                _slot: slot,
            };
            if self.tx.send(Handed::Page(fetched)).await.is_err() {
                return Ok(false);
            }
        }
    }
}

/// When Salesforce created `job`.
fn created(job: &Job) -> anyhow::Result<DateTime<Utc>> {
    let created = job.created_date.as_deref().with_context(|| {
        format!(
            "Bulk job {} was answered without its createdDate, which the watermark needs",
            job.id
        )
    })?;
    common::sftime::parse_datetime(created)
        .with_context(|| format!("Bulk job {}'s createdDate", job.id))
}
