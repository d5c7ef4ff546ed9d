//! Building the SOQL sfsync sends. Object and field names are checked against Salesforce's
//! identifier rules here, so nothing but a name can reach the query; the one text that is not
//! a name, an object's `where` from `sfsync.toml`, is the user's own and is checked where it is
//! read (see [`crate::objects`]).

use chrono::{DateTime, Utc};
use common::schema::{NameError, check_api_name};

/// The field that says when a record last changed, on objects that have it.
pub const SYSTEM_MODSTAMP: &str = "SystemModstamp";

/// Which records of an object a query reads.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    /// Salesforce API name of the object.
    pub object: &'a str,
    /// The field that says when a record last changed: [`SYSTEM_MODSTAMP`] on most objects;
    /// `None` on an object that has no such field, which is then read whole every time.
    pub stamp: Option<&'a str>,
    /// The object's `where` setting, for objects Salesforce will only query with a filter.
    pub filter: Option<&'a str>,
    /// Only records whose stamp is at or after this (`>=`, never `>`: records sharing the
    /// watermark's timestamp are read again, not skipped).
    pub since: Option<DateTime<Utc>>,
    /// Only records whose stamp is before this.
    pub until: Option<DateTime<Utc>>,
}

/// Whether a query asks for an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// `ORDER BY <stamp>, Id`: the order lets the watermark advance page by page (REST).
    ByStamp,
    /// No `ORDER BY`: Bulk API 2.0 splits big jobs by Id (PK chunking) only without one.
    None,
}

impl<'a> Query<'a> {
    /// Every record of `object`, by SystemModstamp.
    pub fn all(object: &'a str) -> Self {
        Self {
            object,
            stamp: Some(SYSTEM_MODSTAMP),
            filter: None,
            since: None,
            until: None,
        }
    }

    /// `SELECT fields FROM object [WHERE …] [ORDER BY …]`.
    ///
    /// # Errors
    /// A name breaks Salesforce's identifier rules.
    pub fn select(&self, fields: &[&str], order: Order) -> Result<String, NameError> {
        let mut soql = select_from(self.object, fields)?;
        soql.push_str(&self.where_clause()?);
        if let (Order::ByStamp, Some(stamp)) = (order, self.stamp) {
            soql.push_str(&format!(" ORDER BY {stamp}, Id"));
        }
        Ok(soql)
    }

    /// `SELECT COUNT() FROM object [WHERE …]`: how many records the query reads.
    ///
    /// # Errors
    /// A name breaks Salesforce's identifier rules.
    pub fn count(&self) -> Result<String, NameError> {
        check_api_name("object", self.object)?;
        Ok(format!(
            "SELECT COUNT() FROM {}{}",
            self.object,
            self.where_clause()?
        ))
    }

    /// `SELECT fields FROM object WHERE [(filter) AND] Id IN ('…', …)`: records by Id, whatever
    /// their stamp (the window is left out), still under the object's filter (an object such as
    /// ContentDocumentLink refuses a query without it). The Ids must be Salesforce Ids already
    /// checked ([`common::sfid::SalesforceId`]), as they are quoted, not escaped.
    ///
    /// # Errors
    /// A name breaks Salesforce's identifier rules.
    pub fn select_ids(&self, fields: &[&str], ids: &[&str]) -> Result<String, NameError> {
        let mut soql = select_from(self.object, fields)?;
        soql.push_str(" WHERE ");
        if let Some(filter) = self.filter {
            soql.push_str(&format!("({filter}) AND "));
        }
        soql.push_str("Id IN (");
        for (i, id) in ids.iter().enumerate() {
            if i > 0 {
                soql.push(',');
            }
            soql.push('\'');
            soql.push_str(id);
            soql.push('\'');
        }
        soql.push(')');
        Ok(soql)
    }

    /// ` WHERE (filter) AND stamp >= since AND stamp < until`, or nothing.
    fn where_clause(&self) -> Result<String, NameError> {
        let mut conditions = Vec::new();
        if let Some(filter) = self.filter {
            conditions.push(format!("({filter})"));
        }
        if let Some(stamp) = self.stamp {
            check_api_name("field", stamp)?;
            if let Some(since) = self.since {
                conditions.push(format!("{stamp} >= {}", common::sftime::format_soql(since)));
            }
            if let Some(until) = self.until {
                conditions.push(format!("{stamp} < {}", common::sftime::format_soql(until)));
            }
        }
        Ok(if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        })
    }
}

