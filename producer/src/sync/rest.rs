//! Fetching through REST query/queryMore: each page of the query becomes one message, its
//! records copied as Salesforce sent them.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::message::PageKind;
use tokio::sync::mpsc;

use super::{pipeline::Fetched, run::Run};
use crate::{
    salesforce::{SfError, page::QueryPage},
    soql,
};

/// How often an expired query locator may restart the query before the sync gives up.
const LOCATOR_RESTARTS: u32 = 5;

/// Pages through the query, turning each page into a message body, until the last page or
/// cancellation (checked between pages only, so a page is never half-published). When
/// Salesforce has dropped the cursor (`INVALID_QUERY_LOCATOR`), the query is run again from the
/// last stamp fetched: the records of that stamp are read twice, which is harmless.
pub(super) async fn fetch_pages(run: &Run<'_>, tx: mpsc::Sender<Fetched>) -> Result<(), SfError> {
    let (sf, object, page_size) = (run.sf, run.object(), run.options.page_size);
    let select = |since| {
        soql::Query {
            since,
            ..run.query()
        }
        .select(run.fields, soql::Order::ByStamp)
        .map_err(|e| SfError::Config(e.to_string()))
    };
    let mut since = run.since;
    let mut query = select(since)?;
    let mut next: Option<String> = None;
    let mut page = 0u64;
    let mut restarts = 0;
    let mut last_stamp: Option<DateTime<Utc>> = None;
    loop {
        if run.cancel.is_cancelled() {
            return Ok(());
        }
        let fetched: Result<Bytes, SfError> = match &next {
            None => sf.query(&query, true, page_size).await,
            Some(url) => sf.query_more(url, page_size).await,
        };
        let body = match fetched {
            Err(e)
                if e.code() == Some("INVALID_QUERY_LOCATOR")
                    && next.is_some()
                    && restarts < LOCATOR_RESTARTS =>
            {
                restarts += 1;
                sf.metrics()
                    .retry(common::metrics::RetryCause::SalesforceQueryRestart);
                since = last_stamp.or(since);
                tracing::warn!(object, restarts, since = ?since, "Salesforce dropped the query cursor; running the query again from the last stamp fetched.");
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
                return Ok(());
            }
            continue;
        }
        page += 1;
        let page_stamp = parsed.records.last().and_then(|r| run.record_stamp(r));
        last_stamp = page_stamp.or(last_stamp);
        let message = run
            .envelope
            .message(PageKind::Records, page, &parsed.records);
        // The records are a part of the response, so its length bounds the message's: reserve
        // that once instead of doubling a Vec up to twice what it holds.
        let (mut message_body, slot) = run.messages.take().await;
        message_body.reserve(body.len() + 512);
        serde_json::to_writer(&mut message_body, &message).map_err(|e| SfError::Protocol {
            url: "query".into(),
            detail: e.to_string(),
        })?;
        let (total_size, records) = (parsed.total_size, parsed.records.len() as u64);
        drop(message);
        drop(parsed);
        sf.recycle_body(body);
        let fetched = Fetched {
            total_size,
            message: run
                .envelope
                .outgoing(page, records, page_stamp, message_body),
            _slot: slot,
        };
        if tx.send(fetched).await.is_err() {
            return Ok(()); // the publisher stopped; its error is the one to report
        }
        if next.is_none() {
            return Ok(());
        }
    }
}
