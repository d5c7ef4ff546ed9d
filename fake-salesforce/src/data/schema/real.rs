//! The real shape (`--shape real`): what a production org looks like to an integration.
//!
//! | object | fields | replicateable | stamps | what it reproduces |
//! |---|---|---|---|---|
//! | Account | 250 | yes | all three | the recorded person-account describe: 16 formula fields, `__pc` and namespaced fields, multipicklists, 4 compound addresses |
//! | Contact | 61 | yes | all three | the recorded describe plus the classic fields it lacks (`HasOptedOutOfEmail`, `Engagement_Score__c`): real orgs add fields to standard objects |
//! | Lead | 54 | yes | all three | the recorded describe |
//! | Wide__c | 735 | yes | all three | a custom object whose full SELECT does not fit in a request line (414) |
//! | AccountHistory | 9 | yes | CreatedDate only | history objects have no SystemModstamp and no LastModifiedDate |
//! | UserLogin | 6 | no | LastModifiedDate only | a real object with LastModifiedDate but no SystemModstamp, and not replicateable |
//! | LoginHistory | 14 | no | none (LoginTime) | no CreatedDate, LastModifiedDate nor SystemModstamp |
//! | CaseStatus | 11 | no | all three | refused by the Bulk API (`INVALIDENTITY`) |
//! | ContentDocumentLink | 7 | no | SystemModstamp only | needs a WHERE on ContentDocumentId or LinkedEntityId |
//!
//! The recorded objects come from `fixtures/` (see its SOURCES.md); the others are generated
//! in [`super::generated`] with describe JSON modelled on the recorded fields.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use serde_json::Value as Json;

use super::recipe::{Context, recipe};
use super::{
    Compound, FieldDef, FieldType, ObjectDef, ObjectKind, generated, leak, link_targets, template,
};
use crate::data::generate::Gen;

/// The real shape's objects, in global-describe order; `ObjectKind(i)` is `NAMES[i]`.
pub const NAMES: [&str; 9] = [
    "Account",
    "Contact",
    "Lead",
    "Wide__c",
    "AccountHistory",
    "UserLogin",
    "LoginHistory",
    "CaseStatus",
    "ContentDocumentLink",
];
pub const ACCOUNT: ObjectKind = ObjectKind(0);
pub const CONTACT: ObjectKind = ObjectKind(1);

static OBJECTS: LazyLock<Vec<Arc<ObjectDef>>> = LazyLock::new(|| {
    let kinds: HashMap<String, ObjectKind> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_ascii_lowercase(), ObjectKind(i as u16)))
        .collect();
    let mut objects = vec![
        recorded(&template::ACCOUNT, &kinds, Vec::new()),
        recorded(&template::CONTACT, &kinds, contact_additions()),
        recorded(&template::LEAD, &kinds, Vec::new()),
        generated::wide(),
        generated::account_history(),
        generated::user_login(),
        generated::login_history(),
        generated::case_status(),
        generated::content_document_link(),
    ];
    link_targets(&mut objects);
    for (object, name) in objects.iter().zip(NAMES) {
        assert_eq!(
            object.name, name,
            "the real shape's objects are out of order"
        );
    }
    objects.into_iter().map(Arc::new).collect()
});

/// The real shape's objects, in [`NAMES`] order.
pub fn objects() -> Vec<Arc<ObjectDef>> {
    OBJECTS.clone()
}

fn str_of(v: &Json, key: &str) -> &'static str {
    leak(v[key].as_str().unwrap_or_default())
}

fn u32_of(v: &Json, key: &str) -> u32 {
    v[key].as_u64().unwrap_or(0) as u32
}

fn bool_of(v: &Json, key: &str) -> bool {
    v[key].as_bool().unwrap_or(false)
}

/// A field as a recorded describe lists it (recipe not chosen yet).
fn parse_field(v: &Json) -> FieldDef {
    let ty = v["type"].as_str().unwrap_or_default();
    let ty = FieldType::from_api_name(ty)
        .unwrap_or_else(|| panic!("recorded field {} has unserved type {ty}", v["name"]));
    let strings = |key: &str| -> &'static [&'static str] {
        let list: Vec<&'static str> = v[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(leak)
            .collect();
        Box::leak(list.into_boxed_slice())
    };
    let picklist: Vec<&'static str> = v["picklistValues"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["active"] != false)
        .filter_map(|p| p["value"].as_str())
        .map(leak)
        .collect();
    let name = str_of(v, "name");
    FieldDef {
        length: u32_of(v, "length"),
        precision: u32_of(v, "precision"),
        scale: u32_of(v, "scale"),
        digits: u32_of(v, "digits"),
        nillable: bool_of(v, "nillable"),
        custom: bool_of(v, "custom"),
        system: !bool_of(v, "createable") && !bool_of(v, "updateable"),
        filterable: bool_of(v, "filterable"),
        sortable: bool_of(v, "sortable"),
        calculated: bool_of(v, "calculated"),
        reference_to: strings("referenceTo"),
        relationship_name: v["relationshipName"].as_str().map(leak),
        picklist: Box::leak(picklist.into_boxed_slice()),
        name_field: bool_of(v, "nameField"),
        describe: Some(Arc::new(v.clone())),
        ..FieldDef::new(name, str_of(v, "label"), ty, Gen::Null)
    }
}

