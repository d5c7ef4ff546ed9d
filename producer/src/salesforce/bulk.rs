//! Bulk API 2.0 query jobs: create, poll until complete, download the CSV results chunk by
//! chunk (following `Sforce-Locator`), and turn CSV rows back into the JSON records the REST
//! API would have returned, typed by describe, so workers cannot tell which API was used.

use std::time::Duration;

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use super::{SalesforceClient, SfError};

/// A query job as Salesforce reports it.
#[derive(Debug, Clone, Deserialize)]
pub struct Job {
    pub id: String,
    pub state: String,
    #[serde(rename = "errorMessage", default)]
    pub error_message: Option<String>,
    #[serde(rename = "numberRecordsProcessed", default)]
    pub records_processed: Option<u64>,
}

/// Rows asked for per results request; Salesforce may send fewer.
pub const MAX_RECORDS_PER_CHUNK: u32 = 50_000;

impl SalesforceClient {
    /// Creates a query job (`queryAll`, so deleted records come too) and returns it.
    ///
    /// # Errors
    /// Salesforce refused the query (same errors as REST), or the call failed.
    pub async fn create_query_job(&self, soql: &str) -> Result<Job, SfError> {
        let path = format!("{}/jobs/query", self.data_path());
        let body = json!({"operation": "queryAll", "query": soql, "columnDelimiter": "COMMA", "lineEnding": "LF"});
        let (_, answer) = self.send(Method::POST, &path, &[], Some(&body)).await?;
        serde_json::from_slice(&answer).map_err(|e| SfError::Protocol {
            url: path,
            detail: format!("job answer not understood: {e}"),
        })
    }

