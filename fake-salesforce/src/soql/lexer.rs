//! Splits SOQL text into tokens, each remembering its byte offset for error positions.
//! Date and datetime literals are unquoted in SOQL, so they are recognised here.

use super::{Op, SoqlError};
use crate::calendar::{days_from_civil, days_in_month};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// Identifiers, keywords and dotted field paths, as written.
    Word(String),
    /// A quoted string with escapes resolved.
    Str(String),
    /// A numeric literal as written (sign included).
    Num(String),
    /// Days since the epoch.
    Date(i32),
    /// Millis since the epoch, UTC.
    DateTime(i64),
    Comma,
    LParen,
    RParen,
    Op(Op),
    Eof,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offset in the SOQL text.
    pub pos: usize,
    /// The token's source text, for `unexpected token:` messages.
    pub text: String,
}

pub fn tokenize(soql: &str) -> Result<Vec<Token>, SoqlError> {
    let bytes = soql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = match c {
            b',' => {
                i += 1;
                Tok::Comma
            }
            b'(' => {
                i += 1;
                Tok::LParen
            }
            b')' => {
                i += 1;
                Tok::RParen
            }
            b'=' => {
                i += 1;
                Tok::Op(Op::Eq)
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                Tok::Op(Op::Ne)
            }
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => {
                    i += 2;
                    Tok::Op(Op::Le)
                }
                Some(b'>') => {
                    i += 2;
                    Tok::Op(Op::Ne)
                }
                _ => {
                    i += 1;
                    Tok::Op(Op::Lt)
                }
            },
            b'>' => {
                if bytes.get(i + 1) == Some(&b'=') {
                    i += 2;
                    Tok::Op(Op::Ge)
                } else {
                    i += 1;
                    Tok::Op(Op::Gt)
                }
            }
            b'\'' => {
                let (s, end) = string_literal(soql, i)?;
                i = end;
                Tok::Str(s)
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                if let Some((tok, end)) = temporal_literal(bytes, i) {
                    i = end;
                    tok
                } else {
                    let end = number_end(bytes, i);
                    if end == i {
                        return Err(SoqlError::malformed(soql, i, unexpected(soql, i)));
                    }
                    i = end;
                    Tok::Num(soql[start..end].to_owned())
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                Tok::Word(soql[start..i].to_owned())
            }
            _ => return Err(SoqlError::malformed(soql, i, unexpected(soql, i))),
        };
        out.push(Token {
            tok,
            pos: start,
            text: soql[start..i].to_owned(),
        });
    }
    out.push(Token {
        tok: Tok::Eof,
        pos: soql.len(),
        text: "<EOF>".to_owned(),
    });
    Ok(out)
}

fn unexpected(soql: &str, i: usize) -> String {
    let c = soql[i..].chars().next().unwrap_or(' ');
    format!("unexpected token: '{c}'")
}

/// A `'…'` literal starting at `start`; backslash escapes `\'`, `\\`, `\n`, `\t`, `\r`,
/// `\"`, `\%`, `\_` as SOQL defines them (`\%` and `\_` stay escaped for LIKE).
fn string_literal(soql: &str, start: usize) -> Result<(String, usize), SoqlError> {
    let mut out = String::new();
    let mut chars = soql[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '\'' => return Ok((out, start + 1 + off + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 'b')) => out.push('\u{8}'),
                Some((_, 'f')) => out.push('\u{c}'),
                Some((_, e @ ('%' | '_'))) => {
                    out.push('\\');
                    out.push(e);
                }
                Some((_, e @ ('\'' | '"' | '\\'))) => out.push(e),
                _ => {
                    return Err(SoqlError::malformed(
                        soql,
                        start + 1 + off,
                        "Invalid string literal. Illegal character sequence '\\' in string literal.",
                    ));
                }
            },
            c => out.push(c),
        }
    }
    Err(SoqlError::malformed(soql, start, "unexpected token: '''"))
}

fn number_end(bytes: &[u8], mut i: usize) -> usize {
    let start = i;
    if matches!(bytes.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits_start = i;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
        i += 1;
    }
    if i == digits_start
        || bytes[digits_start..i]
            .iter()
            .filter(|&&b| b == b'.')
            .count()
            > 1
    {
        return start;
    }
    i
}

