//! The repair: missing and stale records re-pulled by Id and published as forced pages (the
//! stored stamp may claim to be newer than the org's), gone Ids published as deletions; then
//! waiting until the workers have applied them.

use std::time::Duration;

use chrono::Utc;
use common::message::{PageKind, PageMessage};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::census;
use crate::{
    publisher::PagePublisher,
    runs,
    salesforce::{SalesforceClient, page::QueryPage},
    soql,
    sync::envelope::Envelope,
};

/// Records re-pulled per query: `WHERE Id IN (…)` of 200 Ids keeps the URL near 5 KB.
const IDS_PER_QUERY: usize = 200;

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
pub(super) async fn publish(
    sf: &SalesforceClient,
    db: &mut PgConnection,
    publisher: &mut PagePublisher,
    envelope: &Envelope,
    fields: &[&str],
    table: &str,
) -> anyhow::Result<Repaired> {
    let object = envelope.object.as_str();
    let mut page = 0u64;
    let mut republished = 0u64;

    for chunk in census::missing_or_stale(db, table)
        .await?
        .chunks(IDS_PER_QUERY)
    {
        // The Ids came out of the org snapshot, which parsed each one as a SalesforceId.
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let query = soql::select_ids(object, fields, &ids)?;
        let body = sf.query(&query, true, 2000).await?;
        let parsed = QueryPage::parse(&body, "query")?;
        if parsed.records.is_empty() {
            continue; // vanished since the snapshot
        }
        page += 1;
        republished += parsed.records.len() as u64;
        let message = PageMessage {
            force: true,
            ..envelope.message(PageKind::Records, page, parsed.records.as_slice())
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
