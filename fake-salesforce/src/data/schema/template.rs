//! The recorded describes (`fixtures/`) and the describe JSON of fields and objects that were
//! not recorded (the generated objects, fields added at run time): built from a recorded field
//! or object of the same kind, so every key a real org sends is there, in its order.

use std::sync::LazyLock;

use serde_json::{Value as Json, json};

use super::{FieldDef, FieldType, ObjectDef};

fn parse(text: &str, what: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("fixtures/{what} is not JSON: {e}"))
}

/// `GET /sobjects/Account/describe` of a person-account org with the NPSP packages.
pub static ACCOUNT: LazyLock<Json> = LazyLock::new(|| {
    parse(
        include_str!("../../../fixtures/Account.personaccounts.describe.json"),
        "Account.personaccounts.describe.json",
    )
});
pub static CONTACT: LazyLock<Json> = LazyLock::new(|| {
    parse(
        include_str!("../../../fixtures/Contact.describe.json"),
        "Contact.describe.json",
    )
});
pub static LEAD: LazyLock<Json> = LazyLock::new(|| {
    parse(
        include_str!("../../../fixtures/Lead.describe.json"),
        "Lead.describe.json",
    )
});
/// `GET /sobjects` of a real org (trimmed to 110 objects by its recorder).
pub static GLOBAL: LazyLock<Json> = LazyLock::new(|| {
    parse(
        include_str!("../../../fixtures/sobjects.global-describe.json"),
        "sobjects.global-describe.json",
    )
});

/// The recorded Account field a field of type `ty` is modelled on.
fn model_field(ty: FieldType) -> &'static Json {
    let name = match ty {
        FieldType::Id => "Id",
        FieldType::Reference => "ParentId",
        FieldType::String | FieldType::AnyType => "AccountNumber",
        FieldType::Textarea => "BillingStreet",
        FieldType::Picklist => "Type",
        FieldType::Multipicklist => "npsp__Funding_Focus__c",
        FieldType::Email => "PersonEmail",
        FieldType::Phone => "Phone",
        FieldType::Url => "Website",
        FieldType::Currency => "AnnualRevenue",
        FieldType::Int => "NumberOfEmployees",
        FieldType::Double => "NumberofLocations__c",
        FieldType::Percent => "npsp__Matching_Gift_Percent__c",
        FieldType::Date => "SLAExpirationDate__c",
        FieldType::DateTime => "LastViewedDate",
        FieldType::Boolean => "npe01__Private__pc",
        FieldType::Address | FieldType::Location => "BillingAddress",
    };
    ACCOUNT["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["name"] == name))
        .unwrap_or_else(|| panic!("the recorded Account describe has no field {name}"))
}

/// Describe JSON for a field that was not recorded.
pub fn field_json(f: &FieldDef, compound_name: Option<&str>) -> Json {
    let mut out = model_field(f.ty).clone();
    let text = f.ty.is_text() || matches!(f.ty, FieldType::Id | FieldType::Reference);
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|v| json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v}))
        .collect();
    let editable = !f.system && !f.calculated && !f.ty.is_compound();
    let values = [
        ("name", json!(f.name)),
        ("label", json!(f.label)),
        ("type", json!(f.ty.api_name())),
        ("soapType", json!(f.ty.soap_type())),
        ("length", json!(if text { f.length } else { 0 })),
        ("byteLength", json!(if text { f.length * 3 } else { 0 })),
        ("precision", json!(f.precision)),
        ("scale", json!(f.scale)),
        ("digits", json!(f.digits)),
        ("nillable", json!(f.nillable)),
        ("custom", json!(f.custom)),
        ("calculated", json!(f.calculated)),
        (
            "calculatedFormula",
            if f.calculated {
                json!(format!("/* generated formula of {} */ Name", f.name))
            } else {
                Json::Null
            },
        ),
        ("compoundFieldName", json!(compound_name)),
        ("referenceTo", json!(f.reference_to)),
        ("relationshipName", json!(f.relationship_name)),
        ("polymorphicForeignKey", json!(f.reference_to.len() > 1)),
        ("picklistValues", json!(picklist)),
        ("filterable", json!(f.filterable)),
        ("sortable", json!(f.sortable)),
        (
            "groupable",
            json!(
                f.filterable
                    && !matches!(
                        f.ty,
                        FieldType::Double
                            | FieldType::Currency
                            | FieldType::Percent
                            | FieldType::DateTime
                            | FieldType::Textarea
                    )
            ),
        ),
        ("createable", json!(editable)),
        ("updateable", json!(editable)),
        ("nameField", json!(f.name_field)),
        ("idLookup", json!(f.ty == FieldType::Id)),
        (
            "defaultedOnCreate",
            json!(f.system || f.ty == FieldType::Boolean),
        ),
        ("permissionable", json!(editable && f.nillable)),
        (
            "defaultValue",
            if f.ty == FieldType::Boolean && !f.system {
                json!(false)
            } else {
                Json::Null
            },
        ),
        (
            "extraTypeInfo",
            if f.ty == FieldType::Textarea {
                json!("plaintextarea")
            } else {
                Json::Null
            },
        ),
    ];
    if let Some(map) = out.as_object_mut() {
        for (k, v) in values {
            map.insert(k.to_owned(), v);
        }
    }
    out
}

