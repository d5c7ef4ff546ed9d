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
//! - `PATCH` (or `POST`) `/jobs/query/{id}` `{"state":"Aborted"}` aborts an unfinished job;
//!   `DELETE /jobs/query/{id}` answers 204; `GET /jobs/query` lists jobs.

pub mod csv;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use common::sfid::SalesforceId;
use serde_json::{Value as Json, json};

use crate::calendar::write_datetime;
use crate::data::generate::{base62_into, mix};
use crate::data::{ObjectKind, Snapshot};
use crate::error::{ApiError, json_response};
use crate::faults::Counters;
use crate::org::Org;
use crate::soql::eval::{self, Tables};
use crate::soql::{self, FieldRef, Selection};
use csv::{Delimiter, Layout};

/// Rows per results chunk when the client sends no `maxRecords` (what simple-salesforce asks
/// for).
pub const DEFAULT_MAX_RECORDS: usize = 50_000;
/// Beyond this many jobs the oldest are dropped.
const MAX_JOBS: usize = 1_000;

/// One query job: the query's result (indices into a snapshot) and the job's metadata.
#[derive(Debug)]
pub struct Job {
    id: String,
    all: bool,
    object: ObjectKind,
    /// `62.0` for a job created under `/services/data/v62.0/`.
    api_version: String,
    layout: Layout,
    created: Instant,
    created_millis: i64,
    /// The selected fields in SELECT order: the CSV columns.
    columns: Vec<FieldRef>,
    indices: Vec<u32>,
    snapshot: Snapshot,
    /// Why the job will end `Failed`, if it will.
    failure: Option<String>,
    /// Internal retries reported for a failed job.
    retries: u32,
    /// Millis when the job was aborted.
    aborted: Mutex<Option<i64>>,
}

/// All jobs of the org.
#[derive(Debug)]
pub struct Jobs {
    delay: Duration,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    serial: AtomicU64,
    salt: u64,
}

impl Jobs {
    pub fn new(delay: Duration, seed: u64) -> Self {
        Jobs {
            delay,
            jobs: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(1),
            salt: mix(seed ^ 0x0750),
        }
    }

    /// Query jobs created so far (for `/limits`).
    pub fn created(&self) -> u64 {
        self.serial.load(Ordering::Relaxed) - 1
    }

    fn next_id(&self) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut core = [0u8; 15];
        core[..3].copy_from_slice(b"750");
        base62_into(&mut core[3..7], mix(self.salt ^ serial));
        base62_into(&mut core[7..], serial);
        SalesforceId::from_core(core).to_string()
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.get(id).cloned().or_else(|| {
            // Accept the 15-character form too.
            let full = SalesforceId::parse(id).ok()?;
            jobs.get(full.as_str()).cloned()
        })
    }

    fn insert(&self, job: Arc<Job>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.len() >= MAX_JOBS
            && let Some(oldest) = jobs
                .values()
                .min_by_key(|j| j.created)
                .map(|j| j.id.clone())
        {
            jobs.remove(&oldest);
        }
        jobs.insert(job.id.clone(), job);
    }

    fn state(&self, job: &Job) -> &'static str {
        if job
            .aborted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
        {
            return "Aborted";
        }
        let elapsed = job.created.elapsed();
        if elapsed < self.delay / 2 {
            "UploadComplete"
        } else if elapsed < self.delay {
            "InProgress"
        } else if job.failure.is_some() {
            "Failed"
        } else {
            "JobComplete"
        }
    }

    /// The job info JSON; `detail` adds what `GET /jobs/query/{id}` reports beyond creation.
    fn info(&self, org: &Org, job: &Job, detail: bool) -> Json {
        let state = self.state(job);
        let modstamp = match *job.aborted.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(at) => at,
            None if matches!(state, "JobComplete" | "Failed") => {
                job.created_millis + self.delay.as_millis() as i64 / 1000 * 1000
            }
            None => job.created_millis,
        };
        let mut info = json!({
            "id": job.id,
            "operation": if job.all { "queryAll" } else { "query" },
            "object": job.snapshot.schema.def(job.object).name,
            "createdById": org.user_id(),
            "createdDate": datetime(job.created_millis),
            "systemModstamp": datetime(modstamp),
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": job.api_version.parse::<f64>().unwrap_or(0.0),
            "lineEnding": if job.layout.crlf { "CRLF" } else { "LF" },
            "columnDelimiter": job.layout.delimiter.name(),
        });
        if detail {
            let done = state == "JobComplete";
            info["jobType"] = json!("V2Query");
            info["numberRecordsProcessed"] = json!(if done { job.indices.len() } else { 0 });
            info["retries"] = json!(job.retries);
            info["totalProcessingTime"] = json!(if done { self.delay.as_millis() } else { 0 });
            info["isPkChunkingSupported"] = json!(true);
            if state == "Failed" {
                info["errorMessage"] = json!(job.failure);
            }
        }
        info
    }
}

