//! The generated objects of the real shape (see [`super::real`]): objects whose describes
//! were not recorded, built from the field lists of the Salesforce object reference, with
//! describe JSON modelled on recorded fields ([`super::template`]).
//!
//! Key prefixes: Account 001 and the others as real orgs use them (AccountHistory 017,
//! UserLogin 0Yw as recorded in the global describe, LoginHistory 0Ya, ContentDocumentLink
//! 06A); CaseStatus's `01J` and Wide__c's `a0W` are made up, and so are the plain objects'
//! (`a0A`, `a0B`, …, skipping `a0W`).
//!
//! One file per kind of object: `wide` (Wide__c, 735 fields), `stampless` (AccountHistory,
//! UserLogin and LoginHistory, short of the stamps replication reads), `restricted`
//! (CaseStatus, which the Bulk API refuses, and ContentDocumentLink, which needs a WHERE) and
//! `plain` (Plain_01__c …, ordinary custom objects added to either shape on request, see
//! [`crate::OrgConfig::plain_objects`]). This file holds the field builders they share.

mod plain;
mod restricted;
mod stampless;
mod wide;

use std::sync::Arc;

use super::{FieldDef, FieldType as T, ObjectDef, template};
use crate::data::generate::Gen;

pub use plain::{MAX_PLAIN_OBJECTS, PLAIN_GROUP, is_plain_object, plain_objects};
pub use restricted::{case_status, content_document_link};
pub use stampless::{account_history, login_history, user_login};
pub use wide::wide;

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

/// The standard fields every custom object has, in the order a custom object's describe
/// lists them: Id, OwnerId, IsDeleted, Name (text 80, the name field, labelled `name_label`),
/// CreatedDate, CreatedById, LastModifiedDate, LastModifiedById, SystemModstamp.
fn standard_fields(name_label: &'static str) -> Vec<FieldDef> {
    vec![
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
                    name_label,
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
    ]
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
