//! The dead-letter contract: what a message on `sfsync.dead` says about why it is there.
//!
//! A failed record is dead-lettered as a one-record page message (same body format as the work
//! queue), so `dlq replay` only has to publish the body back. The reason travels in headers:
//! the error class, the database's error text, the time and the attempt count, plus where the
//! record came from (object, run, page, index in the page, Id).

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};

use crate::message::header;

/// Header names of a dead letter (besides the page headers of [`header`]).
pub mod dead_header {
    pub const ERROR_CLASS: &str = "sfsync-error-class";
    pub const ERROR: &str = "sfsync-error";
    pub const FAILED_AT: &str = "sfsync-failed-at";
    /// How many times this record has been dead-lettered (1 the first time).
    pub const ATTEMPTS: &str = "sfsync-attempts";
    /// Index of the record in its original page; absent when the whole message failed.
    pub const RECORD_INDEX: &str = "sfsync-record-index";
    pub const SFID: &str = "sfsync-sfid";
    /// The message id of the work message the record came from.
    pub const SOURCE_MESSAGE_ID: &str = "sfsync-source-message-id";
    /// Set on a message put back by `dlq replay`: its outcome updates the original
    /// dead-letter row instead of counting as a new page.
    pub const REPLAY: &str = "sfsync-replay";
}

/// Why a record (or a whole message) was set aside, so an operator can filter by cause
/// (`producer dlq list --error-class constraint`). Written to the `sfsync-error-class` header
/// and to `sfsync.dead_letters.error_class` as its [`as_str`](Self::as_str) name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Not an sfsync page at all: wrong type, not JSON, wrong shape.
    Decode,
    /// A record's value cannot be mapped to its column (bad Id, bad datetime, NUL character).
    Mapping,
    /// The database refused a value: too long, out of range, invalid for the column type.
    Value,
    /// A constraint or trigger in the database refused the row.
    Constraint,
    /// The target table is missing or not usable.
    Schema,
    /// Dead-lettered by RabbitMQ itself: delivered too many times without an ack (a worker
    /// crashed on it repeatedly).
    Poison,
    /// Salesforce refused a change written back (a validation rule, a required field, a
    /// duplicate): the letter is a push batch of that one record, and a replay sends the row's
    /// values as they are then.
    Salesforce,
    /// Salesforce changed a field that also had a local change waiting to be written back, and
    /// the object's `conflict` policy is `reject`: the local change was not sent. The letter is
    /// a push batch of that one record; a replay sends the row's values as they are then (the
    /// local value, unless it was changed since).
    Conflict,
}

impl ErrorClass {
    /// Every class, in the order `--help` lists them.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Decode,
        ErrorClass::Mapping,
        ErrorClass::Value,
        ErrorClass::Constraint,
        ErrorClass::Schema,
        ErrorClass::Poison,
        ErrorClass::Salesforce,
        ErrorClass::Conflict,
    ];

    /// The name in headers, in the database and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Decode => "decode",
            ErrorClass::Mapping => "mapping",
            ErrorClass::Value => "value",
            ErrorClass::Constraint => "constraint",
            ErrorClass::Schema => "schema",
            ErrorClass::Poison => "poison",
            ErrorClass::Salesforce => "salesforce",
            ErrorClass::Conflict => "conflict",
        }
    }

    /// The class named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// Whether an error of this class is about one record (so the rest of its page can be
    /// stored) rather than about the whole page (a missing table or column).
    pub fn is_per_record(self) -> bool {
        matches!(
            self,
            ErrorClass::Mapping | ErrorClass::Value | ErrorClass::Constraint
        )
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record's position in its page (0-based). One type from the worker's failed record through
/// the dead letter's headers to `sfsync.dead_letters.record_index` (a PostgreSQL `integer`);
/// a page holds at most 2,000 records.
pub type RecordIndex = i32;

/// How many times a record has been dead-lettered (1 the first time). One type from the
/// worker through the headers to `sfsync.dead_letters.attempts` (a PostgreSQL `integer`).
pub type Attempts = i32;

/// Everything the headers of a dead letter say; missing values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetterInfo {
    pub object: Option<String>,
    pub run_id: Option<String>,
    pub page: Option<i64>,
    pub record_index: Option<RecordIndex>,
    pub sfid: Option<String>,
    /// `None` when the header is missing or names a class this version does not know.
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub failed_at: Option<String>,
    pub attempts: Attempts,
    pub source_message_id: Option<String>,
}

fn text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// An integer header that fits an `i32`, whatever width the publisher chose.
fn int32(v: &AMQPValue) -> Option<i32> {
    int(v).and_then(|n| i32::try_from(n).ok())
}

/// Reads an integer header whatever width the publisher chose.
fn int(v: &AMQPValue) -> Option<i64> {
    match v {
        AMQPValue::LongLongInt(n) => Some(*n),
        AMQPValue::LongInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortInt(n) => Some(i64::from(*n)),
        AMQPValue::LongUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::ShortShortUInt(n) => Some(i64::from(*n)),
        AMQPValue::Timestamp(n) => i64::try_from(*n).ok(),
        _ => None,
    }
}

