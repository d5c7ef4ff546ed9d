//! Building the SOQL sfsync sends. Object and field names are checked against Salesforce's
//! identifier rules here, so nothing but a name can reach the query.

use common::schema::{NameError, check_api_name};

/// `SELECT f1, f2 FROM Object`, with every name checked.
///
/// # Errors
/// A name breaks Salesforce's identifier rules.
pub fn select_all(object: &str, fields: &[&str]) -> Result<String, NameError> {
    check_api_name("object", object)?;
    for field in fields {
        check_api_name("field", field)?;
    }
    Ok(format!("SELECT {} FROM {object}", fields.join(", ")))
}

/// `SELECT … FROM Object [WHERE SystemModstamp >= since] ORDER BY SystemModstamp, Id`: the
/// order lets the watermark advance page by page, and `>=` (never `>`) keeps records that share
/// the watermark's timestamp.
///
/// # Errors
/// A name breaks Salesforce's identifier rules.
pub fn select_since(
    object: &str,
    fields: &[&str],
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<String, NameError> {
    let mut soql = select_all(object, fields)?;
    if let Some(since) = since {
        soql.push_str(&format!(
            " WHERE SystemModstamp >= {}",
            common::sftime::format_soql(since)
        ));
    }
    soql.push_str(" ORDER BY SystemModstamp, Id");
    Ok(soql)
}

/// `SELECT COUNT() FROM Object [WHERE SystemModstamp >= since]`: how many records a sync reads.
///
/// # Errors
/// The name breaks Salesforce's identifier rules.
pub fn count_since(
    object: &str,
    since: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<String, NameError> {
    check_api_name("object", object)?;
    let mut soql = format!("SELECT COUNT() FROM {object}");
    if let Some(since) = since {
        soql.push_str(&format!(
            " WHERE SystemModstamp >= {}",
            common::sftime::format_soql(since)
        ));
    }
    Ok(soql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_queries_read_from_the_watermark_in_stamp_order() {
        use chrono::TimeZone;
        let since = chrono::Utc
            .with_ymd_and_hms(2024, 1, 15, 10, 20, 30)
            .unwrap();
        assert_eq!(
            select_since("Contact", &["Id", "SystemModstamp"], Some(since)).unwrap(),
            "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= 2024-01-15T10:20:30Z ORDER BY SystemModstamp, Id"
        );
        assert_eq!(
            select_since("Contact", &["Id"], None).unwrap(),
            "SELECT Id FROM Contact ORDER BY SystemModstamp, Id"
        );
    }

    #[test]
    fn builds_select_with_checked_names() {
        assert_eq!(
            select_all("Contact", &["Id", "LastName", "Engagement_Score__c"]).unwrap(),
            "SELECT Id, LastName, Engagement_Score__c FROM Contact"
        );
    }

    #[test]
    fn refuses_injection_in_object_or_field() {
        let err = select_all("Contact WHERE Id != null", &["Id"]).unwrap_err();
        assert_eq!(err.what, "object");
        let err = select_all("Contact", &["Id", "Name FROM User --"]).unwrap_err();
        assert_eq!(err.what, "field");
    }
}