/// Fills in the component indices of every compound field from the components'
/// `compoundFieldName`, and returns each field's compound name.
fn link_compounds(fields: &mut [FieldDef], compound_of: &[Option<&'static str>]) {
    let parts: Vec<(usize, Option<usize>, &str)> = fields
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let parent = compound_of[i]?;
            let parent_index = fields.iter().position(|p| p.name == parent);
            Some((i, parent_index, f.name))
        })
        .collect();
    for (i, parent, name) in parts {
        let Some(parent) = parent else { continue };
        let key = match name {
            n if n.ends_with("GeocodeAccuracy") => 2,
            n if n.ends_with("City") => 0,
            n if n.ends_with("Country") => 1,
            n if n.ends_with("Latitude") || n.ends_with("Latitude__s") => 3,
            n if n.ends_with("Longitude") || n.ends_with("Longitude__s") => 4,
            n if n.ends_with("PostalCode") => 5,
            n if n.ends_with("State") => 6,
            n if n.ends_with("Street") => 7,
            _ => continue,
        };
        fields[parent]
            .compound
            .get_or_insert_with(Compound::default)
            .parts[key] = Some(i);
    }
}

/// An object from its recorded describe, plus `extra` fields the recording lacks.
fn recorded(
    describe: &Json,
    kinds: &HashMap<String, ObjectKind>,
    extra: Vec<(FieldDef, Gen)>,
) -> ObjectDef {
    let name = str_of(describe, "name");
    let recorded = describe["fields"].as_array().cloned().unwrap_or_default();
    let mut fields: Vec<FieldDef> = recorded.iter().map(parse_field).collect();
    let mut compound_of: Vec<Option<&'static str>> = recorded
        .iter()
        .map(|f| f["compoundFieldName"].as_str().map(leak))
        .collect();
    let record_types: Vec<&'static str> = describe["recordTypeInfos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["master"] == false && r["active"] == true)
        .filter_map(|r| r["recordTypeId"].as_str())
        .map(leak)
        .collect();
    let record_types: &'static [&'static str] = Box::leak(record_types.into_boxed_slice());
    let mut top = describe.clone();
    if let Some(map) = top.as_object_mut() {
        map.remove("fields");
    }
    let mut def = ObjectDef::new(
        name,
        str_of(describe, "label"),
        str_of(describe, "labelPlural"),
        str_of(describe, "keyPrefix"),
        Vec::new(),
    );
    def.custom = bool_of(describe, "custom");
    def.queryable = bool_of(describe, "queryable");
    def.replicateable = bool_of(describe, "replicateable");
    let names: HashMap<String, usize> = fields
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
        .collect();
    let cx = Context {
        object: name,
        names: &names,
        kinds,
        record_types,
    };
    for (i, f) in fields.iter_mut().enumerate() {
        f.recipe = recipe(&cx, f, compound_of[i]);
    }
    for (mut f, how) in extra {
        f.recipe = how;
        f.describe = Some(Arc::new(template::field_json(&f, None)));
        fields.push(f);
        compound_of.push(None);
    }
    link_compounds(&mut fields, &compound_of);
    def.fields = fields;
    def.global = Some(Arc::new(template::global_entry(&def)));
    def.describe = Some(Arc::new(top));
    def.reindex();
    def
}

/// The classic Contact fields the recorded Contact lacks (its org hides HasOptedOutOfEmail
/// and has no custom fields): kept so that queries written for the classic shape still run.
fn contact_additions() -> Vec<(FieldDef, Gen)> {
    vec![
        (
            FieldDef {
                nillable: false,
                ..FieldDef::new(
                    "HasOptedOutOfEmail",
                    "Email Opt Out",
                    FieldType::Boolean,
                    Gen::Null,
                )
            },
            Gen::OptOut,
        ),
        (
            FieldDef {
                precision: 18,
                scale: 2,
                ..FieldDef::new(
                    "Engagement_Score__c",
                    "Engagement Score",
                    FieldType::Double,
                    Gen::Null,
                )
            },
            Gen::Score(8),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_objects_keep_their_shape() {
        let objects = objects();
        let account = &objects[ACCOUNT.index()];
        assert_eq!(account.fields.len(), 250);
        assert_eq!(account.fields.iter().filter(|f| f.calculated).count(), 16);
        let addresses: Vec<_> = account
            .fields
            .iter()
            .filter(|f| f.ty == FieldType::Address)
            .collect();
        assert_eq!(addresses.len(), 4);
        for a in addresses {
            let c = a.compound.as_ref().unwrap();
            assert!(c.parts.iter().all(Option::is_some), "{}", a.name);
        }
        let contact = &objects[CONTACT.index()];
        assert_eq!(contact.fields.len(), 61);
        let account_id = contact.field_index("AccountId").unwrap();
        assert_eq!(contact.fields[account_id].target, Some(ACCOUNT));
        for classic in super::super::classic::objects() {
            let real = objects.iter().find(|o| o.name == classic.name).unwrap();
            for f in &classic.fields {
                let i = real
                    .field_index(f.name)
                    .unwrap_or_else(|| panic!("{}", f.name));
                assert_eq!(real.fields[i].ty, f.ty, "{}.{}", classic.name, f.name);
            }
        }
    }
}
