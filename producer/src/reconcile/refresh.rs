//! Refresh runs: a few fields of every record re-read (Id, the stamp, and the fields to bring up
//! to date) and published as [`PageKind::Refresh`] pages in a run of their own. Workers update
//! the rows the table has, in those columns only, under the modstamp guard, and create none.
//! Formula refreshes ([`super::formulas`]) and the back-fill of new columns (`sync::backfill`)
//! are both such runs.
//!
//! The pages carry no stamp for the watermark: they are not read in stamp order, and a refresh
//! must never move an object's incremental sync past records it did not fully read.

use anyhow::Context as _;
use common::{message::PageKind, schema::qualified};
// The table name in the count passed check_table_name (or is an object's) and is quoted.
use sqlx::{AssertSqlSafe, PgPool};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::broker::BrokerChannel;
use crate::{
    objects::ObjectSettings,
    publisher::PagePublisher,
    runs,
    salesforce::{
        Describe, SalesforceClient,
        bulk::{self, CsvType, RECORDS_PER_CHUNK, SNAPSHOT_ROWS_PER_CHUNK},
        page::QueryPage,
    },
    soql,
    sync::{Api, ApiChoice, envelope::Envelope},
};

/// Records per refresh page (one message, stored by a worker in one statement).
const PAGE_RECORDS: u32 = 2000;

/// With `--api auto`, tables of up to this many rows are refreshed through REST: one call per
/// 2,000 records, fewer than a Bulk job's create, polls, results and delete below this size.
const REST_UP_TO_ROWS: i64 = 10_000;

/// With `--api auto`, a SELECT longer than this goes through Bulk, whose job body has no
/// length limit: REST sends the query in the URL, and Salesforce refuses request lines over
/// 16,384 bytes (URL encoding lengthens the query).
const REST_MAX_SOQL: usize = 8_000;

/// CSV bytes per Bulk results request the chunk size aims at: chunks of narrow rows are large
/// (few calls), and one chunk, held in memory while it is published, stays bounded.
const CHUNK_BYTES: usize = 24 << 20;

/// What a refresh run reads and where its pages go.
pub(crate) struct RefreshRun<'a> {
    pub sf: &'a SalesforceClient,
    pub pool: &'a PgPool,
    /// Which records: the object's query (its stamp field and filter), without a window.
    pub query: soql::Query<'a>,
    /// Id, the stamp, then the fields refreshed, each with its CSV type (for Bulk).
    pub fields: &'a [(&'a str, CsvType)],
    pub api: Api,
    /// The object's settings (the table its pages go to).
    pub settings: &'a ObjectSettings,
    /// Checked between pages; a cancelled run fails, so that what it was for is done again.
    pub cancel: &'a CancellationToken,
}

/// What a refresh run published, every page confirmed by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refreshed {
    pub run_id: Uuid,
    pub pages: u64,
    pub records: u64,
}

/// Pages and records published so far.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    pages: u64,
    records: u64,
}

/// Reads the fields of every record and publishes them as refresh pages in a new run, recorded
/// in `sfsync.runs` like any other.
///
/// # Errors
/// Salesforce, the broker or the database failed, or the run was cancelled; the run is then
/// recorded as failed.
pub(crate) async fn publish(
    run: &RefreshRun<'_>,
    channel: BrokerChannel,
) -> anyhow::Result<Refreshed> {
    let (sf, object) = (run.sf, run.query.object);
    let run_id = Uuid::now_v7();
    runs::start(run.pool, run_id, object)
        .await
        .context("recording the refresh run in sfsync.runs")?;
    // A refresh carries no IsDeleted, so hard delete has nothing to act on.
    // The page names its stamp field, so a refresh of an object synced by CreatedDate or
    // LastModifiedDate is guarded by that field, as its other pages are.
    let envelope = Envelope::new(object, run_id, false, run.settings).with_stamp(run.query.stamp);
    let mut tally = Tally::default();
    let outcome = async {
        let mut publisher = PagePublisher::new(channel, 16)
            .await
            .context("putting the AMQP channel in confirm mode")?
            .with_in_flight_gauge(sf.metrics().pages_in_flight());
        match run.api {
            Api::Bulk => through_bulk(run, &envelope, &mut publisher, &mut tally).await?,
            Api::Rest => through_rest(run, &envelope, &mut publisher, &mut tally).await?,
        }
        publisher.finish().await?;
        not_cancelled(run.cancel)?;
        anyhow::Ok(())
    }
    .await;
    let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    runs::finish(
        run.pool,
        run_id,
        tally.pages,
        tally.records,
        error.as_deref(),
    )
    .await
    .context("recording the end of the refresh run in sfsync.runs")?;
    outcome.with_context(|| format!("refresh run {run_id} of {object}"))?;
    Ok(Refreshed {
        run_id,
        pages: tally.pages,
        records: tally.records,
    })
}

/// REST or Bulk for a refresh of `table`: the API asked for, or with `auto`, Bulk for big tables
/// (counted in PostgreSQL, no API call, and only as far as the limit) and long SELECTs.
///
/// # Errors
/// Counting the rows failed.
pub(crate) async fn choose_api(
    pool: &PgPool,
    choice: ApiChoice,
    table: &str,
    query: &soql::Query<'_>,
    fields: &[(&str, CsvType)],
) -> anyhow::Result<Api> {
    Ok(match choice {
        ApiChoice::Rest => Api::Rest,
        ApiChoice::Bulk => Api::Bulk,
        ApiChoice::Auto => {
            let soql = query.select(&names(fields), soql::Order::None)?;
            let rows: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT count(*) FROM (SELECT 1 FROM {} LIMIT {}) t",
                qualified(table),
                REST_UP_TO_ROWS + 1
            )))
            .fetch_one(pool)
            .await
            .with_context(|| format!("counting the rows of salesforce.{table}"))?;
            if rows > REST_UP_TO_ROWS || soql.len() > REST_MAX_SOQL {
                Api::Bulk
            } else {
                Api::Rest
            }
        }
    })
}

