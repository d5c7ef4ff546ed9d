//! Writes query results as JSON text directly into a `String`: this is the fake's hot path
//! (150 pages of 2000 Contacts per 300k import), so no intermediate `serde_json::Value`.

use std::fmt::Write as _;

use crate::calendar::{write_date, write_datetime};
use crate::data::schema::{COMPOUND_KEYS, Compound};
use crate::data::{FieldType, TableView, Value};
use crate::soql::SelectItem;
use crate::soql::eval::Tables;

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    // Most values need no escape at all: skip the blocks that cannot need one.
    // (A block boundary may split a character; escapes are ASCII, so `start..i` never does.)
    let clean = common::scan::clean_prefix(bytes, needs_escape);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends a double the way Java's `Double.toString` prints it, which is what Salesforce
/// emits: `42.5`, `250000.0`, and scientific `9.9213206E7` from 10^7 up (and below 10^-3).
pub fn write_java_double(out: &mut String, v: f64) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    let a = v.abs();
    if a == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0.0" } else { "0.0" });
    } else if (1e-3..1e7).contains(&a) {
        let start = out.len();
        let _ = write!(out, "{v}");
        if !out[start..].contains('.') {
            out.push_str(".0");
        }
    } else {
        // Rust's shortest round-trip digits, reshaped from `1.5e7` into Java's `1.5E7`.
        let s = format!("{v:e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        out.push('E');
        out.push_str(exponent);
    }
}

pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Text(s) => write_str(out, s),
        Value::Id(id) => {
            out.push('"');
            out.push_str(id.as_str());
            out.push('"');
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Number(x) => write_java_double(out, *x),
        Value::Date(d) => {
            out.push('"');
            write_date(out, i64::from(*d));
            out.push('"');
        }
        Value::DateTime(ms) => {
            out.push('"');
            write_datetime(out, *ms);
            out.push('"');
        }
    }
}

/// Appends `"attributes":{"type":…,"url":…}` for one record.
fn write_attributes(out: &mut String, version: &str, name: &str, id: &str) {
    out.push_str("\"attributes\":{\"type\":\"");
    out.push_str(name);
    out.push_str("\",\"url\":\"/services/data/");
    out.push_str(version);
    out.push_str("/sobjects/");
    out.push_str(name);
    out.push('/');
    out.push_str(id);
    out.push_str("\"}");
}

/// Appends one record: attributes first, then the selected fields in SELECT order.
pub fn write_record(
    out: &mut String,
    tables: &Tables<'_>,
    select: &[SelectItem],
    index: u32,
    version: &str,
) {
    let main = &tables.main;
    let def = main.def();
    out.push('{');
    write_attributes(out, version, def.name, main.id(index).as_str());
    for item in select {
        out.push(',');
        match item {
            SelectItem::Field(f) => {
                let field = &def.fields[*f];
                write_str(out, field.name);
                out.push(':');
                match &field.compound {
                    Some(parts) => write_compound(out, main, index, field.ty, parts),
                    None => write_value(out, &main.value(index, *f)),
                }
            }
            SelectItem::Parent { via, fields } => {
                let rel = def.fields[*via].relationship_name.unwrap_or_default();
                write_str(out, rel);
                out.push(':');
                match tables.parent_of(index, *via) {
                    None => out.push_str("null"),
                    Some((parent, p)) => {
                        let pdef = parent.def();
                        out.push('{');
                        write_attributes(out, version, pdef.name, parent.id(p).as_str());
                        for f in fields {
                            let field = &pdef.fields[*f];
                            out.push(',');
                            write_str(out, field.name);
                            out.push(':');
                            match &field.compound {
                                Some(parts) => write_compound(out, parent, p, field.ty, parts),
                                None => write_value(out, &parent.value(p, *f)),
                            }
                        }
                        out.push('}');
                    }
                }
            }
        }
    }
    out.push('}');
}

/// Appends a compound field as REST nests it beside its components: an address has every
/// key of [`COMPOUND_KEYS`] (`{"city":…,"country":…,"geocodeAccuracy":…,"latitude":…,
/// "longitude":…,"postalCode":…,"state":…,"street":…}`, the keys a real org sends when state
/// and country picklists are off), a location only `latitude` and `longitude`. A compound
/// whose components are all null is `null` itself (observed behaviour, not documented).
fn write_compound(
    out: &mut String,
    view: &TableView<'_>,
    index: u32,
    ty: FieldType,
    parts: &Compound,
) {
    let values: Vec<(&str, Value)> = COMPOUND_KEYS
        .iter()
        .zip(&parts.parts)
        .filter(|(key, _)| ty == FieldType::Address || matches!(**key, "latitude" | "longitude"))
        .map(|(key, part)| (*key, part.map_or(Value::Null, |f| view.value(index, f))))
        .collect();
    if values.iter().all(|(_, v)| v.is_null()) {
        out.push_str("null");
        return;
    }
    out.push('{');
    for (n, (key, value)) in values.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        write_value(out, value);
    }
    out.push('}');
}

/// One page of a query result. `next` is the nextRecordsUrl, absent on the last page.
pub fn write_page(
    tables: &Tables<'_>,
    select: &[SelectItem],
    indices: &[u32],
    total: usize,
    next: Option<&str>,
    version: &str,
) -> String {
    let mut out = String::with_capacity(128 + indices.len() * 900);
    let _ = write!(out, "{{\"totalSize\":{total},\"done\":{}", next.is_none());
    if let Some(url) = next {
        out.push_str(",\"nextRecordsUrl\":");
        write_str(&mut out, url);
    }
    out.push_str(",\"records\":[");
    for (n, &i) in indices.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        write_record(&mut out, tables, select, i, version);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn double(v: f64) -> String {
        let mut s = String::new();
        write_java_double(&mut s, v);
        s
    }

    #[test]
    fn doubles_print_like_java() {
        assert_eq!(double(42.5), "42.5");
        assert_eq!(double(250_000.0), "250000.0");
        assert_eq!(double(99_213_206.0), "9.9213206E7");
        assert_eq!(double(5e7), "5.0E7");
        assert_eq!(double(9_999_999.99), "9999999.99");
        assert_eq!(double(10_000_000.0), "1.0E7");
        assert_eq!(double(0.0), "0.0");
        assert_eq!(double(0.0005), "5.0E-4");
        assert_eq!(double(-1234.5), "-1234.5");
        assert_eq!(double(12_345_678.25), "1.234567825E7");
    }

    #[test]
    fn strings_escape_what_json_requires() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\nd\te\u{1}Zürich 北京 😀");
        assert_eq!(s, r#""a\"b\\c\nd\te\u0001Zürich 北京 😀""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\te\u{1}Zürich 北京 😀");
        // Escapes after clean 16-byte blocks, with characters straddling the block boundaries.
        for prefix in [
            "",
            "x",
            "xy",
            "Zürich 北京 😀 Zürich 北京 😀 ",
            "0123456789abcdef",
        ] {
            for tail in [
                "",
                "\"",
                "北\n京",
                "plain 😀 text that runs past a block",
                "\u{1f}",
            ] {
                let text = format!("{prefix}{tail}{prefix}");
                let mut s = String::new();
                write_str(&mut s, &text);
                assert_eq!(s, serde_json::to_string(&text).unwrap(), "{text:?}");
            }
        }
    }
}