/// `SELECT f1, f2 FROM Object`, with every name checked.
///
/// # Errors
/// A name breaks Salesforce's identifier rules.
pub fn select_from(object: &str, fields: &[&str]) -> Result<String, NameError> {
    check_api_name("object", object)?;
    for field in fields {
        check_api_name("field", field)?;
    }
    Ok(format!("SELECT {} FROM {object}", fields.join(", ")))
}

/// `SELECT fields FROM object WHERE Id IN ('…', …)`: records by Id. The Ids must be Salesforce
/// Ids already checked ([`common::sfid::SalesforceId`]), as they are quoted, not escaped.
///
/// # Errors
/// A name breaks Salesforce's identifier rules.
pub fn select_ids(object: &str, fields: &[&str], ids: &[&str]) -> Result<String, NameError> {
    Query::all(object).select_ids(fields, ids)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 15, h, 20, 30).unwrap()
    }

    #[test]
    fn incremental_queries_read_from_the_watermark_in_stamp_order() {
        let since = Query {
            since: Some(at(10)),
            ..Query::all("Contact")
        };
        assert_eq!(
            since
                .select(&["Id", "SystemModstamp"], Order::ByStamp)
                .unwrap(),
            "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= 2024-01-15T10:20:30Z ORDER BY SystemModstamp, Id"
        );
        assert_eq!(
            Query::all("Contact")
                .select(&["Id"], Order::ByStamp)
                .unwrap(),
            "SELECT Id FROM Contact ORDER BY SystemModstamp, Id"
        );
        assert_eq!(
            since.count().unwrap(),
            "SELECT COUNT() FROM Contact WHERE SystemModstamp >= 2024-01-15T10:20:30Z"
        );
    }

    #[test]
    fn windows_filters_and_other_stamps() {
        let query = Query {
            object: "ContentDocumentLink",
            stamp: Some("SystemModstamp"),
            filter: Some("LinkedEntityId IN ('001000000000001AAA')"),
            since: Some(at(10)),
            until: Some(at(11)),
        };
        assert_eq!(
            query.select(&["Id"], Order::None).unwrap(),
            "SELECT Id FROM ContentDocumentLink WHERE (LinkedEntityId IN ('001000000000001AAA')) AND SystemModstamp >= 2024-01-15T10:20:30Z AND SystemModstamp < 2024-01-15T11:20:30Z"
        );
        let history = Query {
            stamp: Some("CreatedDate"),
            since: Some(at(10)),
            ..Query::all("AccountHistory")
        };
        assert_eq!(
            history.select(&["Id"], Order::ByStamp).unwrap(),
            "SELECT Id FROM AccountHistory WHERE CreatedDate >= 2024-01-15T10:20:30Z ORDER BY CreatedDate, Id"
        );
        let whole = Query {
            stamp: None,
            since: Some(at(10)),
            ..Query::all("LoginHistory")
        };
        assert_eq!(
            whole.select(&["Id"], Order::ByStamp).unwrap(),
            "SELECT Id FROM LoginHistory"
        );
        assert_eq!(
            select_ids(
                "Contact",
                &["Id", "Name"],
                &["003000000000001AAA", "003000000000002AAA"]
            )
            .unwrap(),
            "SELECT Id, Name FROM Contact WHERE Id IN ('003000000000001AAA','003000000000002AAA')"
        );
    }

    #[test]
    fn records_by_id_keep_the_filter_and_leave_the_window_out() {
        let query = Query {
            filter: Some("LinkedEntityId IN ('001000000000001AAA')"),
            since: Some(at(10)),
            ..Query::all("ContentDocumentLink")
        };
        assert_eq!(
            query
                .select_ids(&["Id", "SystemModstamp"], &["06A000000000001AAA"])
                .unwrap(),
            "SELECT Id, SystemModstamp FROM ContentDocumentLink WHERE (LinkedEntityId IN ('001000000000001AAA')) AND Id IN ('06A000000000001AAA')"
        );
    }

    #[test]
    fn builds_select_with_checked_names() {
        assert_eq!(
            select_from("Contact", &["Id", "LastName", "Engagement_Score__c"]).unwrap(),
            "SELECT Id, LastName, Engagement_Score__c FROM Contact"
        );
    }

    #[test]
    fn refuses_injection_in_object_or_field() {
        let err = select_from("Contact WHERE Id != null", &["Id"]).unwrap_err();
        assert_eq!(err.what, "object");
        let err = select_from("Contact", &["Id", "Name FROM User --"]).unwrap_err();
        assert_eq!(err.what, "field");
        let err = Query {
            stamp: Some("CreatedDate OR Id != null"),
            since: Some(at(1)),
            ..Query::all("Contact")
        }
        .count()
        .unwrap_err();
        assert_eq!(err.what, "field");
    }
}
