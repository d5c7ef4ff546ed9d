//! One sync of one object: describe, prepare the table, page through the query in
//! (SystemModstamp, Id) order and publish each page, advance the watermark past confirmed
//! pages, then publish the deletions getDeleted reports. Fetching runs one page ahead of
//! publishing so that the HTTP round trip and the broker's confirms overlap.
//!
//! Full and incremental syncs are one mechanism: a full sync reads from the beginning, an
//! incremental one from `watermark - overlap`. `>=` and the overlap mean records that share a
//! timestamp across pages, or were committed late behind the watermark, are read again rather
//! than skipped; the modstamp-guarded upsert makes the re-read harmless.

use std::{io::IsTerminal, time::Duration};

use anyhow::Context;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::message::{PageKind, PageMessage};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::value::RawValue;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    buffers::{BoundedPool, MESSAGES_AT_ONCE, Slot},
    objects::{self, ObjectSettings},
    publisher::{Confirmed, OutgoingPage, PagePublisher},
    runs,
    salesforce::{
        SalesforceClient, SfError,
        bulk::{self, CsvType},
        page::QueryPage,
    },
    soql, sync_state, tables,
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
    /// Read every record even when a watermark exists.
    pub full: bool,
    /// How far behind the watermark an incremental sync starts reading.
    pub overlap: Duration,
    /// Remove rows of deleted records instead of marking them `isdeleted`.
    pub hard_delete: bool,
    /// REST query/queryMore, Bulk API 2.0, or chosen by the number of records to read.
    pub api: ApiChoice,
    /// With `ApiChoice::Auto`, Bulk is used above this many records.
    pub bulk_threshold: u64,
    /// The object's `sfsync.toml` section: table name and fields.
    pub settings: ObjectSettings,
}

/// Which Salesforce API reads the records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ApiChoice {
    /// REST query/queryMore: one call per 2,000 records, results as soon as the first page is ready.
    Rest,
    /// Bulk API 2.0: a job Salesforce runs asynchronously, results downloaded in chunks of
    /// 5,000 records; a few calls per 5,000 records instead of one per 2,000.
    Bulk,
    /// Bulk above --bulk-threshold records to read (counted with one COUNT() query), else REST.
    Auto,
}

/// The API a sync used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Rest,
    Bulk,
}

/// Whether a sync read everything or only what changed since the watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    Full,
    Incremental { since: DateTime<Utc> },
}

/// What a finished sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub run_id: Uuid,
    pub object: String,
    pub mode: SyncMode,
    pub api: Api,
    /// Pages published, deletion pages included.
    pub pages: u64,
    /// Records published by the query.
    pub records: u64,
    /// Deletions reported by getDeleted and published.
    pub deletions: u64,
    /// Salesforce API calls this sync made.
    pub api_calls: u64,
}

struct Fetched {
    total_size: u64,
    message: OutgoingPage,
    /// Held until the message's buffer is given back (or the message is dropped).
    _slot: Slot,
}

/// Counts of confirmed pages and records, kept as they arrive.
#[derive(Debug, Default, Clone, Copy)]
struct Progress {
    pages: u64,
    records: u64,
}

