//! `GET /jobs/query/{id}/results`: a completed job's rows as CSV chunks of `maxRecords` rows,
//! streamed as they are rendered, chained by `Sforce-Locator` (base64 row offsets); and
//! `GET /jobs/query/{id}/resultPages`, the same chunks as URLs to fetch at once.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::{Value as Json, json};

use super::{DEFAULT_MAX_RECORDS, Job, RESULT_PAGE_RECORDS, bad_request, csv, ok};
use crate::base64;
use crate::error::ApiError;
use crate::org::Org;
use crate::soql::eval::Tables;

/// Result URLs per `resultPages` answer, as Salesforce sends at most.
const URLS_PER_ANSWER: usize = 5;

/// Refuses a results request made with another API version than the job's (409), or before
/// the job is complete (400).
fn check_ready(org: &Org, job: &Job, version: &str) -> Result<(), ApiError> {
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
    let state = org.jobs().state(job);
    if state != "JobComplete" {
        return Err(bad_request(
            "INVALIDJOBSTATE",
            format!("Results are available once the job is JobComplete; it is {state}"),
        ));
    }
    Ok(())
}

/// The row offset a `locator` parameter names (0 without one).
fn offset(params: &[(String, String)], total: usize) -> Result<usize, ApiError> {
    match params
        .iter()
        .find(|(n, _)| n == "locator")
        .map(|(_, v)| v.as_str())
    {
        None | Some("") => Ok(0),
        Some(locator) => decode_locator(locator)
            .filter(|&o| o < total)
            .ok_or_else(|| {
                bad_request(
                    "INVALID_QUERY_LOCATOR",
                    format!("Invalid locator: {locator}"),
                )
            }),
    }
}

/// `GET /jobs/query/{id}/resultPages`: up to five result URLs from the locator on.
pub(super) fn result_pages(
    org: &Org,
    job: &Job,
    version: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let number: f64 = version.trim_start_matches('v').parse().unwrap_or(0.0);
    if number < 58.0 {
        return Err(ApiError::not_found());
    }
    check_ready(org, job, version)?;
    let total = job.indices.len();
    let from = offset(params, total)?;
    let base = format!("/services/data/{version}/jobs/query/{}", job.id);
    let mut starts: Vec<usize> = (from..total)
        .step_by(RESULT_PAGE_RECORDS)
        .take(URLS_PER_ANSWER)
        .collect();
    if total == 0 {
        starts.push(0); // the CSV header alone
    }
    let pages: Vec<Json> = starts
        .iter()
        .map(|&start| {
            let locator = if start == 0 {
                String::new()
            } else {
                format!("&locator={}", encode_locator(start))
            };
            json!({"resultUrl": format!("{base}/results?maxRecords={RESULT_PAGE_RECORDS}{locator}")})
        })
        .collect();
    let next = starts
        .last()
        .map(|last| last + RESULT_PAGE_RECORDS)
        .filter(|&n| n < total);
    Ok(ok(&json!({
        "resultPages": pages,
        "nextRecordsUrl": next.map(|n| format!("{base}/resultPages?locator={}", encode_locator(n))),
        "done": next.is_none(),
    })))
}

/// `GET /jobs/query/{id}/results`.
pub(super) async fn results(
    org: &Arc<Org>,
    job: Arc<Job>,
    version: &str,
    params: &[(String, String)],
) -> Result<Response, ApiError> {
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    check_ready(org, &job, version)?;
    let total = job.indices.len();
    let offset = offset(params, total)?;
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
        let _sending = owner.jobs().downloading();
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
    // Fused: gzip (tower-http's compression) polls the body once more after its end, and
    // an unfold must not be polled after it ended.
    Body::from_stream(
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|piece| (piece, rx))
        })
        .fuse(),
    )
}

/// Base64 (no padding) of the decimal row offset, like Salesforce's `MTAwMDA` for 10000.
fn encode_locator(offset: usize) -> String {
    base64::encode(offset.to_string().as_bytes())
        .trim_end_matches('=')
        .to_owned()
}

/// The row offset of a locator; `=` only as trailing padding.
fn decode_locator(locator: &str) -> Option<usize> {
    let digits = locator.trim_end_matches('=');
    if digits.contains('=') {
        return None;
    }
    let text = String::from_utf8(base64::decode(digits)?).ok()?;
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
        assert_eq!(decode_locator("MTA=wMDA"), None);
    }
}