/// What a refresh of `refreshed` reads: Id and the stamp (the upsert key and its guard), then
/// the fields, each typed by describe for Bulk's CSV.
pub(crate) fn fields_to_read<'a>(
    describe: &Describe,
    stamp: &'a str,
    refreshed: &[&'a str],
) -> Vec<(&'a str, CsvType)> {
    let type_of = |name: &str| {
        describe
            .fields
            .iter()
            .find(|f| f.name == name)
            .map_or(CsvType::Text, |f| CsvType::of(&f.sf_type))
    };
    [("Id", CsvType::Text), (stamp, CsvType::Text)]
        .into_iter()
        .chain(refreshed.iter().map(|name| (*name, type_of(name))))
        .collect()
}

/// An error once the run is cancelled: checked between pages, so no page is half-published.
fn not_cancelled(cancel: &CancellationToken) -> anyhow::Result<()> {
    anyhow::ensure!(
        !cancel.is_cancelled(),
        "interrupted by a shutdown signal before the last page"
    );
    Ok(())
}

fn names<'a>(fields: &[(&'a str, CsvType)]) -> Vec<&'a str> {
    fields.iter().map(|(name, _)| *name).collect()
}

/// Rows asked for per Bulk results request: about [`CHUNK_BYTES`] of CSV at a guessed 40 bytes
/// a field, between the chunk sizes of whole records and of the reconcile snapshot.
fn rows_per_chunk(fields: usize) -> u32 {
    let row = 40 * fields.max(1) + 8;
    let rows =
        (CHUNK_BYTES / row).clamp(RECORDS_PER_CHUNK as usize, SNAPSHOT_ROWS_PER_CHUNK as usize);
    u32::try_from(rows).unwrap_or(SNAPSHOT_ROWS_PER_CHUNK)
}

/// One Bulk API 2.0 job, without ORDER BY (Salesforce splits big jobs by Id only without one);
/// each results chunk is converted a page at a time into the message buffer.
async fn through_bulk(
    run: &RefreshRun<'_>,
    envelope: &Envelope,
    publisher: &mut PagePublisher,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let (sf, object) = (run.sf, run.query.object);
    let soql = run.query.select(&names(run.fields), soql::Order::None)?;
    let job = sf.create_query_job(&soql).await?;
    tracing::info!(object, job = %job.id, "Bulk query job created for a refresh; waiting for Salesforce to run it.");
    let job = sf.wait_for_job(&job.id).await?;
    let chunk_rows = rows_per_chunk(run.fields.len());
    let mut locator: Option<String> = None;
    loop {
        let (csv, next) = sf
            .job_results(&job.id, locator.as_deref(), chunk_rows)
            .await?;
        let mut pages = bulk::CsvPages::new(&csv, object, run.fields)
            .map_err(|detail| anyhow::anyhow!("Bulk job {} of {object}: {detail}", job.id))?;
        loop {
            not_cancelled(run.cancel)?;
            let splice = envelope
                .message(PageKind::Refresh, tally.pages + 1, ())
                .split_around_records()?;
            let mut body = splice.head().to_vec();
            let written = pages
                .next_page(PAGE_RECORDS as usize, &mut body)
                .map_err(|detail| anyhow::anyhow!("Bulk job {} of {object}: {detail}", job.id))?;
            if written.records == 0 {
                break;
            }
            body.extend_from_slice(splice.tail());
            tally.pages += 1;
            tally.records += written.records;
            publisher
                .publish(&envelope.outgoing(tally.pages, written.records, None, body))
                .await?;
        }
        sf.recycle_body(csv);
        match next {
            Some(next) => locator = Some(next),
            None => break,
        }
    }
    sf.delete_job(&job.id).await;
    Ok(())
}

/// REST query/queryMore, one page per message: for small tables, where a Bulk job's polling
/// would cost more calls than the pages.
async fn through_rest(
    run: &RefreshRun<'_>,
    envelope: &Envelope,
    publisher: &mut PagePublisher,
    tally: &mut Tally,
) -> anyhow::Result<()> {
    let sf = run.sf;
    let soql = run.query.select(&names(run.fields), soql::Order::None)?;
    let mut body = sf.query(&soql, true, PAGE_RECORDS).await?;
    let mut url = "query".to_owned();
    loop {
        not_cancelled(run.cancel)?;
        let parsed = QueryPage::parse(&body, &url)?;
        if !parsed.records.is_empty() {
            tally.pages += 1;
            tally.records += parsed.records.len() as u64;
            let message =
                envelope.message(PageKind::Refresh, tally.pages, parsed.records.as_slice());
            publisher.publish(&envelope.unstamped(&message)?).await?;
        }
        let Some(next) = parsed.next().map(str::to_owned) else {
            return Ok(());
        };
        drop(parsed);
        sf.recycle_body(body);
        body = sf.query_more(&next, PAGE_RECORDS).await?;
        url = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_refreshes_read_big_chunks_and_wide_ones_bounded_chunks() {
        // Id, the stamp and one new field: the snapshot's chunks.
        assert_eq!(rows_per_chunk(3), SNAPSHOT_ROWS_PER_CHUNK);
        // Id, the stamp and 16 formula fields: about 35,000 rows, ~24 MiB.
        let formulas = rows_per_chunk(18);
        assert!((30_000..40_000).contains(&formulas), "{formulas}");
        // Hundreds of fields: never below whole records' chunks.
        assert_eq!(rows_per_chunk(700), RECORDS_PER_CHUNK);
    }
}
