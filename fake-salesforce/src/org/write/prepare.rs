//! Reading an sObject Collections request before it touches the org: the checks that refuse
//! the whole call (400), the JSON values turned into field values, and the per-record
//! failures that need no look at the org's records (a malformed Id, a missing external Id).

use std::borrow::Cow;

use axum::http::StatusCode;
use serde_json::{Map, Value as Json};

use super::{Operation, RecordError, WriteCall};
use crate::data::{FieldDef, FieldType, ObjectKind, Schema, Value};
use crate::error::ApiError;
use crate::soql::{parse_date, parse_datetime};
use common::sfid::SalesforceId;

/// Records (or Ids) one call may carry.
pub const MAX_RECORDS: usize = 200;

/// One record of the call, read.
#[derive(Debug)]
pub(super) struct Item {
    /// `None` only for a delete whose Id names no object of the org.
    pub obj: Option<ObjectKind>,
    /// The record an update or delete names.
    pub id: Option<SalesforceId>,
    /// The fields the request sets, in request order.
    pub values: Vec<(usize, Value)>,
    /// A failure known from the request alone.
    pub error: Option<RecordError>,
}

/// The whole call, read: what [`super::commit`] applies.
#[derive(Debug)]
pub(super) struct Prepared {
    pub op: Operation,
    /// The upsert's external Id field.
    pub key: Option<usize>,
    pub items: Vec<Item>,
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

/// Reads `call` against `schema`.
///
/// # Errors
/// The 400 answers that refuse the whole call: too many records, an unknown object or field,
/// a value of the wrong JSON type, an upsert on a field that is not an external Id.
pub(super) fn prepare(schema: &Schema, call: &WriteCall) -> Result<Prepared, ApiError> {
    let count = call.records.len().max(call.ids.len());
    if count > MAX_RECORDS {
        return Err(bad_request(
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        ));
    }
    let key = match &call.op {
        Operation::Upsert { object, field } => Some(upsert_key(schema, object, field)?),
        _ => None,
    };
    let items = match &call.op {
        Operation::Delete => call.ids.iter().map(|id| delete_item(schema, id)).collect(),
        op => call
            .records
            .iter()
            .map(|r| save_item(schema, op, key, r))
            .collect::<Result<_, _>>()?,
    };
    Ok(Prepared {
        op: call.op.clone(),
        key: key.map(|(_, f)| f),
        items,
    })
}

/// The object and field an upsert URL names; only external Id fields qualify.
fn upsert_key(schema: &Schema, object: &str, field: &str) -> Result<(ObjectKind, usize), ApiError> {
    let obj = schema.object(object).ok_or_else(|| unsupported(object))?;
    let def = schema.def(obj);
    def.field_index(field)
        .filter(|&f| def.fields[f].external_id)
        .map(|f| (obj, f))
        .ok_or_else(|| {
            bad_request(
                "INVALID_FIELD",
                format!(
                    "Field name provided, {field} is not an External ID or indexed field for {}",
                    def.name
                ),
            )
        })
}

fn unsupported(object: &str) -> ApiError {
    bad_request(
        "INVALID_TYPE",
        format!("sObject type '{object}' is not supported."),
    )
}

fn record_error(
    code: &'static str,
    message: impl Into<String>,
    fields: Vec<String>,
) -> RecordError {
    RecordError {
        status_code: code,
        message: message.into(),
        fields,
    }
}

fn delete_item(schema: &Schema, id: &str) -> Item {
    let mut item = Item {
        obj: None,
        id: None,
        values: Vec::new(),
        error: None,
    };
    match SalesforceId::parse(id.trim()) {
        Ok(parsed) => {
            item.obj = schema.by_prefix(parsed.key_prefix());
            item.id = Some(parsed);
        }
        Err(_) => {
            item.error = Some(record_error(
                "MALFORMED_ID",
                format!("malformed id {id}"),
                Vec::new(),
            ));
        }
    }
    item
}

fn save_item(
    schema: &Schema,
    op: &Operation,
    key: Option<(ObjectKind, usize)>,
    record: &Map<String, Json>,
) -> Result<Item, ApiError> {
    let ty = record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Json::as_str)
        .ok_or_else(|| {
            bad_request(
                "INVALID_TYPE",
                "Each record must have an attributes map with a type",
            )
        })?;
    let obj = schema.object(ty).ok_or_else(|| unsupported(ty))?;
    if let Some((upsert_obj, _)) = key
        && upsert_obj != obj
    {
        return Err(bad_request(
            "INVALID_TYPE",
            format!("Records must be of the type the URI names, not {ty}"),
        ));
    }
    let def = schema.def(obj);
    let mut item = Item {
        obj: Some(obj),
        id: None,
        values: Vec::new(),
        error: None,
    };
    let mut id_given = None;
    for (name, json) in record {
        if name == "attributes" {
            continue;
        }
        if name.eq_ignore_ascii_case("id") {
            id_given = Some(json);
            continue;
        }
        let f = def.field_index(name).ok_or_else(|| {
            bad_request(
                "INVALID_FIELD",
                format!("No such column '{name}' on sobject of type {}", def.name),
            )
        })?;
        match value_of(&def.fields[f], json)? {
            Ok(value) => item.values.push((f, value)),
            Err(e) => {
                item.error.get_or_insert(e);
            }
        }
    }
    match (op, id_given) {
        (Operation::Update, None | Some(Json::Null)) => {
            item.error.get_or_insert(record_error(
                "MISSING_ARGUMENT",
                "Id not specified in an update call",
                Vec::new(),
            ));
        }
        (Operation::Update, Some(id)) => match id.as_str().map(|s| SalesforceId::parse(s.trim())) {
            Some(Ok(parsed)) => item.id = Some(parsed),
            _ => {
                item.error.get_or_insert(record_error(
                    "MALFORMED_ID",
                    format!("malformed id {}", id.as_str().unwrap_or_default()),
                    Vec::new(),
                ));
            }
        },
        (_, Some(id)) if !id.is_null() => {
            item.error.get_or_insert(record_error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "cannot specify Id in an insert call",
                vec!["Id".to_owned()],
            ));
        }
        _ => {}
    }
    if let Some((_, f)) = key
        && !item.values.iter().any(|(g, v)| *g == f && !v.is_null())
    {
        item.error.get_or_insert(record_error(
            "MISSING_ARGUMENT",
            format!("{} not specified", def.fields[f].name),
            Vec::new(),
        ));
    }
    Ok(item)
}

