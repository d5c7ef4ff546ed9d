//! sObject Collections under `/composite/sobjects`: create (`POST`), update (`PATCH`), upsert
//! on an external Id field (`PATCH …/{Object}/{Field}`) and delete (`DELETE ?ids=`). Reads
//! the HTTP request into a [`WriteCall`] for [`Org::write`] and answers the per-record
//! results, 200 even when records failed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Map, Value as Json};

use crate::error::{ApiError, json_response};
use crate::org::{Operation, Org, WriteCall};

/// The body of a create, update or upsert.
#[derive(Debug, serde::Deserialize)]
struct SaveBody {
    #[serde(default, rename = "allOrNone")]
    all_or_none: bool,
    records: Vec<Map<String, Json>>,
}

fn parse_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
}

/// Answers one call; `path` is what follows `composite/sobjects`.
pub(super) async fn collections(
    org: &Arc<Org>,
    method: &Method,
    path: &[&str],
    params: &[(String, String)],
    body: &Bytes,
) -> Result<Response, ApiError> {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let op = match (method.as_str(), path) {
        ("POST", []) => Operation::Create,
        ("PATCH", []) => Operation::Update,
        ("PATCH", [object, field]) => Operation::Upsert {
            object: (*object).to_owned(),
            field: (*field).to_owned(),
        },
        ("DELETE", []) => Operation::Delete,
        (_, [] | [_, _]) => return Err(ApiError::method_not_allowed(method.as_str())),
        _ => return Err(ApiError::not_found()),
    };
    let call = if op == Operation::Delete {
        let ids = param("ids").unwrap_or_default();
        WriteCall {
            op,
            all_or_none: param("allOrNone").is_some_and(|v| v.eq_ignore_ascii_case("true")),
            records: Vec::new(),
            ids: ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        }
    } else {
        let body: SaveBody =
            serde_json::from_slice(body).map_err(|e| parse_error(e.to_string()))?;
        WriteCall {
            op,
            all_or_none: body.all_or_none,
            records: body.records,
            ids: Vec::new(),
        }
    };
    let results = org.write(&call).await?;
    let body: Vec<Json> = results.iter().map(|r| r.to_json()).collect();
    Ok(json_response(StatusCode::OK, Json::Array(body).to_string()))
}