/// Pulls what changed since the watermark (or everything) and publishes it.
///
/// # Errors
/// Salesforce, the broker or the database failed in a way retries did not mend, or the run
/// was cancelled before its last page was confirmed. The run is then recorded as failed and
/// the watermark stays at the last confirmed page.
pub async fn sync_object(
    sf: &SalesforceClient,
    pool: &PgPool,
    channel: lapin::Channel,
    options: &SyncOptions,
    cancel: &CancellationToken,
) -> anyhow::Result<SyncReport> {
    common::schema::check_api_name("object", &options.object)
        .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
    let calls_before = sf.usage().calls();
    let describe = sf.describe(&options.object).await?;
    let selection = tables::select_fields(&describe)?;
    let selection = objects::filter_fields(&describe, &options.settings, selection)?;
    for (field, why) in &selection.skipped {
        tracing::info!(object = %describe.name, field, reason = why, "Field left out of the sync.");
    }
    // Describe gives the canonical casing (`contact` becomes `Contact`).
    let object = describe.name.clone();
    let table = options.settings.table(&object);
    let created = tables::ensure_table(pool, &object, &table, &selection).await?;
    let watermark = sync_state::load(pool, &object)
        .await
        .context("reading sfsync.sync_state")?;
    if let Some(w) = watermark {
        sf.metrics().watermark(&object, w);
    }
    if created && watermark.is_some() {
        tracing::info!(
            object,
            table,
            "The table is new (was the table setting changed?); reading every record."
        );
    }
    let mode = match watermark {
        Some(w) if !options.full && !created => SyncMode::Incremental {
            since: w - chrono::Duration::from_std(options.overlap).unwrap_or_default(),
        },
        _ => SyncMode::Full,
    };
    let started = Utc::now();
    let run_id = Uuid::now_v7();
    runs::start(pool, run_id, &object)
        .await
        .context("recording the run in sfsync.runs")?;
    tracing::info!(%run_id, object, table, ?mode, fields = selection.columns.len(), "Sync started.");

    let mut publisher = PagePublisher::new(channel, options.confirm_window)
        .await
        .context("putting the AMQP channel in confirm mode")?
        .with_in_flight_gauge(sf.metrics().pages_in_flight());
    let since = match mode {
        SyncMode::Incremental { since } => Some(since),
        SyncMode::Full => None,
    };
    let fields = selection.field_names();
    let typed: Vec<(&str, CsvType)> = fields
        .iter()
        .map(|name| {
            let sf_type = describe.fields.iter().find(|f| f.name == *name);
            (
                *name,
                sf_type.map_or(CsvType::Text, |f| CsvType::of(&f.sf_type)),
            )
        })
        .collect();
    let mut progress = Progress::default();
    let api = choose_api(sf, &object, since, options).await?;
    let source = match api {
        Api::Rest => Source::Rest,
        Api::Bulk => Source::Bulk(&typed),
    };
    let mut outcome = publish_query(
        sf,
        pool,
        &mut publisher,
        &fields,
        source,
        &object,
        run_id,
        since,
        options,
        cancel,
        &mut progress,
    )
    .await;
    let mut deletions = 0;
    if outcome.is_ok()
        && let Some(since) = since
    {
        outcome = publish_deletions(
            sf,
            &mut publisher,
            &object,
            run_id,
            since,
            started,
            options,
            &mut progress,
        )
        .await
        .map(|n| deletions = n);
    }
    let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    runs::finish(
        pool,
        run_id,
        progress.pages,
        progress.records,
        error.as_deref(),
    )
    .await
    .context("recording the end of the run in sfsync.runs")?;
    let Progress { pages, records } = progress;
    match outcome {
        Ok(()) => {
            let api_calls = sf.usage().calls() - calls_before;
            sf.metrics().sync_completed(&object, Utc::now());
            tracing::info!(%run_id, object, pages, records, deletions, api_calls, "Sync published every page.");
            Ok(SyncReport {
                run_id,
                object,
                mode,
                api,
                pages,
                records,
                deletions,
                api_calls,
            })
        }
        Err(e) => Err(e.context(format!(
            "run {run_id} of {object} stopped after {pages} confirmed pages ({records} records)"
        ))),
    }
}

/// Picks REST or Bulk; `Auto` counts the records to read with one `COUNT()` query.
async fn choose_api(
    sf: &SalesforceClient,
    object: &str,
    since: Option<DateTime<Utc>>,
    options: &SyncOptions,
) -> anyhow::Result<Api> {
    Ok(match options.api {
        ApiChoice::Rest => Api::Rest,
        ApiChoice::Bulk => Api::Bulk,
        ApiChoice::Auto => {
            let count = soql::count_since(object, since).map_err(|e| anyhow::anyhow!(e))?;
            let body = sf
                .query(&count, true, 2000)
                .await
                .context("counting the records to read")?;
            let total = QueryPage::parse(&body, "query")?.total_size;
            let api = if total > options.bulk_threshold {
                Api::Bulk
            } else {
                Api::Rest
            };
            tracing::info!(
                object,
                records = total,
                threshold = options.bulk_threshold,
                ?api,
                "API chosen."
            );
            api
        }
    })
}

/// Where the records come from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Rest,
    /// Bulk API 2.0, with each field's CSV type.
    Bulk(&'a [(&'a str, CsvType)]),
}

