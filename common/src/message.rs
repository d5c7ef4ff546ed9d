//! The contract between producer and workers: one AMQP message per Salesforce page.
//!
//! The body keeps the records exactly as Salesforce returned them (all queried fields), so a
//! mapping fix plus a replay needs no new call to Salesforce. The headers name the object, run,
//! page and record count so that an operator can find a page without decoding its body.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Content type of every page message.
pub const CONTENT_TYPE: &str = "application/json";
/// AMQP `type` property of a page message; a worker refuses other types.
pub const PAGE_MESSAGE_TYPE: &str = "sfsync.page.v1";
/// Version of the body layout, carried in the body too so that a stray message can be told apart.
pub const PAGE_FORMAT_VERSION: u32 = 1;

/// Header names (AMQP header table keys).
pub mod header {
    pub const OBJECT: &str = "sfsync-object";
    pub const RUN_ID: &str = "sfsync-run-id";
    pub const PAGE: &str = "sfsync-page";
    pub const RECORD_COUNT: &str = "sfsync-record-count";
}

/// One page of records of one object, as published by the producer.
///
/// `R` is the records array: the producer passes Salesforce's JSON through untouched
/// (`&RawValue`), the worker decodes it into maps.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageMessage<R> {
    /// Always [`PAGE_FORMAT_VERSION`].
    pub format: u32,
    /// Salesforce API name of the object, e.g. `Contact`.
    pub object: String,
    /// The producer run that published this page.
    pub run_id: Uuid,
    /// 1-based page number within the run.
    pub page: u64,
    /// What the records are: fetched records (upserted), or deletions reported by getDeleted.
    #[serde(default, skip_serializing_if = "PageKind::is_records")]
    pub kind: PageKind,
    /// Remove rows of deleted records instead of marking them `isdeleted` (`--hard-delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hard_delete: bool,
    /// Overwrite the stored row whenever it differs, whatever its SystemModstamp: set by
    /// `reconcile`, which re-pulls records whose stored stamp disagrees with the org's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
    /// The table the records go to, when `sfsync.toml` overrides the default (the object's
    /// lower-cased name); absent otherwise, so older messages read the same. Checked with
    /// [`crate::schema::check_table_name`] on both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// Which field of the records the `systemmodstamp` column (the upsert's guard) takes its
    /// value from: absent means SystemModstamp, so older pages read the same. Objects without
    /// SystemModstamp (history objects, `UserLogin`, `LoginHistory`) name another field or none
    /// (see [`Stamp`]). [`PageKind::Deleted`] pages always carry SystemModstamp (the deletion
    /// time), whatever this says.
    #[serde(default, skip_serializing_if = "Stamp::is_system_modstamp")]
    pub stamp: Stamp,
    /// The records as Salesforce returned them.
    pub records: R,
}

/// The field an object's records say when they last changed, which the worker stores in the
/// `systemmodstamp` column the upsert is guarded by.
///
/// On the wire, a field name (`"stamp":"CreatedDate"`), or `null` for [`Stamp::None`]; absent
/// is [`Stamp::SYSTEM_MODSTAMP`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stamp {
    /// A datetime field of the records: SystemModstamp on most objects, else LastModifiedDate,
    /// else CreatedDate.
    Field(String),
    /// The object has none of the three (`LoginHistory`): every record gets [`NO_STAMP`], and
    /// the guard then updates a stored row only when its data differ.
    None,
}

/// The `systemmodstamp` of every record of an object without a stamp field.
pub const NO_STAMP: &str = "1970-01-01T00:00:00Z";

impl Stamp {
    /// The field most objects have.
    pub const SYSTEM_MODSTAMP: &str = "SystemModstamp";

    /// The field, if the records have one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Stamp::Field(f) => Some(f),
            Stamp::None => None,
        }
    }

    pub fn is_system_modstamp(&self) -> bool {
        self.field() == Some(Self::SYSTEM_MODSTAMP)
    }
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp::Field(Self::SYSTEM_MODSTAMP.to_owned())
    }
}

impl From<Option<&str>> for Stamp {
    fn from(field: Option<&str>) -> Self {
        field.map_or(Stamp::None, |f| Stamp::Field(f.to_owned()))
    }
}

