//! The deterministic generator: Ids and field values as pure functions of
//! (seed, object, record index, field), computed on demand with splitmix64. Nothing is
//! materialised: a 300,000-record object costs no memory until a mutation touches a record.
//!
//! Each field says how it is filled with a [`Gen`] recipe, chosen when the schema is built
//! (by hand for the classic shape, from the field's name and type for the real one).

pub mod lists;
mod recipe;
mod values;

use std::borrow::Cow;

use common::sfid::SalesforceId;

use self::lists::*;
pub use self::recipe::{Gen, Nulls};
pub use self::values::with_nul;
use self::values::*;
use super::Value;
use super::schema::{FieldType, ObjectDef, ObjectKind};
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
/// How many users own, create and modify generated records (`OwnerId`, `CreatedById`, …).
const USERS: u64 = 5;

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

/// A stable hash of a name, for choices made once per field (null rates, salts).
pub fn name_hash(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3)
    })
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
    /// Each object's key prefix, by [`ObjectKind`].
    prefixes: Vec<[u8; 3]>,
    /// How many records of each object were generated, so that references always resolve.
    counts: Vec<u32>,
}

impl Generator {
    /// `prefixes` and `counts` are per object, in schema order.
    pub fn new(seed: u64, prefixes: Vec<[u8; 3]>, counts: Vec<u32>) -> Self {
        let seed_key = mix(seed ^ 0x5F5F_5346_5359_4E43);
        let mut infix = [0u8; 2];
        base62_into(&mut infix, seed_key % (62 * 62));
        Generator {
            seed_key,
            infix,
            prefixes,
            counts,
        }
    }

    /// How many records of `obj` were generated (before any mutation).
    pub fn count(&self, obj: ObjectKind) -> u32 {
        self.counts.get(obj.index()).copied().unwrap_or(0)
    }

    fn id_with(&self, prefix: &[u8], index: u64) -> SalesforceId {
        let mut core = [0u8; 15];
        core[..3].copy_from_slice(prefix);
        core[3..5].copy_from_slice(&self.infix);
        base62_into(&mut core[5..], index);
        SalesforceId::from_core(core)
    }

    /// The Id of record `index`: key prefix, the seed's two characters, then the index in ten
    /// base-62 digits, so `ORDER BY Id` is index order.
    pub fn id(&self, obj: ObjectKind, index: u32) -> SalesforceId {
        self.id_with(&self.prefixes[obj.index()], u64::from(index))
    }

    /// The record index an Id of this org names, if it is one of `obj`'s.
    pub fn index_of(&self, obj: ObjectKind, id: &SalesforceId) -> Option<u32> {
        let core = id.core().as_bytes();
        if core[..3] != self.prefixes[obj.index()] || core[3..5] != self.infix {
            return None;
        }
        let mut n: u64 = 0;
        for &c in &core[5..] {
            n = n.checked_mul(62)?.checked_add(base62_value(c)?)?;
        }
        u32::try_from(n).ok()
    }

    /// The Id of user `n` (of [`USERS`]) who owns and edits generated records.
    pub fn user(&self, n: u64) -> SalesforceId {
        self.id_with(b"005", n % USERS)
    }

