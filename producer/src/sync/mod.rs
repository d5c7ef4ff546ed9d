//! One sync of one object: describe, prepare the table, page through the query in
//! (stamp, Id) order and publish each page, advance the watermark past confirmed pages, then
//! publish the deletions. Fetching runs one page ahead of publishing so that the HTTP round
//! trip and the broker's confirms overlap.
//!
//! Full and incremental syncs are one mechanism: a full sync reads from the beginning, an
//! incremental one from `watermark - overlap`. `>=` and the overlap mean records that share a
//! timestamp across pages, or were committed late behind the watermark, are read again rather
//! than skipped; the modstamp-guarded upsert makes the re-read harmless.
//!
//! The stamp is the object's replication key: SystemModstamp, else LastModifiedDate, else
//! CreatedDate; an object with none of them is read whole every time. Deletions come from
//! getDeleted, or from comparing Ids where getDeleted cannot report them.
//!
//! # Layout
//! - this file: what a sync is asked (`SyncOptions`) and what it did (`SyncReport`); finding
//!   the target (describe, table, watermark) and running the stages below in order.
//! - `run`: the context every stage reads, and the tally of confirmed pages.
//! - `envelope`: the page envelope every message of a run is built from.
//! - `publish`: the run's stages in order, from its row in `sfsync.runs` to its report.
//! - `pipeline`: fetching one page ahead of publishing, and booking confirmed pages.
//! - `slices`: where a parallel read cuts its stamp window, counted cheaply.
//! - `coverage`: how far the slices' confirmed pages reach, so where the watermark may go,
//!   and what a resumed run still has to read.
//! - `rest`, `bulk`: the two fetchers (query/queryMore; Bulk API 2.0 jobs), one per slice.
//! - `refusals`: objects the Bulk API refuses (read through REST), and objects Salesforce
//!   queries only with a filter (an error naming the `where` setting).
//! - `windows`: narrower stamp windows for queries and counts Salesforce times out.
//! - `wide`: objects too wide for one request line, read in parts by Id and merged (reconcile
//!   re-pulls records through it too).
//! - `record`: the few fields read out of a raw record (the stamp, the Id), and merging parts.
//! - `deletions`: the getDeleted pages published after the records.
//! - `gone`: deletions found by comparing the table's Ids with the org's.
//! - `backfill`: after the records, stale columns marked and new fields back-filled.

mod backfill;
mod bulk;
mod coverage;
mod deletions;
mod describes;
pub(crate) mod envelope;
mod gone;
mod pipeline;
mod publish;
mod record;
mod refusals;
mod rest;
mod run;
mod slices;
pub(crate) mod wide;
mod windows;

pub use self::describes::DescribeCache;
pub(crate) use self::refusals::is_bulk_refusal;
pub use self::refusals::{BulkRefusals, NeedsFilter};

