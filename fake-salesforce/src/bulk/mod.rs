//! Bulk API 2.0 query jobs under `/services/data/vXX.X/jobs/query`.
//!
//! - `POST /jobs/query` `{"operation":"query"|"queryAll","query":…}` (optional `contentType`
//!   `CSV`, `columnDelimiter`, `lineEnding`) creates a job and answers its info with state
//!   `UploadComplete`. The SOQL is parsed and run right away against a snapshot of the org:
//!   later mutations do not change the results. SOQL that REST would refuse (bad syntax,
//!   unknown fields, subqueries) is refused here too, 400 with the same body. SOQL that
//!   parses but that Bulk 2.0 does not support (`COUNT()`, `OFFSET`) creates a job that ends
//!   `Failed` with an `errorMessage`.
//! - Objects the Bulk API does not support (CaseStatus in the real shape) are refused with
//!   400 `[{"errorCode":"INVALIDENTITY","message":"Entity 'CaseStatus' is not supported by the
//!   Bulk API."}]` (the errorCode, status and message airbyte's source-salesforce tests
//!   against; the message as tap-salesforce's Blacklisting.md quotes it). A compound field
//!   (`BillingAddress`) in the SELECT is refused with 400 `[{"errorCode":"API_ERROR",
//!   "message":"Selecting compound data not supported in Bulk Query"}]` (the message airbyte
//!   matches; `API_ERROR` as clients log it for Bulk 2.0).
//! - With the `bulk_order_by_limit` fault, a job whose SOQL has ORDER BY (which disables PK
//!   chunking) over more records than the limit ends `Failed` with `errorMessage` "Retried
//!   more than 15 times" and `retries` 15: Bulk 2.0 retries a timed-out query internally and
//!   its docs name this message ("If you receive a message that the API retried more than 15
//!   times, apply a filter criteria and try again"); its exact wording in `errorMessage` is
//!   not documented.
//! - `GET /jobs/query/{id}`: the state moves `UploadComplete` → `InProgress` (after half the
//!   configured delay) → `JobComplete` (after the whole delay, [`crate::OrgConfig`]'s
//!   `bulk_job_delay`).
//! - `GET /jobs/query/{id}/results[?locator=&maxRecords=]`: `text/csv` (see [`csv`]), at most
//!   `maxRecords` rows (default [`DEFAULT_MAX_RECORDS`]), streamed as it is rendered
//!   (chunked, so a chunk of a wide object never sits in memory whole), with
//!   `Sforce-NumberOfRecords` and
//!   always `Sforce-Locator` (`null` on the last chunk). Locators are base64 row offsets,
//!   valid for as long as the job exists, and may be fetched repeatedly and concurrently.
//!   400 `INVALIDJOBSTATE` before `JobComplete`; 409 when the path's API version differs
//!   from the job's.
//! - `GET /jobs/query/{id}/resultPages[?locator=]` (API 58.0 and later; 404 `NOT_FOUND`
//!   below): the parallel download. Up to five `resultPages[].resultUrl`, each a results URL
//!   with its `locator` and `maxRecords` for [`RESULT_PAGE_RECORDS`] rows, so that the
//!   pages can be fetched at once and together hold every row once; `nextRecordsUrl` (`null`
//!   with `done: true` on the last answer) asks for the next five. Same state and version
//!   errors as `results`.
//! - `PATCH` (or `POST`) `/jobs/query/{id}` `{"state":"Aborted"}` aborts an unfinished job;
//!   `DELETE /jobs/query/{id}` answers 204; `GET /jobs/query` lists jobs.
//!
//! The job store is in `store`, creating, aborting and reporting a job in `lifecycle`, and the
//! results with their locators in `results`; this module routes the requests to them.

pub mod csv;
mod lifecycle;
mod results;
mod store;

use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::error::{ApiError, json_response};
use crate::org::Org;

pub use store::{Job, Jobs};

/// Rows per results chunk when the client sends no `maxRecords` (what simple-salesforce asks
/// for).
pub const DEFAULT_MAX_RECORDS: usize = 50_000;

/// Rows per result page of the parallel download (`resultPages`). Salesforce chooses its own
/// size and does not document it; 10,000 keeps a client that holds one page per download
/// at a few megabytes a page for a plain object.
pub const RESULT_PAGE_RECORDS: usize = 10_000;

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn method_not_allowed(method: &Method, allowed: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
}

fn ok(body: &Json) -> Response {
    json_response(StatusCode::OK, body.to_string())
}

/// Handles `/services/data/{version}/jobs/query[/…]`; `path` is what follows `jobs/query`.
pub async fn dispatch(
    org: &Arc<Org>,
    method: &Method,
    version: &str,
    path: &[&str],
    params: &[(String, String)],
    body: &Bytes,
) -> Result<Response, ApiError> {
    let jobs = org.jobs();
    match (path, method) {
        ([], &Method::POST) => lifecycle::create(org, version, body).await,
        ([], &Method::GET) => {
            let list: Vec<Json> = jobs
                .list()
                .iter()
                .map(|j| jobs.info(org, j, false))
                .collect();
            Ok(ok(
                &json!({"done": true, "records": list, "nextRecordsUrl": null}),
            ))
        }
        ([], _) => Err(method_not_allowed(method, "GET,POST")),
        ([id], &Method::GET) => {
            let job = jobs.get(id).ok_or_else(ApiError::not_found)?;
            Ok(ok(&jobs.info(org, &job, true)))
        }
        ([id], &Method::PATCH | &Method::POST) => {
            let job = jobs.get(id).ok_or_else(ApiError::not_found)?;
            lifecycle::abort(org, &job, body)
        }
        ([id], &Method::DELETE) => match jobs.remove(id) {
            Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
            None => Err(ApiError::not_found()),
        },
        ([_], _) => Err(method_not_allowed(method, "GET,PATCH,DELETE")),
        ([id, "results"], &Method::GET) => {
            let job = jobs.get(id).ok_or_else(ApiError::not_found)?;
            results::results(org, job, version, params).await
        }
        ([_, "results"], _) => Err(method_not_allowed(method, "GET")),
        ([id, "resultPages"], &Method::GET) => {
            let job = jobs.get(id).ok_or_else(ApiError::not_found)?;
            results::result_pages(org, &job, version, params)
        }
        ([_, "resultPages"], _) => Err(method_not_allowed(method, "GET")),
        _ => Err(ApiError::not_found()),
    }
}