    fn hash(&self, obj: ObjectKind, index: u32, salt: u64) -> u64 {
        mix(mix(self.seed_key ^ (u64::from(obj.0) << 32) ^ u64::from(index)) ^ salt)
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

    /// Field `field` of generated record `index` of `obj` (whose definition is `def`). A
    /// formula field takes `epoch`, its recalculation count: every recalculation changes it.
    pub fn value(
        &self,
        obj: ObjectKind,
        def: &ObjectDef,
        index: u32,
        field: usize,
        epoch: u32,
    ) -> Value {
        let base = self.base_value(obj, def, index, field);
        if epoch == 0 || !def.fields[field].calculated {
            return base;
        }
        // A null formula recalculates to a value of the formula's own type, as Salesforce's
        // would: a currency formula never reads back as text.
        let base = match (base, def.fields[field].ty) {
            (Value::Null, FieldType::Currency | FieldType::Double | FieldType::Percent) => {
                Value::Number(0.0)
            }
            (Value::Null, FieldType::Int) => Value::Int(0),
            (Value::Null, FieldType::Date) => Value::Date(0),
            (Value::Null, FieldType::DateTime) => Value::DateTime(0),
            (base, _) => base,
        };
        recalculated(base, epoch)
    }

    fn base_value(&self, obj: ObjectKind, def: &ObjectDef, i: u32, field: usize) -> Value {
        let h = self.field_hash(obj, i, field);
        let null = |pct: u8, v: Value| {
            if Nulls::Pct(pct).hit(h) {
                Value::Null
            } else {
                v
            }
        };
        let pick = |list: &'static [&'static str], h: u64| {
            if list.is_empty() {
                Value::Null
            } else {
                text(list[(h % list.len() as u64) as usize])
            }
        };
        let first = |f: usize| self.first_name(obj, i, f);
        let last = |f: usize| self.last_name(obj, i, f);
        match &def.fields[field].recipe {
            Gen::Id => Value::Id(self.id(obj, i)),
            Gen::Null => Value::Null,
            Gen::False => Value::Bool(false),
            Gen::Created => Value::DateTime(self.stamps(obj, i).0),
            Gen::LastModified => Value::DateTime(self.stamps(obj, i).1),
            Gen::Modstamp => Value::DateTime(self.stamps(obj, i).2),
            Gen::Company => Value::Text(Cow::Owned(self.company(obj, i, field))),
            Gen::Website { name } => null(
                8,
                Value::Text(Cow::Owned(format!(
                    "https://www.{}.example.com",
                    slug(&self.company(obj, i, *name))
                ))),
            ),
            Gen::FirstName(nulls) => first(field)
                .filter(|_| !Nulls::Pct(*nulls).hit(h))
                .map_or(Value::Null, text),
            Gen::LastName => text(last(field)),
            Gen::FullName { first: f, last: l } => Value::Text(Cow::Owned(match first(*f) {
                Some(fname) => format!("{fname} {}", last(*l)),
                None => last(*l).to_owned(),
            })),
            Gen::Email {
                first: f,
                last: l,
                nulls,
            } => null(
                *nulls,
                Value::Text(Cow::Owned(format!(
                    "{}.{}{}@example.{}",
                    slug(f.and_then(first).unwrap_or("contact")),
                    slug(l.map_or("user", last)),
                    i,
                    if (h >> 8).is_multiple_of(3) {
                        "org"
                    } else {
                        "com"
                    }
                ))),
            ),
            Gen::Phone(nulls) => null(*nulls, phone(h >> 8)),
            Gen::Pick { list, nulls } => null(*nulls, pick(list, h >> 8)),
            Gen::Multi { list, nulls } => null(*nulls, multi(list, h >> 8)),
            Gen::City { salt, nulls } => null(*nulls, text(self.city(obj, i, *salt).0)),
            Gen::Region { salt, nulls } => self
                .city(obj, i, *salt)
                .1
                .map_or(Value::Null, |s| null(*nulls, text(s))),
            Gen::Country { salt, nulls } => null(*nulls, text(self.city(obj, i, *salt).2)),
            Gen::Latitude { salt, nulls } if self.geocoded(obj, i, *salt, *nulls) => {
                let (lat, _) = COORDINATES[self.city_index(obj, i, *salt)];
                Value::Number(jitter(lat, h >> 8))
            }
            Gen::Longitude { salt, nulls } if self.geocoded(obj, i, *salt, *nulls) => {
                let (_, lon) = COORDINATES[self.city_index(obj, i, *salt)];
                Value::Number(jitter(lon, h >> 16))
            }
            Gen::Geocode { list, salt, nulls } if self.geocoded(obj, i, *salt, *nulls) => {
                pick(list, h >> 8)
            }
            Gen::Latitude { .. } | Gen::Longitude { .. } | Gen::Geocode { .. } => Value::Null,
            Gen::PostalCode(nulls) => null(
                *nulls,
                Value::Text(Cow::Owned(format!("{:05}", (h >> 8) % 100_000))),
            ),
            Gen::Street(nulls) => null(*nulls, street(h >> 8)),
            Gen::Revenue(nulls) => null(*nulls, Value::Number(revenue(h >> 8))),
            Gen::Employees(nulls) => null(*nulls, Value::Int(((h >> 8) % 250_000 + 1) as i64)),
            Gen::Score(nulls) => null(*nulls, Value::Number(score(h >> 8))),
            Gen::Birthdate(nulls) => {
                let first = days_from_civil(1950, 1, 1) as i32;
                null(*nulls, Value::Date(first + ((h >> 8) % (54 * 365)) as i32))
            }
            Gen::OptOut => Value::Bool(h.is_multiple_of(7)),
            Gen::Description { last: l } => description(h, l.map_or("Customer", last)),
            Gen::Reference { target, nulls } => {
                let count = self.count(*target);
                if count == 0 || nulls.hit(h) {
                    Value::Null
                } else {
                    Value::Id(self.id(*target, ((h >> 8) % u64::from(count)) as u32))
                }
            }
            Gen::Foreign {
                prefix,
                count,
                nulls,
            } => null(
                *nulls,
                Value::Id(self.id_with(prefix.as_bytes(), (h >> 8) % u64::from((*count).max(1)))),
            ),
            Gen::OneOf { ids, nulls } => {
                match ids.get(((h >> 8) % ids.len().max(1) as u64) as usize) {
                    Some(id) if !Nulls::Pct(*nulls).hit(h) => {
                        SalesforceId::parse(id).map_or(Value::Null, Value::Id)
                    }
                    _ => Value::Null,
                }
            }
            Gen::User => Value::Id(self.user(h >> 8)),
            Gen::Words { max, nulls } => null(*nulls, words(h >> 8, *max)),
            Gen::Code { len, nulls } => {
                let digits = (*len).clamp(1, 9);
                let n = (h >> 8) % 10u64.pow(digits);
                null(
                    *nulls,
                    Value::Text(Cow::Owned(format!("{n:0width$}", width = digits as usize))),
                )
            }
            Gen::Text(nulls) => null(*nulls, sentences(h >> 8)),
            Gen::Amount { scale, nulls } => {
                let cents = (h >> 8) % 1_000_000_000;
                null(*nulls, Value::Number(scaled(cents, *scale)))
            }
            Gen::Number { scale, nulls } => {
                let n = (h >> 8) % 10_000_000;
                null(*nulls, Value::Number(scaled(n, *scale)))
            }
            Gen::Percent(nulls) => null(*nulls, Value::Number(((h >> 8) % 10_001) as f64 / 100.0)),
            Gen::Int { max, nulls } => null(
                *nulls,
                Value::Int(((h >> 8) % u64::from((*max).max(1))) as i64),
            ),
            Gen::Date(nulls) => {
                let first = days_from_civil(2015, 1, 1) as i32;
                null(*nulls, Value::Date(first + ((h >> 8) % (9 * 365)) as i32))
            }
            Gen::DateTime(nulls) => {
                let first = (EPOCH_BASE_S - 3 * YEAR_S) * 1000;
                null(
                    *nulls,
                    Value::DateTime(first + ((h >> 8) % (3 * YEAR_S as u64)) as i64 * 1000),
                )
            }
            Gen::Bool { one_in } => Value::Bool(Nulls::OneIn(*one_in).hit(h >> 8)),
            Gen::Url(nulls) => null(
                *nulls,
                Value::Text(Cow::Owned(format!(
                    "https://www.example.com/{}/{}",
                    slug(WORDS[((h >> 8) % WORDS.len() as u64) as usize]),
                    (h >> 16) % 10_000
                ))),
            ),
            Gen::Any(nulls) => null(
                *nulls,
                match (h >> 8) % 3 {
                    0 => pick(WORDS, h >> 16),
                    1 => Value::Text(Cow::Owned(((h >> 16) % 100_000).to_string())),
                    _ => Value::Text(Cow::Owned(self.company(obj, i, field))),
                },
            ),
        }
    }

