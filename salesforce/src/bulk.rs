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
    /// When Salesforce created the job (`2018-12-10T17:50:19.000+0000`), on its own clock, the
    /// clock of SystemModstamp: every part of the job runs after it.
    #[serde(rename = "createdDate", default)]
    pub created_date: Option<String>,
}

/// The longest SOQL Salesforce accepts, in characters (its default limit, which applies to the
/// query of a Bulk API 2.0 job too).
pub const MAX_SOQL_LENGTH: usize = 100_000;

/// Rows asked for per results request when downloading whole records; Salesforce may send
/// fewer. A chunk is held in memory (a reused buffer) while it is turned into pages, and the
/// next one while it downloads: 5,000 Contacts are about 3.5 MB of CSV, which keeps the
/// producer's peak near REST's (chunks of 50,000 take it past 150 MiB). It costs one API call
/// per 5,000 records, under half of REST's one per 2,000.
pub const RECORDS_PER_CHUNK: u32 = 5_000;

/// Rows per results request for a reconcile snapshot (Id and SystemModstamp only, ~50 bytes a
/// row): large chunks, few calls.
pub const SNAPSHOT_ROWS_PER_CHUNK: u32 = 50_000;

impl<M: crate::ApiMetrics> SalesforceClient<M> {
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
        max_records: u32,
    ) -> Result<(bytes::Bytes, Option<String>), SfError> {
        let mut path = format!(
            "{}/jobs/query/{job_id}/results?maxRecords={max_records}",
            self.data_path()
        );
        if let Some(locator) = locator {
            path.push_str("&locator=");
            path.extend(url::form_urlencoded::byte_serialize(locator.as_bytes()));
        }
        self.results_at(&path).await
    }

    /// Whether this client's API version has `resultPages` (58.0 and later).
    pub fn has_result_pages(&self) -> bool {
        self.api_version
            .parse::<f64>()
            .is_ok_and(|v| v >= RESULT_PAGES_SINCE)
    }

    /// Asks for the next few result URLs of a complete job (`GET /jobs/query/{id}/resultPages`,
    /// API 58.0 and later): `next` is the `nextRecordsUrl` of the answer before, `None` for the
    /// first. The URLs, fetched at once with [`job_result_page`](Self::job_result_page),
    /// together hold every row of the job once.
    ///
    /// # Errors
    /// The call failed, or the answer is not the documented shape, or names a URL outside this
    /// org's REST API.
    pub async fn job_result_pages(
        &self,
        job_id: &str,
        next: Option<&str>,
    ) -> Result<ResultPages, SfError> {
        let path = match next {
            Some(next) => api_path(next)?.to_owned(),
            None => format!("{}/jobs/query/{job_id}/resultPages", self.data_path()),
        };
        let (_, answer) = self.send(Method::GET, &path, &[], None).await?;
        let answer: ResultPagesAnswer =
            serde_json::from_slice(&answer).map_err(|e| SfError::Protocol {
                url: path.clone(),
                detail: format!("resultPages answer not understood: {e}"),
            })?;
        let urls = answer
            .result_pages
            .into_iter()
            .map(|page| api_path(&page.result_url).map(str::to_owned))
            .collect::<Result<Vec<_>, _>>()?;
        let next = match (answer.done, answer.next_records_url) {
            (false, Some(next)) if !next.is_empty() => Some(next),
            (false, _) => {
                return Err(SfError::Protocol {
                    url: path,
                    detail: "resultPages answer not done, but without a nextRecordsUrl".into(),
                });
            }
            (true, _) => None,
        };
        Ok(ResultPages { urls, next })
    }

    /// Downloads one result URL that [`job_result_pages`](Self::job_result_pages) named: its
    /// CSV (its `Sforce-Locator` names a chunk another URL holds, and is not followed).
    ///
    /// # Errors
    /// The call failed.
    pub async fn job_result_page(&self, url: &str) -> Result<bytes::Bytes, SfError> {
        let (_, csv) = self.send(Method::GET, api_path(url)?, &[], None).await?;
        Ok(csv)
    }

    /// One results chunk at `path`, and the locator of the next.
    async fn results_at(&self, path: &str) -> Result<(bytes::Bytes, Option<String>), SfError> {
        let (headers, csv) = self.send(Method::GET, path, &[], None).await?;
        let next = headers
            .get("sforce-locator")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| SfError::Protocol {
                url: path.to_owned(),
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

/// The API version that brought `resultPages`.
const RESULT_PAGES_SINCE: f64 = 58.0;

/// One answer of `resultPages`: result URLs to fetch at once, and where the next ones are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultPages {
    /// Paths under `/services/data/`, each a results chunk with its locator.
    pub urls: Vec<String>,
    /// The `nextRecordsUrl` to ask for the next URLs; `None` once done.
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct ResultPagesAnswer {
    #[serde(rename = "resultPages")]
    result_pages: Vec<ResultPage>,
    #[serde(rename = "nextRecordsUrl", default)]
    next_records_url: Option<String>,
    done: bool,
}

#[derive(Deserialize)]
struct ResultPage {
    /// `resultUrl` in Salesforce's guide; `resultLink` in a schema published from its examples.
    #[serde(rename = "resultUrl", alias = "resultLink")]
    result_url: String,
}

/// `url` as a path on this org's REST API: an answer may name a path (`/services/data/…`) or
/// the same on a host; anything else is refused, so that no call, with its token, goes
/// elsewhere.
fn api_path(url: &str) -> Result<&str, SfError> {
    let path = url
        .strip_prefix("https://")
        .and_then(|rest| rest.find('/').map(|slash| &rest[slash..]))
        .unwrap_or(url);
    if path.starts_with("/services/data/") {
        Ok(path)
    } else {
        Err(SfError::Protocol {
            url: url.to_owned(),
            detail: "a Bulk result URL outside /services/data/ of the org".into(),
        })
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

/// Turns one CSV results chunk into REST-shaped JSON records, a page at a time, so that only
/// the chunk and the page being built are in memory, never the chunk's records as strings.
/// An empty field is null (Bulk writes null as empty); NUL bytes, which Bulk results can
/// contain, are left to the worker, which reports them.
pub struct CsvPages<'a> {
    reader: csv::Reader<&'a [u8]>,
    fields: &'a [(&'a str, CsvType)],
    /// `{"attributes":{"type":"Contact"}`, written before each record's fields.
    record_start: String,
    /// `,"Name":` for each field, escaped once.
    keys: Vec<String>,
    row: csv::StringRecord,
    rows_read: u64,
}

/// What [`CsvPages::next_page`] wrote. No stamp: a Bulk job's rows come in no stamp order
/// (its SOQL has no ORDER BY), so no page bounds the records before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRecords {
    pub records: u64,
}

