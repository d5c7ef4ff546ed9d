//! HTTP routing: the OAuth endpoint, the version list, and the versioned REST resources
//! (`/services/data/vXX.X/…`) behind the bearer check and the API usage counter, and the
//! unauthenticated test hooks `POST /__admin/mutate`, `/__admin/faults` and
//! `/__admin/fields`. In front of everything, the request-line limit (414).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use serde_json::json;

use crate::auth;
use crate::bulk;
use crate::cursor::Cursor;
use crate::describe;
use crate::error::{ApiError, json_response};
use crate::faults::{self, Counters, Faults, Injection};
use crate::org::{FieldsRequest, MutateRequest, Org};
use crate::render;
use crate::soql::eval::{self, Tables};
use crate::soql::{self, SelectItem, Selection};

/// API versions advertised by `GET /services/data/`; any `vNN.N` is accepted in paths.
const VERSIONS: std::ops::RangeInclusive<u32> = 50..=62;
/// REST page size bounds and default for `Sforce-Query-Options: batchSize=N`.
const BATCH_MIN: usize = 200;
const BATCH_MAX: usize = 2000;

static LIMIT_INFO: HeaderName = HeaderName::from_static("sforce-limit-info");

/// The whole HTTP surface of the fake org.
pub fn router(org: Arc<Org>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{*rest}", any(data_api))
        .route("/__admin/mutate", post(admin_mutate))
        .route("/__admin/faults", get(admin_faults).post(admin_set_faults))
        .route("/__admin/fields", post(admin_fields))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&org),
            request_line_limit,
        ))
        .with_state(org)
}

