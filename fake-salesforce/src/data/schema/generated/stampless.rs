//! Objects short of the stamps replication reads: AccountHistory (CreatedDate only),
//! UserLogin (LastModifiedDate only) and LoginHistory (none; clients fall back to LoginTime).

use super::{finish, id, is_deleted, len, pick, stamp, user};
use crate::data::generate::lists::HISTORY_FIELDS;
use crate::data::generate::{Gen, Nulls};
use crate::data::schema::real::ACCOUNT;
use crate::data::schema::{FieldDef, FieldType as T, ObjectDef};

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
