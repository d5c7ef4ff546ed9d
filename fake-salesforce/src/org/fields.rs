//! Fields that appear and disappear while the org runs (`POST /__admin/fields`,
//! [`Org::change_fields`]): a custom field added to an object, a field hidden from the
//! integration user by field-level security, and shown again.
//!
//! - An added field shows in describe at once and every query can name it. Records that
//!   existed before read null (false for a checkbox), as Salesforce leaves a new field empty
//!   on existing records; records created afterwards get generated values. `"existing":
//!   "generated"` fills the existing records too (a field backfilled by a data load, which in
//!   a real org would also move their SystemModstamp; here it does not). No SystemModstamp
//!   changes either way.
//! - A hidden field is left out of describe, and SOQL naming it fails like an unknown field
//!   (400 `INVALID_FIELD` "No such column …"). Required fields cannot be hidden. Query cursors
//!   and Bulk jobs opened before keep the fields they resolved.

use serde::{Deserialize, Serialize};

use super::Org;
use crate::data::generate::{Gen, name_hash};
use crate::data::schema::{Added, FieldDef, FieldType, leak, template};

/// What to change on one object. Hides and shows apply after the addition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsRequest {
    pub object: String,
    #[serde(default)]
    pub add: Option<NewField>,
    /// Fields to hide from the integration user.
    #[serde(default)]
    pub hide: Vec<String>,
    /// Hidden fields to show again.
    #[serde(default)]
    pub show: Vec<String>,
}

/// A custom field to add.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewField {
    /// API name, ending in `__c`.
    pub name: String,
    /// Describe type: string, textarea, picklist, multipicklist, email, phone, url, currency,
    /// double, percent, date, datetime or boolean.
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(default)]
    pub label: Option<String>,
    /// Picklist values (picklist and multipicklist).
    #[serde(default)]
    pub values: Vec<String>,
    /// `"null"` (the default) or `"generated"`: what existing records hold.
    #[serde(default)]
    pub existing: Option<String>,
}

/// The object's fields after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldsResponse {
    pub object: String,
    /// Fields describe lists.
    pub fields: usize,
    /// Fields hidden from the integration user.
    pub hidden: Vec<String>,
}

/// A refused change: the errorCode and message of the 400 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub code: &'static str,
    pub message: String,
}

fn refuse(code: &'static str, message: impl Into<String>) -> FieldChange {
    FieldChange {
        code,
        message: message.into(),
    }
}