/// Refuses requests whose request line (`GET /path?query HTTP/1.1`) is longer than
/// [`crate::OrgConfig::max_request_line`] with `414 URI Too Long`, before authentication and
/// without counting the call. Salesforce documents the 16,384-byte limit (help article
/// 000386264) but not the body; this is the HTML page its front end (Jetty) sends, as
/// simple-salesforce#271 and jsforce#1134 quote it.
async fn request_line_limit(State(org): State<Arc<Org>>, request: Request, next: Next) -> Response {
    let limit = org.config().max_request_line;
    if limit > 0 {
        let version = match request.version() {
            Version::HTTP_09 => "HTTP/0.9".len(),
            Version::HTTP_10 | Version::HTTP_11 => "HTTP/1.1".len(),
            _ => "HTTP/2".len(),
        };
        let uri = request.uri();
        let target = uri.scheme_str().map_or(0, |s| s.len() + 3)
            + uri.authority().map_or(0, |a| a.as_str().len())
            + uri.path_and_query().map_or(1, |pq| pq.as_str().len());
        let line = request.method().as_str().len() + 1 + target + 1 + version;
        if line > limit {
            tracing::debug!(line, limit, "Refused a request line as too long.");
            return (
                StatusCode::URI_TOO_LONG,
                [
                    (header::CONTENT_TYPE, "text/html;charset=iso-8859-1"),
                    (header::CONNECTION, "close"),
                ],
                "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// `GET /services/data/`: no auth, no usage counted, no `Sforce-Limit-Info`.
async fn versions() -> Response {
    let list: Vec<_> = VERSIONS
        .map(|v| {
            let k = v - 50;
            let season = ["Winter", "Spring", "Summer"][(k % 3) as usize];
            json!({
                "label": format!("{season} '{}", 21 + k / 3),
                "url": format!("/services/data/v{v}.0"),
                "version": format!("{v}.0"),
            })
        })
        .collect();
    json_response(StatusCode::OK, json!(list).to_string())
}

/// `POST /__admin/mutate`: changes the org (see [`Org::mutate`]); no auth, not counted.
async fn admin_mutate(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: MutateRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    if let Err(why) = org.check_mutation(&request) {
        let code = if org.kind_of(&request.object).is_none() {
            "INVALID_TYPE"
        } else {
            "INVALID_OPERATION"
        };
        return ApiError::new(StatusCode::BAD_REQUEST, code, why).into_response();
    }
    let response = tokio::task::spawn_blocking(move || org.mutate(request)).await;
    match response.map(|r| serde_json::to_string(&r)) {
        Ok(Ok(body)) => json_response(StatusCode::OK, body),
        Ok(Err(e)) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
        .into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
        .into_response(),
    }
}

/// `POST /__admin/fields`: adds, hides or shows fields (see [`Org::change_fields`]); no auth,
/// not counted.
async fn admin_fields(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: FieldsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    match org.change_fields(&request) {
        Ok(response) => json_response(StatusCode::OK, json!(response).to_string()),
        Err(e) => ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message).into_response(),
    }
}

/// `POST /__admin/faults`: the faults to put in force, plus one-shot actions.
#[derive(Debug, serde::Deserialize)]
struct FaultsRequest {
    #[serde(flatten)]
    faults: Faults,
    /// Invalidate every access token now.
    #[serde(default)]
    expire_tokens: bool,
    /// Forget every open query cursor now.
    #[serde(default)]
    expire_cursors: bool,
}

fn faults_report(org: &Org) -> Response {
    let body = json!({"faults": org.faults(), "stats": org.fault_stats()});
    json_response(StatusCode::OK, body.to_string())
}

/// `GET /__admin/faults`: the faults in force and what they did so far.
async fn admin_faults(State(org): State<Arc<Org>>) -> Response {
    faults_report(&org)
}

/// `POST /__admin/faults`: replaces the faults in force (see [`Org::set_faults`]).
async fn admin_set_faults(State(org): State<Arc<Org>>, body: Bytes) -> Response {
    let request: FaultsRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", e.to_string())
                .into_response();
        }
    };
    org.set_faults(request.faults);
    if request.expire_tokens {
        org.expire_all_tokens();
    }
    if request.expire_cursors {
        org.expire_all_cursors();
    }
    faults_report(&org)
}

/// `query`, `queryAll` and `query/<locator>`: the calls faults apply to.
fn is_query_call(rest: &str) -> bool {
    let mut segments = rest.split('/').filter(|s| !s.is_empty()).skip(1);
    matches!(segments.next(), Some("query" | "queryAll"))
}

/// Everything under `/services/data/vXX.X/`: authenticate, count the call, apply the faults
/// in force to query calls, dispatch, and stamp `Sforce-Limit-Info` on whatever comes back.
async fn data_api(
    State(org): State<Arc<Org>>,
    method: Method,
    Path(rest): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let faults = org.faults();
    if !auth::bearer(&headers).is_some_and(|t| org.tokens().is_valid(t, faults.token_ttl())) {
        Counters::bump(&org.fault_counters().sessions_refused);
        return ApiError::invalid_session().into_response();
    }
    let injection = if is_query_call(&rest) {
        if faults.slow_ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(faults.slow_ms)).await;
        }
        faults.injection(Counters::bump(&org.fault_counters().data_calls))
    } else {
        Injection::Pass
    };
    let (used, mut response) = match (org.count_call(), injection) {
        (Ok(used), Injection::Fail(status)) => {
            Counters::bump(&org.fault_counters().failed);
            tracing::debug!(status = u16::from(status), "Injected a failure.");
            (used, status.response())
        }
        (Ok(used), injection) => {
            let mut response = dispatch(&org, &method, &rest, &headers, query.as_deref(), &body)
                .await
                .unwrap_or_else(IntoResponse::into_response);
            if injection == Injection::Truncate && response.status() == StatusCode::OK {
                Counters::bump(&org.fault_counters().truncated);
                tracing::debug!("Injected a truncated body.");
                response = faults::truncate(response).await;
            }
            if injection == Injection::Garble && response.status() == StatusCode::OK {
                Counters::bump(&org.fault_counters().garbled);
                tracing::debug!("Injected a garbled body.");
                response = faults::garble(response).await;
            }
            (used, response)
        }
        (Err(used), _) => (used, ApiError::limit_exceeded().into_response()),
    };
    let info = format!("api-usage={used}/{}", org.config().api_limit);
    if let Ok(value) = HeaderValue::from_str(&info) {
        response.headers_mut().insert(LIMIT_INFO.clone(), value);
    }
    response
}