#[allow(clippy::too_many_arguments)]
async fn publish_query(
    sf: &SalesforceClient,
    pool: &PgPool,
    publisher: &mut PagePublisher,
    fields: &[&str],
    source: Source<'_>,
    object: &str,
    run_id: Uuid,
    since: Option<DateTime<Utc>>,
    options: &SyncOptions,
    cancel: &CancellationToken,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    // Message bodies, handed back once published; how many exist at once is what bounds the
    // pipeline (the channel only hands them over). Kept apart from the response buffers,
    // which are larger for Bulk (a CSV chunk holds 5,000 records, a message 2,000).
    let messages = BoundedPool::new(MESSAGES_AT_ONCE);
    let (tx, rx) = mpsc::channel::<Fetched>(MESSAGES_AT_ONCE);
    let fetch = async {
        match source {
            Source::Rest => {
                fetch_pages(
                    sf, fields, object, run_id, since, options, &messages, cancel, tx,
                )
                .await
            }
            Source::Bulk(typed) => {
                fetch_bulk(
                    sf, fields, typed, object, run_id, since, options, &messages, cancel, tx,
                )
                .await
            }
        }
    };
    let bar = progress_bar(options.progress);
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
            messages.give(fetched.message.body);
            confirmed(sf, pool, object, run_id, &done, progress, &bar).await?;
            // Keep `producer status` current without a write per page.
            if progress.pages >= last_reported + 20 {
                last_reported = progress.pages;
                runs::progress(pool, run_id, progress.pages, progress.records)
                    .await
                    .context("updating sfsync.runs")?;
            }
        }
        let done = publisher.finish().await?;
        confirmed(sf, pool, object, run_id, &done, progress, &bar).await?;
        anyhow::Ok(())
    };
    let (fetched_all, published) = tokio::join!(fetch, publish);
    bar.finish_and_clear();
    published.and(fetched_all.map_err(anyhow::Error::from))?;
    anyhow::ensure!(
        !cancel.is_cancelled(),
        "interrupted by a shutdown signal before the last page"
    );
    Ok(())
}

/// Books confirmed pages: counters, progress bar, and the watermark (pages come in stamp order,
/// so the last confirmed page's last stamp is how far the table is guaranteed to reach).
async fn confirmed(
    sf: &SalesforceClient,
    pool: &PgPool,
    object: &str,
    run_id: Uuid,
    done: &[Confirmed],
    progress: &mut Progress,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    for c in done {
        progress.pages += 1;
        progress.records += c.records;
        bar.inc(c.records);
    }
    count_published(sf, object, done);
    if let Some(stamp) = done.iter().filter_map(|c| c.last_stamp).max() {
        sync_state::advance(pool, object, stamp, run_id)
            .await
            .context("advancing the watermark in sfsync.sync_state")?;
        sf.metrics().watermark(object, stamp);
    }
    Ok(())
}

/// Counts confirmed pages in the metrics.
fn count_published(sf: &SalesforceClient, object: &str, done: &[Confirmed]) {
    if !done.is_empty() {
        let records = done.iter().map(|c| c.records).sum();
        sf.metrics().published(object, done.len() as u64, records);
    }
}

/// The SystemModstamp of a raw record, if it has a valid one.
fn record_stamp(record: &RawValue) -> Option<DateTime<Utc>> {
    #[derive(Deserialize)]
    struct Stamp<'a> {
        #[serde(rename = "SystemModstamp", borrow)]
        stamp: Option<&'a str>,
    }
    let stamp: Stamp<'_> = serde_json::from_str(record.get()).ok()?;
    common::sftime::parse_datetime(stamp.stamp?).ok()
}

/// How often an expired query locator may restart the query before the sync gives up.
const LOCATOR_RESTARTS: u32 = 5;