    /// Polls a job with growing pauses until it is complete.
    ///
    /// # Errors
    /// The job failed or was aborted (Salesforce's `errorMessage` is in the error), or polling
    /// failed.
    pub async fn wait_for_job(&self, job_id: &str) -> Result<Job, SfError> {
        let path = format!("{}/jobs/query/{job_id}", self.data_path());
        let mut pause = Duration::from_millis(100);
        loop {
            let (_, answer) = self.send(Method::GET, &path, &[], None).await?;
            let job: Job = serde_json::from_slice(&answer).map_err(|e| SfError::Protocol {
                url: path.clone(),
                detail: format!("job status not understood: {e}"),
            })?;
            match job.state.as_str() {
                "JobComplete" => return Ok(job),
                "Failed" | "Aborted" => {
                    return Err(SfError::Api {
                        status: 200,
                        code: format!("BULK_JOB_{}", job.state.to_uppercase()),
                        message: job.error_message.unwrap_or_default(),
                    });
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Downloads one chunk of a job's results; returns the CSV and the locator of the next
    /// chunk (`None` after the last, when Salesforce sends `Sforce-Locator: null`).
    ///
    /// # Errors
    /// The call failed, or the answer has no `Sforce-Locator` (a client would loop forever).
    pub async fn job_results(
        &self,
        job_id: &str,
        locator: Option<&str>,
    ) -> Result<(bytes::Bytes, Option<String>), SfError> {
        let mut path = format!(
            "{}/jobs/query/{job_id}/results?maxRecords={MAX_RECORDS_PER_CHUNK}",
            self.data_path()
        );
        if let Some(locator) = locator {
            path.push_str("&locator=");
            path.extend(url::form_urlencoded::byte_serialize(locator.as_bytes()));
        }
        let (headers, csv) = self.send(Method::GET, &path, &[], None).await?;
        let next = headers
            .get("sforce-locator")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SfError::Protocol {
                url: path.clone(),
                detail: "results without a Sforce-Locator header".into(),
            })?;
        let next = (!next.is_empty() && next != "null").then(|| next.to_owned());
        Ok((csv, next))
    }

    /// Deletes a finished job so its results do not count against the org's storage.
    pub async fn delete_job(&self, job_id: &str) {
        let path = format!("{}/jobs/query/{job_id}", self.data_path());
        if let Err(e) = self.send(Method::DELETE, &path, &[], None).await {
            tracing::debug!(job_id, error = %e, "Deleting the Bulk job failed; Salesforce removes it after 7 days anyway.");
        }
    }
}

/// How a CSV value becomes JSON, by the field's describe type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvType {
    Boolean,
    Number,
    Text,
}

impl CsvType {
    pub fn of(sf_type: &str) -> Self {
        match sf_type {
            "boolean" => CsvType::Boolean,
            "int" | "long" | "double" | "currency" | "percent" => CsvType::Number,
            _ => CsvType::Text,
        }
    }
}

/// Converts one CSV chunk into REST-shaped JSON records (one string each). An empty field is
/// null (Bulk writes null as empty); NUL bytes, which Bulk results can contain, are dropped by
/// PostgreSQL's rules later, not here, so the worker reports them.
///
/// # Errors
/// The CSV is malformed, its header differs from the fields asked for, or a number or
/// boolean column holds something else.
pub fn csv_to_records(
    csv: &[u8],
    object: &str,
    fields: &[(&str, CsvType)],
) -> Result<Vec<String>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
    let header = reader
        .headers()
        .map_err(|e| format!("Bulk results CSV header unreadable: {e}"))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    let wanted: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
    if !names
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .eq(wanted.iter().map(|n| n.to_ascii_lowercase()))
    {
        return Err(format!(
            "Bulk results columns {names:?} are not the fields asked for {wanted:?}"
        ));
    }
    let attributes = json!({"type": object}).to_string();
    let mut records = Vec::new();
    for (row_number, row) in reader.records().enumerate() {
        let row =
            row.map_err(|e| format!("Bulk results CSV row {} unreadable: {e}", row_number + 1))?;
        let mut out = String::with_capacity(512);
        out.push_str("{\"attributes\":");
        out.push_str(&attributes);
        for ((name, kind), value) in fields.iter().zip(row.iter()) {
            out.push(',');
            out.push_str(&serde_json::to_string(name).unwrap_or_default());
            out.push(':');
            match (kind, value) {
                (_, "") => out.push_str("null"),
                (CsvType::Boolean, "true" | "false") => out.push_str(value),
                (CsvType::Number, v) if v.parse::<f64>().is_ok_and(f64::is_finite) => {
                    out.push_str(v)
                }
                (CsvType::Boolean | CsvType::Number, v) => {
                    return Err(format!(
                        "Bulk results row {}: {name} = {v:?} is not a {kind:?}",
                        row_number + 1
                    ));
                }
                (CsvType::Text, v) => out.push_str(&serde_json::to_string(v).unwrap_or_default()),
            }
        }
        out.push('}');
        records.push(out);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_become_rest_records() {
        let csv = "\"Id\",\"Name\",\"IsDeleted\",\"Score__c\",\"SystemModstamp\"\n\
                   \"003000000000001AAA\",\"Two\nlines, \"\"quoted\"\"\",\"false\",\"9.9213206E7\",\"2024-01-15T10:20:30.000Z\"\n\
                   \"003000000000002AAA\",,\"true\",,\"2024-01-15T10:20:31.000Z\"\n";
        let fields = [
            ("Id", CsvType::Text),
            ("Name", CsvType::Text),
            ("IsDeleted", CsvType::Boolean),
            ("Score__c", CsvType::Number),
            ("SystemModstamp", CsvType::Text),
        ];
        let records = csv_to_records(csv.as_bytes(), "Contact", &fields).unwrap();
        assert_eq!(
            records[0],
            r#"{"attributes":{"type":"Contact"},"Id":"003000000000001AAA","Name":"Two\nlines, \"quoted\"","IsDeleted":false,"Score__c":9.9213206E7,"SystemModstamp":"2024-01-15T10:20:30.000Z"}"#
        );
        assert_eq!(
            records[1],
            r#"{"attributes":{"type":"Contact"},"Id":"003000000000002AAA","Name":null,"IsDeleted":true,"Score__c":null,"SystemModstamp":"2024-01-15T10:20:31.000Z"}"#
        );
    }

    #[test]
    fn refuses_unexpected_columns_and_values() {
        let fields = [("Id", CsvType::Text), ("IsDeleted", CsvType::Boolean)];
        assert!(
            csv_to_records(b"\"Id\",\"Other\"\n", "Contact", &fields)
                .unwrap_err()
                .contains("not the fields asked for")
        );
        assert!(
            csv_to_records(
                b"\"Id\",\"IsDeleted\"\n\"a\",\"maybe\"\n",
                "Contact",
                &fields
            )
            .unwrap_err()
            .contains("IsDeleted = \"maybe\"")
        );
    }
}
