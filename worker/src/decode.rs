//! Turning a delivery into a page: checks that the message is an sfsync page and keeps each
//! record as raw JSON, so a failed record can be dead-lettered exactly as Salesforce sent it
//! and numbers keep every digit.

use common::{
    message::{PAGE_FORMAT_VERSION, PAGE_MESSAGE_TYPE, PageMessage},
    schema::{check_api_name, check_table_name},
};
use serde_json::value::RawValue;

/// Why a message is not an sfsync page. Every case is permanent: the message is dead-lettered
/// whole, as it came, with class [`common::dead_letter::ErrorClass::Decode`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The AMQP `type` property names something else.
    #[error(
        "message type {found:?} is not {PAGE_MESSAGE_TYPE:?}; is something else publishing to this queue?"
    )]
    WrongType { found: String },
    /// The body is not JSON, or not a page's shape.
    #[error("body is not an sfsync page: {0}")]
    NotAPage(#[source] serde_json::Error),
    /// A page of a format this worker does not read.
    #[error(
        "page format {found} is not supported (this worker reads format {PAGE_FORMAT_VERSION}); upgrade the worker"
    )]
    UnsupportedFormat { found: u32 },
    /// The object name breaks Salesforce's identifier rules.
    #[error("{0}")]
    BadObject(String),
    /// The table name is not a plain PostgreSQL name.
    #[error("{0}")]
    BadTable(String),
}

/// One record's fields in the order Salesforce wrote them: name (as Salesforce cased it) and
/// raw JSON value. A list, not a map: records of a page share one field order, so a lookup at
/// the position the previous record had the field in almost always hits at once, which costs
/// far less than hashing every name of every record.
#[derive(Debug, Default)]
pub struct RawRecord<'a> {
    fields: Vec<(&'a str, &'a RawValue)>,
}

impl<'a> RawRecord<'a> {
    /// How many fields the record has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of `name` (its first occurrence).
    pub fn get(&self, name: &str) -> Option<&'a RawValue> {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The value of `name`, looked for first at position `hint`.
    pub fn get_at(&self, hint: usize, name: &str) -> Option<&'a RawValue> {
        match self.fields.get(hint) {
            Some((n, v)) if *n == name => Some(*v),
            _ => self.get(name),
        }
    }

    /// Field names in order.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.fields.iter().map(|(n, _)| *n)
    }

    /// Whether `other` has exactly these field names in this order.
    pub fn same_names(&self, other: &RawRecord<'_>) -> bool {
        self.fields.len() == other.fields.len()
            && self
                .fields
                .iter()
                .zip(&other.fields)
                .all(|((a, _), (b, _))| a == b)
    }
}

/// Reads one record into a [`RawRecord`] with room for `capacity` fields. serde_json gives no
/// size hint for an object, and a guess of 64 fields took 2 KiB per record, 4 MiB per page of
/// 2,000 records that a worker's memory had to grow into; the previous record's count is
/// almost always exact.
struct FieldsSeed {
    capacity: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldsSeed {
    type Value = RawRecord<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldsSeed {
    type Value = RawRecord<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object of fields")
    }

    fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(self.capacity));
        while let Some(entry) = map.next_entry::<&'de str, &'de RawValue>()? {
            fields.push(entry);
        }
        Ok(RawRecord { fields })
    }
}

/// A decoded page, borrowing from the delivery's body; records are still raw.
pub type Page<'a> = PageMessage<Vec<&'a RawValue>>;

/// Decodes and checks a page message.
///
/// # Errors
/// A [`DecodeError`] when the message is not an sfsync page: another `type`, a body that is not
/// JSON or has another shape, an unknown format version, an object name that breaks
/// Salesforce's identifier rules, or a table name that is not a plain PostgreSQL name.
pub fn decode<'a>(message_type: Option<&str>, body: &'a [u8]) -> Result<Page<'a>, DecodeError> {
    if let Some(t) = message_type
        && t != PAGE_MESSAGE_TYPE
    {
        return Err(DecodeError::WrongType {
            found: t.to_owned(),
        });
    }
    let page: Page<'a> = serde_json::from_slice(body).map_err(DecodeError::NotAPage)?;
    if page.format != PAGE_FORMAT_VERSION {
        return Err(DecodeError::UnsupportedFormat { found: page.format });
    }
    check_api_name("object", &page.object).map_err(|e| DecodeError::BadObject(e.to_string()))?;
    if let Some(table) = &page.table {
        check_table_name(table).map_err(DecodeError::BadTable)?;
    }
    Ok(page)
}

/// Splits one record into its fields, with room for `expected` of them (the previous record's
/// count; more are still taken).
///
/// # Errors
/// The record is not a JSON object (or a field name holds escapes, which no API name does).
pub fn fields(record: &RawValue, expected: usize) -> Result<RawRecord<'_>, String> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_str(record.get());
    FieldsSeed { capacity: expected }
        .deserialize(&mut de)
        .and_then(|r| de.end().map(|()| r))
        .map_err(|e| format!("record is not a JSON object of fields: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_page_keeping_raw_values() {
        let body = br#"{"format":1,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[{"Id":"003000000000001AAA","Score":9.9213206E7,"Name":"a\nb"},7]}"#;
        let page = decode(Some(PAGE_MESSAGE_TYPE), body).unwrap();
        let first = fields(page.records[0], 0).unwrap();
        assert_eq!(first.len(), 3);
        // A wrong guess only costs room: the fields are all there either way.
        assert_eq!(fields(page.records[0], 1).unwrap().len(), 3);
        assert_eq!(fields(page.records[0], 64).unwrap().len(), 3);
        assert_eq!(first.get("Score").unwrap().get(), "9.9213206E7");
        assert_eq!(first.get_at(2, "Name").unwrap().get(), r#""a\nb""#);
        assert_eq!(first.get_at(0, "Name").unwrap().get(), r#""a\nb""#);
        assert!(first.get_at(1, "Missing").is_none());
        assert_eq!(first.names().collect::<Vec<_>>(), ["Id", "Score", "Name"]);
        assert!(
            fields(page.records[1], 3)
                .unwrap_err()
                .starts_with("record is not a JSON object")
        );
    }

    #[test]
    fn refuses_what_is_not_a_page() {
        let cases: [(Option<&str>, &[u8], &str); 5] = [
            (Some("other.type"), b"{}", "message type \"other.type\""),
            (None, b"not json", "body is not an sfsync page"),
            (None, br#"{"format":2,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[]}"#, "page format 2"),
            (None, br#"{"format":1,"object":"Contact;drop","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[]}"#, "not a valid Salesforce API name"),
            (None, br#"{"format":1,"object":"Contact","table":"x; drop table y","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[]}"#, "is not a plain PostgreSQL name"),
        ];
        for (t, body, want) in cases {
            let message = decode(t, body).unwrap_err().to_string();
            assert!(message.contains(want), "{want}: {message}");
        }
    }
}
