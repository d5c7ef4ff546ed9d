//! Bulk API 2.0 result CSV: a header row of field names (`Account.Name` for parent fields),
//! then one row per record with every value double-quoted (quotes doubled, line breaks and
//! delimiters kept inside the quotes), null as an empty unquoted field, booleans
//! `true`/`false`, numbers as in REST JSON, dates `YYYY-MM-DD` and datetimes
//! `YYYY-MM-DDThh:mm:ss.000Z`.

use std::fmt::Write as _;

use crate::calendar::{write_date, write_datetime};
use crate::data::{ObjectDef, Schema, Value};
use crate::render::write_java_double;
use crate::soql::FieldRef;
use crate::soql::eval::Tables;

/// `columnDelimiter` of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delimiter {
    Backquote,
    Caret,
    Comma,
    Pipe,
    Semicolon,
    Tab,
}

impl Delimiter {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "BACKQUOTE" => Delimiter::Backquote,
            "CARET" => Delimiter::Caret,
            "COMMA" => Delimiter::Comma,
            "PIPE" => Delimiter::Pipe,
            "SEMICOLON" => Delimiter::Semicolon,
            "TAB" => Delimiter::Tab,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Delimiter::Backquote => "BACKQUOTE",
            Delimiter::Caret => "CARET",
            Delimiter::Comma => "COMMA",
            Delimiter::Pipe => "PIPE",
            Delimiter::Semicolon => "SEMICOLON",
            Delimiter::Tab => "TAB",
        }
    }

    pub fn char(self) -> char {
        match self {
            Delimiter::Backquote => '`',
            Delimiter::Caret => '^',
            Delimiter::Comma => ',',
            Delimiter::Pipe => '|',
            Delimiter::Semicolon => ';',
            Delimiter::Tab => '\t',
        }
    }
}

/// How one results file is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub delimiter: Delimiter,
    /// `CRLF` when true, `LF` otherwise.
    pub crlf: bool,
}

impl Layout {
    fn end_line(self, out: &mut String) {
        out.push_str(if self.crlf { "\r\n" } else { "\n" });
    }
}

fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for (n, part) in s.split('"').enumerate() {
        if n > 0 {
            out.push_str("\"\"");
        }
        out.push_str(part);
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &Value) {
    if v.is_null() {
        return;
    }
    out.push('"');
    match v {
        Value::Null => {}
        Value::Text(s) => {
            out.pop();
            write_quoted(out, s);
            return;
        }
        Value::Id(id) => out.push_str(id.as_str()),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Number(x) => write_java_double(out, *x),
        Value::Date(d) => write_date(out, i64::from(*d)),
        Value::DateTime(ms) => {
            write_datetime(out, *ms);
            // REST writes `+0000`; the CSV form ends in `Z`.
            out.truncate(out.len() - "+0000".len());
            out.push('Z');
        }
    }
    out.push('"');
}

/// The column name of a selected field: `Name`, or `Account.Name` through a relationship.
fn column_name(schema: &Schema, def: &ObjectDef, column: FieldRef) -> String {
    match column {
        FieldRef::Own(f) => def.fields[f].name.to_owned(),
        FieldRef::Parent { via, field } => {
            let via = &def.fields[via];
            let parent = schema.def(
                via.target
                    .expect("a relationship field references a served object"),
            );
            format!(
                "{}.{}",
                via.relationship_name.unwrap_or_default(),
                parent.fields[field].name
            )
        }
    }
}

/// Appends the header row: the selected fields in SELECT order.
pub fn write_header(out: &mut String, tables: &Tables<'_>, columns: &[FieldRef], layout: Layout) {
    for (n, column) in columns.iter().enumerate() {
        if n > 0 {
            out.push(layout.delimiter.char());
        }
        write_quoted(
            out,
            &column_name(tables.schema(), tables.main.def(), *column),
        );
    }
    layout.end_line(out);
}

/// Appends one row per record in `indices`.
pub fn write_rows(
    out: &mut String,
    tables: &Tables<'_>,
    columns: &[FieldRef],
    indices: &[u32],
    layout: Layout,
) {
    for &i in indices {
        for (n, column) in columns.iter().enumerate() {
            if n > 0 {
                out.push(layout.delimiter.char());
            }
            write_value(out, &tables.value(i, *column));
        }
        layout.end_line(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &Value) -> String {
        let mut s = String::new();
        write_value(&mut s, v);
        s
    }

    #[test]
    fn values_are_quoted_and_escaped() {
        use std::borrow::Cow;
        assert_eq!(value(&Value::Null), "");
        assert_eq!(
            value(&Value::Text(Cow::Borrowed("a \"b\",\nc"))),
            "\"a \"\"b\"\",\nc\""
        );
        assert_eq!(value(&Value::Bool(true)), "\"true\"");
        assert_eq!(value(&Value::Number(5e7)), "\"5.0E7\"");
        assert_eq!(
            value(&Value::DateTime(1_709_634_030_000)),
            "\"2024-03-05T10:20:30.000Z\""
        );
    }
}
