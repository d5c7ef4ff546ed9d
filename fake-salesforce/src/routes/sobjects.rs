//! `/sobjects`: the global describe, one object's summary and describe, and one record by Id.
//! (getUpdated and getDeleted, also under `/sobjects/{Object}/`, are answered by
//! `org::replication`.)

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::ok;
use crate::describe;
use crate::error::{ApiError, json_response};
use crate::org::Org;
use crate::render;
use crate::soql::SelectItem;
use crate::soql::eval::Tables;

/// `GET /sobjects`: the global describe.
pub(super) fn global_describe(org: &Org, version: &str) -> Response {
    ok(describe::global(&org.schema(), version))
}

/// `GET /sobjects/{Object}/describe`.
pub(super) fn object_describe(
    org: &Org,
    object: &str,
    version: &str,
) -> Result<Response, ApiError> {
    let schema = org.schema();
    let kind = schema.object(object).ok_or_else(ApiError::not_found)?;
    Ok(ok(describe::object(schema.def(kind), version)))
}

/// `GET /sobjects/{Object}`: the object's global-describe entry.
pub(super) fn object_summary(org: &Org, object: &str, version: &str) -> Result<Response, ApiError> {
    let schema = org.schema();
    let kind = schema.object(object).ok_or_else(ApiError::not_found)?;
    let global = describe::global(&schema, version);
    let entry = global["sobjects"].as_array().and_then(|a| {
        a.iter()
            .find(|s| s["name"] == schema.def(kind).name)
            .cloned()
    });
    Ok(ok(json!({"objectDescribe": entry, "recentItems": []})))
}

/// `GET /sobjects/{Object}/{Id}[?fields=A,B]`.
pub(super) fn record(
    org: &Org,
    object: &str,
    id: &str,
    fields: Option<String>,
    version: &str,
) -> Result<Response, ApiError> {
    let kind = org.kind_of(object).ok_or_else(ApiError::not_found)?;
    let tables = Tables::new(org.store(), kind);
    let def = tables.main.def();
    let index = common::sfid::SalesforceId::parse(id)
        .ok()
        .and_then(|id| tables.main.index_of(&id))
        .filter(|&i| !tables.main.is_deleted(i))
        .ok_or_else(ApiError::not_found)?;
    let select: Vec<SelectItem> = match fields {
        None => def.visible().map(SelectItem::Field).collect(),
        Some(list) => list
            .split(',')
            .map(|name| {
                def.field_index(name.trim())
                    .map(SelectItem::Field)
                    .ok_or_else(|| {
                        ApiError::new(
                            StatusCode::BAD_REQUEST,
                            "INVALID_FIELD",
                            format!(
                                "No such column '{}' on sobject of type {}",
                                name.trim(),
                                def.name
                            ),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
    };
    let mut body = String::new();
    render::write_record(&mut body, &tables, &select, index, version);
    Ok(json_response(StatusCode::OK, body))
}
