//! How to fill a field of a recorded describe, from its name and type: standard fields get
//! their meaning (names, addresses, owners, record types), the rest plausible values of their
//! type with a null rate fixed per field (real orgs leave most custom fields empty).

use std::collections::HashMap;

use super::{FieldDef, FieldType, ObjectKind, leak};
use crate::data::generate::lists::{DEPARTMENTS, TITLES};
use crate::data::generate::{Gen, Nulls, name_hash};

/// What a recipe may look at besides the field itself.
pub struct Context<'a> {
    pub object: &'static str,
    /// This object's fields: lower-cased name → index.
    pub names: &'a HashMap<String, usize>,
    /// The served objects: lower-cased name → kind.
    pub kinds: &'a HashMap<String, ObjectKind>,
    /// The object's record type Ids (the master one excluded).
    pub record_types: &'static [&'static str],
}

impl Context<'_> {
    fn field(&self, name: &str) -> Option<usize> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }

    /// The null percentage of a field without a special meaning: 20 to 94, fixed per field.
    fn sparse(&self, name: &str) -> u8 {
        20 + (name_hash(&format!("{}.{name}", self.object)) % 75) as u8
    }
}

/// The address components, by the suffix of their name.
const PARTS: [&str; 8] = [
    "GeocodeAccuracy",
    "PostalCode",
    "Longitude",
    "Latitude",
    "Country",
    "Street",
    "State",
    "City",
];

/// `("Billing", "City")` for `BillingCity` when it is part of the compound `compound`.
fn address_part(
    name: &'static str,
    compound: Option<&str>,
) -> Option<(&'static str, &'static str)> {
    compound?;
    PARTS
        .iter()
        .find_map(|p| name.strip_suffix(p).map(|prefix| (prefix, *p)))
}

/// The salt that keeps the parts of one address together (one city per address).
fn address_salt(prefix: &str) -> u64 {
    7 ^ (name_hash(prefix) << 4)
}

/// Key prefixes of objects the real shape references but does not serve.
fn foreign_prefix(object: &str) -> &'static str {
    match object {
        "User" => "005",
        "Group" => "00G",
        "RecordType" => "012",
        "Opportunity" => "006",
        "Individual" => "0PK",
        "DandBCompany" => "06E",
        "ContentDocument" => "069",
        "Campaign" => "701",
        other => {
            // Custom objects: `a` and two base-62 characters, fixed per name.
            let h = name_hash(other);
            let b = crate::data::generate::BASE62;
            leak(&format!(
                "a{}{}",
                char::from(b[(h % 62) as usize]),
                char::from(b[((h >> 8) % 62) as usize])
            ))
        }
    }
}

