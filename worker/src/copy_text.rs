//! Writing record values in PostgreSQL's COPY text format: tab-separated, `\N` for null,
//! backslash escapes for the characters that would end a field or a row.
//!
//! Values go in as text and PostgreSQL casts them to the column type in the upsert, so numbers
//! pass through as Salesforce wrote them (`9.9213206E7` included) and datetimes with `+0000`.

use serde_json::value::RawValue;

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("contains a NUL character, which PostgreSQL text cannot store")]
    Nul,
    #[error("is not valid JSON: {0}")]
    Json(String),
}

/// Appends one field (without separator) for a raw JSON value.
pub fn push_value(out: &mut Vec<u8>, raw: &RawValue) -> Result<(), ValueError> {
    let text = raw.get();
    match text.as_bytes().first() {
        None => push_null(out),
        Some(b'n') if text == "null" => push_null(out),
        Some(b'"') => {
            // Unescape only when the string has escapes; most values have none.
            if text.contains('\\') {
                let s: String =
                    serde_json::from_str(text).map_err(|e| ValueError::Json(e.to_string()))?;
                push_text(out, &s)?;
            } else {
                push_text(out, &text[1..text.len() - 1])?;
            }
        }
        // Numbers and booleans are already in a form PostgreSQL parses; objects and arrays
        // (compound values) become JSON text for a jsonb or text column.
        Some(_) => push_text(out, text)?,
    }
    Ok(())
}

pub fn push_null(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\\N");
}

/// Appends text with COPY's escapes.
pub fn push_text(out: &mut Vec<u8>, s: &str) -> Result<(), ValueError> {
    for &b in s.as_bytes() {
        match b {
            0 => return Err(ValueError::Nul),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            _ => out.push(b),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(json: &str) -> Result<String, ValueError> {
        let raw = RawValue::from_string(json.to_owned()).unwrap();
        let mut out = Vec::new();
        push_value(&mut out, &raw)?;
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
    fn refuses_nul() {
        assert_eq!(enc(r#""a\u0000b""#), Err(ValueError::Nul));
    }
}