impl Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.field().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map_or(Stamp::None, Stamp::Field))
    }
}

/// What a page's records are. Absent in the body means [`PageKind::Records`], so pages of the
/// first format version still read the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageKind {
    /// Records from query/queryAll/Bulk: upserted (soft-deleted ones carry `IsDeleted: true`).
    #[default]
    Records,
    /// `{"Id", "SystemModstamp"}` pairs from getDeleted (records purged from the recycle bin,
    /// with their deletion time): rows that exist are marked deleted (or removed); none is created.
    Deleted,
    /// Some fields re-read for records the table may already have (formula fields, which change
    /// without a new SystemModstamp; a new column's back-fill): rows that exist are updated
    /// under the usual modstamp guard, only in the columns the records carry; none is created,
    /// since a record with only some of its fields would make an incomplete row.
    Refresh,
}

impl PageKind {
    pub fn is_records(&self) -> bool {
        *self == PageKind::Records
    }
}

impl<R> PageMessage<R> {
    /// A page of fetched records with the default kind and no hard delete.
    pub fn records(object: String, run_id: Uuid, page: u64, records: R) -> Self {
        Self {
            format: PAGE_FORMAT_VERSION,
            object,
            run_id,
            page,
            kind: PageKind::Records,
            hard_delete: false,
            force: false,
            table: None,
            stamp: Stamp::default(),
            records,
        }
    }

    /// The field of the records that holds their stamp: [`PageMessage::stamp`]'s, except on
    /// deletion pages, whose records always carry SystemModstamp.
    pub fn stamp_field(&self) -> Option<&str> {
        match self.kind {
            PageKind::Deleted => Some(Stamp::SYSTEM_MODSTAMP),
            _ => self.stamp.field(),
        }
    }

    /// The table (in schema `salesforce`) the records go to: the override, or the object's
    /// lower-cased name.
    pub fn target_table(&self) -> String {
        self.table
            .clone()
            .unwrap_or_else(|| crate::schema::table_name(&self.object))
    }
}

impl PageMessage<()> {
    /// The serialized envelope, split where the records go, so that records already JSON
    /// (the producer builds them from Bulk CSV) are written between [`RecordsSplice::head`]
    /// and [`RecordsSplice::tail`], straight into the message buffer, without being parsed
    /// again. The result is exactly what serializing `PageMessage` with those records gives.
    ///
    /// # Errors
    /// Serializing the envelope failed (it cannot for these field types).
    pub fn split_around_records(&self) -> serde_json::Result<RecordsSplice> {
        let empty: &serde_json::value::RawValue = serde_json::from_str("[]")?;
        let envelope = PageMessage {
            format: self.format,
            object: self.object.clone(),
            table: self.table.clone(),
            run_id: self.run_id,
            page: self.page,
            kind: self.kind,
            hard_delete: self.hard_delete,
            force: self.force,
            stamp: self.stamp.clone(),
            records: empty,
        };
        let envelope = serde_json::to_vec(&envelope)?;
        // `records` is written as `"records":[]`; no other field can contain that text (the
        // object is an API name), so the last one is the place for the records.
        const PLACEHOLDER: &[u8] = b"\"records\":[]";
        let at = envelope
            .windows(PLACEHOLDER.len())
            .rposition(|w| w == PLACEHOLDER)
            .expect("a serialized page has a records field")
            + PLACEHOLDER.len()
            - 1;
        Ok(RecordsSplice { envelope, at })
    }
}

/// A page's envelope around the place of its records: see
/// [`PageMessage::split_around_records`].
pub struct RecordsSplice {
    envelope: Vec<u8>,
    at: usize,
}

impl RecordsSplice {
    /// The body up to and including the records' `[`.
    pub fn head(&self) -> &[u8] {
        &self.envelope[..self.at]
    }

    /// The body from the records' `]` on.
    pub fn tail(&self) -> &[u8] {
        &self.envelope[self.at..]
    }
}

