//! HTTP routing: the OAuth endpoint, the version list, and the versioned REST resources
//! (`/services/data/vXX.X/…`) behind the bearer check and the API usage counter, and the
//! unauthenticated test hooks `POST /__admin/mutate`, `/__admin/faults`, `/__admin/fields`
//! and `/__admin/validation`. In front of everything, the request-line limit (414), and in
//! front of that [`crate::network`]: gzip, then latency, pacing and the byte count of API
//! calls.
//!
//! This module owns the envelope every REST call goes through (authentication, the usage
//! counter, injected faults, `Sforce-Limit-Info`) and the table from paths to resources; the
//! resources answer in `query` (query, queryAll, queryMore), `sobjects` (describe and
//! records), `collections` (sObject Collections writes), `composite` (the Composite resource,
//! whose subrequests go through the same table as direct calls), `limits`,
//! `org::replication` (getUpdated, getDeleted), [`crate::bulk`] (Bulk 2.0 jobs) and `admin`
//! (the test hooks).

mod admin;
mod collections;
mod composite;
mod limits;
mod query;
mod sobjects;

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
use crate::error::{ApiError, json_response};
use crate::faults::{self, Counters, Injection};
use crate::network;
use crate::org::Org;

/// API versions advertised by `GET /services/data/`; any `vNN.N` is accepted in paths.
const VERSIONS: std::ops::RangeInclusive<u32> = 50..=62;

static LIMIT_INFO: HeaderName = HeaderName::from_static("sforce-limit-info");

/// The whole HTTP surface of the fake org.
pub fn router(org: Arc<Org>) -> Router {
    Router::new()
        .route("/services/oauth2/token", post(auth::token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .route("/services/data/{*rest}", any(data_api))
        .route("/__admin/mutate", post(admin::mutate))
        .route(
            "/__admin/faults",
            get(admin::faults).post(admin::set_faults),
        )
        .route("/__admin/fields", post(admin::fields))
        .route("/__admin/validation", post(admin::validation))
        .fallback(|| async { ApiError::not_found() })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&org),
            request_line_limit,
        ))
        // The last layer added is the outermost: `wire` paces and counts what compression
        // sends, the bytes a real network would carry.
        .layer(network::compression(org.config()))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&org),
            network::wire,
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

/// `query`, `queryAll` and `query/<locator>`: the calls faults apply to.
fn is_query_call(rest: &str) -> bool {
    let mut segments = rest.split('/').filter(|s| !s.is_empty()).skip(1);
    matches!(segments.next(), Some("query" | "queryAll"))
}

/// Calls that write: sObject Collections (`composite/sobjects`) and Composite (`composite`,
/// whose subrequests may write), any method but GET. `commit_then_drop_every` counts them;
/// `write_ms` applies to each collections write, direct or a composite subrequest.
fn is_write_call(rest: &str, method: &Method) -> bool {
    let mut segments = rest.split('/').filter(|s| !s.is_empty()).skip(1);
    method != Method::GET
        && segments.next() == Some("composite")
        && matches!(segments.next(), None | Some("sobjects"))
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
            if is_write_call(&rest, &method) {
                let n = Counters::bump(&org.fault_counters().write_calls);
                let every = faults.commit_then_drop_every;
                if every > 0 && n.is_multiple_of(every) && response.status() == StatusCode::OK {
                    Counters::bump(&org.fault_counters().dropped);
                    tracing::debug!("Committed a write call, then dropped its connection.");
                    response = faults::drop_connection(response);
                }
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
    Collections(&'a [&'a str]),
    Composite,
}

impl Resource<'_> {
    /// The resources a Composite subrequest may name (of those this org serves): the sObject
    /// resources, the query resources and sObject Collections.
    fn in_composite(&self) -> bool {
        matches!(
            self,
            Resource::SObject(_)
                | Resource::Describe(_)
                | Resource::Record(..)
                | Resource::Updated(_)
                | Resource::Deleted(_)
                | Resource::Query { .. }
                | Resource::QueryMore(_)
                | Resource::Collections(_)
        )
    }
}

