//! Objects that restrict how they are read: CaseStatus, which the Bulk API refuses, and
//! ContentDocumentLink, whose queries must pin a document or a linked record.

use super::{finish, id, is_deleted, len, pick, stamp, user};
use crate::data::generate::{Gen, Nulls};
use crate::data::schema::real::ACCOUNT;
use crate::data::schema::{FieldDef, FieldType as T, ObjectDef, Restriction};

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
