//! The run context: what every stage of one sync reads (the client, the pool, the options, the
//! cancellation, the envelope of its pages, the replication key and where reading starts, the
//! message buffers), and the tally of its confirmed pages.

use chrono::{DateTime, Utc};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
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

    /// A raw record's stamp (the replication key's value), if it has a valid one: what the
    /// watermark advances to.
    pub fn record_stamp(&self, record: &RawValue) -> Option<DateTime<Utc>> {
        stamp_of(record, self.stamp?)
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

/// The value of `field` in a raw record, if it is a Salesforce datetime.
fn stamp_of(record: &RawValue, field: &str) -> Option<DateTime<Utc>> {
    let mut de = serde_json::Deserializer::from_str(record.get());
    let value = FieldOf(field).deserialize(&mut de).ok()??;
    common::sftime::parse_datetime(value).ok()
}

/// Reads one string field of a JSON object, skipping the others unparsed (what a derived
/// struct with one field does, for a name known only at run time).
struct FieldOf<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for FieldOf<'_> {
    type Value = Option<&'de str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldOf<'_> {
    type Value = Option<&'de str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a record with {}", self.0)
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<&'de str>()? {
            if key == self.0 {
                found = map.next_value::<Option<&'de str>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stamp_is_read_from_the_replication_key() {
        let record: Box<RawValue> = serde_json::from_str(
            r#"{"attributes":{"type":"AccountHistory","url":"/x"},"Id":"017000000000001AAA","OldValue":{"a":[1,"CreatedDate"]},"CreatedDate":"2024-01-15T10:20:30.000+0000","NewValue":null}"#,
        )
        .unwrap();
        let at = |field| stamp_of(&record, field).map(|t| t.to_rfc3339());
        assert_eq!(
            at("CreatedDate").as_deref(),
            Some("2024-01-15T10:20:30+00:00")
        );
        assert_eq!(at("SystemModstamp"), None);
        assert_eq!(at("NewValue"), None);
        assert_eq!(at("Id"), None, "not a datetime");
    }
}
