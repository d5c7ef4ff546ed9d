//! The org's data model: object and field metadata (what describe reports and SOQL resolves
//! against, in the classic or the real [`Shape`]), the value type records are made of, and the
//! store that serves them.
//!
//! Records are never materialised: [`generate`] computes field *i* of record *n* from the seed on
//! demand, and [`store`] lays an overlay of changed records over that generated base.

pub mod generate;
pub mod schema;
pub mod store;

use std::borrow::Cow;
use std::cmp::Ordering;

use common::sfid::SalesforceId;

pub use schema::{FieldDef, FieldType, ObjectDef, ObjectKind, Schema, Shape};
pub use store::{Edit, Snapshot, Store, TableView};

/// One field value of one record, in the form SOQL compares and JSON renders.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// Every string-like type (string, textarea, picklist, multipicklist joined with `;`,
    /// email, phone, url, anyType).
    Text(Cow<'static, str>),
    /// `id` and `reference` fields; compared on the case-sensitive 15-char core.
    Id(SalesforceId),
    Bool(bool),
    Int(i64),
    /// `double`, `currency` and `percent`; rendered the way Java prints a double.
    Number(f64),
    /// Days since 1970-01-01.
    Date(i32),
    /// Milliseconds since the Unix epoch, UTC.
    DateTime(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// SOQL ordering between two non-null values of the same field. Text compares without
    /// case (Salesforce sorts and filters strings case-insensitively in English locales);
    /// Ids compare on their 15-char core. `None` when either side is null or the kinds differ.
    pub fn soql_cmp(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Text(a), Value::Text(b)) => Some(cmp_ignore_case(a, b)),
            (Value::Id(a), Value::Id(b)) => Some(a.core().cmp(b.core())),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Number(a), Value::Number(b)) => a.partial_cmp(b),
            (Value::Int(a), Value::Number(b)) => (*a as f64).partial_cmp(b),
            (Value::Number(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::DateTime(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Case-insensitive comparison by uppercased characters, as SOQL does for English locales.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        return a
            .iter()
            .map(u8::to_ascii_uppercase)
            .cmp(b.iter().map(u8::to_ascii_uppercase));
    }
    a.chars()
        .flat_map(char::to_uppercase)
        .cmp(b.chars().flat_map(char::to_uppercase))
}
