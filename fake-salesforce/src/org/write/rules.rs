//! Validation rules (`POST /__admin/validation`, [`Org::add_validation_rule`]): a text field
//! whose value must contain a substring, like an org's rule that rejects an Email without
//! "@". A create, update or upsert whose resulting value breaks a rule fails for that record
//! with `FIELD_CUSTOM_VALIDATION_EXCEPTION`, the rule's message and the field, as a rule that
//! shows its error at the field does; the call's other records are applied.
//!
//! An empty value passes: the rule checks values that are there (a real rule would say
//! `AND(NOT(ISBLANK(Email)), …)`), so records without the field are not all rejected.

use std::collections::HashMap;
use std::sync::PoisonError;

use serde::{Deserialize, Serialize};

use super::RecordError;
use crate::data::{ObjectKind, Value};
use crate::org::{FieldChange, Org};

/// `POST /__admin/validation`: add a rule (`field`, `must_contain`, `message`) or lift every
/// rule of the object (`clear`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRequest {
    pub object: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub must_contain: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub clear: bool,
}

/// The object's rules after the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidationResponse {
    pub object: String,
    pub rules: usize,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    field: usize,
    field_name: &'static str,
    must_contain: String,
    message: String,
}

/// Every object's rules.
pub(crate) type Rules = HashMap<ObjectKind, Vec<Rule>>;

fn refuse(code: &'static str, message: impl Into<String>) -> FieldChange {
    FieldChange {
        code,
        message: message.into(),
    }
}

impl Org {
    fn rules(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a rule: writes that leave `field` of `object` non-empty without `must_contain`
    /// fail with `message`. Answers the object's rule count.
    ///
    /// # Errors
    /// The object or field does not exist.
    pub fn add_validation_rule(
        &self,
        object: &str,
        field: &str,
        must_contain: &str,
        message: &str,
    ) -> Result<ValidationResponse, FieldChange> {
        let schema = self.store.schema();
        let obj = schema.object(object).ok_or_else(|| {
            refuse(
                "INVALID_TYPE",
                format!("sObject type '{object}' is not supported."),
            )
        })?;
        let def = schema.def(obj);
        let f = def.field_index(field).ok_or_else(|| {
            refuse(
                "INVALID_FIELD",
                format!("No such column '{field}' on entity '{}'", def.name),
            )
        })?;
        let mut rules = self.rules();
        let list = rules.entry(obj).or_default();
        list.push(Rule {
            field: f,
            field_name: def.fields[f].name,
            must_contain: must_contain.to_owned(),
            message: message.to_owned(),
        });
        tracing::info!(
            object = def.name,
            field,
            must_contain,
            "Validation rule added."
        );
        Ok(ValidationResponse {
            object: def.name.to_owned(),
            rules: list.len(),
        })
    }

    /// Lifts every rule of `object`.
    ///
    /// # Errors
    /// The object does not exist.
    pub fn clear_validation_rules(&self, object: &str) -> Result<ValidationResponse, FieldChange> {
        let schema = self.store.schema();
        let obj = schema.object(object).ok_or_else(|| {
            refuse(
                "INVALID_TYPE",
                format!("sObject type '{object}' is not supported."),
            )
        })?;
        self.rules().remove(&obj);
        tracing::info!(object = schema.def(obj).name, "Validation rules lifted.");
        Ok(ValidationResponse {
            object: schema.def(obj).name.to_owned(),
            rules: 0,
        })
    }

    /// What `POST /__admin/validation` asks for.
    ///
    /// # Errors
    /// The object or field does not exist, or a rule lacks its field, substring or message.
    pub fn change_validation(
        &self,
        request: &ValidationRequest,
    ) -> Result<ValidationResponse, FieldChange> {
        if request.clear {
            return self.clear_validation_rules(&request.object);
        }
        match (&request.field, &request.must_contain, &request.message) {
            (Some(field), Some(needle), Some(message)) => {
                self.add_validation_rule(&request.object, field, needle, message)
            }
            _ => Err(refuse(
                "MISSING_ARGUMENT",
                "a rule needs field, must_contain and message (or clear: true)",
            )),
        }
    }

    /// The first rule of `obj` that the record's resulting values break; `value` reads a
    /// field of the record as the write leaves it.
    pub(super) fn broken_rule(
        &self,
        obj: ObjectKind,
        value: impl Fn(usize) -> Value,
    ) -> Option<RecordError> {
        let rules = self.rules();
        rules
            .get(&obj)?
            .iter()
            .find_map(|rule| match value(rule.field) {
                Value::Text(text)
                    if !text.is_empty() && !text.contains(rule.must_contain.as_str()) =>
                {
                    Some(RecordError {
                        status_code: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                        message: rule.message.clone(),
                        fields: vec![rule.field_name.to_owned()],
                    })
                }
                _ => None,
            })
    }
}
