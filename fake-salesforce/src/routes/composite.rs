//! The Composite resource, `POST /composite`: up to [`MAX_SUBREQUESTS`] subrequests run in
//! order in one API call, each answered as the same request made on its own would be (it goes
//! through the same dispatch, so an sObject Collections subrequest takes the same row locks and
//! waits `write_ms`), and the answers collected into `{"compositeResponse": [...]}` with HTTP
//! 200 even when subrequests failed.
//!
//! What this fake serves of it:
//! - subrequests to the resources Salesforce allows in a composite call that this org serves:
//!   the sObject resources, `query`/`queryAll`/`query/{locator}` and sObject Collections;
//!   any other url answers its subrequest 404 `NOT_FOUND`;
//! - `allOrNone: false` only (the default): each subrequest stands on its own, a failed one
//!   leaves the others to run. `allOrNone: true` is refused whole with 400, since the fake
//!   cannot roll back a committed subrequest;
//! - no reference notation (`@{refId.field}` in a url or body): refused whole with 400, before
//!   anything runs;
//! - `collateSubrequests` is accepted and ignored (the fake always runs them in order), and so
//!   are a subrequest's `httpHeaders`, except that a query's `Sforce-Query-Options` sets its
//!   page size as on a direct call.
//!
//! Salesforce's own refusals: a subrequest without `method`, `url` or `referenceId` refuses the
//! whole call with 400 `JSON_PARSER_ERROR` "'referenceId' is a required field."; more than
//! [`MAX_SUBREQUESTS`] subrequests, or more than [`MAX_COLLECTIONS_OR_QUERIES`] of them that are
//! sObject Collections or query operations, run nothing and answer 200 with one subresponse
//! `{"body":[{"errorCode":"LIMIT_EXCEEDED","message":…}],"httpHeaders":{},"httpStatusCode":400,
//! "referenceId":null}`. The 25-operation message is the one real orgs answer; the message for
//! the collections/query limit is modelled on it (its real text is not recorded here).

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use crate::error::{ApiError, json_response};
use crate::org::Org;

/// Subrequests in one composite call: Salesforce's limit.
pub const MAX_SUBREQUESTS: usize = 25;

/// Of those, the sObject Collections and query (query, queryAll, queryMore) subrequests.
pub const MAX_COLLECTIONS_OR_QUERIES: usize = 5;

/// What a real org answers past [`MAX_SUBREQUESTS`] (with its typographic apostrophe).
pub const TOO_MANY_SUBREQUESTS: &str = "The request can\u{2019}t contain more than 25 operations.";

/// The fake's answer past [`MAX_COLLECTIONS_OR_QUERIES`], in the same words.
pub const TOO_MANY_COLLECTIONS_OR_QUERIES: &str =
    "The request can\u{2019}t contain more than 5 sObject Collections or query operations.";

/// The request body. Fields are optional here so that a missing one gets Salesforce's message
/// rather than serde's.
#[derive(Debug, Deserialize)]
struct CompositeBody {
    #[serde(default, rename = "allOrNone")]
    all_or_none: bool,
    #[serde(default, rename = "collateSubrequests")]
    _collate_subrequests: Option<bool>,
    #[serde(rename = "compositeRequest")]
    composite_request: Option<Vec<Subrequest>>,
}

#[derive(Debug, Deserialize)]
struct Subrequest {
    method: Option<String>,
    url: Option<String>,
    #[serde(rename = "referenceId")]
    reference_id: Option<String>,
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default, rename = "httpHeaders")]
    http_headers: Map<String, Json>,
}

/// One element of `compositeResponse`; the body is passed on byte for byte.
#[derive(Serialize)]
struct SubResponse<'a> {
    body: &'a RawValue,
    #[serde(rename = "httpHeaders")]
    http_headers: Map<String, Json>,
    #[serde(rename = "httpStatusCode")]
    http_status_code: u16,
    #[serde(rename = "referenceId")]
    reference_id: Option<&'a str>,
}

fn parse_error(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
}

/// The fake's own refusal of what it does not imitate.
fn unsupported(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "UNSUPPORTED_BY_FAKE", message)
}

/// One checked subrequest, ready to run.
struct Planned<'a> {
    method: Method,
    /// What follows `/services/data/`, without the query string.
    rest: &'a str,
    query: Option<&'a str>,
    reference_id: &'a str,
    body: Bytes,
    headers: HeaderMap,
}

