//! Reading a few fields out of a raw record (`{"attributes":…,"Id":…}` as Salesforce sent it)
//! without decoding the rest: a page's last stamp, the Id and stamp that join a wide record's
//! parts, and merging those parts into one record.

use std::{borrow::Cow, fmt};

use chrono::{DateTime, Utc};
use common::sfid::SalesforceId;
use serde::{
    Deserializer as _,
    de::{self, MapAccess, Visitor},
};
use serde_json::value::RawValue;

/// Calls `f` with each top-level key and raw value of `record`, in order.
///
/// # Errors
/// `record` is not a JSON object.
pub(super) fn each_entry<'a>(
    record: &'a RawValue,
    f: impl FnMut(&str, &'a RawValue),
) -> serde_json::Result<()> {
    let mut de = serde_json::Deserializer::from_str(record.get());
    de.deserialize_map(Entries(f))
}

/// The raw values of the top-level keys `names` (in that order) in `record`, `None` for a key
/// it lacks.
///
/// # Errors
/// `record` is not a JSON object.
pub(super) fn values<'a>(
    record: &'a RawValue,
    names: &[&str],
) -> serde_json::Result<Vec<Option<&'a RawValue>>> {
    let mut found = vec![None; names.len()];
    each_entry(record, |key, value| {
        if let Some(i) = names.iter().position(|n| *n == key) {
            found[i] = Some(value);
        }
    })?;
    Ok(found)
}

/// The stamp (the field `stamp`) of a raw record, if it has a valid one.
pub(super) fn stamp(record: &RawValue, stamp: &str) -> Option<DateTime<Utc>> {
    let value = values(record, &[stamp]).ok()?.pop()??;
    let text: &str = serde_json::from_str(value.get()).ok()?;
    common::sftime::parse_datetime(text).ok()
}

/// The Id of a raw record, checked to be a Salesforce Id (so that it can be quoted into SOQL).
///
/// # Errors
/// The record has no Id, or its Id is not a Salesforce Id.
pub(super) fn id(record: &RawValue) -> Result<String, String> {
    let value = values(record, &["Id"])
        .map_err(|e| format!("a record is not a JSON object: {e}"))?
        .pop()
        .flatten()
        .ok_or("a record has no Id")?;
    let id: String = serde_json::from_str(value.get())
        .map_err(|_| format!("a record's Id is {}", value.get()))?;
    SalesforceId::parse(&id).map_err(|e| format!("a record's Id: {e}"))?;
    Ok(id)
}

/// `base` with every entry of `parts` appended, except the keys in `skip` (the `attributes`,
/// the Id and the stamp each part repeats). Values are copied as Salesforce wrote them, so
/// numbers keep every digit.
///
/// # Errors
/// `base` or a part is not a JSON object.
pub(super) fn merge(
    base: &RawValue,
    parts: &[&RawValue],
    skip: &[&str],
) -> Result<Box<RawValue>, String> {
    let head = base.get().trim_end();
    let head = head
        .strip_suffix('}')
        .ok_or_else(|| format!("a record is not a JSON object: {}", short(head)))?;
    let mut out = String::with_capacity(
        base.get().len() + parts.iter().map(|p| p.get().len()).sum::<usize>(),
    );
    out.push_str(head);
    let mut empty = head.trim_end().ends_with('{');
    for part in parts {
        each_entry(part, |key, value| {
            if skip.contains(&key) {
                return;
            }
            if !empty {
                out.push(',');
            }
            empty = false;
            // A key is a field name; writing it through serde_json escapes it if need be.
            out.push_str(&serde_json::Value::from(key).to_string());
            out.push(':');
            out.push_str(value.get());
        })
        .map_err(|e| {
            format!(
                "a record part is not a JSON object ({e}): {}",
                short(part.get())
            )
        })?;
    }
    out.push('}');
    RawValue::from_string(out).map_err(|e| format!("merged record is not JSON: {e}"))
}

fn short(s: &str) -> &str {
    s.get(..80).unwrap_or(s)
}

/// Visits a JSON object's entries, keys borrowed where they need no unescaping.
struct Entries<F>(F);

impl<'de, F: FnMut(&str, &'de RawValue)> Visitor<'de> for Entries<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            (self.0)(&key, value);
        }
        Ok(())
    }
}

struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn reads_the_stamp_and_the_id_by_name() {
        let r = raw(
            r#"{"attributes":{"type":"AccountHistory","url":"/x"},"Id":"017000000000001AAA","CreatedDate":"2024-01-15T10:20:30.000+0000","N":9.9213206E7}"#,
        );
        assert_eq!(
            stamp(&r, "CreatedDate").unwrap().to_rfc3339(),
            "2024-01-15T10:20:30+00:00"
        );
        assert_eq!(stamp(&r, "SystemModstamp"), None);
        assert_eq!(id(&r).unwrap(), "017000000000001AAA");
        assert!(id(&raw(r#"{"Name":"x"}"#)).unwrap_err().contains("no Id"));
        assert!(id(&raw(r#"{"Id":"003000000000001') OR Id != ('"}"#)).is_err());
        assert!(id(&raw("[1]")).unwrap_err().contains("not a JSON object"));
    }

    #[test]
    fn merges_parts_after_the_base_keeping_values_as_written() {
        let base = raw(
            r#"{"attributes":{"type":"Wide__c"},"Id":"a0W000000000001AAA","SystemModstamp":"s","Name":"A"}"#,
        );
        let one = raw(
            r#"{"attributes":{"type":"Wide__c"},"Id":"a0W000000000001AAA","SystemModstamp":"s","N__c":9.9213206E7,"T__c":"a \"q\""}"#,
        );
        let two = raw(
            r#"{"attributes":{"type":"Wide__c"},"Id":"a0W000000000001AAA","SystemModstamp":"s","B__c":null}"#,
        );
        let merged = merge(
            &base,
            &[&one, &two],
            &["attributes", "Id", "SystemModstamp"],
        )
        .unwrap();
        assert_eq!(
            merged.get(),
            r#"{"attributes":{"type":"Wide__c"},"Id":"a0W000000000001AAA","SystemModstamp":"s","Name":"A","N__c":9.9213206E7,"T__c":"a \"q\"","B__c":null}"#
        );
        // A base that is only the parts' key still merges into one object.
        assert_eq!(
            merge(&raw("{ }"), &[&two], &["attributes"]).unwrap().get(),
            r#"{ "Id":"a0W000000000001AAA","SystemModstamp":"s","B__c":null}"#
        );
        assert!(merge(&raw("[]"), &[&two], &[]).is_err());
    }

    #[test]
    fn a_record_stamp_is_read_from_the_replication_key() {
        let record: Box<RawValue> = serde_json::from_str(
            r#"{"attributes":{"type":"AccountHistory","url":"/x"},"Id":"017000000000001AAA","OldValue":{"a":[1,"CreatedDate"]},"CreatedDate":"2024-01-15T10:20:30.000+0000","NewValue":null}"#,
        )
        .unwrap();
        let at = |field| stamp(&record, field).map(|t| t.to_rfc3339());
        assert_eq!(
            at("CreatedDate").as_deref(),
            Some("2024-01-15T10:20:30+00:00")
        );
        assert_eq!(at("SystemModstamp"), None);
        assert_eq!(at("NewValue"), None);
        assert_eq!(at("Id"), None, "not a datetime");
    }
}
