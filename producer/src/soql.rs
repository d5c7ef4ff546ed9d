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

#[cfg(test)]
mod tests {
    use super::*;

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