    fn company(&self, obj: ObjectKind, i: u32, field: usize) -> String {
        let h = self.field_hash(obj, i, field);
        let stem = COMPANY_STEMS[(h % COMPANY_STEMS.len() as u64) as usize];
        let noun = COMPANY_NOUNS[((h >> 16) % COMPANY_NOUNS.len() as u64) as usize];
        let suffix = COMPANY_SUFFIXES[((h >> 32) % COMPANY_SUFFIXES.len() as u64) as usize];
        format!("{stem} {noun} {suffix}")
    }

    /// Whether the address `salt` names is geocoded (`nulls` percent of them are not).
    fn geocoded(&self, obj: ObjectKind, i: u32, salt: u64, nulls: u8) -> bool {
        !Nulls::Pct(nulls).hit(self.hash(obj, i, salt ^ 0x6E0C_0DED))
    }

    fn city_index(&self, obj: ObjectKind, i: u32, salt: u64) -> usize {
        (self.hash(obj, i, salt) % CITIES.len() as u64) as usize
    }

    /// `(city, state, country)` of the address `salt` names.
    fn city(
        &self,
        obj: ObjectKind,
        i: u32,
        salt: u64,
    ) -> (&'static str, Option<&'static str>, &'static str) {
        CITIES[self.city_index(obj, i, salt)]
    }