fn new_field(spec: &NewField, below: u32) -> Result<FieldDef, FieldChange> {
    let name = spec.name.as_str();
    let valid = name.ends_with("__c")
        && name.len() > 3
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(refuse(
            "INVALID_FIELD",
            format!("{name} is not a custom field name (letters, digits and _, ending in __c)"),
        ));
    }
    let ty = FieldType::from_api_name(&spec.ty)
        .filter(|t| {
            !matches!(
                t,
                FieldType::Id
                    | FieldType::Reference
                    | FieldType::Address
                    | FieldType::Location
                    | FieldType::AnyType
                    | FieldType::Int
            )
        })
        .ok_or_else(|| {
            refuse(
                "INVALID_TYPE",
                format!("cannot add a field of type {}", spec.ty),
            )
        })?;
    let nulls = 10 + (name_hash(name) % 40) as u8;
    let values: Vec<&'static str> = spec.values.iter().map(|v| leak(v)).collect();
    let values: &'static [&'static str] = Box::leak(values.into_boxed_slice());
    let (how, length) = match ty {
        FieldType::String => (Gen::Words { max: 255, nulls }, 255),
        FieldType::Textarea => (Gen::Text(nulls), 255),
        FieldType::Picklist => (
            Gen::Pick {
                list: values,
                nulls,
            },
            255,
        ),
        FieldType::Multipicklist => (
            Gen::Multi {
                list: values,
                nulls,
            },
            4099,
        ),
        FieldType::Email => (
            Gen::Email {
                first: None,
                last: None,
                nulls,
            },
            80,
        ),
        FieldType::Phone => (Gen::Phone(nulls), 40),
        FieldType::Url => (Gen::Url(nulls), 255),
        FieldType::Currency => (Gen::Amount { scale: 2, nulls }, 0),
        FieldType::Double => (Gen::Number { scale: 2, nulls }, 0),
        FieldType::Percent => (Gen::Percent(nulls), 0),
        FieldType::Date => (Gen::Date(nulls), 0),
        FieldType::DateTime => (Gen::DateTime(nulls), 0),
        _ => (Gen::Bool { one_in: 3 }, 0),
    };
    let label = leak(
        spec.label
            .as_deref()
            .unwrap_or(name.trim_end_matches("__c")),
    );
    let numeric = matches!(
        ty,
        FieldType::Currency | FieldType::Double | FieldType::Percent
    );
    let generated = match spec.existing.as_deref() {
        None | Some("null") => false,
        Some("generated") => true,
        Some(other) => {
            return Err(refuse(
                "INVALID_FIELD",
                format!("existing must be \"null\" or \"generated\", not {other:?}"),
            ));
        }
    };
    Ok(FieldDef {
        length,
        precision: if numeric { 18 } else { 0 },
        scale: if numeric { 2 } else { 0 },
        picklist: values,
        nillable: ty != FieldType::Boolean,
        sortable: ty != FieldType::Multipicklist,
        added: Some(Added { below, generated }),
        ..FieldDef::new(leak(name), label, ty, how)
    })
}

impl Org {
    /// Adds, hides or shows fields of one object (see the module docs); the next query sees
    /// the change.
    ///
    /// # Errors
    /// The object or a named field does not exist, the new field's name or type is not
    /// acceptable or already taken, or a required field was to be hidden.
    pub fn change_fields(&self, request: &FieldsRequest) -> Result<FieldsResponse, FieldChange> {
        let mut response = None;
        self.store.change_schema(|schema, lens| {
            let kind = schema.object(&request.object).ok_or_else(|| {
                refuse(
                    "INVALID_TYPE",
                    format!("sObject type '{}' is not supported.", request.object),
                )
            })?;
            let mut def = schema.def(kind).clone();
            if let Some(spec) = &request.add {
                if def.any_field_index(&spec.name).is_some() {
                    return Err(refuse(
                        "DUPLICATE_DEVELOPER_NAME",
                        format!("{}.{} already exists", def.name, spec.name),
                    ));
                }
                let mut field = new_field(spec, lens[kind.index()])?;
                if def.describe.is_some() {
                    field.describe = Some(std::sync::Arc::new(template::field_json(&field, None)));
                }
                def.fields.push(field);
                def.reindex();
            }
            for (names, hidden) in [(&request.hide, true), (&request.show, false)] {
                for name in names {
                    let i = def.any_field_index(name).ok_or_else(|| {
                        refuse(
                            "INVALID_FIELD",
                            format!("No such column '{name}' on entity '{}'", def.name),
                        )
                    })?;
                    if hidden && !def.fields[i].nillable {
                        return Err(refuse(
                            "INVALID_FIELD",
                            format!(
                                "{}.{} is required; field-level security cannot hide it",
                                def.name, def.fields[i].name
                            ),
                        ));
                    }
                    def.fields[i].hidden = hidden;
                }
            }
            response = Some(FieldsResponse {
                object: def.name.to_owned(),
                fields: def.visible().count(),
                hidden: def
                    .fields
                    .iter()
                    .filter(|f| f.hidden)
                    .map(|f| f.name.to_owned())
                    .collect(),
            });
            tracing::info!(object = def.name, ?request, "Fields changed.");
            Ok(schema.with_object(kind, def))
        })?;
        Ok(response.expect("a successful change sets the response"))
    }
}
