//! The generated objects of the real shape (see [`super::real`]): objects whose describes
//! were not recorded, built from the field lists of the Salesforce object reference, with
//! describe JSON modelled on recorded fields ([`super::template`]).
//!
//! Key prefixes: Account 001 and the others as real orgs use them (AccountHistory 017,
//! UserLogin 0Yw as recorded in the global describe, LoginHistory 0Ya, ContentDocumentLink
//! 06A); CaseStatus's `01J` and Wide__c's `a0W` are made up.

use std::sync::Arc;

use super::real::ACCOUNT;
use super::{Compound, FieldDef, FieldType as T, ObjectDef, Restriction, leak, template};
use crate::data::generate::lists::HISTORY_FIELDS;
use crate::data::generate::{Gen, Nulls, name_hash};

fn len(mut f: FieldDef, length: u32) -> FieldDef {
    f.length = length;
    f
}

fn system(mut f: FieldDef) -> FieldDef {
    f.system = true;
    f.nillable = false;
    f
}

fn id(label: &'static str) -> FieldDef {
    system(len(FieldDef::new("Id", label, T::Id, Gen::Id), 18))
}

fn is_deleted() -> FieldDef {
    system(FieldDef::new(
        "IsDeleted",
        "Deleted",
        T::Boolean,
        Gen::False,
    ))
}

fn user(name: &'static str, label: &'static str, relationship: &'static str) -> FieldDef {
    FieldDef {
        reference_to: &["User"],
        relationship_name: Some(relationship),
        ..system(len(FieldDef::new(name, label, T::Reference, Gen::User), 18))
    }
}

fn stamp(name: &'static str, label: &'static str, how: Gen) -> FieldDef {
    system(FieldDef::new(name, label, T::DateTime, how))
}

fn pick(
    name: &'static str,
    label: &'static str,
    list: &'static [&'static str],
    nulls: u8,
) -> FieldDef {
    FieldDef {
        picklist: list,
        ..len(
            FieldDef::new(name, label, T::Picklist, Gen::Pick { list, nulls }),
            255,
        )
    }
}

/// Fills in the describe JSON of `def` and its fields; `compounds` names the compound field
/// of each component, by field name.
fn finish(mut def: ObjectDef, compounds: &[(&str, &str)]) -> ObjectDef {
    for f in &mut def.fields {
        let compound = compounds
            .iter()
            .find(|(part, _)| *part == f.name)
            .map(|(_, parent)| *parent);
        f.describe = Some(Arc::new(template::field_json(f, compound)));
    }
    def.describe = Some(Arc::new(template::object_json(&def)));
    def.global = Some(Arc::new(template::global_entry(&def)));
    def.reindex();
    def
}

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
    let mut fields = vec![
        id("Record ID"),
        FieldDef {
            reference_to: &["Group", "User"],
            relationship_name: Some("Owner"),
            ..len(
                FieldDef::new("OwnerId", "Owner ID", T::Reference, Gen::User),
                18,
            )
        },
        is_deleted(),
        FieldDef {
            name_field: true,
            nillable: false,
            ..len(
                FieldDef::new(
                    "Name",
                    "Wide Name",
                    T::String,
                    Gen::Words { max: 80, nulls: 0 },
                ),
                80,
            )
        },
        stamp("CreatedDate", "Created Date", Gen::Created),
        user("CreatedById", "Created By ID", "CreatedBy"),
        stamp("LastModifiedDate", "Last Modified Date", Gen::LastModified),
        user("LastModifiedById", "Last Modified By ID", "LastModifiedBy"),
        stamp("SystemModstamp", "System Modstamp", Gen::Modstamp),
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
    ];
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

