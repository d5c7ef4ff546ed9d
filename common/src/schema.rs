//! Where Salesforce names and types meet PostgreSQL: identifier rules, table and column names,
//! and the column type for each Salesforce field type (the Heroku Connect conventions described
//! in `docs/architecture.md`, "The tables").
//!
//! Every object or field name that reaches SOQL or SQL passes [`check_api_name`] first, so a
//! name can never carry SQL or SOQL of its own.

/// Schema holding one table per synced object.
pub const TARGET_SCHEMA: &str = "salesforce";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} {name:?} is not a valid Salesforce API name: {reason}. API names start with a letter \
     and hold only letters, digits and single underscores (custom names end in __c)"
)]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
    pub reason: &'static str,
}

/// Checks a Salesforce API name (object or field) against Salesforce's identifier rules:
/// starts with an ASCII letter, holds only ASCII letters, digits and underscores, no
/// trailing underscore, no double underscore except before a suffix (`__c`, `__r`, `__s`, a
/// namespace prefix `ns__Name__c`), at most 80 characters.
pub fn check_api_name(what: &'static str, name: &str) -> Result<(), NameError> {
    let refuse = |reason| {
        Err(NameError {
            what,
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > 80 {
        return refuse("it is longer than 80 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return refuse("it does not start with a letter");
    }
    if let Some(_bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return refuse("it contains a character other than a letter, digit or underscore");
    }
    if name.ends_with('_') {
        return refuse("it ends with an underscore");
    }
    if name.contains("___") {
        return refuse("it contains three underscores in a row");
    }
    Ok(())
}

/// Table name for an object: `contact` for `Contact` (schema [`TARGET_SCHEMA`]).
pub fn table_name(object: &str) -> String {
    object.to_ascii_lowercase()
}

/// Column name for a field: `Id` becomes `sfid`, every other field its lower-cased name.
pub fn column_name(field: &str) -> String {
    if field.eq_ignore_ascii_case("Id") {
        "sfid".to_owned()
    } else {
        field.to_ascii_lowercase()
    }
}

/// Quotes an identifier for SQL. Names are checked before they get here; quoting is the second
/// line of defence and keeps reserved words (`type`, `name`) usable.
pub fn quote_ident(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// A table name chosen in `sfsync.toml` (`[objects.Contact] table = "people"`), refused with
/// the reason unless it is a plain PostgreSQL identifier: a lower-case letter, then lower-case
/// letters, digits and underscores, at most 63 bytes (PostgreSQL would silently cut a longer
/// one). Lower case only, so the name needs no quoting in a user's own SQL.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let refuse = |reason: &str| {
        Err(format!(
            "table {name:?} is not a plain PostgreSQL name: {reason}; use lower-case letters, \
             digits and underscores, starting with a letter"
        ))
    };
    if name.is_empty() {
        return refuse("it is empty");
    }
    if name.len() > 63 {
        return refuse("it is longer than 63 bytes");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return refuse("it does not start with a lower-case letter");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return refuse("it holds a character other than a lower-case letter, digit or underscore");
    }
    Ok(())
}

/// `salesforce."contact"`, for a table name from [`table_name`] or a checked override.
pub fn qualified(table: &str) -> String {
    format!("{}.{}", quote_ident(TARGET_SCHEMA), quote_ident(table))
}

/// What sfsync does with a field of a given Salesforce type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldPlan {
    /// Store it in a column of this PostgreSQL type.
    Column(&'static str),
    /// Leave it out of the query, with the reason (shown in logs).
    Skip(&'static str),
}

/// The column type for a Salesforce field type (describe's `type`).
pub fn plan_for_type(sf_type: &str) -> FieldPlan {
    use FieldPlan::*;
    match sf_type {
        "id" | "reference" => Column("varchar(18)"),
        "string" | "textarea" | "picklist" | "combobox" | "email" | "phone" | "url"
        | "encryptedstring" | "multipicklist" => Column("text"),
        "boolean" => Column("boolean"),
        "int" => Column("integer"),
        "long" => Column("bigint"),
        // numeric keeps every digit; Salesforce may send 9.9213206E7, which numeric accepts.
        "double" | "currency" | "percent" => Column("numeric"),
        "date" => Column("date"),
        "datetime" => Column("timestamptz"),
        "time" => Column("time"),
        "anyType" | "json" | "complexvalue" | "datacategorygroupreference" => Column("text"),
        // Compound values duplicate their component fields, which are synced on their own,
        // and the Bulk API cannot select them: leaving them out keeps both APIs alike.
        "address" | "location" => {
            Skip("compound field; its components are synced as their own columns")
        }
        // REST returns a URL, not the bytes; fetching blobs is a separate feature.
        "base64" => Skip("blob field; its bytes need a separate call per record"),
        _ => Column("text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_salesforce_rules() {
        for ok in [
            "Contact",
            "Engagement_Score__c",
            "ns__Thing__c",
            "Account",
            "X1",
        ] {
            assert_eq!(check_api_name("object", ok), Ok(()), "{ok}");
        }
        for bad in [
            "Contact; DROP TABLE x",
            "",
            "1abc",
            "_x",
            "a_",
            "a___b",
            "Con\"tact",
            "a b",
            "é",
        ] {
            assert!(check_api_name("object", bad).is_err(), "{bad} accepted");
        }
        let err = check_api_name("object", "Contact; DROP TABLE x").unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"object "Contact; DROP TABLE x" is not a valid Salesforce API name"#
            ),
            "{err}"
        );
    }

    #[test]
    fn names_map_to_heroku_connect_columns() {
        assert_eq!(column_name("Id"), "sfid");
        assert_eq!(column_name("LastName"), "lastname");
        assert_eq!(column_name("Engagement_Score__c"), "engagement_score__c");
        assert_eq!(
            qualified(&table_name("Contact")),
            r#""salesforce"."contact""#
        );
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
    }

    #[test]
    fn table_overrides_are_plain_names() {
        assert_eq!(check_table_name("people_2"), Ok(()));
        for bad in [
            "",
            "People",
            "2people",
            "peo ple",
            "people;drop",
            "_x",
            &"a".repeat(64),
        ] {
            assert!(check_table_name(bad).is_err(), "{bad} accepted");
        }
        assert!(
            check_table_name("People")
                .unwrap_err()
                .starts_with(r#"table "People" is not a plain PostgreSQL name: it does not start with a lower-case letter"#)
        );
    }

    #[test]
    fn types_map_to_columns() {
        assert_eq!(plan_for_type("datetime"), FieldPlan::Column("timestamptz"));
        assert_eq!(plan_for_type("date"), FieldPlan::Column("date"));
        assert_eq!(plan_for_type("boolean"), FieldPlan::Column("boolean"));
        assert_eq!(plan_for_type("currency"), FieldPlan::Column("numeric"));
        assert_eq!(plan_for_type("double"), FieldPlan::Column("numeric"));
        assert_eq!(plan_for_type("int"), FieldPlan::Column("integer"));
        assert_eq!(plan_for_type("reference"), FieldPlan::Column("varchar(18)"));
        assert_eq!(plan_for_type("multipicklist"), FieldPlan::Column("text"));
        assert!(matches!(plan_for_type("address"), FieldPlan::Skip(_)));
        assert!(matches!(plan_for_type("base64"), FieldPlan::Skip(_)));
    }
}
