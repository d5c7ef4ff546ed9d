//! The value builders recipes use: names, phones, streets, money, free text, and the
//! formula and NUL variations of a value.

use std::borrow::Cow;

use super::lists::*;
use crate::data::Value;

/// A formula's value after `epoch` recalculations: always different from the last one.
pub(super) fn recalculated(base: Value, epoch: u32) -> Value {
    match base {
        Value::Number(x) => Value::Number(x + f64::from(epoch)),
        Value::Int(n) => Value::Int(n + i64::from(epoch)),
        Value::Date(d) => Value::Date(d + epoch as i32),
        Value::DateTime(t) => Value::DateTime(t + i64::from(epoch) * 1000),
        Value::Bool(b) => Value::Bool(b ^ (epoch % 2 == 1)),
        Value::Text(s) => Value::Text(Cow::Owned(format!("{s} (recalculated {epoch})"))),
        Value::Null => Value::Text(Cow::Owned(format!("recalculated {epoch}"))),
        id @ Value::Id(_) => id,
    }
}

pub(super) fn text(s: &'static str) -> Value {
    Value::Text(Cow::Borrowed(s))
}

/// Lowercase ASCII letters and digits of `s`, for e-mail local parts and domains.
pub(super) fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if out.is_empty() { "x".to_owned() } else { out }
}

pub(super) fn phone(h: u64) -> Value {
    let s = if h.is_multiple_of(5) {
        format!(
            "+41 44 {:03} {:02} {:02}",
            h % 1000,
            (h >> 10) % 100,
            (h >> 20) % 100
        )
    } else {
        format!(
            "({:03}) 555-{:04}",
            200 + (h >> 4) % 800,
            (h >> 14) % 10_000
        )
    };
    Value::Text(Cow::Owned(s))
}

pub(super) fn street(h: u64) -> Value {
    let name = STREETS[(h % STREETS.len() as u64) as usize];
    let number = (h >> 8) % 9_999 + 1;
    // Some addresses span lines, as a textarea may.
    let s = if (h >> 24).is_multiple_of(4) {
        format!("{number} {name}\nSuite {}", (h >> 32) % 900 + 100)
    } else {
        format!("{number} {name}")
    };
    Value::Text(Cow::Owned(s))
}

/// Whole-currency revenue: half below 1e7 (printed plain, `250000.0`), half at or above it
/// (printed as Java does, `9.9213206E7`).
pub(super) fn revenue(h: u64) -> f64 {
    match h % 4 {
        0 => ((h >> 8) % 9_900 + 100) as f64 * 1000.0,
        1 => ((h >> 8) % 9_999_000 + 1_000) as f64,
        2 => ((h >> 8) % 990_000_000 + 10_000_000) as f64,
        _ => ((h >> 8) % 20 + 1) as f64 * 5_000_000.0,
    }
}

/// Two-decimal engagement score, mostly 0..100 and sometimes huge.
pub(super) fn score(h: u64) -> f64 {
    let cents = if h.is_multiple_of(20) {
        (h >> 8) % 10_000_000_000
    } else {
        (h >> 8) % 10_001
    };
    cents as f64 / 100.0
}

/// `n` with `scale` decimals (0 to 4).
pub(super) fn scaled(n: u64, scale: u32) -> f64 {
    n as f64 / 10f64.powi(scale.min(4) as i32)
}

/// A coordinate near `base`, with the five decimals geocoding gives.
pub(super) fn jitter(base: f64, h: u64) -> f64 {
    let offset = (h % 20_001) as f64 / 100_000.0 - 0.1;
    ((base + offset) * 100_000.0).round() / 100_000.0
}

/// One to three picklist values joined with `;`, in picklist order, no repeats.
pub(super) fn multi(list: &'static [&'static str], h: u64) -> Value {
    if list.is_empty() {
        return Value::Null;
    }
    let n = list.len() as u64;
    let mut picked: Vec<usize> = (0..=(h % 3))
        .map(|k| ((h >> (8 + 8 * k)) % n) as usize)
        .collect();
    picked.sort_unstable();
    picked.dedup();
    let joined: Vec<&str> = picked.into_iter().map(|p| list[p]).collect();
    Value::Text(Cow::Owned(joined.join(";")))
}

/// One to four words, cut at `max` characters (on a character boundary).
pub(super) fn words(h: u64, max: u32) -> Value {
    let n = h % 4 + 1;
    let mut s = String::new();
    for k in 0..n {
        if k > 0 {
            s.push(' ');
        }
        s.push_str(WORDS[((h >> (8 + 8 * k)) % WORDS.len() as u64) as usize]);
    }
    if let Some((cut, _)) = s.char_indices().nth(max.max(1) as usize) {
        s.truncate(cut);
    }
    Value::Text(Cow::Owned(s.trim_end().to_owned()))
}

pub(super) fn sentences(h: u64) -> Value {
    let first = SENTENCES[(h % SENTENCES.len() as u64) as usize];
    let s = if (h >> 8).is_multiple_of(3) {
        let second = SENTENCES[((h >> 16) % SENTENCES.len() as u64) as usize];
        format!("{first} {second}")
    } else {
        first.to_owned()
    };
    Value::Text(Cow::Owned(s))
}

/// Descriptions exercise every escaping path: nulls, line breaks, quotes, backslashes,
/// commas, tabs, non-ASCII text and long values.
pub(super) fn description(h: u64, last: &str) -> Value {
    let s = match h % 10 {
        0..=2 => return Value::Null,
        3 => format!(
            "Met at the {} conference. Interested in renewals.",
            EVENTS[(h >> 8) as usize % EVENTS.len()]
        ),
        4 => format!(
            "Call notes:\n- asked about pricing\n- follow up in Q{}\r\nSigned, {last}",
            (h >> 8) % 4 + 1
        ),
        5 => format!(
            "Said \"call me back\" after the \"{}\" demo, then left.",
            EVENTS[(h >> 8) as usize % EVENTS.len()]
        ),
        6 => format!(
            "Shared folder \\\\fs01\\sales\\{last}, see C:\\temp\\notes.txt, page {}",
            (h >> 8) % 50
        ),
        7 => "Prefers meetings in Zürich or São Paulo; visits 北京 yearly 🎉. Ça va? Naïve café."
            .to_owned(),
        8 => "Long-standing customer relationship; see the attached history. "
            .repeat(((h >> 8) % 100 + 5) as usize),
        _ => "Tab\tseparated, \"quoted\", back\\slash, Zürich\nSecond line 😀".to_owned(),
    };
    Value::Text(Cow::Owned(s))
}

/// `value` with a NUL character in the middle (a NUL alone for a null), as text imported
/// from other systems sometimes carries.
pub fn with_nul(value: Value) -> Value {
    match value {
        Value::Text(s) => {
            let mid = s.len() / 2;
            let cut = (0..=mid)
                .rev()
                .find(|&c| s.is_char_boundary(c))
                .unwrap_or(0);
            Value::Text(Cow::Owned(format!("{}\u{0}{}", &s[..cut], &s[cut..])))
        }
        Value::Null => Value::Text(Cow::Borrowed("\u{0}")),
        other => other,
    }
}