impl<'a> CsvPages<'a> {
    /// Checks the chunk's header against the fields asked for.
    ///
    /// # Errors
    /// The header is unreadable or names other columns.
    pub fn new(
        csv: &'a [u8],
        object: &str,
        fields: &'a [(&'a str, CsvType)],
    ) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
        let header = reader
            .headers()
            .map_err(|e| format!("Bulk results CSV header unreadable: {e}"))?;
        if !header
            .iter()
            .map(str::to_ascii_lowercase)
            .eq(fields.iter().map(|(n, _)| n.to_ascii_lowercase()))
        {
            let names: Vec<&str> = header.iter().collect();
            let wanted: Vec<&str> = fields.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "Bulk results columns {names:?} are not the fields asked for {wanted:?}"
            ));
        }
        Ok(Self {
            reader,
            fields,
            record_start: format!("{{\"attributes\":{}", json!({"type": object})),
            keys: fields
                .iter()
                .map(|(name, _)| format!(",{}:", serde_json::Value::from(*name)))
                .collect(),
            row: csv::StringRecord::new(),
            rows_read: 0,
        })
    }

    /// Appends up to `max` records to `out`, comma-separated (the caller writes the brackets).
    /// Zero records means the chunk is done.
    ///
    /// # Errors
    /// A malformed row, or a number or boolean column holding something else.
    pub fn next_page(&mut self, max: usize, out: &mut Vec<u8>) -> Result<PageRecords, String> {
        let mut written = PageRecords { records: 0 };
        while written.records < max as u64 {
            let more = self.reader.read_record(&mut self.row).map_err(|e| {
                format!(
                    "Bulk results CSV row {} unreadable: {e}",
                    self.rows_read + 1
                )
            })?;
            if !more {
                break;
            }
            self.rows_read += 1;
            if written.records > 0 {
                out.push(b',');
            }
            out.extend_from_slice(self.record_start.as_bytes());
            for (((name, kind), key), value) in
                self.fields.iter().zip(&self.keys).zip(self.row.iter())
            {
                out.extend_from_slice(key.as_bytes());
                match (kind, value) {
                    (_, "") => out.extend_from_slice(b"null"),
                    (CsvType::Boolean, "true" | "false") => out.extend_from_slice(value.as_bytes()),
                    (CsvType::Number, v) if v.parse::<f64>().is_ok_and(f64::is_finite) => {
                        out.extend_from_slice(v.as_bytes());
                    }
                    (CsvType::Boolean | CsvType::Number, v) => {
                        return Err(format!(
                            "Bulk results row {}: {name} = {v:?} is not a {kind:?}",
                            self.rows_read
                        ));
                    }
                    (CsvType::Text, v) => push_json_string(out, v),
                }
            }
            out.push(b'}');
            written.records += 1;
        }
        Ok(written)
    }
}

