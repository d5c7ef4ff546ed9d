//! Wide__c: a custom object of 735 fields of every type, the kind of object whose full
//! `SELECT` does not fit in a 16,384-byte request line.

use super::{finish, len, pick, standard_fields};
use crate::data::generate::{Gen, Nulls, name_hash};
use crate::data::schema::real::ACCOUNT;
use crate::data::schema::{Compound, FieldDef, FieldType as T, ObjectDef, leak};

const WIDE_ADJECTIVES: &[&str] = &[
    "Annual",
    "Primary",
    "Secondary",
    "Regional",
    "Customer",
    "Partner",
    "Renewal",
    "Contract",
    "Billing",
    "Shipping",
    "Support",
    "Marketing",
    "Campaign",
    "Quarterly",
    "Legacy",
    "Strategic",
];
const WIDE_NOUNS: &[&str] = &[
    "Revenue",
    "Score",
    "Status",
    "Region",
    "Owner_Note",
    "Review_Date",
    "Amount",
    "Count",
    "Notes",
    "Code",
    "Level",
    "Tier",
    "Flag",
    "Rating",
    "Source",
    "Channel",
];
const WIDE_PICKLIST: &[&str] = &["Bronze", "Silver", "Gold", "Platinum", "Not Applicable"];
/// The custom fields of Wide__c (the standard ones and a geolocation come on top).
pub const WIDE_CUSTOM_FIELDS: usize = 720;

/// Wide__c: a custom object of 735 fields of every type, the kind of object whose full
/// `SELECT` does not fit in a 16,384-byte request line.
pub fn wide() -> ObjectDef {
    let mut fields = standard_fields("Wide Name");
    fields.extend([
        FieldDef::new("LastActivityDate", "Last Activity", T::Date, Gen::Date(90)),
        FieldDef::new(
            "LastViewedDate",
            "Last Viewed Date",
            T::DateTime,
            Gen::DateTime(70),
        ),
        FieldDef::new(
            "LastReferencedDate",
            "Last Referenced Date",
            T::DateTime,
            Gen::DateTime(70),
        ),
    ]);
    for n in 1..=WIDE_CUSTOM_FIELDS {
        let adjective = WIDE_ADJECTIVES[n % WIDE_ADJECTIVES.len()];
        let noun = WIDE_NOUNS[(n / WIDE_ADJECTIVES.len()) % WIDE_NOUNS.len()];
        let stem = format!("{adjective}_{noun}_{n:03}");
        let name = leak(&format!("{stem}__c"));
        let label = leak(&stem.replace('_', " "));
        let nulls = 20 + (name_hash(name) % 70) as u8;
        let f = match n % 17 {
            0 => len(
                FieldDef::new(name, label, T::String, Gen::Words { max: 255, nulls }),
                255,
            ),
            1 => len(
                FieldDef::new(name, label, T::Textarea, Gen::Text(nulls)),
                255,
            ),
            2 => pick(name, label, WIDE_PICKLIST, nulls),
            3 => FieldDef {
                picklist: WIDE_PICKLIST,
                sortable: false,
                ..len(
                    FieldDef::new(
                        name,
                        label,
                        T::Multipicklist,
                        Gen::Multi {
                            list: WIDE_PICKLIST,
                            nulls,
                        },
                    ),
                    4099,
                )
            },
            4 => len(
                FieldDef::new(
                    name,
                    label,
                    T::Email,
                    Gen::Email {
                        first: None,
                        last: None,
                        nulls,
                    },
                ),
                80,
            ),
            5 => len(FieldDef::new(name, label, T::Phone, Gen::Phone(nulls)), 40),
            6 => len(FieldDef::new(name, label, T::Url, Gen::Url(nulls)), 255),
            7 => FieldDef {
                precision: 18,
                scale: 2,
                ..FieldDef::new(name, label, T::Currency, Gen::Amount { scale: 2, nulls })
            },
            8 => FieldDef {
                precision: 18,
                ..FieldDef::new(name, label, T::Double, Gen::Number { scale: 0, nulls })
            },
            9 => FieldDef {
                precision: 5,
                scale: 2,
                ..FieldDef::new(name, label, T::Percent, Gen::Percent(nulls))
            },
            10 => FieldDef::new(name, label, T::Date, Gen::Date(nulls)),
            11 => FieldDef::new(name, label, T::DateTime, Gen::DateTime(nulls)),
            12 => FieldDef {
                nillable: false,
                ..FieldDef::new(name, label, T::Boolean, Gen::Bool { one_in: 4 })
            },
            13 => FieldDef {
                reference_to: &["Account"],
                relationship_name: Some(leak(&format!("{stem}__r"))),
                ..len(
                    FieldDef::new(
                        name,
                        label,
                        T::Reference,
                        Gen::Reference {
                            target: ACCOUNT,
                            nulls: Nulls::Pct(nulls),
                        },
                    ),
                    18,
                )
            },
            14 => FieldDef {
                filterable: false,
                sortable: false,
                ..len(
                    FieldDef::new(name, label, T::Textarea, Gen::Text(nulls)),
                    32768,
                )
            },
            15 => FieldDef {
                calculated: true,
                precision: 18,
                scale: 2,
                ..FieldDef::new(name, label, T::Double, Gen::Number { scale: 2, nulls: 0 })
            },
            _ => FieldDef {
                calculated: true,
                ..len(
                    FieldDef::new(
                        name,
                        label,
                        T::String,
                        Gen::Words {
                            max: 1300,
                            nulls: 0,
                        },
                    ),
                    1300,
                )
            },
        };
        fields.push(f);
    }
    let at = fields.len();
    fields.push(FieldDef {
        filterable: false,
        sortable: false,
        compound: Some(Compound {
            parts: [
                None,
                None,
                None,
                Some(at + 1),
                Some(at + 2),
                None,
                None,
                None,
            ],
        }),
        ..FieldDef::new("Site_Location__c", "Site Location", T::Location, Gen::Null)
    });
    let salt = 7 ^ (name_hash("Site_Location") << 4);
    fields.push(FieldDef {
        scale: 5,
        precision: 8,
        ..FieldDef::new(
            "Site_Location__Latitude__s",
            "Site Location (Latitude)",
            T::Double,
            Gen::Latitude { salt, nulls: 40 },
        )
    });
    fields.push(FieldDef {
        scale: 5,
        precision: 8,
        ..FieldDef::new(
            "Site_Location__Longitude__s",
            "Site Location (Longitude)",
            T::Double,
            Gen::Longitude { salt, nulls: 40 },
        )
    });
    finish(
        ObjectDef::new("Wide__c", "Wide", "Wides", "a0W", fields),
        &[
            ("Site_Location__Latitude__s", "Site_Location__c"),
            ("Site_Location__Longitude__s", "Site_Location__c"),
        ],
    )
}