/// AccountHistory: field history, with CreatedDate but no LastModifiedDate and no
/// SystemModstamp (the object reference lists Id, IsDeleted, AccountId, CreatedById,
/// CreatedDate, Field, DataType, OldValue, NewValue).
pub fn account_history() -> ObjectDef {
    let fields = vec![
        id("Account History ID"),
        is_deleted(),
        FieldDef {
            reference_to: &["Account"],
            relationship_name: Some("Account"),
            nillable: false,
            ..len(
                FieldDef::new(
                    "AccountId",
                    "Account ID",
                    T::Reference,
                    Gen::Reference {
                        target: ACCOUNT,
                        nulls: Nulls::Never,
                    },
                ),
                18,
            )
        },
        user("CreatedById", "Created By ID", "CreatedBy"),
        stamp("CreatedDate", "Created Date", Gen::Created),
        pick("Field", "Changed Field", HISTORY_FIELDS, 0),
        pick(
            "DataType",
            "Data Type",
            &["Text", "Phone", "Currency", "DynamicEnum", "EntityId"],
            0,
        ),
        FieldDef {
            filterable: false,
            sortable: false,
            ..FieldDef::new("OldValue", "Old Value", T::AnyType, Gen::Any(30))
        },
        FieldDef {
            filterable: false,
            sortable: false,
            ..FieldDef::new("NewValue", "New Value", T::AnyType, Gen::Any(10))
        },
    ];
    finish(
        ObjectDef::new(
            "AccountHistory",
            "Account History",
            "Account History",
            "017",
            fields,
        ),
        &[],
    )
}

/// UserLogin: LastModifiedDate but no SystemModstamp and no CreatedDate, queryable but not
/// replicateable (its fields as the API lists them: Id, UserId, IsFrozen, IsPasswordLocked,
/// LastModifiedDate, LastModifiedById).
pub fn user_login() -> ObjectDef {
    let fields = vec![
        id("User Login ID"),
        FieldDef {
            reference_to: &["User"],
            relationship_name: Some("User"),
            ..len(
                FieldDef::new("UserId", "User ID", T::Reference, Gen::User),
                18,
            )
        },
        FieldDef {
            nillable: false,
            ..FieldDef::new(
                "IsFrozen",
                "Is Frozen",
                T::Boolean,
                Gen::Bool { one_in: 20 },
            )
        },
        FieldDef {
            nillable: false,
            ..FieldDef::new(
                "IsPasswordLocked",
                "Is Password Locked",
                T::Boolean,
                Gen::Bool { one_in: 50 },
            )
        },
        stamp("LastModifiedDate", "Last Modified Date", Gen::LastModified),
        user("LastModifiedById", "Last Modified By ID", "LastModifiedBy"),
    ];
    let mut def = ObjectDef::new("UserLogin", "User Login", "User Login", "0Yw", fields);
    def.replicateable = false;
    finish(def, &[])
}

/// LoginHistory: none of CreatedDate, LastModifiedDate and SystemModstamp (clients fall back
/// to LoginTime); supports describe, query and retrieve only, so not replicateable.
pub fn login_history() -> ObjectDef {
    let string = |name, label, length, list: &'static [&'static str]| FieldDef {
        picklist: &[],
        ..len(
            FieldDef::new(name, label, T::String, Gen::Pick { list, nulls: 0 }),
            length,
        )
    };
    let fields = vec![
        id("Login History ID"),
        FieldDef {
            reference_to: &["User"],
            ..len(
                FieldDef::new("UserId", "User ID", T::Reference, Gen::User),
                18,
            )
        },
        stamp("LoginTime", "Login Time", Gen::Modstamp),
        pick(
            "LoginType",
            "Login Type",
            &[
                "Application",
                "Remote Access 2.0",
                "SAML Idp Initiated SSO",
                "Other Apex API",
            ],
            0,
        ),
        string(
            "SourceIp",
            "Source IP",
            39,
            &[
                "203.0.113.7",
                "198.51.100.24",
                "192.0.2.200",
                "2001:db8::17",
            ],
        ),
        string(
            "LoginUrl",
            "Login URL",
            120,
            &["login.salesforce.com", "orgname.my.salesforce.com"],
        ),
        string(
            "Browser",
            "Browser",
            64,
            &["Chrome 120", "Firefox 121", "Unknown"],
        ),
        string(
            "Platform",
            "Platform",
            64,
            &["Mac OSX", "Windows 10", "Linux", "Unknown"],
        ),
        string(
            "Status",
            "Status",
            128,
            &["Success", "Success", "Success", "Invalid Password"],
        ),
        string(
            "Application",
            "Application",
            64,
            &["Browser", "sfsync", "Salesforce CLI"],
        ),
        string("ClientVersion", "Client Version", 64, &["N/A", "62.0"]),
        string(
            "ApiType",
            "API Type",
            32,
            &["N/A", "REST API", "Bulk API 2.0"],
        ),
        string("ApiVersion", "API Version", 32, &["N/A", "62.0", "59.0"]),
        string(
            "CountryIso",
            "Country Code",
            2,
            &["US", "CH", "BR", "DE", "JP"],
        ),
    ];
    let mut def = ObjectDef::new(
        "LoginHistory",
        "Login History",
        "Login History",
        "0Ya",
        fields,
    );
    def.replicateable = false;
    finish(def, &[])
}

