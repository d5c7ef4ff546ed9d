//! The deterministic generator: Ids and field values as pure functions of
//! (seed, object, record index, field), computed on demand with splitmix64.

use std::borrow::Cow;

use common::sfid::SalesforceId;

use super::Value;
use super::schema::{ACCOUNT_TYPES, INDUSTRIES, LEAD_SOURCES, ObjectKind, account, contact};
use crate::calendar::days_from_civil;

/// Base-62 digits in ASCII order, so the byte order of an encoded counter is its numeric order.
pub const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// 2023-01-01T00:00:00Z in seconds: every generated timestamp lies within a year after it.
const EPOCH_BASE_S: i64 = 1_672_531_200;
const DAY_S: i64 = 86_400;
const YEAR_S: i64 = 365 * DAY_S;
/// Every generated timestamp (epoch millis) lies before this instant (2024-01-01T00:00:00Z),
/// so anything stamped at or after it was changed after the org was generated.
pub const GENERATED_BEFORE_MS: i64 = (EPOCH_BASE_S + YEAR_S) * 1000;

/// splitmix64's finaliser: a cheap, well-mixed hash step.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Writes `n` as `out.len()` base-62 digits, most significant first.
pub fn base62_into(out: &mut [u8], mut n: u64) {
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
}

fn base62_value(c: u8) -> Option<u64> {
    BASE62.iter().position(|&b| b == c).map(|p| p as u64)
}

/// Salts naming the independent random draws made for a record.
mod salt {
    pub const STAMP: u64 = 1;
    pub const LAST_MOD: u64 = 2;
    pub const CREATED: u64 = 3;
    pub const FIELD: u64 = 100;
}

/// Computes generated records. Holds no per-record state.
#[derive(Debug, Clone)]
pub struct Generator {
    seed_key: u64,
    /// Two base-62 characters after the key prefix, fixed per seed (like a pod identifier).
    infix: [u8; 2],
    /// How many generated Accounts exist, so that Contact.AccountId always resolves.
    accounts: u32,
}

impl Generator {
    pub fn new(seed: u64, accounts: u32) -> Self {
        let seed_key = mix(seed ^ 0x5F5F_5346_5359_4E43);
        let mut infix = [0u8; 2];
        base62_into(&mut infix, seed_key % (62 * 62));
        Generator {
            seed_key,
            infix,
            accounts,
        }
    }

    /// The Id of record `index`: key prefix, the seed's two characters, then the index in ten
    /// base-62 digits, so `ORDER BY Id` is index order.
    pub fn id(&self, obj: ObjectKind, index: u32) -> SalesforceId {
        let mut core = [0u8; 15];
        core[..3].copy_from_slice(obj.def().key_prefix.as_bytes());
        core[3..5].copy_from_slice(&self.infix);
        base62_into(&mut core[5..], u64::from(index));
        SalesforceId::from_core(core)
    }

    /// The record index an Id of this org names, if it is one of `obj`'s.
    pub fn index_of(&self, obj: ObjectKind, id: &SalesforceId) -> Option<u32> {
        let core = id.core().as_bytes();
        if &core[..3] != obj.def().key_prefix.as_bytes() || core[3..5] != self.infix {
            return None;
        }
        let mut n: u64 = 0;
        for &c in &core[5..] {
            n = n.checked_mul(62)?.checked_add(base62_value(c)?)?;
        }
        u32::try_from(n).ok()
    }

    fn hash(&self, obj: ObjectKind, index: u32, salt: u64) -> u64 {
        mix(mix(self.seed_key ^ ((obj as u64) << 32) ^ u64::from(index)) ^ salt)
    }

    fn field_hash(&self, obj: ObjectKind, index: u32, field: usize) -> u64 {
        self.hash(obj, index, salt::FIELD + field as u64)
    }

