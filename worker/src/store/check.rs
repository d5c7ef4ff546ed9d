//! The checks every record passes before it is written: a JSON object of fields, a valid
//! Salesforce Id and a valid stamp (SystemModstamp, or the field the page names for objects
//! without one; nothing for objects with no stamp at all). A record that fails one is set aside
//! alone, with class [`ErrorClass::Mapping`]; the rest of its page goes on.

use common::{dead_letter::RecordIndex, sfid::SalesforceId, sftime::parse_datetime};

use super::FailedRecord;
use crate::{
    decode::{Page, RawRecord, fields},
    error::ErrorClass,
};

/// A record that passed the checks, with its Id.
pub(super) struct Valid<'a> {
    /// Position in the page's `records`.
    pub index: RecordIndex,
    pub id: SalesforceId,
    pub fields: RawRecord<'a>,
}

/// Parses every record and checks its Id and stamp; the failures are per record.
pub(super) fn check_records<'a>(page: &Page<'a>) -> (Vec<Valid<'a>>, Vec<FailedRecord>) {
    let stamp_field = page.stamp_field();
    let mut valid = Vec::with_capacity(page.records.len());
    let mut failed = Vec::new();
    let mut expected_fields = 0;
    for (index, raw) in (0..).zip(page.records.iter()) {
        let mapping = |sfid: Option<String>, message: String| FailedRecord {
            index,
            sfid,
            class: ErrorClass::Mapping,
            message,
        };
        let record = match fields(raw, expected_fields) {
            Ok(r) => {
                expected_fields = r.len();
                r
            }
            Err(e) => {
                failed.push(mapping(None, e));
                continue;
            }
        };
        let id_raw = record.get("Id").map_or("null", |v| v.get());
        let id = match serde_json::from_str::<String>(id_raw) {
            Ok(s) => SalesforceId::parse(&s).map_err(|e| e.to_string()),
            Err(_) => Err(format!("record has no valid Id (Id is {id_raw})")),
        };
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                failed.push(mapping(None, e));
                continue;
            }
        };
        if let Some(field) = stamp_field {
            let stamp_raw = record.get(field).map_or("null", |v| v.get());
            if !serde_json::from_str::<String>(stamp_raw).is_ok_and(|s| parse_datetime(&s).is_ok())
            {
                failed.push(mapping(
                    Some(id.to_string()),
                    format!("{field} {stamp_raw} is not a Salesforce datetime"),
                ));
                continue;
            }
        }
        valid.push(Valid {
            index,
            id,
            fields: record,
        });
    }
    (valid, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_without_id_or_modstamp_fail_alone() {
        let body = br#"{"format":1,"object":"Contact","run_id":"00000000-0000-0000-0000-000000000000","page":1,"records":[
            {"Id":"003000000000001AAA","SystemModstamp":"2024-01-01T00:00:00.000+0000"},
            {"Id":"bad","SystemModstamp":"2024-01-01T00:00:00.000+0000"},
            {"Id":"003000000000002AAA","SystemModstamp":"yesterday"},
            {"SystemModstamp":"2024-01-01T00:00:00.000+0000"}]}"#;
        let page = crate::decode::decode(None, body).unwrap();
        let (valid, failed) = check_records(&page);
        assert_eq!(valid.iter().map(|v| v.index).collect::<Vec<_>>(), [0]);
        assert_eq!(
            failed.iter().map(|f| f.index).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(
            failed[0]
                .message
                .contains(r#"Salesforce Id "bad" has 3 characters"#),
            "{}",
            failed[0].message
        );
        assert!(
            failed[1].message.contains("SystemModstamp \"yesterday\""),
            "{}",
            failed[1].message
        );
        assert!(
            failed[2].message.contains("no valid Id"),
            "{}",
            failed[2].message
        );
    }

    #[test]
    fn objects_without_system_modstamp_are_checked_on_their_own_stamp() {
        let body = br#"{"format":1,"object":"AccountHistory","run_id":"00000000-0000-0000-0000-000000000000","page":1,"stamp":"CreatedDate","records":[
            {"Id":"017000000000001AAA","CreatedDate":"2024-01-01T00:00:00.000+0000"},
            {"Id":"017000000000002AAA","CreatedDate":null,"SystemModstamp":"2024-01-01T00:00:00.000+0000"}]}"#;
        let page = crate::decode::decode(None, body).unwrap();
        let (valid, failed) = check_records(&page);
        assert_eq!(valid.len(), 1);
        assert_eq!(
            failed[0].message,
            "CreatedDate null is not a Salesforce datetime"
        );
        // No stamp at all: only the Id is checked.
        let body = br#"{"format":1,"object":"LoginHistory","run_id":"00000000-0000-0000-0000-000000000000","page":1,"stamp":null,"records":[
            {"Id":"0Ya000000000001CAA","LoginTime":"2024-01-01T00:00:00.000+0000"}]}"#;
        let page = crate::decode::decode(None, body).unwrap();
        let (valid, failed) = check_records(&page);
        assert_eq!((valid.len(), failed.len()), (1, 0));
    }
}