/// CaseStatus: a queryable setup object that the Bulk API refuses (tap-salesforce lists it
/// among the objects "not supported by the bulk API") and that is not replicateable.
pub fn case_status() -> ObjectDef {
    const STATUSES: &[&str] = &["New", "Working", "Escalated", "Closed"];
    let fields = vec![
        id("Case Status ID"),
        pick("MasterLabel", "Master Label", STATUSES, 0),
        pick("ApiName", "Api Name", STATUSES, 0),
        FieldDef {
            digits: 9,
            ..FieldDef::new(
                "SortOrder",
                "Sort Order",
                T::Int,
                Gen::Int { max: 10, nulls: 0 },
            )
        },
        FieldDef {
            nillable: false,
            ..FieldDef::new(
                "IsDefault",
                "Is Default",
                T::Boolean,
                Gen::Bool { one_in: 4 },
            )
        },
        FieldDef {
            nillable: false,
            ..FieldDef::new("IsClosed", "Closed", T::Boolean, Gen::Bool { one_in: 4 })
        },
        user("CreatedById", "Created By ID", "CreatedBy"),
        stamp("CreatedDate", "Created Date", Gen::Created),
        user("LastModifiedById", "Last Modified By ID", "LastModifiedBy"),
        stamp("LastModifiedDate", "Last Modified Date", Gen::LastModified),
        stamp("SystemModstamp", "System Modstamp", Gen::Modstamp),
    ];
    let mut def = ObjectDef::new("CaseStatus", "Case Status", "Case Status", "01J", fields);
    def.replicateable = false;
    def.bulk = false;
    finish(def, &[])
}

/// ContentDocumentLink: links files to records; every query must pin ContentDocumentId or
/// LinkedEntityId. Fields: Id, LinkedEntityId, ContentDocumentId, IsDeleted, SystemModstamp,
/// ShareType, Visibility. Whether it is replicateable was not verified; it is served as not.
pub fn content_document_link() -> ObjectDef {
    let fields = vec![
        id("Content Document Link ID"),
        FieldDef {
            reference_to: &["Account", "Contact", "Lead", "User"],
            relationship_name: Some("LinkedEntity"),
            nillable: false,
            ..len(
                FieldDef::new(
                    "LinkedEntityId",
                    "Linked Entity ID",
                    T::Reference,
                    Gen::Reference {
                        target: ACCOUNT,
                        nulls: Nulls::Never,
                    },
                ),
                18,
            )
        },
        FieldDef {
            reference_to: &["ContentDocument"],
            relationship_name: Some("ContentDocument"),
            nillable: false,
            ..len(
                FieldDef::new(
                    "ContentDocumentId",
                    "ContentDocument ID",
                    T::Reference,
                    Gen::Foreign {
                        prefix: "069",
                        count: 100_000,
                        nulls: 0,
                    },
                ),
                18,
            )
        },
        is_deleted(),
        stamp("SystemModstamp", "System Modstamp", Gen::Modstamp),
        pick("ShareType", "Share Type", &["V", "C", "I"], 0),
        pick(
            "Visibility",
            "Visibility",
            &["AllUsers", "InternalUsers", "SharedUsers"],
            0,
        ),
    ];
    let mut def = ObjectDef::new(
        "ContentDocumentLink",
        "Content Document Link",
        "Content Document Link",
        "06A",
        fields,
    );
    def.replicateable = false;
    def.restriction = Some(Restriction {
        fields: &["ContentDocumentId", "LinkedEntityId"],
        message: "Implementation restriction: ContentDocumentLink requires a filter by a single \
                  Id on ContentDocumentId or LinkedEntityId using the equals operator or \
                  multiple Id's using the IN operator.",
    });
    finish(def, &[])
}