enum Resource<'a> {
    Index,
    Limits,
    Global,
    SObject(&'a str),
    Describe(&'a str),
    Record(&'a str, &'a str),
    Query { all: bool },
    QueryMore(&'a str),
    Updated(&'a str),
    Deleted(&'a str),
    Jobs(&'a [&'a str]),
}

async fn dispatch(
    org: &Arc<Org>,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let Some((&version, path)) = segments.split_first() else {
        return Err(ApiError::not_found());
    };
    if !is_version(version) {
        return Err(ApiError::not_found());
    }
    let resource = match path {
        [] => Resource::Index,
        ["limits"] => Resource::Limits,
        ["sobjects"] => Resource::Global,
        ["sobjects", o] => Resource::SObject(o),
        ["sobjects", o, "describe"] => Resource::Describe(o),
        ["sobjects", o, "updated"] => Resource::Updated(o),
        ["sobjects", o, "deleted"] => Resource::Deleted(o),
        ["sobjects", o, id] => Resource::Record(o, id),
        ["query"] => Resource::Query { all: false },
        ["queryAll"] => Resource::Query { all: true },
        ["query" | "queryAll", locator] => Resource::QueryMore(locator),
        ["jobs", "query", rest @ ..] => Resource::Jobs(rest),
        _ => return Err(ApiError::not_found()),
    };
    let read_only = method == Method::GET || method == Method::HEAD;
    if !read_only && !matches!(resource, Resource::Jobs(_)) {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let params: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let ok = |body: serde_json::Value| json_response(StatusCode::OK, body.to_string());
    let base = format!("/services/data/{version}");
    match resource {
        Resource::Index => Ok(ok(json!({
            "limits": format!("{base}/limits"),
            "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"),
            "sobjects": format!("{base}/sobjects"),
        }))),
        Resource::Limits => Ok(ok(limits(org))),
        Resource::Global => Ok(ok(describe::global(&org.schema(), version))),
        Resource::Describe(o) => {
            let schema = org.schema();
            let kind = schema.object(o).ok_or_else(ApiError::not_found)?;
            Ok(ok(describe::object(schema.def(kind), version)))
        }
        Resource::SObject(o) => {
            let schema = org.schema();
            let kind = schema.object(o).ok_or_else(ApiError::not_found)?;
            let global = describe::global(&schema, version);
            let entry = global["sobjects"].as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["name"] == schema.def(kind).name)
                    .cloned()
            });
            Ok(ok(json!({"objectDescribe": entry, "recentItems": []})))
        }
        Resource::Record(o, id) => record(org, o, id, param("fields"), version),
        Resource::Updated(o) => Ok(ok(org.get_updated(
            o,
            param("start").as_deref(),
            param("end").as_deref(),
        )?)),
        Resource::Deleted(o) => Ok(ok(org.get_deleted(
            o,
            param("start").as_deref(),
            param("end").as_deref(),
        )?)),
        Resource::Jobs(path) => bulk::dispatch(org, method, version, path, &params, body).await,
        Resource::Query { all } => {
            let q = param("q").ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MALFORMED_QUERY",
                    "A query string has to be specified",
                )
            })?;
            let batch = batch_size(headers);
            let org = Arc::clone(org);
            let version = version.to_owned();
            // Filtering and sorting a large table is CPU work; keep it off the reactor.
            tokio::task::spawn_blocking(move || run_query(&org, &version, &q, all, batch))
                .await
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "UNKNOWN_EXCEPTION",
                        e.to_string(),
                    )
                })?
        }
        Resource::QueryMore(locator) => {
            let (id, cursor, offset) = org.cursors().get(locator).ok_or_else(|| {
                Counters::bump(&org.fault_counters().locators_refused);
                ApiError::invalid_locator()
            })?;
            let tables = Tables::at(org.store(), &cursor.snapshot, cursor.object);
            Ok(page(&tables, &cursor, &id, offset, version))
        }
    }
}

/// `vNN.N`, any numbers.
fn is_version(s: &str) -> bool {
    s.strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        })
}

/// `Sforce-Query-Options: batchSize=N`, clamped to what Salesforce allows.
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .filter_map(|o| o.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(BATCH_MAX, |n| n.clamp(BATCH_MIN, BATCH_MAX))
}