/// A JSON value as `field` stores it. The outer error refuses the whole call (a value of the
/// wrong JSON type cannot be deserialized); the inner one fails this record only.
fn value_of(field: &FieldDef, json: &Json) -> Result<Result<Value, RecordError>, ApiError> {
    if json.is_null() {
        return Ok(Ok(Value::Null));
    }
    let wrong = || {
        let token = match json {
            Json::Bool(_) => "VALUE_TRUE or VALUE_FALSE",
            Json::Number(_) => "VALUE_NUMBER",
            Json::String(_) => "VALUE_STRING",
            Json::Array(_) => "START_ARRAY",
            _ => "START_OBJECT",
        };
        bad_request(
            "JSON_PARSER_ERROR",
            format!(
                "Cannot deserialize instance of {} from {token} value {json} or request may be \
                 missing a required field",
                field.ty.api_name()
            ),
        )
    };
    let text = json.as_str();
    let value = match field.ty {
        FieldType::Id | FieldType::Reference => {
            let s = text.ok_or_else(wrong)?;
            return Ok(SalesforceId::parse(s.trim()).map(Value::Id).map_err(|_| {
                record_error(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {s}", field.label),
                    vec![field.name.to_owned()],
                )
            }));
        }
        FieldType::Boolean => Value::Bool(json.as_bool().ok_or_else(wrong)?),
        FieldType::Int => Value::Int(json.as_i64().ok_or_else(wrong)?),
        FieldType::Double | FieldType::Currency | FieldType::Percent => {
            Value::Number(json.as_f64().ok_or_else(wrong)?)
        }
        FieldType::Date => Value::Date(text.and_then(parse_date).ok_or_else(wrong)?),
        FieldType::DateTime => Value::DateTime(text.and_then(parse_datetime).ok_or_else(wrong)?),
        FieldType::Address | FieldType::Location => return Err(wrong()),
        _ => {
            let s = text.ok_or_else(wrong)?;
            let length = s.chars().count();
            if field.length > 0 && length > field.length as usize {
                return Ok(Err(record_error(
                    "STRING_TOO_LONG",
                    format!(
                        "{}: data value too large: {s} (max length={})",
                        field.label, field.length
                    ),
                    vec![field.name.to_owned()],
                )));
            }
            Value::Text(Cow::Owned(s.to_owned()))
        }
    };
    Ok(Ok(value))
}
