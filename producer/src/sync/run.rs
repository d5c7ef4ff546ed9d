//! The run context: what every stage of one sync reads (the client, the pool, the options, the
//! cancellation, the envelope of its pages, the replication key and where reading starts, the
//! message buffers), and the tally of its confirmed pages.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{SyncOptions, envelope::Envelope};
use crate::{buffers::BoundedPool, publisher::Confirmed, salesforce::SalesforceClient, soql};

/// One run of one object, as its fetchers and its publisher see it.
pub(super) struct Run<'a> {
    pub sf: &'a SalesforceClient,
    pub pool: &'a PgPool,
    pub options: &'a SyncOptions,
    /// Checked between pages only, so that a page is never half-published.
    pub cancel: &'a CancellationToken,
    /// The object (as describe spells it), the run id, and the rest every page carries.
    pub envelope: Envelope,
    /// The replication key: the field that says when a record last changed (SystemModstamp,
    /// else LastModifiedDate, else CreatedDate); `None` for an object that has none, which is
    /// read whole every time.
    pub stamp: Option<&'a str>,
    /// Where reading starts: `None` reads every record.
    pub since: Option<DateTime<Utc>>,
    /// The fields queried.
    pub fields: &'a [&'a str],
    /// Message bodies, handed back once published; how many exist at once is what bounds the
    /// pipeline (the channel between fetcher and publisher only hands them over). Kept apart
    /// from the response buffers, which are larger for Bulk (a CSV chunk holds 5,000 records, a
    /// message 2,000).
    pub messages: BoundedPool,
    /// The last page number given out: the slices read at once number their pages from one
    /// sequence, so that a page's number is unique in its run (numbers given to an empty
    /// chunk are skipped, leaving gaps).
    pub pages: AtomicU64,
}

impl Run<'_> {
    pub fn object(&self) -> &str {
        &self.envelope.object
    }

    pub fn run_id(&self) -> Uuid {
        self.envelope.run_id
    }

    /// The records this run reads: the object's, through its `where` setting, by its
    /// replication key, from `since` on.
    pub fn query(&self) -> soql::Query<'_> {
        soql::Query {
            stamp: self.stamp,
            filter: self.options.settings.filter.as_deref(),
            since: self.since,
            ..soql::Query::all(self.object())
        }
    }

    /// The next page number of the run.
    pub fn next_page(&self) -> u64 {
        self.pages.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts confirmed pages in the metrics.
    pub fn count_published(&self, done: &[Confirmed]) {
        if !done.is_empty() {
            let records = done.iter().map(|c| c.records).sum();
            self.sf
                .metrics()
                .published(self.object(), done.len() as u64, records);
        }
    }
}

/// Counts of confirmed pages and records, kept as they arrive.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Progress {
    pub pages: u64,
    pub records: u64,
}
