//! Plain_01__c … Plain_99__c: ordinary custom objects, as many as
//! [`crate::OrgConfig::plain_objects`] asks for, in either shape. Nothing about them is odd:
//! replicateable, queryable, Bulk-capable, createable, with all three stamps and IsDeleted, for
//! benchmarks and soaks that want many objects changing at once rather than one odd one.
//!
//! Fields: the standard ones of a custom object ([`super::standard_fields`]: Id, OwnerId,
//! IsDeleted, Name, CreatedDate, CreatedById, LastModifiedDate, LastModifiedById,
//! SystemModstamp), then `Status__c` (picklist), `Amount__c` (number(16, 2)), `Active__c`
//! (checkbox), `Due__c` (date) and `Notes__c` (long text area(32768), neither filterable nor
//! sortable). Key prefixes `a0A`, `a0B`, … `a0Z` (skipping Wide__c's `a0W`), `a0a` … `a0z`,
//! then `a10`, `a11`, …: made up, in the range real orgs give custom objects.

use std::sync::{Arc, LazyLock};

use super::{finish, len, pick, standard_fields};
use crate::data::generate::{Gen, base62_into};
use crate::data::schema::{FieldDef, FieldType as T, ObjectDef, leak};

/// The most plain objects an org can have: their names have two digits.
pub const MAX_PLAIN_OBJECTS: u32 = 99;

/// The name that counts records of every plain object at once in
/// [`crate::OrgConfig::records`] (`Plain=1000`); a plain object named on its own wins.
pub const PLAIN_GROUP: &str = "Plain";

const STATUSES: &[&str] = &["New", "In Progress", "On Hold", "Done", "Cancelled"];

/// Every plain object, built once per process (their names and labels are leaked, see the
/// schema module docs).
static PLAIN: LazyLock<Vec<Arc<ObjectDef>>> = LazyLock::new(|| {
    key_prefixes(MAX_PLAIN_OBJECTS as usize)
        .into_iter()
        .zip(1..=MAX_PLAIN_OBJECTS)
        .map(|(prefix, n)| Arc::new(plain(n, prefix)))
        .collect()
});

/// Plain_01__c … Plain_`n`__c.
///
/// # Panics
/// When `n` is above [`MAX_PLAIN_OBJECTS`].
pub fn plain_objects(n: u32) -> Vec<Arc<ObjectDef>> {
    assert!(
        n <= MAX_PLAIN_OBJECTS,
        "at most {MAX_PLAIN_OBJECTS} plain objects (two-digit names), not {n}"
    );
    PLAIN[..n as usize].to_vec()
}

/// Whether `name` is the name of a plain object (`Plain_07__c`, any case).
pub fn is_plain_object(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower
        .strip_prefix("plain_")
        .and_then(|rest| rest.strip_suffix("__c"))
        .is_some_and(|digits| digits.len() == 2 && digits.bytes().all(|b| b.is_ascii_digit()))
        && lower != "plain_00__c"
}

/// The first `n` key prefixes: `a` then two base-62 digits counting up from `0A`, without
/// Wide__c's `a0W`.
fn key_prefixes(n: usize) -> Vec<&'static str> {
    (10u64..)
        .map(|counter| {
            let mut prefix = *b"a00";
            base62_into(&mut prefix[1..], counter);
            prefix
        })
        .filter(|p| p != b"a0W")
        .take(n)
        .map(|p| leak(std::str::from_utf8(&p).expect("base-62 digits are ASCII")))
        .collect()
}

/// Plain_`n`__c.
fn plain(n: u32, key_prefix: &'static str) -> ObjectDef {
    let label = leak(&format!("Plain {n:02}"));
    let mut fields = standard_fields(leak(&format!("{label} Name")));
    fields.extend([
        pick("Status__c", "Status", STATUSES, 10),
        FieldDef {
            precision: 18,
            scale: 2,
            ..FieldDef::new(
                "Amount__c",
                "Amount",
                T::Double,
                Gen::Amount {
                    scale: 2,
                    nulls: 15,
                },
            )
        },
        FieldDef {
            nillable: false,
            ..FieldDef::new("Active__c", "Active", T::Boolean, Gen::Bool { one_in: 2 })
        },
        FieldDef::new("Due__c", "Due", T::Date, Gen::Date(25)),
        FieldDef {
            filterable: false,
            sortable: false,
            ..len(
                FieldDef::new("Notes__c", "Notes", T::Textarea, Gen::Text(40)),
                32768,
            )
        },
    ]);
    finish(
        ObjectDef::new(
            leak(&format!("Plain_{n:02}__c")),
            label,
            leak(&format!("{label}s")),
            key_prefix,
            fields,
        ),
        &[],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_count_up_and_skip_wide() {
        let objects = plain_objects(MAX_PLAIN_OBJECTS);
        assert_eq!(objects[0].name, "Plain_01__c");
        assert_eq!(objects[98].name, "Plain_99__c");
        let prefixes: Vec<&str> = objects.iter().map(|o| o.key_prefix).collect();
        assert_eq!(&prefixes[..3], ["a0A", "a0B", "a0C"]);
        assert_eq!(&prefixes[21..24], ["a0V", "a0X", "a0Y"]);
        assert_eq!(prefixes[25], "a0a");
        assert_eq!(prefixes[51], "a10");
        assert!(!prefixes.contains(&"a0W"));
        let distinct: std::collections::HashSet<_> = prefixes.iter().collect();
        assert_eq!(distinct.len(), prefixes.len());
        assert!(objects.iter().all(|o| is_plain_object(o.name)));
        for other in [
            "Plain",
            "Plain_1__c",
            "Plain_00__c",
            "Plain_100__c",
            "Wide__c",
        ] {
            assert!(!is_plain_object(other), "{other}");
        }
        assert!(is_plain_object("PLAIN_07__C"));
    }

    #[test]
    fn a_plain_object_is_an_ordinary_custom_object() {
        let def = &plain_objects(1)[0];
        assert!(def.custom && def.queryable && def.replicateable && def.bulk && def.createable());
        let names: Vec<&str> = def.fields.iter().map(|f| f.name).collect();
        assert_eq!(
            names,
            [
                "Id",
                "OwnerId",
                "IsDeleted",
                "Name",
                "CreatedDate",
                "CreatedById",
                "LastModifiedDate",
                "LastModifiedById",
                "SystemModstamp",
                "Status__c",
                "Amount__c",
                "Active__c",
                "Due__c",
                "Notes__c",
            ]
        );
        let field = |n: &str| &def.fields[def.field_index(n).unwrap()];
        let name = field("Name");
        assert!(name.name_field && name.createable() && name.updateable() && !name.custom);
        assert_eq!(name.describe.as_ref().unwrap()["nameField"], true);
        assert_eq!(name.describe.as_ref().unwrap()["length"], 80);
        for custom in ["Status__c", "Amount__c", "Active__c", "Due__c", "Notes__c"] {
            let f = field(custom);
            assert!(f.custom && f.createable() && f.updateable(), "{custom}");
            assert_eq!(f.describe.as_ref().unwrap()["custom"], true, "{custom}");
        }
        for system in ["Id", "IsDeleted", "CreatedDate", "SystemModstamp"] {
            assert!(!field(system).createable(), "{system}");
        }
        let notes = field("Notes__c").describe.clone().unwrap();
        assert_eq!(notes["type"], "textarea");
        assert_eq!(notes["length"], 32768);
        assert_eq!(notes["filterable"], false);
        assert_eq!(field("Status__c").picklist, STATUSES);
        assert!(def.system_modstamp_field().is_some() && def.is_deleted_field().is_some());
    }
}