    /// `(CreatedDate, LastModifiedDate, SystemModstamp)` in epoch millis, ordered
    /// created <= last modified <= modstamp.
    pub fn stamps(&self, obj: ObjectKind, index: u32) -> (i64, i64, i64) {
        let h = self.hash(obj, index, salt::STAMP);
        // One in five records lands on one of 2000 four-hour slots, so modstamp ties occur at
        // every size (paging across equal SystemModstamps is what windowed sync gets wrong).
        let offset = if h.is_multiple_of(5) {
            ((h >> 8) % 2000) as i64 * 4 * 3600
        } else {
            ((h >> 8) % YEAR_S as u64) as i64
        };
        let stamp = EPOCH_BASE_S + offset;
        let h = self.hash(obj, index, salt::LAST_MOD);
        let last_mod = if h.is_multiple_of(3) {
            stamp
        } else {
            stamp - ((h >> 4) % (offset.min(30 * DAY_S) as u64 + 1)) as i64
        };
        let h = self.hash(obj, index, salt::CREATED);
        let created = if h.is_multiple_of(4) {
            last_mod
        } else {
            last_mod - ((h >> 4) % ((last_mod - EPOCH_BASE_S) as u64 + 1)) as i64
        };
        (created * 1000, last_mod * 1000, stamp * 1000)
    }

    /// Field `field` of generated record `index`.
    pub fn value(&self, obj: ObjectKind, index: u32, field: usize) -> Value {
        match obj {
            ObjectKind::Account => self.account_value(index, field),
            ObjectKind::Contact => self.contact_value(index, field),
        }
    }

    fn account_value(&self, i: u32, field: usize) -> Value {
        let obj = ObjectKind::Account;
        let h = self.field_hash(obj, i, field);
        let pick =
            |list: &'static [&'static str], h: u64| text(list[(h % list.len() as u64) as usize]);
        let nullable = |v: Value| if h % 100 < 8 { Value::Null } else { v };
        match field {
            account::ID => Value::Id(self.id(obj, i)),
            account::NAME => Value::Text(Cow::Owned(self.account_name(i))),
            account::TYPE => nullable(pick(ACCOUNT_TYPES, h >> 8)),
            account::INDUSTRY => nullable(pick(INDUSTRIES, h >> 8)),
            account::BILLING_CITY => nullable(text(self.city(obj, i).0)),
            account::BILLING_COUNTRY => nullable(text(self.city(obj, i).2)),
            account::PHONE => nullable(phone(h >> 8)),
            account::WEBSITE => nullable(Value::Text(Cow::Owned(format!(
                "https://www.{}.example.com",
                slug(&self.account_name(i))
            )))),
            account::ANNUAL_REVENUE => nullable(Value::Number(revenue(h >> 8))),
            account::NUMBER_OF_EMPLOYEES => nullable(Value::Int(((h >> 8) % 250_000 + 1) as i64)),
            account::CREATED_DATE => Value::DateTime(self.stamps(obj, i).0),
            account::LAST_MODIFIED_DATE => Value::DateTime(self.stamps(obj, i).1),
            account::SYSTEM_MODSTAMP => Value::DateTime(self.stamps(obj, i).2),
            account::IS_DELETED => Value::Bool(false),
            _ => Value::Null,
        }
    }

    fn account_name(&self, i: u32) -> String {
        let h = self.field_hash(ObjectKind::Account, i, account::NAME);
        let stem = COMPANY_STEMS[(h % COMPANY_STEMS.len() as u64) as usize];
        let noun = COMPANY_NOUNS[((h >> 16) % COMPANY_NOUNS.len() as u64) as usize];
        let suffix = COMPANY_SUFFIXES[((h >> 32) % COMPANY_SUFFIXES.len() as u64) as usize];
        format!("{stem} {noun} {suffix}")
    }

    /// `(city, state, country)` for a record's address.
    fn city(&self, obj: ObjectKind, i: u32) -> (&'static str, Option<&'static str>, &'static str) {
        let h = self.hash(obj, i, 7);
        CITIES[(h % CITIES.len() as u64) as usize]
    }

    fn first_name(&self, i: u32) -> Option<&'static str> {
        let h = self.field_hash(ObjectKind::Contact, i, contact::FIRST_NAME);
        (h % 100 >= 4).then(|| FIRST_NAMES[((h >> 8) % FIRST_NAMES.len() as u64) as usize])
    }

    fn last_name(&self, i: u32) -> &'static str {
        let h = self.field_hash(ObjectKind::Contact, i, contact::LAST_NAME);
        LAST_NAMES[((h >> 8) % LAST_NAMES.len() as u64) as usize]
    }

    fn contact_value(&self, i: u32, field: usize) -> Value {
        let obj = ObjectKind::Contact;
        let h = self.field_hash(obj, i, field);
        let pick =
            |list: &'static [&'static str], h: u64| text(list[(h % list.len() as u64) as usize]);
        let nullable = |v: Value| if h % 100 < 8 { Value::Null } else { v };
        match field {
            contact::ID => Value::Id(self.id(obj, i)),
            contact::ACCOUNT_ID => {
                if self.accounts == 0 || h.is_multiple_of(10) {
                    Value::Null
                } else {
                    let parent = ((h >> 8) % u64::from(self.accounts)) as u32;
                    Value::Id(self.id(ObjectKind::Account, parent))
                }
            }
            contact::FIRST_NAME => self.first_name(i).map_or(Value::Null, text),
            contact::LAST_NAME => text(self.last_name(i)),
            contact::EMAIL => nullable(Value::Text(Cow::Owned(format!(
                "{}.{}{}@example.{}",
                slug(self.first_name(i).unwrap_or("contact")),
                slug(self.last_name(i)),
                i,
                if (h >> 8).is_multiple_of(3) {
                    "org"
                } else {
                    "com"
                }
            )))),
            contact::PHONE => nullable(phone(h >> 8)),
            contact::TITLE => nullable(pick(TITLES, h >> 8)),
            contact::DEPARTMENT => nullable(pick(DEPARTMENTS, h >> 8)),
            contact::MAILING_STREET => nullable(street(h >> 8)),
            contact::MAILING_CITY => nullable(text(self.city(obj, i).0)),
            contact::MAILING_STATE => self
                .city(obj, i)
                .1
                .map_or(Value::Null, |s| nullable(text(s))),
            contact::MAILING_POSTAL_CODE => nullable(Value::Text(Cow::Owned(format!(
                "{:05}",
                (h >> 8) % 100_000
            )))),
            contact::MAILING_COUNTRY => nullable(text(self.city(obj, i).2)),
            contact::LEAD_SOURCE => nullable(pick(LEAD_SOURCES, h >> 8)),
            contact::BIRTHDATE => {
                let first = days_from_civil(1950, 1, 1) as i32;
                nullable(Value::Date(first + ((h >> 8) % (54 * 365)) as i32))
            }
            contact::HAS_OPTED_OUT_OF_EMAIL => Value::Bool(h.is_multiple_of(7)),
            contact::DESCRIPTION => description(h, self.last_name(i)),
            contact::CREATED_DATE => Value::DateTime(self.stamps(obj, i).0),
            contact::LAST_MODIFIED_DATE => Value::DateTime(self.stamps(obj, i).1),
            contact::SYSTEM_MODSTAMP => Value::DateTime(self.stamps(obj, i).2),
            contact::IS_DELETED => Value::Bool(false),
            contact::ENGAGEMENT_SCORE => nullable(Value::Number(score(h >> 8))),
            _ => Value::Null,
        }
    }
}

