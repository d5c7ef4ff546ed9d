//! A job's life: `POST /jobs/query` creates it (parsing and running its SOQL at once against a
//! snapshot), its state follows the time since creation (`UploadComplete`, `InProgress`, then
//! `JobComplete` or `Failed`), `PATCH` aborts it, and the job info reports all of it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::body::Bytes;
use axum::response::Response;
use serde_json::{Value as Json, json};

use super::csv::{Delimiter, Layout};
use super::{Job, Jobs, bad_request, ok};
use crate::calendar::write_datetime;
use crate::error::ApiError;
use crate::faults::Counters;
use crate::org::Org;
use crate::soql::eval::{self, Tables};
use crate::soql::{self, FieldRef, Selection};

/// `POST /jobs/query`.
pub(super) async fn create(
    org: &Arc<Org>,
    version: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
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

/// `PATCH` (or `POST`) `/jobs/query/{id}` `{"state":"Aborted"}`: aborts an unfinished job.
pub(super) fn abort(org: &Org, job: &Job, body: &Bytes) -> Result<Response, ApiError> {
    let jobs = org.jobs();
    let wanted: Json = serde_json::from_slice(body)
        .map_err(|e| bad_request("JSON_PARSER_ERROR", e.to_string()))?;
    if wanted["state"] != "Aborted" {
        return Err(bad_request(
            "INVALIDJOBSTATE",
            "A query job can only be changed to state Aborted",
        ));
    }
    let state = jobs.state(job);
    if !matches!(state, "UploadComplete" | "InProgress") {
        return Err(bad_request(
            "INVALIDJOBSTATE",
            format!("Cannot abort a job in state {state}"),
        ));
    }
    *job.aborted.lock().unwrap_or_else(PoisonError::into_inner) = Some(org.now_millis());
    Ok(ok(&jobs.info(org, job, true)))
}

impl Jobs {
    /// Where `job` is now: aborted, or as far as the time since its creation takes it.
    pub(super) fn state(&self, job: &Job) -> &'static str {
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
    pub(super) fn info(&self, org: &Org, job: &Job, detail: bool) -> Json {
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
