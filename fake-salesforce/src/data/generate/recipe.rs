//! Recipes: how each field is filled ([`Gen`]) and when its value is null ([`Nulls`]).

use crate::data::schema::ObjectKind;

/// When a generated value is null.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nulls {
    Never,
    /// When the field's hash is a multiple of N.
    OneIn(u8),
    /// For N percent of the records.
    Pct(u8),
}

impl Nulls {
    pub(super) fn hit(self, h: u64) -> bool {
        match self {
            Nulls::Never => false,
            Nulls::OneIn(n) => n > 0 && h.is_multiple_of(u64::from(n)),
            Nulls::Pct(p) => h % 100 < u64::from(p),
        }
    }
}

/// How one field is filled. `u8` arguments are null percentages unless named otherwise.
#[derive(Clone, Debug, PartialEq)]
pub enum Gen {
    /// The record's Id.
    Id,
    Null,
    False,
    /// The record's CreatedDate, LastModifiedDate and SystemModstamp (ordered).
    Created,
    LastModified,
    Modstamp,
    /// `Acme Labs GmbH`.
    Company,
    /// `https://www.acmelabsgmbh.example.com` from the company name in field `name`.
    Website {
        name: usize,
    },
    FirstName(u8),
    LastName,
    /// `First Last` from two fields.
    FullName {
        first: usize,
        last: usize,
    },
    /// `first.last{index}@example.org` from the name fields, when the object has them.
    Email {
        first: Option<usize>,
        last: Option<usize>,
        nulls: u8,
    },
    Phone(u8),
    Pick {
        list: &'static [&'static str],
        nulls: u8,
    },
    /// One to three values joined with `;`.
    Multi {
        list: &'static [&'static str],
        nulls: u8,
    },
    /// Address parts: `salt` groups the parts of one address (same city, state, country).
    City {
        salt: u64,
        nulls: u8,
    },
    Region {
        salt: u64,
        nulls: u8,
    },
    Country {
        salt: u64,
        nulls: u8,
    },
    /// Geocode parts: an address is geocoded (all three set) or not (all three null), for
    /// `nulls` percent of the records not.
    Latitude {
        salt: u64,
        nulls: u8,
    },
    Longitude {
        salt: u64,
        nulls: u8,
    },
    Geocode {
        list: &'static [&'static str],
        salt: u64,
        nulls: u8,
    },
    PostalCode(u8),
    Street(u8),
    /// Whole-currency revenue, some of it printed in Java's scientific notation.
    Revenue(u8),
    Employees(u8),
    /// Two-decimal engagement score.
    Score(u8),
    Birthdate(u8),
    /// True for one record in seven.
    OptOut,
    /// Text that exercises every escaping path; `last` names the record's last-name field.
    Description {
        last: Option<usize>,
    },
    /// An Id of a generated record of `target` (among its generated records).
    Reference {
        target: ObjectKind,
        nulls: Nulls,
    },
    /// An Id of an object the org does not serve: `prefix` plus one of `count` indices.
    Foreign {
        prefix: &'static str,
        count: u32,
        nulls: u8,
    },
    /// One of a fixed set of Ids (record types).
    OneOf {
        ids: &'static [&'static str],
        nulls: u8,
    },
    /// One of the org's users.
    User,
    /// A few words, at most `max` characters.
    Words {
        max: u32,
        nulls: u8,
    },
    /// Digits, at most `len` of them.
    Code {
        len: u32,
        nulls: u8,
    },
    /// A sentence or two.
    Text(u8),
    /// Money with `scale` decimals.
    Amount {
        scale: u32,
        nulls: u8,
    },
    /// A double with `scale` decimals.
    Number {
        scale: u32,
        nulls: u8,
    },
    Percent(u8),
    Int {
        max: u32,
        nulls: u8,
    },
    Date(u8),
    DateTime(u8),
    /// True once in N records.
    Bool {
        one_in: u8,
    },
    Url(u8),
    /// History values: a word, a number or a name.
    Any(u8),
}
