//! The classic shape: Account (14 fields) and Contact (22), the two hand-written objects the
//! fake always served. Their field order and recipes reproduce the records of earlier
//! versions byte for byte (same seed, same data), so benchmarks and scripts keep their meaning.

use std::sync::{Arc, LazyLock};

use super::{ChildRelationship, FieldDef, FieldType as T, ObjectDef, ObjectKind, link_targets};
use crate::data::generate::lists::{ACCOUNT_TYPES, DEPARTMENTS, INDUSTRIES, LEAD_SOURCES, TITLES};
use crate::data::generate::{Gen, Nulls};

/// Field positions on the classic Account.
pub mod account {
    pub const NAME: usize = 1;
    pub const PHONE: usize = 6;
}

/// Field positions on the classic Contact.
pub mod contact {
    pub const ACCOUNT_ID: usize = 1;
    pub const FIRST_NAME: usize = 2;
    pub const LAST_NAME: usize = 3;
}

/// The salt every classic address part shares (one city per record).
const CITY_SALT: u64 = 7;

static OBJECTS: LazyLock<Vec<Arc<ObjectDef>>> = LazyLock::new(|| {
    let mut objects = vec![account(), contact()];
    link_targets(&mut objects);
    objects.into_iter().map(Arc::new).collect()
});

/// The classic objects, Account then Contact.
pub fn objects() -> Vec<Arc<ObjectDef>> {
    OBJECTS.clone()
}

fn len(mut f: FieldDef, length: u32) -> FieldDef {
    f.length = length;
    f
}

fn required(mut f: FieldDef) -> FieldDef {
    f.nillable = false;
    f
}

fn system(mut f: FieldDef) -> FieldDef {
    f.system = true;
    f.nillable = false;
    f
}

fn number(mut f: FieldDef, precision: u32, scale: u32) -> FieldDef {
    f.precision = precision;
    f.scale = scale;
    f
}

fn picklist(mut f: FieldDef, values: &'static [&'static str]) -> FieldDef {
    f.picklist = values;
    f.length = 255;
    f
}

fn stamps() -> [FieldDef; 4] {
    [
        system(FieldDef::new(
            "CreatedDate",
            "Created Date",
            T::DateTime,
            Gen::Created,
        )),
        system(FieldDef::new(
            "LastModifiedDate",
            "Last Modified Date",
            T::DateTime,
            Gen::LastModified,
        )),
        system(FieldDef::new(
            "SystemModstamp",
            "System Modstamp",
            T::DateTime,
            Gen::Modstamp,
        )),
        system(FieldDef::new(
            "IsDeleted",
            "Deleted",
            T::Boolean,
            Gen::False,
        )),
    ]
}

fn account() -> ObjectDef {
    let pick = |list| Gen::Pick { list, nulls: 8 };
    let mut fields = vec![
        system(len(FieldDef::new("Id", "Account ID", T::Id, Gen::Id), 18)),
        FieldDef {
            name_field: true,
            ..required(len(
                FieldDef::new("Name", "Account Name", T::String, Gen::Company),
                255,
            ))
        },
        picklist(
            FieldDef::new("Type", "Account Type", T::Picklist, pick(ACCOUNT_TYPES)),
            ACCOUNT_TYPES,
        ),
        picklist(
            FieldDef::new("Industry", "Industry", T::Picklist, pick(INDUSTRIES)),
            INDUSTRIES,
        ),
        len(
            FieldDef::new(
                "BillingCity",
                "Billing City",
                T::String,
                Gen::City {
                    salt: CITY_SALT,
                    nulls: 8,
                },
            ),
            40,
        ),
        len(
            FieldDef::new(
                "BillingCountry",
                "Billing Country",
                T::String,
                Gen::Country {
                    salt: CITY_SALT,
                    nulls: 8,
                },
            ),
            80,
        ),
        len(
            FieldDef::new("Phone", "Account Phone", T::Phone, Gen::Phone(8)),
            40,
        ),
        len(
            FieldDef::new(
                "Website",
                "Website",
                T::Url,
                Gen::Website {
                    name: account::NAME,
                },
            ),
            255,
        ),
        number(
            FieldDef::new(
                "AnnualRevenue",
                "Annual Revenue",
                T::Currency,
                Gen::Revenue(8),
            ),
            18,
            0,
        ),
        FieldDef {
            digits: 8,
            ..FieldDef::new("NumberOfEmployees", "Employees", T::Int, Gen::Employees(8))
        },
    ];
    fields.extend(stamps());
    let mut def = ObjectDef::new("Account", "Account", "Accounts", "001", fields);
    def.children = vec![ChildRelationship {
        child: "Contact",
        field: "AccountId",
        relationship_name: "Contacts",
    }];
    def
}

