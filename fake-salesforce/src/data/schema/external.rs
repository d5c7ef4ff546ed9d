//! The external Id field an org can be configured with ([`crate::OrgConfig::external_id_field`]):
//! a custom text(36) field that upserts match on, added to every createable object, as an
//! admin would add it once for a write-back integration.

use std::sync::Arc;

use serde_json::json;

use super::{FieldDef, FieldType, Schema, leak, template};
use crate::data::generate::Gen;

/// Its length: a UUID's 36 characters.
pub const EXTERNAL_ID_LENGTH: u32 = 36;

impl Schema {
    /// This schema with the external Id field `name` appended to every createable object
    /// that does not already have a field of that name. Generated records read null.
    pub fn with_external_id(&self, name: &str) -> Schema {
        let mut next = self.clone();
        for kind in self.kinds() {
            let def = self.def(kind);
            if !def.createable() || def.any_field_index(name).is_some() {
                continue;
            }
            let mut def = def.clone();
            let mut field = FieldDef {
                length: EXTERNAL_ID_LENGTH,
                external_id: true,
                nul_target: false,
                ..FieldDef::new(
                    leak(name),
                    leak(name.trim_end_matches("__c")),
                    FieldType::String,
                    Gen::Null,
                )
            };
            if def.describe.is_some() {
                let mut describe = template::field_json(&field, None);
                if let Some(map) = describe.as_object_mut() {
                    for (k, v) in [
                        ("externalId", json!(true)),
                        ("unique", json!(true)),
                        ("idLookup", json!(true)),
                        ("caseSensitive", json!(false)),
                        ("createable", json!(true)),
                        ("updateable", json!(true)),
                        ("nillable", json!(true)),
                        ("defaultedOnCreate", json!(false)),
                    ] {
                        map.insert(k.to_owned(), v);
                    }
                }
                field.describe = Some(Arc::new(describe));
            }
            def.fields.push(field);
            def.reindex();
            next = next.with_object(kind, def);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Shape;

    #[test]
    fn every_createable_object_gets_the_field() {
        for shape in [Shape::Classic, Shape::Real] {
            let schema = Schema::new(shape).with_external_id("Sfsync_Id__c");
            for name in ["Account", "Contact"] {
                let def = schema.def(schema.object(name).unwrap());
                let f = &def.fields[def.field_index("sfsync_id__c").unwrap()];
                assert!(f.external_id && f.createable() && f.updateable() && f.is_nillable());
                assert_eq!(f.length, EXTERNAL_ID_LENGTH);
            }
        }
        let real = Schema::new(Shape::Real).with_external_id("Sfsync_Id__c");
        let lead = real.def(real.object("Lead").unwrap());
        assert!(lead.field_index("Sfsync_Id__c").is_some());
        let history = real.def(real.object("AccountHistory").unwrap());
        assert!(history.field_index("Sfsync_Id__c").is_none());
    }
}
