//! A small SOQL dialect: the parsed query ([`Query`]), the Salesforce-shaped errors that parsing
//! and resolving produce, and evaluation against the store ([`eval`]).
//!
//! Supported: `SELECT fields | COUNT() FROM Object [WHERE …] [ORDER BY …] [LIMIT n] [OFFSET n]`,
//! with child-to-parent paths (`Account.Name`), `AND`/`OR`/`NOT`, parentheses, comparisons,
//! `IN`, `NOT IN` and `LIKE`.

pub mod eval;
mod lexer;
mod parser;

use crate::data::{ObjectKind, Value};

pub use lexer::{parse_date, parse_datetime};
pub use parser::parse;

/// A field the query reads: on the queried object, or on the parent a lookup points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldRef {
    Own(usize),
    /// `via` is the reference field on the queried object (`AccountId` for `Account.Name`).
    Parent {
        via: usize,
        field: usize,
    },
}

/// One entry of the rendered record, in SELECT order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SelectItem {
    Field(usize),
    /// All fields selected through one relationship, rendered as a nested object at the
    /// position of the first of them.
    Parent {
        via: usize,
        fields: Vec<usize>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Selection {
    Count,
    Fields(Vec<SelectItem>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp {
        field: FieldRef,
        op: Op,
        value: Value,
    },
    In {
        field: FieldRef,
        values: Vec<Value>,
        negated: bool,
    },
    Like {
        field: FieldRef,
        pattern: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderKey {
    pub field: FieldRef,
    pub descending: bool,
    pub nulls_last: bool,
}

/// A parsed and resolved query.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    pub object: ObjectKind,
    pub selection: Selection,
    /// Selected fields in SELECT order, one per column (empty for `COUNT()`): the Bulk CSV
    /// layout.
    pub columns: Vec<FieldRef>,
    pub filter: Option<Expr>,
    pub order: Vec<OrderKey>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// A query Salesforce would refuse: HTTP 400 with this `errorCode` and message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SoqlError {
    pub code: &'static str,
    pub message: String,
}

impl SoqlError {
    /// An error pointing at byte `pos` of `soql`, in Salesforce's layout: the offending line,
    /// a caret under the column, `ERROR at Row:R:Column:C`, then the reason.
    fn at(code: &'static str, soql: &str, pos: usize, reason: impl Into<String>) -> Self {
        let pos = pos.min(soql.len());
        let line_start = soql[..pos].rfind('\n').map_or(0, |i| i + 1);
        let row = soql[..pos].matches('\n').count() + 1;
        let column = soql[line_start..pos].chars().count() + 1;
        // Trailing blanks are not echoed (a recorded INVALID_TYPE answer to
        // `SELECT Xyzzy FROM Xyzzy ` shows the line without them).
        let line = soql[line_start..].lines().next().unwrap_or("").trim_end();
        SoqlError {
            code,
            message: format!(
                "\n{line}\n{caret:>column$}\nERROR at Row:{row}:Column:{column}\n{reason}",
                caret = "^",
                reason = reason.into()
            ),
        }
    }

    fn malformed(soql: &str, pos: usize, reason: impl Into<String>) -> Self {
        Self::at("MALFORMED_QUERY", soql, pos, reason)
    }

    fn no_such_column(soql: &str, pos: usize, column: &str, entity: &str) -> Self {
        Self::at(
            "INVALID_FIELD",
            soql,
            pos,
            format!(
                "No such column '{column}' on entity '{entity}'. If you are attempting to use a \
                 custom field, be sure to append the '__c' after the custom field name. Please \
                 reference your WSDL or the describe call for the appropriate names."
            ),
        )
    }
}