impl DeadLetterInfo {
    /// Reads the headers of a message on the dead-letter queue. Messages that RabbitMQ itself
    /// dead-lettered (poison: the delivery limit was reached) carry no sfsync error headers;
    /// their class is reported as `poison`.
    pub fn from_headers(headers: Option<&FieldTable>) -> Self {
        let mut info = DeadLetterInfo::default();
        let Some(headers) = headers else { return info };
        let get = |k: &str| headers.inner().get(k);
        info.object = get(header::OBJECT).and_then(text);
        info.run_id = get(header::RUN_ID).and_then(text);
        info.page = get(header::PAGE).and_then(int);
        info.record_index = get(dead_header::RECORD_INDEX).and_then(int32);
        info.sfid = get(dead_header::SFID).and_then(text);
        info.error_class = get(dead_header::ERROR_CLASS)
            .and_then(text)
            .and_then(|name| ErrorClass::parse(&name));
        info.error = get(dead_header::ERROR).and_then(text);
        info.failed_at = get(dead_header::FAILED_AT).and_then(text);
        info.attempts = get(dead_header::ATTEMPTS).and_then(int32).unwrap_or(0);
        info.source_message_id = get(dead_header::SOURCE_MESSAGE_ID).and_then(text);
        if info.error_class.is_none() && headers.contains_key("x-death") {
            info.error_class = Some(ErrorClass::Poison);
            info.error = Some("delivered too many times without being acked (x-death delivery_limit): a worker crashed on it repeatedly".into());
        }
        info
    }

    /// Writes the headers of a dead letter.
    pub fn to_headers(&self) -> FieldTable {
        let mut t = FieldTable::default();
        let mut put_text = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                t.insert(
                    ShortString::from(k),
                    AMQPValue::LongString(LongString::from(v.as_str())),
                );
            }
        };
        put_text(header::OBJECT, &self.object);
        put_text(header::RUN_ID, &self.run_id);
        put_text(dead_header::SFID, &self.sfid);
        put_text(
            dead_header::ERROR_CLASS,
            &self.error_class.map(|c| c.as_str().to_owned()),
        );
        put_text(dead_header::ERROR, &self.error);
        put_text(dead_header::FAILED_AT, &self.failed_at);
        put_text(dead_header::SOURCE_MESSAGE_ID, &self.source_message_id);
        if let Some(page) = self.page {
            t.insert(
                ShortString::from(header::PAGE),
                AMQPValue::LongLongInt(page),
            );
        }
        if let Some(index) = self.record_index {
            t.insert(
                ShortString::from(dead_header::RECORD_INDEX),
                AMQPValue::LongInt(index),
            );
            t.insert(
                ShortString::from(header::RECORD_COUNT),
                AMQPValue::LongLongInt(1),
            );
        }
        t.insert(
            ShortString::from(dead_header::ATTEMPTS),
            AMQPValue::LongInt(self.attempts),
        );
        t
    }
}

/// A record put back by `dlq replay`: where it was in its original page, and how many times it
/// has been dead-lettered so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    pub record_index: RecordIndex,
    pub attempts: Attempts,
}

/// Reads the [`dead_header::REPLAY`] mark and what a replayed record carries; `None` for a
/// page from the producer (or a replayed whole message, which has no record index).
pub fn replayed(headers: Option<&FieldTable>) -> Option<Replayed> {
    let headers = headers?.inner();
    headers.get(dead_header::REPLAY)?;
    Some(Replayed {
        record_index: headers.get(dead_header::RECORD_INDEX).and_then(int32)?,
        attempts: headers
            .get(dead_header::ATTEMPTS)
            .and_then(int32)
            .unwrap_or(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let info = DeadLetterInfo {
            object: Some("Contact".into()),
            run_id: Some("r".into()),
            page: Some(3),
            record_index: Some(17),
            sfid: Some("003000000000001AAA".into()),
            error_class: Some(ErrorClass::Constraint),
            error: Some("new row violates check constraint \"x\"".into()),
            failed_at: Some("2026-11-25T17:00:00Z".into()),
            attempts: 2,
            source_message_id: Some("r/3".into()),
        };
        assert_eq!(DeadLetterInfo::from_headers(Some(&info.to_headers())), info);
    }

    #[test]
    fn error_classes_have_one_name_each_way() {
        for class in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(class.as_str()), Some(class));
            assert_eq!(
                serde_json::to_value(class).unwrap(),
                serde_json::json!(class.as_str())
            );
        }
        assert_eq!(ErrorClass::parse("Constraint"), None);
        // A letter from a version with another class still reads; its class is unknown.
        let mut t = FieldTable::default();
        t.insert(
            dead_header::ERROR_CLASS.into(),
            AMQPValue::LongString("cosmic_ray".into()),
        );
        assert_eq!(DeadLetterInfo::from_headers(Some(&t)).error_class, None);
    }

    #[test]
    fn broker_dead_letters_are_poison() {
        let mut t = FieldTable::default();
        t.insert("x-death".into(), AMQPValue::LongString("…".into()));
        assert_eq!(
            DeadLetterInfo::from_headers(Some(&t)).error_class,
            Some(ErrorClass::Poison)
        );
    }
}
