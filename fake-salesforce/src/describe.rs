//! Describe resources: the global `GET /sobjects` list and `GET /sobjects/{Object}/describe`,
//! built from the same metadata the SOQL resolver uses.

use serde_json::{Value as Json, json};

use crate::data::schema::{OBJECTS, ObjectDef};
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
pub fn global(version: &str) -> Json {
    let sobjects: Vec<Json> = OBJECTS
        .iter()
        .map(|o| {
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
        "sortable": f.sortable(),
        "groupable": f.filterable && !matches!(f.ty, FieldType::Double | FieldType::Currency | FieldType::DateTime),
        "aggregatable": true,
        "calculated": false,
        "calculatedFormula": null,
        "custom": f.custom,
    });
    let more = json!({
        "unique": false,
        "caseSensitive": false,
        "externalId": false,
        "idLookup": f.ty == FieldType::Id,
        "nameField": f.name_field,
        "autoNumber": false,
        "defaultedOnCreate": f.system || f.ty == FieldType::Boolean,
        "referenceTo": f.reference_to.map(|o| vec![o.def().name]).unwrap_or_default(),
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
    let children: Vec<Json> = def
        .children
        .iter()
        .map(|c| {
            json!({
                "childSObject": c.child.def().name, "field": c.field,
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
        "fields": def.fields.iter().map(field).collect::<Vec<_>>(),
        "childRelationships": children,
        "recordTypeInfos": [],
        "urls": urls(def, version),
    })
}