fn run_query(
    org: &Org,
    version: &str,
    soql: &str,
    all: bool,
    batch: usize,
) -> Result<Response, ApiError> {
    let snapshot = org.store().snapshot();
    let query = soql::parse(soql, &snapshot.schema).inspect_err(|e| {
        tracing::debug!(code = e.code, soql, "Refused a query.");
    })?;
    let tables = Tables::at(org.store(), &snapshot, query.object);
    let mut indices = eval::matching(&query, &tables, all);
    if let Some(limit) = org.faults().query_timeout_above
        && indices.len() as u64 > limit
    {
        Counters::bump(&org.fault_counters().query_timeouts);
        tracing::debug!(
            soql,
            matching = indices.len(),
            limit,
            "Injected a query timeout."
        );
        // Status 400 as clients observe it (tap-salesforce and airbyte read the body of an
        // HTTP error); the body is what airbytehq/airbyte#17503 and restforce#790 quote.
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "QUERY_TIMEOUT",
            "Your query request was running for too long.",
        ));
    }
    eval::order_and_limit(&query, &tables, &mut indices);
    tracing::debug!(soql, all, total = indices.len(), "Ran a query.");
    let Selection::Fields(select) = query.selection else {
        let body = format!(
            r#"{{"totalSize":{},"done":true,"records":[]}}"#,
            indices.len()
        );
        return Ok(json_response(StatusCode::OK, body));
    };
    if indices.len() <= batch {
        let body = render::write_page(&tables, &select, &indices, indices.len(), None, version);
        return Ok(json_response(StatusCode::OK, body));
    }
    let cursor = Arc::new(Cursor::new(query.object, select, indices, batch, snapshot));
    let id = org.cursors().open_shared(Arc::clone(&cursor));
    Ok(page(&tables, &cursor, &id, 0, version))
}

/// One page of an open cursor, starting at `offset`.
fn page(tables: &Tables<'_>, cursor: &Cursor, id: &str, offset: usize, version: &str) -> Response {
    let total = cursor.indices.len();
    let end = (offset + cursor.batch).min(total);
    let next = (end < total).then(|| format!("/services/data/{version}/query/{id}-{end}"));
    let body = render::write_page(
        tables,
        &cursor.select,
        &cursor.indices[offset..end],
        total,
        next.as_deref(),
        version,
    );
    json_response(StatusCode::OK, body)
}

/// `GET /sobjects/{Object}/{Id}[?fields=A,B]`.
fn record(
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

/// `GET /limits`: the daily API counter plus fixed headroom for the rest.
fn limits(org: &Org) -> serde_json::Value {
    let max = org.config().api_limit;
    let remaining = max.saturating_sub(org.api_usage());
    let fixed = |m: u64| json!({"Max": m, "Remaining": m});
    json!({
        "DailyApiRequests": {"Max": max, "Remaining": remaining},
        "DailyBulkApiBatches": fixed(15_000),
        "DailyBulkV2QueryFileStorageMB": fixed(976_562),
        "DailyBulkV2QueryJobs": {
            "Max": 10_000,
            "Remaining": 10_000u64.saturating_sub(org.jobs().created()),
        },
        "DataStorageMB": fixed(1_024),
        "FileStorageMB": fixed(1_024),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_calls_are_recognised() {
        assert!(is_query_call("v62.0/query"));
        assert!(is_query_call("v62.0/queryAll"));
        assert!(is_query_call("v62.0/query/01gxx-2000"));
        assert!(!is_query_call("v62.0/sobjects/Contact/describe"));
        assert!(!is_query_call("v62.0/jobs/query"));
    }

    #[test]
    fn versions_and_batch_sizes() {
        assert!(is_version("v62.0"));
        assert!(is_version("v9.1"));
        assert!(!is_version("62.0"));
        assert!(!is_version("v62"));
        assert!(!is_version("vX.0"));
        let mut h = HeaderMap::new();
        assert_eq!(batch_size(&h), 2000);
        h.insert(
            "sforce-query-options",
            HeaderValue::from_static("batchSize=50"),
        );
        assert_eq!(batch_size(&h), 200);
        h.insert(
            "sforce-query-options",
            HeaderValue::from_static("batchSize=9999"),
        );
        assert_eq!(batch_size(&h), 2000);
        h.insert(
            "sforce-query-options",
            HeaderValue::from_static("batchSize=700"),
        );
        assert_eq!(batch_size(&h), 700);
    }
}
