//! Fetching through a Bulk API 2.0 query job: the CSV results, a chunk at a time, become
//! messages whose records read as REST's would (see [`crate::salesforce::bulk`]).
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
/// the result chunks one at a time, converting and handing over each page (of `slice`, numbered
/// by the run, each carrying `page_stamp` for the watermark). Returns when the job was created.
/// Stops early, without error, when the run is cancelled or the publisher stopped.
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
    let job = sf.create_query_job(soql).await?;
    tracing::info!(object, job = %job.id, created = job.created_date, "Bulk query job created; waiting for Salesforce to run it.");
    let created = match created(&job) {
        Ok(created) => created,
        Err(e) => {
            sf.delete_job(&job.id).await;
            return Err(e);
        }
    };
    let job = sf.wait_for_job(&job.id).await?;
    let total_size = job.records_processed.unwrap_or(0);
    // One chunk at a time: downloading the next one while this one is published would hold two
    // chunks in memory, and on a real org the download, not the conversion, takes the time.
    let mut locator: Option<String> = None;
    loop {
        if run.cancel.is_cancelled() {
            break;
        }
        let (csv, next) = sf
            .job_results(&job.id, locator.as_deref(), bulk::RECORDS_PER_CHUNK)
            .await?;
        let convert_and_send = async {
            let protocol = |detail| SfError::Protocol {
                url: format!("Bulk job {}", job.id),
                detail,
            };
            let mut pages = bulk::CsvPages::new(&csv, object, typed).map_err(protocol)?;
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
                    return Ok::<bool, SfError>(true);
                }
                body.extend_from_slice(splice.tail());
                let fetched = Fetched {
                    total_size,
                    message: OutgoingPage {
                        slice,
                        ..run
                            .envelope
                            .outgoing(page, written.records, page_stamp, body)
                    },
                    _slot: slot,
                };
                if tx.send(Handed::Page(fetched)).await.is_err() {
                    return Ok(false); // the publisher stopped; its error is the one to report
                }
            }
        };
        let more = convert_and_send.await?;
        sf.recycle_body(csv);
        if !more {
            break;
        }
        match next {
            Some(next) => locator = Some(next),
            None => break,
        }
    }
    sf.delete_job(&job.id).await;
    Ok(created)
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