/// The AMQP `message_id` of a page: unique per (run, page), stable across re-publishes.
pub fn page_message_id(run_id: Uuid, page: u64) -> String {
    format!("{run_id}/{page}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_with_spliced_records_is_the_serialized_page() {
        let run_id = Uuid::from_u128(7);
        let records = br#"{"Id":"a","records":[]},{"Id":"b"}"#;
        let envelope = PageMessage {
            hard_delete: true,
            table: Some("contacts".to_owned()),
            stamp: Stamp::None,
            ..PageMessage::records("Contact".to_owned(), run_id, 3, ())
        };
        let splice = envelope.split_around_records().unwrap();
        let spliced = [splice.head(), records.as_slice(), splice.tail()].concat();
        let raw: Vec<Box<serde_json::value::RawValue>> =
            serde_json::from_slice(&[b"[".as_slice(), records, b"]"].concat()).unwrap();
        let expected = serde_json::to_vec(&PageMessage {
            hard_delete: true,
            table: Some("contacts".to_owned()),
            stamp: Stamp::None,
            ..PageMessage::records("Contact".to_owned(), run_id, 3, &raw)
        })
        .unwrap();
        assert_eq!(
            String::from_utf8(spliced).unwrap(),
            String::from_utf8(expected).unwrap()
        );
    }
    use serde_json::value::RawValue;

    #[test]
    fn raw_records_pass_through_unchanged() {
        let records =
            RawValue::from_string(r#"[{"Id":"003000000000001AAA","Amount":9.9213206E7}]"#.into())
                .unwrap();
        let msg: PageMessage<&RawValue> = PageMessage {
            kind: PageKind::Records,
            hard_delete: false,
            force: false,
            table: None,
            stamp: Stamp::default(),
            format: PAGE_FORMAT_VERSION,
            object: "Contact".into(),
            run_id: Uuid::nil(),
            page: 3,
            records: &*records,
        };
        let body = serde_json::to_string(&msg).unwrap();
        assert!(
            body.contains(r#""records":[{"Id":"003000000000001AAA","Amount":9.9213206E7}]"#),
            "{body}"
        );
        let back: PageMessage<Vec<serde_json::Map<String, serde_json::Value>>> =
            serde_json::from_str(&body).unwrap();
        assert_eq!(back.page, 3);
        assert_eq!(back.records[0]["Id"], "003000000000001AAA");
    }

    #[test]
    fn the_table_override_is_optional_on_the_wire() {
        let old = r#"{"format":1,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[]}"#;
        let page: PageMessage<Vec<serde_json::Value>> = serde_json::from_str(old).unwrap();
        assert_eq!(page.table, None);
        assert_eq!(page.target_table(), "contact");
        assert_eq!(serde_json::to_string(&page).unwrap(), old);
        let page = PageMessage {
            table: Some("people".into()),
            ..page
        };
        assert_eq!(page.target_table(), "people");
        assert!(
            serde_json::to_string(&page)
                .unwrap()
                .contains(r#""table":"people""#)
        );
    }

    #[test]
    fn the_stamp_field_is_written_only_when_it_is_not_system_modstamp() {
        let old = r#"{"format":1,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[]}"#;
        let page: PageMessage<Vec<serde_json::Value>> = serde_json::from_str(old).unwrap();
        assert!(page.stamp.is_system_modstamp());
        assert_eq!(page.stamp_field(), Some("SystemModstamp"));
        for (stamp, wire, field) in [
            (
                Stamp::from(Some("CreatedDate")),
                r#""stamp":"CreatedDate""#,
                Some("CreatedDate"),
            ),
            (Stamp::None, r#""stamp":null"#, None),
        ] {
            let page = PageMessage {
                stamp,
                ..PageMessage::records(
                    "LoginHistory".into(),
                    Uuid::nil(),
                    1,
                    Vec::<serde_json::Value>::new(),
                )
            };
            let body = serde_json::to_string(&page).unwrap();
            assert!(body.contains(wire), "{body}");
            let back: PageMessage<Vec<serde_json::Value>> = serde_json::from_str(&body).unwrap();
            assert_eq!(back.stamp, page.stamp);
            assert_eq!(back.stamp_field(), field);
            let deleted = PageMessage {
                kind: PageKind::Deleted,
                ..back
            };
            assert_eq!(deleted.stamp_field(), Some("SystemModstamp"));
        }
    }

    #[test]
    fn message_from_elsewhere_is_refused() {
        let err = serde_json::from_str::<PageMessage<serde_json::Value>>(r#"{"hello":"world"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `hello`"), "{err}");
    }
}
