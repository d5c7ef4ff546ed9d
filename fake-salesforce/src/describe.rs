//! Describe resources: the global `GET /sobjects` list and `GET /sobjects/{Object}/describe`,
//! built from the same metadata the SOQL resolver uses. The real shape answers with the
//! recorded JSON (or JSON modelled on it, see [`crate::data::schema::template`]); the classic
//! shape with JSON built from the field list. Fields hidden by field-level security are left
//! out of both.

use serde_json::{Value as Json, json};

use crate::data::schema::template::with_version;
use crate::data::schema::{ObjectDef, Schema};
use crate::data::{FieldDef, FieldType};

fn urls(def: &ObjectDef, version: &str) -> Json {
    let base = format!("/services/data/{version}/sobjects/{}", def.name);
    json!({
        "sobject": base,
        "describe": format!("{base}/describe"),
        "rowTemplate": format!("{base}/{{ID}}"),
    })
}

/// `GET /sobjects`.
pub fn global(schema: &Schema, version: &str) -> Json {
    let sobjects: Vec<Json> = schema
        .kinds()
        .map(|k| schema.def(k))
        .map(|o| {
            if let Some(entry) = &o.global {
                let mut entry = (**entry).clone();
                let from = entry["name"].as_str().unwrap_or(o.name).to_owned();
                with_version(&mut entry, version, &from, o.name);
                return entry;
            }
            json!({
                "name": o.name, "label": o.label, "labelPlural": o.label_plural,
                "keyPrefix": o.key_prefix, "custom": false, "queryable": true,
                "replicateable": true, "retrieveable": true, "searchable": true,
                "createable": true, "updateable": true, "deletable": true,
                "deprecatedAndHidden": false, "layoutable": true, "triggerable": true,
                "urls": urls(o, version),
            })
        })
        .collect();
    json!({"encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects})
}

fn field(f: &FieldDef) -> Json {
    let text = f.ty.is_text() || matches!(f.ty, FieldType::Id | FieldType::Reference);
    let picklist: Vec<Json> = f
        .picklist
        .iter()
        .map(|v| json!({"value": v, "label": v, "active": true, "defaultValue": false, "validFor": null}))
        .collect();
    let default_value = if f.ty == FieldType::Boolean && !f.system {
        json!(false)
    } else {
        Json::Null
    };
    let mut out = json!({
        "name": f.name,
        "label": f.label,
        "type": f.ty.api_name(),
        "soapType": f.ty.soap_type(),
        "length": if text { f.length } else { 0 },
        "byteLength": if text { f.length * 3 } else { 0 },
        "precision": f.precision,
        "scale": f.scale,
        "digits": f.digits,
        "nillable": f.nillable,
        "createable": !f.system,
        "updateable": !f.system,
        "filterable": f.filterable,
        "sortable": f.sortable,
        "groupable": f.filterable && !matches!(f.ty, FieldType::Double | FieldType::Currency | FieldType::DateTime),
        "aggregatable": true,
        "calculated": false,
        "calculatedFormula": null,
        "custom": f.custom,
    });
    let more = json!({
        "unique": f.external_id,
        "caseSensitive": false,
        "externalId": f.external_id,
        "idLookup": f.ty == FieldType::Id || f.external_id,
        "nameField": f.name_field,
        "autoNumber": false,
        "defaultedOnCreate": f.system || f.ty == FieldType::Boolean,
        "referenceTo": f.reference_to,
        "relationshipName": f.relationship_name,
        "relationshipOrder": null,
        "cascadeDelete": false,
        "restrictedDelete": false,
        "compoundFieldName": null,
        "picklistValues": picklist,
        "restrictedPicklist": false,
        "dependentPicklist": false,
        "controllerName": null,
        "defaultValue": default_value,
        "defaultValueFormula": null,
        "deprecatedAndHidden": false,
        "encrypted": false,
        "htmlFormatted": false,
        "highScaleNumber": false,
        "inlineHelpText": null,
        "permissionable": !f.system && f.nillable,
        "polymorphicForeignKey": false,
        "extraTypeInfo": null,
        "mask": null,
        "maskType": null,
    });
    // Two literals because one this size exceeds serde_json's macro recursion limit.
    if let (Some(out), Json::Object(more)) = (out.as_object_mut(), more) {
        out.extend(more);
    }
    out
}

/// `GET /sobjects/{Object}/describe`.
pub fn object(def: &ObjectDef, version: &str) -> Json {
    if let Some(top) = &def.describe {
        let mut out = (**top).clone();
        let from = out["name"].as_str().unwrap_or(def.name).to_owned();
        with_version(&mut out, version, &from, def.name);
        let fields: Vec<Json> = def
            .visible()
            .map(|i| {
                let f = &def.fields[i];
                f.describe.as_deref().cloned().unwrap_or_else(|| field(f))
            })
            .collect();
        if let Some(map) = out.as_object_mut() {
            map.insert("fields".to_owned(), Json::Array(fields));
        }
        return out;
    }
    let children: Vec<Json> = def
        .children
        .iter()
        .map(|c| {
            json!({
                "childSObject": c.child, "field": c.field,
                "relationshipName": c.relationship_name, "cascadeDelete": false,
                "restrictedDelete": false, "deprecatedAndHidden": false,
                "junctionIdListNames": [], "junctionReferenceTo": [],
            })
        })
        .collect();
    json!({
        "name": def.name,
        "label": def.label,
        "labelPlural": def.label_plural,
        "keyPrefix": def.key_prefix,
        "custom": false,
        "queryable": true,
        "replicateable": true,
        "retrieveable": true,
        "searchable": true,
        "createable": true,
        "updateable": true,
        "deletable": true,
        "deprecatedAndHidden": false,
        "fields": def.visible().map(|i| field(&def.fields[i])).collect::<Vec<_>>(),
        "childRelationships": children,
        "recordTypeInfos": [],
        "urls": urls(def, version),
    })
}
