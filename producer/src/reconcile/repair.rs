//! The repair: missing and stale records re-pulled by Id and published as forced pages (the
//! stored stamp may claim to be newer than the org's), gone Ids published as deletions; then
//! waiting until the workers have applied them. Records are re-pulled through
//! [`ByIdReader`], which cuts each read into field chunks and Id batches that fit a request
//! line and merges each record's parts, so an object of any width is re-pulled whole.

use std::time::Duration;

use chrono::Utc;
use common::message::{PageKind, PageMessage};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::census;
use crate::{
    publisher::PagePublisher,
    runs,
    salesforce::SalesforceClient,
    soql,
    sync::{envelope::Envelope, wide::ByIdReader},
};

/// Records re-pulled per page; the reader sends as many requests as fitting them takes.
const IDS_PER_PAGE: usize = 2000;

/// What the repair published.
#[derive(Debug, Clone, Copy)]
pub(super) struct Repaired {
    pub pages: u64,
    /// Records re-pulled and published (missing + stale).
    pub republished: u64,
    /// Ids published as deletions (gone).
    pub deletions: u64,
}

/// Publishes the repair of `table` (see the module docs), every page in `envelope`'s run.
/// `query` names the object, its stamp field and its filter.
pub(super) async fn publish(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    publisher: &mut PagePublisher,
    envelope: &Envelope,
    query: soql::Query<'_>,
    fields: &[&str],
    table: &str,
) -> anyhow::Result<Repaired> {
    let mut page = 0u64;
    let mut republished = 0u64;
    let reader = ByIdReader::new(sf, query);

    for chunk in census::missing_or_stale(db, table)
        .await?
        .chunks(IDS_PER_PAGE)
    {
        // The Ids came out of the org snapshot, which parsed each one as a SalesforceId.
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let mut read = reader.read_whole(fields, &ids).await?;
        // In the census's order; Ids that vanished since the snapshot are left out.
        let records: Vec<_> = chunk.iter().filter_map(|id| read.remove(id)).collect();
        if records.is_empty() {
            continue;
        }
        page += 1;
        republished += records.len() as u64;
        let message = PageMessage {
            force: true,
            ..envelope.message(PageKind::Records, page, records.as_slice())
        };
        publisher.publish(&envelope.unstamped(&message)?).await?;
    }

    let gone = census::gone(db, table, envelope.hard_delete).await?;
    let now = common::sftime::format_rest(Utc::now());
    for chunk in gone.chunks(2000) {
        page += 1;
        let records: Vec<serde_json::Value> =
            chunk.iter().map(|id| envelope.deletion(id, &now)).collect();
        let message = envelope.message(PageKind::Deleted, page, records.as_slice());
        publisher.publish(&envelope.unstamped(&message)?).await?;
    }
    publisher.finish().await?;
    Ok(Repaired {
        pages: page,
        republished,
        deletions: gone.len() as u64,
    })
}

/// Waits until the workers have processed every page of the run.
pub(super) async fn wait_until_applied(
    pool: &PgPool,
    run_id: Uuid,
    pages: u64,
    wait: Duration,
) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let done = runs::pages_processed(pool, run_id).await?;
        if done >= pages {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the workers applied {done} of the {pages} repair pages of run {run_id} within {wait:?}; are workers running? (--wait gives them longer)"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
