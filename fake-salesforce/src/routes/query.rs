//! `query`, `queryAll` and `query/{locator}`: running SOQL over REST, answering the first page,
//! and serving the following pages from an open cursor.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::cursor::Cursor;
use crate::error::{ApiError, json_response};
use crate::faults::Counters;
use crate::org::Org;
use crate::render;
use crate::soql::eval::{self, Tables};
use crate::soql::{self, Selection};

/// REST page size bounds and default for `Sforce-Query-Options: batchSize=N`.
const BATCH_MIN: usize = 200;
const BATCH_MAX: usize = 2000;

/// `GET /query?q=` (`all` false) and `GET /queryAll?q=` (`all` true).
pub(super) async fn query(
    org: &Arc<Org>,
    version: &str,
    q: Option<String>,
    headers: &HeaderMap,
    all: bool,
) -> Result<Response, ApiError> {
    let q = q.ok_or_else(|| {
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
        .map_err(ApiError::unknown)?
}

/// `GET /query/{locator}`: the next page of an open cursor.
pub(super) fn query_more(org: &Org, locator: &str, version: &str) -> Result<Response, ApiError> {
    let (id, cursor, offset) = org.cursors().get(locator).ok_or_else(|| {
        Counters::bump(&org.fault_counters().locators_refused);
        ApiError::invalid_locator()
    })?;
    let tables = Tables::at(org.store(), &cursor.snapshot, cursor.object);
    Ok(page(&tables, &cursor, &id, offset, version))
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

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn batch_sizes_are_clamped() {
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