/// Pages through the query, turning each page into a message body, until the last page or
/// cancellation (checked between pages only, so a page is never half-published). When
/// Salesforce has dropped the cursor (`INVALID_QUERY_LOCATOR`), the query is run again from the
/// last stamp fetched: the records of that stamp are read twice, which is harmless.
#[allow(clippy::too_many_arguments)]
async fn fetch_pages(
    sf: &SalesforceClient,
    fields: &[&str],
    object: &str,
    run_id: Uuid,
    mut since: Option<DateTime<Utc>>,
    options: &SyncOptions,
    messages: &BoundedPool,
    cancel: &CancellationToken,
    tx: mpsc::Sender<Fetched>,
) -> Result<(), SfError> {
    let select = |since| {
        soql::select_since(object, fields, since).map_err(|e| SfError::Config(e.to_string()))
    };
    let mut query = select(since)?;
    let mut next: Option<String> = None;
    let mut page = 0u64;
    let mut restarts = 0;
    let mut last_stamp: Option<DateTime<Utc>> = None;
    loop {
        if cancel.is_cancelled() {
            return Ok(());
        }
        let fetched: Result<Bytes, SfError> = match &next {
            None => sf.query(&query, true, options.page_size).await,
            Some(url) => sf.query_more(url, options.page_size).await,
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
        let page_stamp = parsed.records.last().and_then(|r| record_stamp(r));
        last_stamp = page_stamp.or(last_stamp);
        let message = PageMessage {
            hard_delete: options.hard_delete,
            table: options.settings.table_override(object),
            ..PageMessage::records(object.to_owned(), run_id, page, &parsed.records)
        };
        // The records are a part of the response, so its length bounds the message's: reserve
        // that once instead of doubling a Vec up to twice what it holds.
        let (mut message_body, slot) = messages.take().await;
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
            message: OutgoingPage {
                object: object.to_owned(),
                run_id,
                page,
                records,
                last_stamp: page_stamp,
                body: message_body,
            },
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

/// Reads the records through a Bulk API 2.0 job: create, wait, then download the result chunks
/// one ahead of converting and publishing them.
#[allow(clippy::too_many_arguments)]
async fn fetch_bulk(
    sf: &SalesforceClient,
    fields: &[&str],
    typed: &[(&str, CsvType)],
    object: &str,
    run_id: Uuid,
    since: Option<DateTime<Utc>>,
    options: &SyncOptions,
    messages: &BoundedPool,
    cancel: &CancellationToken,
    tx: mpsc::Sender<Fetched>,
) -> Result<(), SfError> {
    let query =
        soql::select_since(object, fields, since).map_err(|e| SfError::Config(e.to_string()))?;
    let job = sf.create_query_job(&query).await?;
    tracing::info!(object, job = %job.id, "Bulk query job created; waiting for Salesforce to run it.");
    let job = sf.wait_for_job(&job.id).await?;
    let total_size = job.records_processed.unwrap_or(0);
    let mut page = 0u64;
    // One chunk at a time: downloading the next one while this one is published would hold two
    // chunks in memory, and on a real org the download, not the conversion, takes the time.
    let mut locator: Option<String> = None;
    loop {
        if cancel.is_cancelled() {
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
                let envelope = PageMessage {
                    hard_delete: options.hard_delete,
                    table: options.settings.table_override(object),
                    ..PageMessage::records(object.to_owned(), run_id, page + 1, ())
                };
                let splice = envelope
                    .split_around_records()
                    .map_err(|e| protocol(e.to_string()))?;
                // The records are written straight into the message buffer, between the
                // envelope's head and tail.
                let (mut body, slot) = messages.take().await;
                body.extend_from_slice(splice.head());
                let written = pages
                    .next_page(options.page_size as usize, &mut body)
                    .map_err(protocol)?;
                if written.records == 0 {
                    messages.give(body);
                    return Ok::<bool, SfError>(true);
                }
                body.extend_from_slice(splice.tail());
                page += 1;
                let fetched = Fetched {
                    total_size,
                    message: OutgoingPage {
                        object: object.to_owned(),
                        run_id,
                        page,
                        records: written.records,
                        last_stamp: written
                            .last_stamp
                            .and_then(|s| common::sftime::parse_datetime(&s).ok()),
                        body,
                    },
                    _slot: slot,
                };
                if tx.send(fetched).await.is_err() {
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
    Ok(())
}

/// getDeleted keeps about 15 days and answers windows of at most 30.
const DELETED_WINDOW_DAYS: i64 = 29;

/// Publishes what getDeleted reports for `[since, until)`: records removed from the recycle bin
/// that queryAll can no longer show. Returns how many.
#[allow(clippy::too_many_arguments)]
async fn publish_deletions(
    sf: &SalesforceClient,
    publisher: &mut PagePublisher,
    object: &str,
    run_id: Uuid,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    options: &SyncOptions,
    progress: &mut Progress,
) -> anyhow::Result<u64> {
    let earliest = until - chrono::Duration::days(DELETED_WINDOW_DAYS);
    if since < earliest {
        tracing::warn!(object, since = %since, "The watermark is older than getDeleted's window: records purged before then cannot be seen; run a reconcile.");
    }
    // getDeleted works in whole minutes and needs a non-empty window.
    let start = since.max(earliest);
    // The end is rounded up past the current minute, which getDeleted would otherwise leave out.
    let end = until + chrono::Duration::minutes(1);
    let deleted = sf
        .get_deleted(object, start, end)
        .await
        .context("asking getDeleted for records removed from the recycle bin")?;
    let mut page = progress.pages;
    for chunk in deleted.chunks(options.page_size as usize) {
        page += 1;
        let records: Vec<serde_json::Value> =
            chunk.iter().map(|(id, when)| serde_json::json!({"attributes": {"type": object}, "Id": id, "SystemModstamp": when})).collect();
        let message = PageMessage {
            kind: PageKind::Deleted,
            hard_delete: options.hard_delete,
            table: options.settings.table_override(object),
            ..PageMessage::records(object.to_owned(), run_id, page, &records)
        };
        let outgoing = OutgoingPage {
            object: object.to_owned(),
            run_id,
            page,
            records: records.len() as u64,
            last_stamp: None,
            body: serde_json::to_vec(&message)?,
        };
        let done = publisher.publish(&outgoing).await?;
        count_published(sf, object, &done);
        progress.pages += done.len() as u64;
    }
    let done = publisher.finish().await?;
    count_published(sf, object, &done);
    progress.pages += done.len() as u64;
    Ok(deleted.len() as u64)
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
