//! Fetching through REST query/queryMore: each page of the query becomes one message, its
//! records copied as Salesforce sent them. Two things real orgs need are handled around that
//! unchanged path: a query Salesforce times out is read over narrower stamp windows
//! ([`super::windows`]; a one-second window still timed out goes through a Bulk job), and an
//! object too wide for one request line has each page completed
//! by Id ([`super::wide`]).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::message::PageKind;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{
    bulk,
    pipeline::{Fetched, Handed},
    record,
    run::Run,
    wide::Wide,
    windows::{self, Window, Windows},
};
use crate::{
    publisher::OutgoingPage,
    salesforce::{SfError, bulk::CsvType, page::QueryPage},
    soql,
};

/// How often an expired query locator may restart the query before the sync gives up.
const LOCATOR_RESTARTS: u32 = 5;

/// Pages through the query over one slice of the run's stamp window, narrower window by
/// narrower window when Salesforce times it out, turning each page into a message body, until
/// the last page (then hands over [`Handed::Finished`]) or cancellation (checked between pages
/// only, so a page is never half-published).
///
/// # Errors
/// Salesforce failed in a way retries and narrower windows did not mend.
pub(super) async fn fetch_pages(
    run: &Run<'_>,
    typed: &[(&str, CsvType)],
    (slice, window): (usize, Window),
    tx: mpsc::Sender<Handed>,
) -> anyhow::Result<()> {
    let wide = Wide::for_run(run)?;
    let mut reader = Reader {
        run,
        typed,
        fields: wide.as_ref().map_or(run.fields, |w| w.primary_fields()),
        wide: wide.as_ref(),
        tx,
        slice,
        restarts: 0,
    };
    if reader.read_windows(window).await? == Read::Done {
        // The publisher may have stopped meanwhile; its error is the one to report.
        let _ = reader
            .tx
            .send(Handed::Finished {
                slice,
                reached: None,
            })
            .await;
    }
    Ok(())
}

/// How reading a window ended.
#[derive(Debug, PartialEq, Eq)]
enum Read {
    /// Every page of the window was handed over.
    Done,
    /// Cancelled, or the publisher stopped (its error is the one to report).
    Stopped,
    /// Salesforce timed out the query; this part of the window is still to read.
    TimedOut(Window),
}

/// The REST fetch of one run, across its windows.
struct Reader<'r, 'a> {
    run: &'r Run<'a>,
    /// Every field with its CSV type, for a window read through Bulk.
    typed: &'r [(&'r str, CsvType)],
    /// The fields queried: all of them, or a wide object's primary fields.
    fields: &'r [&'r str],
    wide: Option<&'r Wide<'r>>,
    tx: mpsc::Sender<Handed>,
    /// The slice of the run's window this reader reads.
    slice: usize,
    /// Query locator restarts so far, across windows.
    restarts: u32,
}

impl Reader<'_, '_> {
    /// Reads `window`, and the narrower windows it is cut into when Salesforce times it out.
    async fn read_windows(&mut self, window: Window) -> anyhow::Result<Read> {
        let run = self.run;
        let mut windows = Windows::new(window);
        while let Some(window) = windows.next() {
            match self.read(window).await? {
                Read::Done => {}
                Read::Stopped => return Ok(Read::Stopped),
                Read::TimedOut(rest) if windows.narrow(run, rest)? => {}
                Read::TimedOut(second) => {
                    if self.read_through_bulk(second).await? == Read::Stopped {
                        return Ok(Read::Stopped);
                    }
                }
            }
        }
        Ok(Read::Done)
    }