    /// The first name in field `field` before its own null rate: 4% of records have none.
    fn first_name(&self, obj: ObjectKind, i: u32, field: usize) -> Option<&'static str> {
        let h = self.field_hash(obj, i, field);
        (h % 100 >= 4).then(|| FIRST_NAMES[((h >> 8) % FIRST_NAMES.len() as u64) as usize])
    }

    fn last_name(&self, obj: ObjectKind, i: u32, field: usize) -> &'static str {
        let h = self.field_hash(obj, i, field);
        LAST_NAMES[((h >> 8) % LAST_NAMES.len() as u64) as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator() -> Generator {
        Generator::new(1, vec![*b"001", *b"003"], vec![10, 10])
    }

    #[test]
    fn ids_are_valid_ordered_and_reversible() {
        let g = generator();
        let (account, contact) = (ObjectKind(0), ObjectKind(1));
        let mut prev = String::new();
        for i in [0u32, 1, 9, 10, 35, 36, 61, 62, 1000, 299_999, u32::MAX] {
            let id = g.id(contact, i);
            assert_eq!(SalesforceId::parse(id.as_str()).unwrap(), id);
            assert_eq!(id.key_prefix(), "003");
            assert!(id.core() > prev.as_str(), "{id} after {prev}");
            prev = id.core().to_owned();
            assert_eq!(g.index_of(contact, &id), Some(i));
            assert_eq!(g.index_of(account, &id), None);
        }
    }

    #[test]
    fn stamps_are_ordered_and_within_a_year() {
        let g = generator();
        for i in 0..10_000 {
            let (c, l, s) = g.stamps(ObjectKind(1), i);
            assert!(c <= l && l <= s, "{i}: {c} {l} {s}");
            assert!(c >= EPOCH_BASE_S * 1000 && s < (EPOCH_BASE_S + YEAR_S) * 1000);
        }
    }

    #[test]
    fn recalculated_formulas_always_change() {
        for v in [
            Value::Number(1.5),
            Value::Bool(true),
            Value::Date(3),
            Value::Null,
            Value::Text(Cow::Borrowed("x")),
        ] {
            assert_ne!(recalculated(v.clone(), 1), v);
            assert_ne!(recalculated(v.clone(), 2), recalculated(v, 1));
        }
    }

    #[test]
    fn nul_lands_inside_the_text() {
        assert_eq!(
            with_nul(Value::Text(Cow::Borrowed("Zürich"))),
            Value::Text(Cow::Borrowed("Zü\u{0}rich"))
        );
        assert_eq!(with_nul(Value::Null), Value::Text(Cow::Borrowed("\u{0}")));
    }
}