use std::{sync::atomic::AtomicU64, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use self::{envelope::Envelope, run::Run, windows::Count};
use crate::broker::BrokerChannel;
use crate::{
    buffers::{BoundedPool, MESSAGES_AT_ONCE},
    objects::{self, ObjectSettings},
    salesforce::{Describe, SalesforceClient, bulk::MAX_SOQL_LENGTH},
    soql, sync_state,
    tables::{self, FieldSelection},
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
    /// How long a page's confirm may take, not counting time the broker blocks publishing.
    pub confirm_timeout: Duration,
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
    /// Slices of the stamp window read at once (REST cursors or Bulk jobs); 1 reads one
    /// after the other.
    pub parallel: usize,
    /// A read of more records than this is cut into slices.
    pub parallel_above: u64,
    /// Reads are cut only when a call to the org takes at least this long.
    pub parallel_min_latency: Duration,
    /// The object's `sfsync.toml` section: table name and fields.
    pub settings: ObjectSettings,
    /// How often `sync --watch` spends API calls beyond the query (see [`Cadence`]); `None`
    /// for a one-shot sync, which describes, counts and checks deletions every time.
    pub cadence: Option<Cadence>,
}

/// What `sync --watch` does not do on every pass, so that an idle pass costs one API call per
/// object (its query): read the describe, count the records to read, ask for deletions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cadence {
    /// A describe younger than this is reused.
    pub describe: Duration,
    /// Deletions are asked for when the last check is this old.
    pub deletions: Duration,
    /// An incremental window shorter than this is read through REST without a COUNT(): a
    /// pass's window is about the interval plus the overlap, and holds few records.
    pub count_window: Duration,
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

impl SyncMode {
    /// Where reading starts: `None` reads every record.
    fn since(self) -> Option<DateTime<Utc>> {
        match self {
            SyncMode::Incremental { since } => Some(since),
            SyncMode::Full => None,
        }
    }
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
    /// Deletions published: reported by getDeleted, or found by comparing Ids.
    pub deletions: u64,
    /// Salesforce API calls this sync made.
    pub api_calls: u64,
}

/// Pulls what changed since the watermark (or everything) and publishes it. The run, from
/// its row in `sfsync.runs` to its report, logs in a span `sync` with the run id and the
/// object, so that every line of a run can be found by its id.
///
/// `refusals` remembers the objects the Bulk API refused, for the session.
///
/// # Errors
/// Salesforce, the broker or the database failed in a way retries did not mend, or the run
/// was cancelled before its last page was confirmed. The run is then recorded as failed and
/// the watermark stays at the last confirmed page. A query Salesforce answers only with a
/// filter fails with a [`NeedsFilter`] naming the `where` setting.
pub async fn sync_object(
    sf: &SalesforceClient,
    pool: &PgPool,
    channel: BrokerChannel,
    options: &SyncOptions,
    refusals: &BulkRefusals,
    describes: &DescribeCache,
    cancel: &CancellationToken,
) -> anyhow::Result<SyncReport> {
    common::schema::check_api_name("object", &options.object)
        .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
    let calls_before = sf.usage().calls();
    let target = Target::prepare(sf, pool, options, describes).await?;
    let fields = target.selection.field_names();
    let stamp = target.selection.stamp.as_deref();
    let run = Run {
        sf,
        pool,
        options,
        cancel,
        envelope: Envelope::new(
            &target.object,
            Uuid::now_v7(),
            options.hard_delete,
            &options.settings,
        )
        .with_stamp(stamp),
        stamp,
        since: target.mode.since(),
        fields: &fields,
        messages: BoundedPool::new(MESSAGES_AT_ONCE),
        pages: AtomicU64::new(0),
    };
    let span = tracing::info_span!("sync", run_id = %run.run_id(), object = %target.object);
    let mut report = publish::publish_run(&run, channel.clone(), &target, refusals, calls_before)
        .instrument(span.clone())
        .await?;
    backfill::after_sync(&run, channel, &target)
        .instrument(span)
        .await?;
    report.api_calls = sf.usage().calls() - calls_before;
    Ok(report)
}

/// What a run reads and where it writes, found before it starts.
struct Target {
    describe: Describe,
    selection: FieldSelection,
    /// The object's name as describe spells it (`contact` becomes `Contact`).
    object: String,
    table: String,
    /// The table did not exist before this run (it holds no rows a deletion could concern).
    created: bool,
    has_is_deleted: bool,
    mode: SyncMode,
}

impl Target {
    /// Describes the object, creates or extends its table, and reads the watermark.
    async fn prepare(
        sf: &SalesforceClient,
        pool: &PgPool,
        options: &SyncOptions,
        describes: &DescribeCache,
    ) -> anyhow::Result<Self> {
        let describe = describes
            .describe(sf, &options.object, options.cadence.map(|c| c.describe))
            .await?;
        let selection = tables::select_fields(&describe)?;
        let selection = objects::filter_fields(&describe, &options.settings, selection)?;
        for (field, why) in &selection.skipped {
            tracing::info!(object = %describe.name, field, reason = why, "Field left out of the sync.");
        }
        let object = describe.name.clone();
        match selection.stamp.as_deref() {
            Some(soql::SYSTEM_MODSTAMP) => {}
            Some(stamp) => tracing::info!(
                object,
                stamp,
                "The object has no SystemModstamp; syncing it by {stamp}."
            ),
            None => tracing::info!(
                object,
                "The object has no SystemModstamp, LastModifiedDate nor CreatedDate; reading every record on each sync."
            ),
        }
        let table = options.settings.table(&object);
        let created = tables::ensure_table(pool, &object, &table, &selection)
            .await?
            .created;
        crate::write::prepare(pool, &describe, &selection, &options.settings, &table).await?;
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
            Some(w) if !options.full && !created && selection.stamp.is_some() => {
                SyncMode::Incremental {
                    since: w - chrono::Duration::from_std(options.overlap).unwrap_or_default(),
                }
            }
            _ => SyncMode::Full,
        };
        let has_is_deleted = describe.fields.iter().any(|f| f.name == "IsDeleted");
        Ok(Self {
            describe,
            selection,
            object,
            table,
            created,
            has_is_deleted,
            mode,
        })
    }
}

/// Picks REST or Bulk. `Auto` counts the records to read with `COUNT()` (over narrower
/// windows when Salesforce times the count out; a count that times out even over one second
/// picks Bulk, as REST could not read that second either). A SOQL longer than a Bulk job takes
/// is read through REST, which cuts it into parts. Also returns the records counted, if so.
async fn choose_api(run: &Run<'_>) -> anyhow::Result<(Api, Option<u64>)> {
    let options = run.options;
    let object = run.object();
    let bulk_soql = run.query().select(run.fields, soql::Order::None)?.len();
    if bulk_soql > MAX_SOQL_LENGTH && options.api != ApiChoice::Rest {
        tracing::warn!(
            object,
            soql = bulk_soql,
            max = MAX_SOQL_LENGTH,
            "The query is longer than a Bulk job accepts; reading through REST instead."
        );
        return Ok((Api::Rest, None));
    }
    Ok(match options.api {
        ApiChoice::Rest => (Api::Rest, None),
        ApiChoice::Bulk => (Api::Bulk, None),
        ApiChoice::Auto if short_watch_window(run) => {
            tracing::debug!(
                object,
                "A short incremental window: read through REST without counting."
            );
            (Api::Rest, None)
        }
        ApiChoice::Auto => {
            let count = windows::count(run)
                .await
                .context("counting the records to read")?;
            let api = match count {
                Count::Records(total) if total <= options.bulk_threshold => Api::Rest,
                Count::Records(_) | Count::TooManyToCount => Api::Bulk,
            };
            tracing::info!(
                object,
                records = ?count,
                threshold = options.bulk_threshold,
                ?api,
                "API chosen."
            );
            let counted = match count {
                Count::Records(total) => Some(total),
                Count::TooManyToCount => None,
            };
            (api, counted)
        }
    })
}

/// Whether the run is a pass of `--watch` over a window shorter than its cadence's
/// `count_window`: about the interval plus the overlap, too few records to count or to cut
/// into slices.
fn short_watch_window(run: &Run<'_>) -> bool {
    run.options.cadence.is_some_and(|c| {
        run.since.is_some_and(|since| {
            Utc::now() - since < chrono::Duration::from_std(c.count_window).unwrap_or_default()
        })
    })
}