/// `POST /composite`: runs the subrequests in order and answers each one's result.
pub(super) async fn composite(
    org: &Arc<Org>,
    method: &Method,
    body: &Bytes,
) -> Result<Response, ApiError> {
    if method != Method::POST {
        return Err(ApiError::method_not_allowed(method.as_str()));
    }
    let request: CompositeBody =
        serde_json::from_slice(body).map_err(|e| parse_error(e.to_string()))?;
    if request.all_or_none {
        return Err(unsupported(
            "allOrNone true is not supported by the fake org: it cannot roll back a committed subrequest; send allOrNone false",
        ));
    }
    let subrequests = request
        .composite_request
        .ok_or_else(|| parse_error("'compositeRequest' is a required field."))?;
    let planned = subrequests
        .iter()
        .map(plan)
        .collect::<Result<Vec<_>, ApiError>>()?;
    let heavy = planned
        .iter()
        .filter(|p| is_collections_or_query(p.rest))
        .count();
    if planned.len() > MAX_SUBREQUESTS {
        return Ok(limit_exceeded(TOO_MANY_SUBREQUESTS));
    }
    if heavy > MAX_COLLECTIONS_OR_QUERIES {
        return Ok(limit_exceeded(TOO_MANY_COLLECTIONS_OR_QUERIES));
    }
    let mut answers = Vec::with_capacity(planned.len());
    for p in &planned {
        let response = super::subrequest(org, &p.method, p.rest, &p.headers, p.query, &p.body)
            .await
            .unwrap_or_else(IntoResponse::into_response);
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(ApiError::unknown)?;
        let body = if bytes.is_empty() {
            RawValue::from_string("null".to_owned())
        } else {
            RawValue::from_string(String::from_utf8_lossy(&bytes).into_owned())
        }
        .map_err(ApiError::unknown)?;
        answers.push((p.reference_id, status, body));
    }
    let responses: Vec<SubResponse<'_>> = answers
        .iter()
        .map(|(reference_id, status, body)| SubResponse {
            body,
            http_headers: Map::new(),
            http_status_code: *status,
            reference_id: Some(reference_id),
        })
        .collect();
    respond(&responses)
}

/// Checks one subrequest as Salesforce does before running any of them.
fn plan(sub: &Subrequest) -> Result<Planned<'_>, ApiError> {
    let required = |name: &str| parse_error(format!("'{name}' is a required field."));
    let method = sub.method.as_deref().ok_or_else(|| required("method"))?;
    let url = sub.url.as_deref().ok_or_else(|| required("url"))?;
    let reference_id = sub
        .reference_id
        .as_deref()
        .ok_or_else(|| required("referenceId"))?;
    let method = match method {
        "GET" | "POST" | "PUT" | "PATCH" | "DELETE" => {
            Method::from_bytes(method.as_bytes()).map_err(|e| parse_error(e.to_string()))?
        }
        other => {
            return Err(parse_error(format!(
                "Invalid HTTP method {other:?}: use POST, PUT, PATCH, GET or DELETE"
            )));
        }
    };
    let body_text = sub.body.as_ref().map_or("", |b| b.get());
    if url.contains("@{") || body_text.contains("@{") {
        return Err(unsupported(format!(
            "subrequest {reference_id}: reference notation (@{{referenceId.field}}) is not supported by the fake org"
        )));
    }
    let (path, query) = match url.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (url, None),
    };
    // A url outside /services/data/ can name no resource the composite call serves; it is
    // answered 404 like an unknown resource (an empty `rest` routes nowhere).
    let rest = path.strip_prefix("/services/data/").unwrap_or("");
    let mut headers = HeaderMap::new();
    for (name, value) in &sub.http_headers {
        if let (Ok(name), Some(Ok(value))) = (
            HeaderName::from_bytes(name.as_bytes()),
            value.as_str().map(HeaderValue::from_str),
        ) {
            headers.insert(name, value);
        }
    }
    Ok(Planned {
        method,
        rest,
        query,
        reference_id,
        body: Bytes::copy_from_slice(body_text.as_bytes()),
        headers,
    })
}

/// sObject Collections (`composite/sobjects…`) and query operations (`query`, `queryAll`,
/// `query/{locator}`): the subrequests Salesforce allows at most five of.
fn is_collections_or_query(rest: &str) -> bool {
    let mut segments = rest.split('/').filter(|s| !s.is_empty()).skip(1);
    match segments.next() {
        Some("query" | "queryAll") => true,
        Some("composite") => segments.next() == Some("sobjects"),
        _ => false,
    }
}

/// The answer to a call over one of the limits: nothing ran.
fn limit_exceeded(message: &str) -> Response {
    let body = serde_json::json!([{"errorCode": "LIMIT_EXCEEDED", "message": message}]).to_string();
    let body = RawValue::from_string(body).expect("serde_json writes valid JSON");
    let only = SubResponse {
        body: &body,
        http_headers: Map::new(),
        http_status_code: 400,
        reference_id: None,
    };
    respond(&[only]).unwrap_or_else(IntoResponse::into_response)
}

fn respond(responses: &[SubResponse<'_>]) -> Result<Response, ApiError> {
    #[derive(Serialize)]
    struct Answer<'a> {
        #[serde(rename = "compositeResponse")]
        composite_response: &'a [SubResponse<'a>],
    }
    let body = serde_json::to_string(&Answer {
        composite_response: responses,
    })
    .map_err(ApiError::unknown)?;
    Ok(json_response(StatusCode::OK, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_and_queries_are_recognised() {
        assert!(is_collections_or_query("v62.0/query"));
        assert!(is_collections_or_query("v62.0/query/"));
        assert!(is_collections_or_query("v62.0/queryAll"));
        assert!(is_collections_or_query("v62.0/query/01gxx-2000"));
        assert!(is_collections_or_query("v62.0/composite/sobjects"));
        assert!(is_collections_or_query(
            "v62.0/composite/sobjects/Contact/Ext__c"
        ));
        assert!(!is_collections_or_query(
            "v62.0/sobjects/Contact/003000000000001AAA"
        ));
        assert!(!is_collections_or_query("v62.0/composite"));
    }

    #[test]
    fn the_limit_answer_has_no_reference_id() {
        let response = limit_exceeded(TOO_MANY_SUBREQUESTS);
        assert_eq!(response.status(), StatusCode::OK);
    }
}
