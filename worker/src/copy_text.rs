//! Writing record values in PostgreSQL's COPY text format: tab-separated, `\N` for null,
//! backslash escapes for the characters that would end a field or a row.
//!
//! Values go in as text and PostgreSQL casts them to the column type in the upsert, so numbers
//! pass through as Salesforce wrote them (`9.9213206E7` included) and datetimes with `+0000`.
//!
//! PostgreSQL text cannot hold a NUL character, and real orgs return some (`\u0000` inside a
//! text value, typically pasted from another system). A NUL is removed from the value, and the
//! writers report how many they removed so that the worker can count and log it: storing the
//! rest of the value beats setting the whole record aside.

use serde_json::value::RawValue;

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("is not valid JSON: {0}")]
    Json(String),
}

/// Appends one field (without separator) for a raw JSON value; returns how many NUL
/// characters were removed from it.
pub fn push_value(out: &mut Vec<u8>, raw: &RawValue) -> Result<usize, ValueError> {
    let text = raw.get();
    let removed = match text.as_bytes().first() {
        None => {
            push_null(out);
            0
        }
        Some(b'n') if text == "null" => {
            push_null(out);
            0
        }
        Some(b'"') => {
            // Unescape only when the string has escapes; most values have none. A NUL can
            // only come escaped (`\u0000`): JSON strings hold no raw control characters.
            if text.contains('\\') {
                let s: String =
                    serde_json::from_str(text).map_err(|e| ValueError::Json(e.to_string()))?;
                push_text(out, &s)
            } else {
                push_text(out, &text[1..text.len() - 1])
            }
        }
        // Numbers and booleans are already in a form PostgreSQL parses; objects and arrays
        // (compound values) become JSON text for a jsonb or text column.
        Some(_) => push_text(out, text),
    };
    Ok(removed)
}

pub fn push_null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\N");
}

/// Appends text with COPY's escapes, leaving out NUL characters; returns how many it left out.
pub fn push_text(out: &mut Vec<u8>, s: &str) -> usize {
    let bytes = s.as_bytes();
    // Most values need no escape: skip the blocks that cannot need one, then copy the runs
    // between escapes whole.
    let clean = common::scan::clean_prefix(bytes, special);
    let mut start = 0;
    let mut removed = 0;
    for (i, &b) in bytes.iter().enumerate().skip(clean) {
        let escape: &[u8] = match b {
            0 => {
                removed += 1;
                b""
            }
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    removed
}

/// Whether COPY text needs an escape for `b` (or cannot hold it: NUL).
fn special(b: u8) -> bool {
    matches!(b, 0 | b'\\' | b'\n' | b'\r' | b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str) -> Result<String, ValueError> {
        let raw = RawValue::from_string(json.to_owned()).unwrap();
        let mut out = Vec::new();
        assert_eq!(push_value(&mut out, &raw)?, 0, "{json}");
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn encodes_each_json_form() {
        assert_eq!(enc("null").unwrap(), "\\N");
        assert_eq!(enc(r#""plain""#).unwrap(), "plain");
        assert_eq!(
            enc(r#""two\nlines\tand \"quotes\" \\ back""#).unwrap(),
            "two\\nlines\\tand \"quotes\" \\\\ back"
        );
        assert_eq!(enc(r#""Zürich 北京""#).unwrap(), "Zürich 北京");
        assert_eq!(enc("9.9213206E7").unwrap(), "9.9213206E7");
        assert_eq!(enc("true").unwrap(), "true");
        assert_eq!(enc(r#"{"city":"a\\b"}"#).unwrap(), r#"{"city":"a\\\\b"}"#);
    }

    #[test]
    fn nul_characters_are_left_out_and_counted() {
        let raw = RawValue::from_string(r#""a\u0000b\u0000\tc""#.to_owned()).unwrap();
        let mut out = Vec::new();
        assert_eq!(push_value(&mut out, &raw), Ok(2));
        assert_eq!(out, b"ab\\tc");
        let late = format!("{}\0{}", "x".repeat(40), "y".repeat(20));
        let mut out = Vec::new();
        assert_eq!(push_text(&mut out, &late), 1);
        assert_eq!(
            out,
            format!("{}{}", "x".repeat(40), "y".repeat(20)).as_bytes()
        );
    }

    #[test]
    fn escapes_anywhere_in_long_text() {
        // Escapes before, inside and after the first clean 16-byte blocks, and at block edges.
        let clean = "abcdefghijklmnop"; // 16 bytes
        for text in [
            format!("{clean}{clean}"),
            format!("{clean}\t{clean}"),
            format!("\\{clean}{clean}\n"),
            format!("{clean}{clean}\r"),
            format!("{}Zürich\t北京\n{clean}", &clean[..15]),
        ] {
            let mut out = Vec::new();
            assert_eq!(push_text(&mut out, &text), 0);
            let expected = text
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\t', "\\t");
            assert_eq!(String::from_utf8(out).unwrap(), expected, "{text:?}");
        }
    }
}