/// The path segments of `rest` (what follows `/services/data/`).
fn segments(rest: &str) -> Vec<&str> {
    rest.split('/').filter(|s| !s.is_empty()).collect()
}

/// The API version and the resource `segments` name; 404 for anything else.
fn resource<'a>(segments: &'a [&'a str]) -> Result<(&'a str, Resource<'a>), ApiError> {
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
        ["composite"] => Resource::Composite,
        ["composite", "sobjects", rest @ ..] => Resource::Collections(rest),
        _ => return Err(ApiError::not_found()),
    };
    Ok((version, resource))
}

/// Answers one REST call (after `data_api`'s envelope).
async fn dispatch(
    org: &Arc<Org>,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let segments = segments(rest);
    match resource(&segments)? {
        (_, Resource::Composite) => composite::composite(org, method, body).await,
        (version, resource) => answer(org, method, version, resource, headers, query, body).await,
    }
}

/// Answers one subrequest of a Composite call as [`dispatch`] answers the same request made
/// on its own; a resource the Composite resource does not serve (a nested composite call,
/// limits, Bulk jobs) is 404 `NOT_FOUND`.
async fn subrequest(
    org: &Arc<Org>,
    method: &Method,
    rest: &str,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let segments = segments(rest);
    let (version, resource) = resource(&segments)?;
    if !resource.in_composite() {
        return Err(ApiError::not_found());
    }
    answer(org, method, version, resource, headers, query, body).await
}

async fn answer(
    org: &Arc<Org>,
    method: &Method,
    version: &str,
    resource: Resource<'_>,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let read_only = method == Method::GET || method == Method::HEAD;
    if !read_only && !matches!(resource, Resource::Jobs(_) | Resource::Collections(_)) {
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
    let base = format!("/services/data/{version}");
    match resource {
        Resource::Index => Ok(ok(json!({
            "limits": format!("{base}/limits"),
            "query": format!("{base}/query"),
            "queryAll": format!("{base}/queryAll"),
            "sobjects": format!("{base}/sobjects"),
        }))),
        Resource::Limits => Ok(ok(limits::limits(org))),
        Resource::Global => Ok(sobjects::global_describe(org, version)),
        Resource::Describe(o) => sobjects::object_describe(org, o, version),
        Resource::SObject(o) => sobjects::object_summary(org, o, version),
        Resource::Record(o, id) => sobjects::record(org, o, id, param("fields"), version),
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
        Resource::Collections(path) => {
            collections::collections(org, method, path, &params, body).await
        }
        Resource::Query { all } => query::query(org, version, param("q"), headers, all).await,
        Resource::QueryMore(locator) => query::query_more(org, locator, version),
        // `dispatch` answers it, and `subrequest` refuses it.
        Resource::Composite => Err(ApiError::not_found()),
    }
}

/// A 200 answer with `body` as JSON.
fn ok(body: serde_json::Value) -> Response {
    json_response(StatusCode::OK, body.to_string())
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
    fn write_calls_are_recognised() {
        assert!(is_write_call("v62.0/composite/sobjects", &Method::PATCH));
        assert!(is_write_call(
            "v62.0/composite/sobjects/Contact/Ext__c",
            &Method::PATCH
        ));
        assert!(is_write_call("v62.0/composite", &Method::POST));
        assert!(is_write_call("v62.0/composite/", &Method::POST));
        assert!(!is_write_call("v62.0/composite", &Method::GET));
        assert!(!is_write_call("v62.0/composite/batch", &Method::POST));
        assert!(!is_write_call("v62.0/query", &Method::GET));
    }

    #[test]
    fn versions_are_recognised() {
        assert!(is_version("v62.0"));
        assert!(is_version("v9.1"));
        assert!(!is_version("62.0"));
        assert!(!is_version("v62"));
        assert!(!is_version("vX.0"));
    }
}