/// Appends `s` as a JSON string literal, escaped as serde_json escapes it.
fn push_json_string(out: &mut Vec<u8>, s: &str) {
    use serde::Serializer;
    // Writing into a Vec cannot fail.
    let _ = (&mut serde_json::Serializer::new(&mut *out)).serialize_str(s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of a chunk, paged two at a time, as JSON strings.
    fn all_records(csv: &[u8], fields: &[(&str, CsvType)]) -> Result<Vec<String>, String> {
        let mut pages = CsvPages::new(csv, "Contact", fields)?;
        let mut records = Vec::new();
        loop {
            let mut out = b"[".to_vec();
            let page = pages.next_page(2, &mut out)?;
            if page.records == 0 {
                return Ok(records);
            }
            out.push(b']');
            let parsed: Vec<Box<serde_json::value::RawValue>> =
                serde_json::from_slice(&out).map_err(|e| e.to_string())?;
            assert_eq!(parsed.len() as u64, page.records);
            records.extend(parsed.into_iter().map(|r| r.get().to_owned()));
        }
    }

    #[test]
    fn pages_hold_at_most_the_records_asked_for() {
        let csv = "\"Id\",\"SystemModstamp\"\n\"a\",\"2024-01-15T10:20:30.000Z\"\n\"b\",\"2024-01-15T10:20:31.000Z\"\n\"c\",\"2024-01-15T10:20:32.000Z\"\n";
        let fields = [("Id", CsvType::Text), ("SystemModstamp", CsvType::Text)];
        let mut pages = CsvPages::new(csv.as_bytes(), "Contact", &fields).unwrap();
        let mut out = Vec::new();
        let first = pages.next_page(2, &mut out).unwrap();
        assert_eq!(first.records, 2);
        assert!(
            String::from_utf8(out)
                .unwrap()
                .ends_with(r#""SystemModstamp":"2024-01-15T10:20:31.000Z"}"#)
        );
        let second = pages.next_page(2, &mut Vec::new()).unwrap();
        assert_eq!(second.records, 1);
        assert_eq!(pages.next_page(2, &mut Vec::new()).unwrap().records, 0);
    }

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
        let records = all_records(csv.as_bytes(), &fields).unwrap();
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
    fn result_urls_stay_on_the_org() {
        let path = "/services/data/v62.0/jobs/query/750x/results?locator=MTAwMDA";
        assert_eq!(api_path(path).unwrap(), path);
        assert_eq!(
            api_path(&format!("https://example.my.salesforce.com{path}")).unwrap(),
            path
        );
        for elsewhere in ["https://evil.example/x", "/other/path", "results?locator=x"] {
            let e = api_path(elsewhere).unwrap_err().to_string();
            assert!(e.contains("outside /services/data/"), "{e}");
        }
    }

    #[test]
    fn result_pages_answers_are_read_in_both_spellings() {
        let answer: ResultPagesAnswer = serde_json::from_str(
            r#"{"resultPages":[{"resultUrl":"/a"},{"resultLink":"/b"}],"nextRecordsUrl":"/n","done":false}"#,
        )
        .unwrap();
        let urls: Vec<String> = answer
            .result_pages
            .into_iter()
            .map(|p| p.result_url)
            .collect();
        assert_eq!(urls, ["/a", "/b"]);
        assert_eq!(answer.next_records_url.as_deref(), Some("/n"));
    }

    #[test]
    fn refuses_unexpected_columns_and_values() {
        let fields = [("Id", CsvType::Text), ("IsDeleted", CsvType::Boolean)];
        assert!(
            all_records(b"\"Id\",\"Other\"\n", &fields)
                .unwrap_err()
                .contains("not the fields asked for")
        );
        assert!(
            all_records(b"\"Id\",\"IsDeleted\"\n\"a\",\"maybe\"\n", &fields)
                .unwrap_err()
                .contains("IsDeleted = \"maybe\"")
        );
    }
}