fn contact() -> ObjectDef {
    let pick = |list| Gen::Pick { list, nulls: 8 };
    let city = |nulls| Gen::City {
        salt: CITY_SALT,
        nulls,
    };
    let mut fields = vec![
        system(len(FieldDef::new("Id", "Contact ID", T::Id, Gen::Id), 18)),
        FieldDef {
            reference_to: &["Account"],
            relationship_name: Some("Account"),
            ..len(
                FieldDef::new(
                    "AccountId",
                    "Account ID",
                    T::Reference,
                    Gen::Reference {
                        target: ObjectKind(0),
                        nulls: Nulls::OneIn(10),
                    },
                ),
                18,
            )
        },
        len(
            FieldDef::new("FirstName", "First Name", T::String, Gen::FirstName(0)),
            40,
        ),
        required(len(
            FieldDef::new("LastName", "Last Name", T::String, Gen::LastName),
            80,
        )),
        len(
            FieldDef::new(
                "Email",
                "Email",
                T::Email,
                Gen::Email {
                    first: Some(contact::FIRST_NAME),
                    last: Some(contact::LAST_NAME),
                    nulls: 8,
                },
            ),
            80,
        ),
        len(
            FieldDef::new("Phone", "Business Phone", T::Phone, Gen::Phone(8)),
            40,
        ),
        len(
            FieldDef::new("Title", "Title", T::String, pick(TITLES)),
            128,
        ),
        len(
            FieldDef::new("Department", "Department", T::String, pick(DEPARTMENTS)),
            80,
        ),
        len(
            FieldDef::new(
                "MailingStreet",
                "Mailing Street",
                T::Textarea,
                Gen::Street(8),
            ),
            255,
        ),
        len(
            FieldDef::new("MailingCity", "Mailing City", T::String, city(8)),
            40,
        ),
        len(
            FieldDef::new(
                "MailingState",
                "Mailing State/Province",
                T::String,
                Gen::Region {
                    salt: CITY_SALT,
                    nulls: 8,
                },
            ),
            80,
        ),
        len(
            FieldDef::new(
                "MailingPostalCode",
                "Mailing Zip/Postal Code",
                T::String,
                Gen::PostalCode(8),
            ),
            20,
        ),
        len(
            FieldDef::new(
                "MailingCountry",
                "Mailing Country",
                T::String,
                Gen::Country {
                    salt: CITY_SALT,
                    nulls: 8,
                },
            ),
            80,
        ),
        picklist(
            FieldDef::new("LeadSource", "Lead Source", T::Picklist, pick(LEAD_SOURCES)),
            LEAD_SOURCES,
        ),
        FieldDef::new("Birthdate", "Birthdate", T::Date, Gen::Birthdate(8)),
        FieldDef {
            nillable: false,
            ..FieldDef::new(
                "HasOptedOutOfEmail",
                "Email Opt Out",
                T::Boolean,
                Gen::OptOut,
            )
        },
        FieldDef {
            filterable: false,
            sortable: false,
            ..len(
                FieldDef::new(
                    "Description",
                    "Contact Description",
                    T::Textarea,
                    Gen::Description {
                        last: Some(contact::LAST_NAME),
                    },
                ),
                32000,
            )
        },
    ];
    fields.extend(stamps());
    fields.push(number(
        FieldDef::new(
            "Engagement_Score__c",
            "Engagement Score",
            T::Double,
            Gen::Score(8),
        ),
        18,
        2,
    ));
    ObjectDef::new("Contact", "Contact", "Contacts", "003", fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_positions_match_the_tables() {
        let [a, c] = <[Arc<ObjectDef>; 2]>::try_from(objects()).unwrap();
        assert_eq!(a.fields[account::NAME].name, "Name");
        assert_eq!(a.fields[account::PHONE].name, "Phone");
        assert_eq!(a.fields.len(), 14);
        assert_eq!(a.fields[13].name, "IsDeleted");
        assert_eq!(c.fields[contact::ACCOUNT_ID].name, "AccountId");
        assert_eq!(c.fields[contact::ACCOUNT_ID].target, Some(ObjectKind(0)));
        assert_eq!(c.fields[contact::LAST_NAME].name, "LastName");
        assert_eq!(c.fields[16].name, "Description");
        assert_eq!(c.fields[20].name, "IsDeleted");
        assert_eq!(c.fields[21].name, "Engagement_Score__c");
        assert_eq!(c.fields.len(), 22);
        assert!(c.fields[21].custom);
        assert!(c.fields[6].nul_target && c.fields[16].nul_target);
    }
}