fn digits(bytes: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = bytes.get(at..at + n)?;
    s.iter().all(u8::is_ascii_digit).then(|| {
        s.iter()
            .fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'))
    })
}

/// Parses a whole string as a datetime, `YYYY-MM-DDThh:mm:ss[.SSS](Z|±hh[:]mm)`, into epoch
/// millis: the forms SOQL literals and the REST date parameters accept.
pub fn parse_datetime(s: &str) -> Option<i64> {
    match temporal_literal(s.as_bytes(), 0)? {
        (Tok::DateTime(ms), end) if end == s.len() => Some(ms),
        _ => None,
    }
}

/// Parses a whole string as a date, `YYYY-MM-DD`, into days since 1970-01-01: the form REST
/// record bodies carry.
pub fn parse_date(s: &str) -> Option<i32> {
    match temporal_literal(s.as_bytes(), 0)? {
        (Tok::Date(days), end) if end == s.len() => Some(days),
        _ => None,
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDThh:mm:ss[.SSS](Z|±hh[:]mm)` at `i`.
fn temporal_literal(bytes: &[u8], i: usize) -> Option<(Tok, usize)> {
    let year = digits(bytes, i, 4)?;
    if bytes.get(i + 4) != Some(&b'-') || bytes.get(i + 7) != Some(&b'-') {
        return None;
    }
    let month = digits(bytes, i + 5, 2)?;
    let day = digits(bytes, i + 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year.into(), month) {
        return None;
    }
    let days = days_from_civil(year.into(), month, day);
    let mut j = i + 10;
    if bytes.get(j) != Some(&b'T') {
        return Some((Tok::Date(days as i32), j));
    }
    let (h, m, s) = (
        digits(bytes, j + 1, 2)?,
        digits(bytes, j + 4, 2)?,
        digits(bytes, j + 7, 2)?,
    );
    if bytes.get(j + 3) != Some(&b':')
        || bytes.get(j + 6) != Some(&b':')
        || h > 23
        || m > 59
        || s > 59
    {
        return None;
    }
    j += 9;
    let mut millis = 0i64;
    if bytes.get(j) == Some(&b'.') {
        let start = j + 1;
        j = start;
        while j < bytes.len() && bytes[j].is_ascii_digit() {
            j += 1;
        }
        let frac = bytes.get(start..j)?;
        if frac.is_empty() {
            return None;
        }
        // Milliseconds: the first three digits, right-padded.
        millis = (0..3)
            .map(|k| frac.get(k).map_or(0, |b| i64::from(b - b'0')))
            .fold(0, |acc, d| acc * 10 + d);
    }
    let offset_min: i64 = match bytes.get(j) {
        Some(b'Z') => {
            j += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(bytes, j + 1, 2)?;
            let colon = usize::from(bytes.get(j + 3) == Some(&b':'));
            let om = digits(bytes, j + 3 + colon, 2)?;
            j += 5 + colon;
            let total = i64::from(oh * 60 + om);
            if sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let secs = days * 86_400 + i64::from(h * 3600 + m * 60 + s) - offset_min * 60;
    Some((Tok::DateTime(secs * 1000 + millis), j))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn datetime_literal_forms_agree() {
        let want = Tok::DateTime(1_705_314_030_000);
        for s in [
            "2024-01-15T10:20:30Z",
            "2024-01-15T10:20:30.000Z",
            "2024-01-15T10:20:30+00:00",
            "2024-01-15T10:20:30.000+0000",
            "2024-01-15T05:20:30-05:00",
        ] {
            assert_eq!(toks(s), vec![want.clone(), Tok::Eof], "{s}");
        }
        assert_eq!(
            toks("2024-01-15"),
            vec![Tok::Date(days_from_civil(2024, 1, 15) as i32), Tok::Eof]
        );
    }

    #[test]
    fn strings_numbers_and_operators() {
        assert_eq!(
            toks(r"Name = 'O\'Brien' AND x<>-1.5"),
            vec![
                Tok::Word("Name".into()),
                Tok::Op(Op::Eq),
                Tok::Str("O'Brien".into()),
                Tok::Word("AND".into()),
                Tok::Word("x".into()),
                Tok::Op(Op::Ne),
                Tok::Num("-1.5".into()),
                Tok::Eof
            ]
        );
        assert!(tokenize("Name = 'open").is_err());
        assert!(tokenize("Name = \"x\"").is_err());
    }
}