    /// Pages through one window. When Salesforce has dropped the cursor
    /// (`INVALID_QUERY_LOCATOR`), the query is run again from the last stamp fetched: the
    /// records of that stamp are read twice, which is harmless.
    async fn read(&mut self, window: Window) -> anyhow::Result<Read> {
        let (run, page_size) = (self.run, self.run.options.page_size);
        let (sf, object) = (run.sf, run.object());
        let select = |since| {
            Window { since, ..window }
                .apply(run.query())
                .select(self.fields, soql::Order::ByStamp)
        };
        let mut query = select(window.since)?;
        let mut next: Option<String> = None;
        let mut last_stamp: Option<DateTime<Utc>> = None;
        loop {
            if run.cancel.is_cancelled() {
                return Ok(Read::Stopped);
            }
            let fetched: Result<Bytes, SfError> = match &next {
                None => sf.query(&query, true, page_size).await,
                Some(url) => sf.query_more(url, page_size).await,
            };
            let body = match fetched {
                Err(e) if windows::is_timeout(&e) => {
                    let since = last_stamp.or(window.since);
                    return Ok(Read::TimedOut(Window {
                        until: window.until,
                        ..Window::from(since)
                    }));
                }
                Err(e)
                    if e.code() == Some("INVALID_QUERY_LOCATOR")
                        && next.is_some()
                        && self.restarts < LOCATOR_RESTARTS =>
                {
                    self.restarts += 1;
                    sf.metrics()
                        .retry(common::metrics::RetryCause::SalesforceQueryRestart);
                    let since = last_stamp.or(window.since);
                    tracing::warn!(object, restarts = self.restarts, since = ?since, "Salesforce dropped the query cursor; running the query again from the last stamp fetched.");
                    query = select(since)?;
                    next = None;
                    continue;
                }
                other => other?,
            };
            let parsed = QueryPage::parse(&body, next.as_deref().unwrap_or("query"))?;
            next = parsed.next().map(str::to_owned);
            if parsed.records.is_empty() {
                // An empty result still has one (empty) page: nothing to publish.
                if next.is_none() {
                    return Ok(Read::Done);
                }
                continue;
            }
            // Pages are in stamp order, so the last record's stamp bounds the page (for a wide
            // object, the primary's: a record read again may be newer).
            let page_stamp = parsed
                .records
                .last()
                .zip(run.query().stamp)
                .and_then(|(r, stamp)| record::stamp(r, stamp));
            last_stamp = page_stamp.or(last_stamp);
            let total_size = parsed.total_size;
            let fetched = match self.wide {
                None => {
                    self.message(&parsed.records, body.len(), page_stamp, total_size)
                        .await?
                }
                Some(wide) => {
                    let whole = wide.complete(&parsed.records).await?;
                    let size = whole.iter().map(|r| r.get().len() + 1).sum();
                    self.message(&whole, size, page_stamp, total_size).await?
                }
            };
            drop(parsed);
            sf.recycle_body(body);
            if self.tx.send(Handed::Page(fetched)).await.is_err() {
                return Ok(Read::Stopped);
            }
            if next.is_none() {
                return Ok(Read::Done);
            }
        }
    }

    /// Reads a one-second window that Salesforce times out through a Bulk API 2.0 job, which
    /// splits by Id. Its records come in no order, but all within the second: the pages carry
    /// the window's start for the watermark, which every earlier window has passed.
    async fn read_through_bulk(&mut self, window: Window) -> anyhow::Result<Read> {
        let run = self.run;
        run.sf
            .metrics()
            .retry(common::metrics::RetryCause::SalesforceQueryTimeout);
        tracing::warn!(object = run.object(), %window, "Salesforce timed out the query even over one second; reading that second through a Bulk API 2.0 job.");
        let soql = window
            .apply(run.query())
            .select(run.fields, soql::Order::None)?;
        bulk::read_job(run, (self.typed, &soql), window.since, self.slice, &self.tx).await?;
        Ok(if run.cancel.is_cancelled() || self.tx.is_closed() {
            Read::Stopped
        } else {
            Read::Done
        })
    }

    /// The next page's message, holding `records`; `size` bounds its body.
    async fn message<R: Serialize>(
        &mut self,
        records: &[R],
        size: usize,
        last_stamp: Option<DateTime<Utc>>,
        total_size: u64,
    ) -> anyhow::Result<Fetched> {
        let page = self.run.next_page();
        let envelope = &self.run.envelope;
        let message = envelope.message(PageKind::Records, page, records);
        // The records are a part of the response, so its length bounds the message's: reserve
        // that once instead of doubling a Vec up to twice what it holds.
        let (mut body, slot) = self.run.messages.take().await;
        body.reserve(size + 512);
        serde_json::to_writer(&mut body, &message)?;
        Ok(Fetched {
            total_size,
            message: OutgoingPage {
                slice: self.slice,
                ..envelope.outgoing(page, records.len() as u64, last_stamp, body)
            },
            _slot: slot,
        })
    }
}