/// The recipe for `f`, a field of `cx.object`; `compound` is its `compoundFieldName`.
pub fn recipe(cx: &Context<'_>, f: &FieldDef, compound: Option<&str>) -> Gen {
    let name = f.name;
    let sparse = cx.sparse(name);
    if let Some((prefix, part)) = address_part(name, compound) {
        let salt = address_salt(prefix);
        let nulls = if matches!(prefix, "Billing" | "Mailing" | "") {
            8
        } else {
            60
        };
        return match part {
            "City" => Gen::City { salt, nulls },
            "State" => Gen::Region { salt, nulls },
            "Country" => Gen::Country { salt, nulls },
            "PostalCode" => Gen::PostalCode(nulls),
            "Street" => Gen::Street(nulls),
            "Latitude" => Gen::Latitude { salt, nulls: 70 },
            "Longitude" => Gen::Longitude { salt, nulls: 70 },
            _ => Gen::Geocode {
                list: f.picklist,
                salt,
                nulls: 70,
            },
        };
    }
    let first = cx.field("FirstName");
    let last = cx.field("LastName");
    match f.ty {
        FieldType::Id => Gen::Id,
        FieldType::Boolean => match name {
            "IsDeleted" => Gen::False,
            "HasOptedOutOfEmail" => Gen::OptOut,
            "IsPersonAccount" => Gen::Bool { one_in: 5 },
            _ => Gen::Bool {
                one_in: 3 + (name_hash(name) % 20) as u8,
            },
        },
        FieldType::DateTime => match name {
            "CreatedDate" => Gen::Created,
            "LastModifiedDate" => Gen::LastModified,
            "SystemModstamp" => Gen::Modstamp,
            _ => Gen::DateTime(sparse),
        },
        FieldType::Date => match name {
            "Birthdate" | "PersonBirthdate" => Gen::Birthdate(8),
            _ => Gen::Date(sparse),
        },
        FieldType::Reference => reference(cx, f, sparse),
        FieldType::String => match name {
            "Name" if cx.object != "Account" => match (first, last) {
                (Some(first), Some(last)) => Gen::FullName { first, last },
                _ => Gen::Company,
            },
            "Name" | "Company" => Gen::Company,
            "FirstName" => Gen::FirstName(0),
            "LastName" => Gen::LastName,
            "Title" | "PersonTitle" => Gen::Pick {
                list: TITLES,
                nulls: 8,
            },
            "Department" | "PersonDepartment" => Gen::Pick {
                list: DEPARTMENTS,
                nulls: 8,
            },
            _ if f.length <= 20 => Gen::Code {
                len: f.length,
                nulls: sparse,
            },
            _ => Gen::Words {
                max: f.length,
                nulls: sparse,
            },
        },
        FieldType::Textarea => match name {
            "Description" => Gen::Description { last },
            _ => Gen::Text(sparse),
        },
        FieldType::Picklist => Gen::Pick {
            list: f.picklist,
            nulls: if matches!(
                name,
                "Type" | "Industry" | "LeadSource" | "Status" | "Rating"
            ) {
                8
            } else {
                sparse
            },
        },
        FieldType::Multipicklist => Gen::Multi {
            list: f.picklist,
            nulls: sparse,
        },
        FieldType::Email => Gen::Email {
            first,
            last,
            nulls: if name == "Email" { 8 } else { sparse },
        },
        FieldType::Phone => Gen::Phone(if name == "Phone" { 8 } else { sparse }),
        FieldType::Url => match (name, cx.field("Company").or(cx.field("Name"))) {
            ("Website", Some(company)) if cx.object != "Contact" => Gen::Website { name: company },
            _ => Gen::Url(sparse),
        },
        FieldType::Currency => match name {
            "AnnualRevenue" => Gen::Revenue(8),
            _ => Gen::Amount {
                scale: f.scale,
                nulls: sparse,
            },
        },
        FieldType::Double => Gen::Number {
            scale: f.scale,
            nulls: sparse,
        },
        FieldType::Percent => Gen::Percent(sparse),
        FieldType::Int => match name {
            "NumberOfEmployees" => Gen::Employees(8),
            _ => Gen::Int {
                max: 10u32.pow(f.digits.clamp(1, 6)),
                nulls: sparse,
            },
        },
        FieldType::Address | FieldType::Location => Gen::Null,
        FieldType::AnyType => Gen::Any(30),
    }
}

fn reference(cx: &Context<'_>, f: &FieldDef, sparse: u8) -> Gen {
    match f.name {
        // Merges and person accounts are rare; their links stay empty.
        "MasterRecordId" | "PersonContactId" | "PersonIndividualId" | "IndividualId" => Gen::Null,
        "CreatedById" | "LastModifiedById" | "OwnerId" => Gen::User,
        "RecordTypeId" if !cx.record_types.is_empty() => Gen::OneOf {
            ids: cx.record_types,
            nulls: 0,
        },
        "RecordTypeId" => Gen::Null,
        name => {
            let served = f
                .reference_to
                .iter()
                .find_map(|t| cx.kinds.get(&t.to_ascii_lowercase()).copied());
            match served {
                Some(target) => Gen::Reference {
                    target,
                    nulls: if name == "AccountId" {
                        Nulls::OneIn(10)
                    } else {
                        Nulls::Pct(sparse.max(60))
                    },
                },
                None => Gen::Foreign {
                    prefix: foreign_prefix(f.reference_to.first().copied().unwrap_or("")),
                    count: 1000,
                    nulls: sparse.max(60),
                },
            }
        }
    }
}