fn text(s: &'static str) -> Value {
    Value::Text(Cow::Borrowed(s))
}

/// Lowercase ASCII letters and digits of `s`, for e-mail local parts and domains.
fn slug(s: &str) -> String {
    let out: String = s
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if out.is_empty() { "x".to_owned() } else { out }
}

fn phone(h: u64) -> Value {
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

fn street(h: u64) -> Value {
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
fn revenue(h: u64) -> f64 {
    match h % 4 {
        0 => ((h >> 8) % 9_900 + 100) as f64 * 1000.0,
        1 => ((h >> 8) % 9_999_000 + 1_000) as f64,
        2 => ((h >> 8) % 990_000_000 + 10_000_000) as f64,
        _ => ((h >> 8) % 20 + 1) as f64 * 5_000_000.0,
    }
}

/// Two-decimal engagement score, mostly 0..100 and sometimes huge.
fn score(h: u64) -> f64 {
    let cents = if h.is_multiple_of(20) {
        (h >> 8) % 10_000_000_000
    } else {
        (h >> 8) % 10_001
    };
    cents as f64 / 100.0
}

/// Descriptions exercise every escaping path: nulls, line breaks, quotes, backslashes,
/// commas, tabs, non-ASCII text and long values.
fn description(h: u64, last: &str) -> Value {
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

const COMPANY_STEMS: &[&str] = &[
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Blue Harbor",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Zürich Rück",
    "São Paulo Têxtil",
    "北京科技",
    "O'Reilly & Sons",
    "Smith, Jones",
    "Müller",
    "Tyrell",
    "Cyberdyne",
    "Hooli",
    "Vandelay",
];
const COMPANY_NOUNS: &[&str] = &[
    "Logistics",
    "Software",
    "Foods",
    "Holdings",
    "Labs",
    "Media",
    "Energy",
    "Partners",
    "Industries",
    "Trading",
];
const COMPANY_SUFFIXES: &[&str] = &["Inc.", "LLC", "GmbH", "AG", "Ltd", "S.A.", "Corp.", "Group"];
const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "José",
    "Zoë",
    "Łukasz",
    "Søren",
    "Aisha",
    "Wei",
    "Ngozi",
    "Émilie",
    "Hiroshi",
    "Priya",
    "Chloé",
    "Björn",
    "Sofía",
    "Mohammed",
    "Olga",
    "Kai",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "O'Brien",
    "Müller",
    "García",
    "Nguyen",
    "van der Berg",
    "Smith-Jones",
    "Kowalski",
    "Dubois",
    "Tanaka",
    "Øvergaard",
    "Rossi",
    "Papadopoulos",
    "Ivanova",
    "Lee",
    "Chen",
    "王",
];
const TITLES: &[&str] = &[
    "CEO",
    "CFO",
    "VP, Sales",
    "Director of Engineering",
    "Account Manager",
    "Buyer",
    "Office Manager",
    "Software Engineer",
    "Head of Procurement",
    "Marketing Specialist",
];
const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Finance",
    "Engineering",
    "Procurement",
    "Marketing",
    "Operations",
    "Legal",
    "IT",
];
const STREETS: &[&str] = &[
    "Main St",
    "Market St",
    "Bahnhofstrasse",
    "Avenida Paulista",
    "Rue de Rivoli",
    "Elm Street",
    "High Street",
    "Königsallee",
];
const EVENTS: &[&str] = &["Dreamforce", "TrailheaDX", "World Tour", "Partner Summit"];
const CITIES: &[(&str, Option<&str>, &str)] = &[
    ("San Francisco", Some("CA"), "United States"),
    ("New York", Some("NY"), "United States"),
    ("Austin", Some("TX"), "United States"),
    ("Zürich", Some("ZH"), "Switzerland"),
    ("São Paulo", Some("SP"), "Brazil"),
    ("北京", Some("北京市"), "China"),
    ("München", Some("Bayern"), "Germany"),
    ("London", None, "United Kingdom"),
    ("Paris", Some("Île-de-France"), "France"),
    ("Tokyo", Some("東京都"), "Japan"),
    ("Québec", Some("QC"), "Canada"),
    ("Kraków", Some("Małopolskie"), "Poland"),
    ("Reykjavík", None, "Iceland"),
    ("Sydney", Some("NSW"), "Australia"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_ordered_and_reversible() {
        let g = Generator::new(1, 10);
        let mut prev = String::new();
        for i in [0u32, 1, 9, 10, 35, 36, 61, 62, 1000, 299_999, u32::MAX] {
            let id = g.id(ObjectKind::Contact, i);
            assert_eq!(SalesforceId::parse(id.as_str()).unwrap(), id);
            assert_eq!(id.key_prefix(), "003");
            assert!(id.core() > prev.as_str(), "{id} after {prev}");
            prev = id.core().to_owned();
            assert_eq!(g.index_of(ObjectKind::Contact, &id), Some(i));
            assert_eq!(g.index_of(ObjectKind::Account, &id), None);
        }
    }

    #[test]
    fn stamps_are_ordered_and_within_a_year() {
        let g = Generator::new(7, 10);
        for i in 0..10_000 {
            let (c, l, s) = g.stamps(ObjectKind::Contact, i);
            assert!(c <= l && l <= s, "{i}: {c} {l} {s}");
            assert!(c >= EPOCH_BASE_S * 1000 && s < (EPOCH_BASE_S + YEAR_S) * 1000);
        }
    }
}
