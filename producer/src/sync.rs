//! One full pull of one object: describe, prepare the table, page through the query and
//! publish each page, then report. Fetching runs one page ahead of publishing so that the HTTP
//! round trip and the broker's confirms overlap.

use std::io::IsTerminal;

use anyhow::Context;
use bytes::Bytes;
use common::message::{PAGE_FORMAT_VERSION, PageMessage};
use indicatif::{ProgressBar, ProgressStyle};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    publisher::{Confirmed, OutgoingPage, PagePublisher},
    runs,
    salesforce::{SalesforceClient, SfError, page::QueryPage},
    soql, tables,
};

/// What a sync is asked to do.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Salesforce API name of the object.
    pub object: String,
    /// Records per page requested from Salesforce (200–2000; Salesforce may send fewer).
    pub page_size: u32,
    /// Pages published but not yet confirmed, at most.
    pub confirm_window: usize,
    /// Draw a progress bar (only on a terminal).
    pub progress: bool,
}

/// What a finished sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub run_id: Uuid,
    pub object: String,
    pub pages: u64,
    pub records: u64,
}

struct Fetched {
    page: u64,
    total_size: u64,
    message: OutgoingPage,
}

/// Pulls every record of the object and publishes it.
///
/// # Errors
/// Salesforce, the broker or the database failed in a way retries did not mend, or the run
/// was cancelled before its last page was confirmed. The run is then recorded as failed.
pub async fn sync_object(
    sf: &SalesforceClient,
    pool: &PgPool,
    channel: lapin::Channel,
    options: &SyncOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<SyncReport> {
    common::schema::check_api_name("object", &options.object)
        .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
    let describe = sf.describe(&options.object).await?;
    let selection = tables::select_fields(&describe)?;
    for (field, why) in &selection.skipped {
        tracing::info!(object = %describe.name, field, reason = why, "Field left out of the sync.");
    }
    // Describe gives the canonical casing (`contact` becomes `Contact`).
    let object = describe.name.clone();
    tables::ensure_table(pool, &object, &selection).await?;
    let soql = soql::select_all(&object, &selection.field_names())?;

    let run_id = Uuid::now_v7();
    runs::start(pool, run_id, &object)
        .await
        .context("recording the run in sfsync.runs")?;
    tracing::info!(%run_id, object, fields = selection.columns.len(), "Sync started.");

    let mut publisher = PagePublisher::new(channel, options.confirm_window)
        .await
        .context("putting the AMQP channel in confirm mode")?;
    let outcome = publish_all(
        sf,
        pool,
        &mut publisher,
        &soql,
        &object,
        run_id,
        options,
        cancel,
    )
    .await;
    let (pages, records, error) = match &outcome {
        Ok((p, r)) => (*p, *r, None),
        Err((p, r, e)) => (*p, *r, Some(format!("{e:#}"))),
    };
    runs::finish(pool, run_id, pages, records, error.as_deref())
        .await
        .context("recording the end of the run in sfsync.runs")?;
    match outcome {
        Ok(_) => {
            tracing::info!(%run_id, object, pages, records, "Sync published every page.");
            Ok(SyncReport {
                run_id,
                object,
                pages,
                records,
            })
        }
        Err((_, _, e)) => Err(e.context(format!(
            "run {run_id} of {object} stopped after {pages} confirmed pages ({records} records)"
        ))),
    }
}

type Counted<T> = Result<T, (u64, u64, anyhow::Error)>;

#[allow(clippy::too_many_arguments)]
async fn publish_all(
    sf: &SalesforceClient,
    pool: &PgPool,
    publisher: &mut PagePublisher,
    soql: &str,
    object: &str,
    run_id: Uuid,
    options: &SyncOptions,
    cancel: &CancellationToken,
) -> Counted<(u64, u64)> {
    let (tx, mut rx) = mpsc::channel::<Fetched>(2);
    let fetch = fetch_pages(sf, soql, object, run_id, options.page_size, cancel, tx);

    let mut pages = 0u64;
    let mut records = 0u64;
    let bar = progress_bar(options.progress);
    let mut on_confirmed = |done: Vec<Confirmed>| {
        for c in done {
            pages += 1;
            records += c.records;
            bar.inc(c.records);
        }
        (pages, records)
    };

    let publish = async {
        let mut last_reported = 0u64;
        while let Some(fetched) = rx.recv().await {
            bar.set_length(fetched.total_size);
            tracing::debug!(
                page = fetched.page,
                records = fetched.message.records,
                "Publishing page."
            );
            let done = publisher.publish(fetched.message).await?;
            let (p, r) = on_confirmed(done);
            // Keep `producer status` current without a write per page.
            if p >= last_reported + 20 {
                last_reported = p;
                runs::progress(pool, run_id, p, r)
                    .await
                    .context("updating sfsync.runs")?;
            }
        }
        let done = publisher.finish().await?;
        on_confirmed(done);
        anyhow::Ok(())
    };
    let (fetched_all, published) = tokio::join!(fetch, publish);
    bar.finish_and_clear();
    let result = published.and(fetched_all.map_err(anyhow::Error::from));
    match result {
        Ok(()) if cancel.is_cancelled() => Err((
            pages,
            records,
            anyhow::anyhow!("interrupted by a shutdown signal before the last page"),
        )),
        Ok(()) => Ok((pages, records)),
        Err(e) => Err((pages, records, e)),
    }
}

/// Pages through the query, turning each page into a message body, until the last page or
/// cancellation (checked between pages only, so a page is never half-published).
async fn fetch_pages(
    sf: &SalesforceClient,
    soql: &str,
    object: &str,
    run_id: Uuid,
    page_size: u32,
    cancel: &CancellationToken,
    tx: mpsc::Sender<Fetched>,
) -> Result<(), SfError> {
    let mut next: Option<String> = None;
    let mut page = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let body: Bytes = match &next {
            None => sf.query(soql, true, page_size).await,
            Some(url) => sf.query_more(url, page_size).await,
        }?;
        page += 1;
        let parsed = QueryPage::parse(&body, next.as_deref().unwrap_or("query"))?;
        let message = PageMessage {
            format: PAGE_FORMAT_VERSION,
            object: object.to_owned(),
            run_id,
            page,
            records: &parsed.records,
        };
        let body = serde_json::to_vec(&message).map_err(|e| SfError::Protocol {
            url: "query".into(),
            detail: e.to_string(),
        })?;
        let fetched = Fetched {
            page,
            total_size: parsed.total_size,
            message: OutgoingPage {
                object: object.to_owned(),
                run_id,
                page,
                records: parsed.records.len() as u64,
                body,
            },
        };
        next = parsed.next().map(str::to_owned);
        let last = next.is_none();
        // An empty result still has one (empty) page: publish it only when it holds records.
        if fetched.message.records > 0 && tx.send(fetched).await.is_err() {
            return Ok(()); // the publisher stopped; its error is the one to report
        }
        if last {
            return Ok(());
        }
    }
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