fn datetime(ms: i64) -> String {
    let mut s = String::new();
    write_datetime(&mut s, ms);
    s
}

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
        ([], &Method::POST) => create(org, version, body).await,
        ([], &Method::GET) => {
            let list: Vec<Json> = {
                let all = jobs.jobs.lock().unwrap_or_else(PoisonError::into_inner);
                let mut list: Vec<Arc<Job>> = all.values().cloned().collect();
                list.sort_by_key(|j| j.created);
                list.iter().map(|j| jobs.info(org, j, false)).collect()
            };
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
            let wanted: Json = serde_json::from_slice(body)
                .map_err(|e| bad_request("JSON_PARSER_ERROR", e.to_string()))?;
            if wanted["state"] != "Aborted" {
                return Err(bad_request(
                    "INVALIDJOBSTATE",
                    "A query job can only be changed to state Aborted",
                ));
            }
            let state = jobs.state(&job);
            if !matches!(state, "UploadComplete" | "InProgress") {
                return Err(bad_request(
                    "INVALIDJOBSTATE",
                    format!("Cannot abort a job in state {state}"),
                ));
            }
            *job.aborted.lock().unwrap_or_else(PoisonError::into_inner) = Some(org.now_millis());
            Ok(ok(&jobs.info(org, &job, true)))
        }
        ([id], &Method::DELETE) => {
            let key = jobs
                .get(id)
                .map_or_else(|| (*id).to_owned(), |j| j.id.clone());
            let removed = jobs
                .jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
            match removed {
                Some(_) => Ok(StatusCode::NO_CONTENT.into_response()),
                None => Err(ApiError::not_found()),
            }
        }
        ([_], _) => Err(method_not_allowed(method, "GET,PATCH,DELETE")),
        ([id, "results"], &Method::GET) => {
            let job = jobs.get(id).ok_or_else(ApiError::not_found)?;
            results(org, job, version, params).await
        }
        ([_, "results"], _) => Err(method_not_allowed(method, "GET")),
        _ => Err(ApiError::not_found()),
    }
}

/// `POST /jobs/query`.
async fn create(org: &Arc<Org>, version: &str, body: &Bytes) -> Result<Response, ApiError> {
    let request: Json = serde_json::from_slice(body)
        .map_err(|e| bad_request("JSON_PARSER_ERROR", e.to_string()))?;
    let field = |name: &str| request.get(name).and_then(Json::as_str);
    let all = match field("operation") {
        Some("query") => false,
        Some("queryAll") => true,
        other => {
            return Err(bad_request(
                "INVALIDJOB",
                format!(
                    "Invalid operation: {}; use query or queryAll",
                    other.unwrap_or("(none)")
                ),
            ));
        }
    };
    let soql = field("query")
        .ok_or_else(|| bad_request("INVALIDJOB", "A query job needs a query"))?
        .to_owned();
    if field("contentType").is_some_and(|c| c != "CSV") {
        return Err(bad_request(
            "INVALIDJOB",
            "Query jobs only support contentType CSV",
        ));
    }
    let delimiter = match field("columnDelimiter") {
        None => Delimiter::Comma,
        Some(name) => Delimiter::parse(name)
            .ok_or_else(|| bad_request("INVALIDJOB", format!("Invalid columnDelimiter: {name}")))?,
    };
    let crlf = match field("lineEnding") {
        None | Some("LF") => false,
        Some("CRLF") => true,
        Some(other) => {
            return Err(bad_request(
                "INVALIDJOB",
                format!("Invalid lineEnding: {other}"),
            ));
        }
    };
    let snapshot = org.store().snapshot();
    let query = soql::parse(&soql, &snapshot.schema)?;
    let def = snapshot.schema.def(query.object);
    if !def.bulk {
        return Err(bad_request(
            "INVALIDENTITY",
            format!("Entity '{}' is not supported by the Bulk API.", def.name),
        ));
    }
    let compound = query.columns.iter().any(|c| match *c {
        FieldRef::Own(f) => def.fields[f].ty.is_compound(),
        FieldRef::Parent { via, field } => def.fields[via]
            .target
            .is_some_and(|t| snapshot.schema.def(t).fields[field].ty.is_compound()),
    });
    if compound {
        return Err(bad_request(
            "API_ERROR",
            "Selecting compound data not supported in Bulk Query",
        ));
    }
    let order_by_limit = org.faults().bulk_order_by_limit;
    let api_version = version.trim_start_matches('v').to_owned();
    let owner = Arc::clone(org);
    // Running the query is CPU work; keep it off the reactor.
    let job = tokio::task::spawn_blocking(move || {
        let org = owner;
        let tables = Tables::at(org.store(), &snapshot, query.object);
        let mut failure = match (&query.selection, query.offset) {
            (Selection::Count, _) => {
                Some("Aggregate queries (COUNT()) are not supported by the Bulk API".to_owned())
            }
            (_, Some(_)) => Some("OFFSET is not supported by the Bulk API".to_owned()),
            (Selection::Fields(_), None) => None,
        };
        let mut retries = 0;
        let mut indices = if failure.is_none() {
            eval::matching(&query, &tables, all)
        } else {
            Vec::new()
        };
        if let Some(limit) = order_by_limit
            && failure.is_none()
            && !query.order.is_empty()
            && indices.len() as u64 > limit
        {
            Counters::bump(&org.fault_counters().bulk_timeouts);
            failure = Some("Retried more than 15 times".to_owned());
            retries = 15;
            indices.clear();
        }
        if failure.is_none() {
            eval::order_and_limit(&query, &tables, &mut indices);
        }
        Job {
            id: org.jobs().next_id(),
            all,
            object: query.object,
            api_version,
            layout: Layout { delimiter, crlf },
            created: Instant::now(),
            created_millis: org.now_millis(),
            columns: query.columns.clone(),
            indices,
            snapshot,
            failure,
            retries,
            aborted: Mutex::new(None),
        }
    })
    .await
    .map_err(ApiError::unknown)?;
    tracing::debug!(job = %job.id, soql, all, rows = job.indices.len(), "Created a Bulk query job.");
    let job = Arc::new(job);
    org.jobs().insert(Arc::clone(&job));
    // A new job is always reported queued, however long creating it took here.
    let mut info = org.jobs().info(org, &job, false);
    info["state"] = json!("UploadComplete");
    Ok(ok(&info))
}