/// Describe JSON (without `fields`) for an object that was not recorded, modelled on the
/// recorded Lead.
pub fn object_json(def: &ObjectDef) -> Json {
    let mut out = LEAD.clone();
    with_version(&mut out, "v62.0", "Lead", def.name);
    if let Some(map) = out.as_object_mut() {
        map.remove("fields");
        let values = identity(def).into_iter().chain([
            ("keyPrefix", json!(def.key_prefix)),
            ("customSetting", json!(false)),
            ("retrieveable", json!(true)),
            ("childRelationships", json!([])),
            ("recordTypeInfos", json!([])),
            ("namedLayoutInfos", json!([])),
            ("actionOverrides", json!([])),
            ("supportedScopes", json!([])),
        ]);
        for (k, v) in values {
            map.insert(k.to_owned(), v);
        }
    }
    out
}

/// The global describe entry for an object: its recorded entry when the recording has one,
/// else the recorded Account's entry with this object's identity and capabilities.
pub fn global_entry(def: &ObjectDef) -> Json {
    let recorded = |name: &str| {
        GLOBAL["sobjects"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
    };
    let (mut out, known) = match recorded(def.name) {
        Some(entry) => (entry, true),
        None => {
            let mut entry = recorded("Account").unwrap_or_else(|| json!({}));
            with_version(&mut entry, "v62.0", "Account", def.name);
            (entry, false)
        }
    };
    if let Some(map) = out.as_object_mut() {
        // The recording trimmed some key prefixes to null; Ids need them.
        map.insert("keyPrefix".to_owned(), json!(def.key_prefix));
        if !known {
            for (k, v) in identity(def)
                .into_iter()
                .chain([("mruEnabled", json!(def.custom))])
            {
                map.insert(k.to_owned(), v);
            }
        }
    }
    out
}

/// An object's name, labels and capabilities as describes state them: a custom object can be
/// created, updated and laid out; a standard one the fake invents is read-only.
fn identity(def: &ObjectDef) -> [(&'static str, Json); 15] {
    [
        ("name", json!(def.name)),
        ("label", json!(def.label)),
        ("labelPlural", json!(def.label_plural)),
        ("custom", json!(def.custom)),
        ("queryable", json!(def.queryable)),
        ("replicateable", json!(def.replicateable)),
        ("searchable", json!(def.custom)),
        ("createable", json!(def.custom)),
        ("updateable", json!(def.custom)),
        ("deletable", json!(def.custom)),
        ("undeletable", json!(def.custom)),
        ("mergeable", json!(false)),
        ("feedEnabled", json!(false)),
        ("layoutable", json!(def.custom)),
        ("triggerable", json!(def.custom)),
    ]
}

/// Rewrites every `/services/data/vNN.N/` in `json` to `version` and `{Object}` links to
/// `name`, as an org answers under whatever version the request used.
pub fn with_version(json: &mut Json, version: &str, from: &str, name: &str) {
    match json {
        Json::String(s) if s.contains("/services/data/") => {
            if let Some(start) = s.find("/services/data/v") {
                let rest = &s[start + "/services/data/".len()..];
                let end = rest.find('/').unwrap_or(rest.len());
                let rewritten = format!("{}/services/data/{version}{}", &s[..start], &rest[end..]);
                *s = rewritten.replace(&format!("/sobjects/{from}"), &format!("/sobjects/{name}"));
            }
        }
        Json::Array(items) => {
            for item in items {
                with_version(item, version, from, name);
            }
        }
        Json::Object(map) => {
            for value in map.values_mut() {
                with_version(value, version, from, name);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_parse_and_model_fields_exist() {
        assert_eq!(ACCOUNT["fields"].as_array().unwrap().len(), 250);
        assert_eq!(GLOBAL["sobjects"].as_array().unwrap().len(), 110);
        for ty in [
            FieldType::Id,
            FieldType::Percent,
            FieldType::Multipicklist,
            FieldType::Address,
        ] {
            assert!(model_field(ty).is_object());
        }
    }

    #[test]
    fn urls_follow_the_request_version() {
        let mut v = json!({"urls": {"describe": "/services/data/v59.0/sobjects/Account/describe"}, "x": ["/services/data/vxx.0/sobjects/Account"]});
        with_version(&mut v, "v62.0", "Account", "Wide__c");
        assert_eq!(
            v["urls"]["describe"],
            "/services/data/v62.0/sobjects/Wide__c/describe"
        );
        assert_eq!(v["x"][0], "/services/data/v62.0/sobjects/Wide__c");
    }
}