/// `GET /jobs/query/{id}/results`.
async fn results(
    org: &Arc<Org>,
    job: Arc<Job>,
    version: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if version.trim_start_matches('v') != job.api_version {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "INVALIDJOB",
            format!(
                "The job was created with API version {}; fetch its results with the same version",
                job.api_version
            ),
        ));
    }
    let state = org.jobs().state(&job);
    if state != "JobComplete" {
        return Err(bad_request(
            "INVALIDJOBSTATE",
            format!("Results are available once the job is JobComplete; it is {state}"),
        ));
    }
    let total = job.indices.len();
    let offset = match param("locator") {
        None | Some("") => 0,
        Some(locator) => decode_locator(locator)
            .filter(|&o| o < total)
            .ok_or_else(|| {
                bad_request(
                    "INVALID_QUERY_LOCATOR",
                    format!("Invalid locator: {locator}"),
                )
            })?,
    };
    let max =
        match param("maxRecords") {
            None => DEFAULT_MAX_RECORDS,
            Some(n) => n.parse::<usize>().ok().filter(|&n| n > 0).ok_or_else(|| {
                bad_request("INVALIDPARAMETER", format!("Invalid maxRecords: {n}"))
            })?,
        };
    let end = offset.saturating_add(max).min(total);
    let body = stream_rows(org, job, offset..end);
    let locator = if end < total {
        encode_locator(end)
    } else {
        "null".to_owned()
    };
    let mut response = (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], body).into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&locator) {
        headers.insert("sforce-locator", v);
    }
    headers.insert("sforce-numberofrecords", HeaderValue::from(end - offset));
    Ok(response)
}

/// Rows rendered before a piece of the body is handed to the connection.
const PIECE_BYTES: usize = 256 * 1024;

/// The CSV of rows `range` of `job`, streamed: a blocking task renders it piece by piece
/// into a channel of two pieces, so a 50,000-row chunk of a 250-field object costs a few
/// hundred kilobytes instead of its whole size (150 MB for the real Account). The body is
/// sent chunked; the task stops when the client goes away.
fn stream_rows(org: &Arc<Org>, job: Arc<Job>, range: std::ops::Range<usize>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let owner = Arc::clone(org);
    tokio::task::spawn_blocking(move || {
        let tables = Tables::at(owner.store(), &job.snapshot, job.object);
        let mut out = String::with_capacity(PIECE_BYTES * 2);
        csv::write_header(&mut out, &tables, &job.columns, job.layout);
        for rows in job.indices[range].chunks(64) {
            csv::write_rows(&mut out, &tables, &job.columns, rows, job.layout);
            if out.len() >= PIECE_BYTES {
                let piece = std::mem::replace(&mut out, String::with_capacity(PIECE_BYTES * 2));
                if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                    return;
                }
            }
        }
        if !out.is_empty() {
            let _ = tx.blocking_send(Ok(Bytes::from(out)));
        }
    });
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 (no padding) of the decimal row offset, like Salesforce's `MTAwMDA` for 10000.
fn encode_locator(offset: usize) -> String {
    let bytes = offset.to_string().into_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(B64[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fn decode_locator(locator: &str) -> Option<usize> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut bytes = Vec::new();
    for c in locator.trim_end_matches('=').bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            bytes.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    let text = String::from_utf8(bytes).ok()?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_are_base64_offsets() {
        assert_eq!(encode_locator(10_000), "MTAwMDA");
        for n in [1, 12, 123, 50_000, 299_999, 1_234_567] {
            assert_eq!(decode_locator(&encode_locator(n)), Some(n));
        }
        assert_eq!(decode_locator("MTAwMDA="), Some(10_000));
        assert_eq!(decode_locator("!!"), None);
        assert_eq!(decode_locator("bnVsbA"), None);
    }
}
