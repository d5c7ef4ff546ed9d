//! A save and a read-back in one API call, through the Composite resource: `POST
//! /composite` with the sObject Collections write sfsync would otherwise send on its own (the
//! same method, url and body, built by [`crate::collections`]) and, after it, a SOQL query that
//! sees what the write left: the records' new SystemModstamp and the fields Salesforce
//! computed, so that a later pull has nothing to rewrite.
//!
//! The request is `{"allOrNone": false, "collateSubrequests": false, "compositeRequest":
//! [save, query]}`: subrequests run in the order sent and a failed one does not stop the
//! other. The answer is HTTP 200 `{"compositeResponse": [{"body", "httpHeaders",
//! "httpStatusCode", "referenceId"}, …]}` whatever the subrequests did; each body is what the
//! same request would have answered on its own, and a failed one carries the usual error
//! array (`[{"errorCode": "INVALID_FIELD", "message": …}]`) with its status.
//!
//! What the caller gets:
//! - the save's per-record results, read as a direct collections call's are; a save subrequest
//!   that failed whole (a non-2xx status) is the [`SfError`] a direct call answering that
//!   status and body gives, inside the client's retries: a 5xx is retried, 403
//!   `REQUEST_LIMIT_EXCEEDED` waits for the limit, others are returned as they are;
//! - separately, the query's records (without their `attributes`) or the query's own error:
//!   a query that fails (an unknown field, a field hidden from the integration user) leaves the
//!   save's results standing. A query result of more than one page is an
//!   [`SfError::Protocol`] for the query part (callers read back at most one batch of records).
//!
//! Whole-call failures (401 and a new token, 5xx, the org's request limit) go through the
//! client's usual path, and the call counts once in the client's usage and metrics, as it does
//! in the org's. A call is as safe to repeat as the collections call inside it.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::collections::{CollectionRequest, SaveResult, results};
use crate::{SalesforceClient, SfError};

/// What a composite save does: the three collection writes sfsync uses.
#[derive(Debug, Clone, PartialEq)]
pub enum Save {
    /// Creates or updates `records` of `object` matched on `external_id_field`, which each
    /// record carries.
    Upsert {
        object: String,
        external_id_field: String,
        records: Vec<Map<String, Value>>,
    },
    /// Updates records of `object`: (Id, fields).
    Update {
        object: String,
        records: Vec<(String, Map<String, Value>)>,
    },
    /// Deletes records by Id.
    Delete { ids: Vec<String> },
}

/// The save's per-record results and, apart, the query's records or its error.
pub type SaveAndQuery = (Vec<SaveResult>, Result<Vec<Map<String, Value>>, SfError>);

/// The `referenceId`s of the two subrequests.
const SAVE: &str = "save";
const QUERY: &str = "query";

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// One Composite call: the save (sObject Collections, allOrNone false) then, if given, the
    /// SOQL query (which sees the save's writes). Returns the save's per-record results and,
    /// separately, the query's records (each without its "attributes" key) or the query's own
    /// error, since a query that fails (e.g. an unknown field) must not make the caller think
    /// the save failed. Without a query, the second part is an empty list.
    ///
    /// # Errors
    /// As a direct collections call: more than 200 records, a whole-call failure that outlasted
    /// the retries, a save subrequest refused whole, or an answer that is not one result per
    /// record.
    pub async fn save_and_query(
        &self,
        save: Save,
        soql: Option<&str>,
    ) -> Result<SaveAndQuery, SfError> {
        let data_path = self.data_path();
        let save = CollectionRequest::new(&data_path, save)?;
        let query_url = soql.map(|soql| query_url(&data_path, soql));
        let body = request_body(&save, query_url.as_deref());
        let path = format!("{data_path}/composite");
        self.send_checked(reqwest::Method::POST, &path, Some(&body), |answer| {
            read_answer(&path, answer, &save, query_url.as_deref())
        })
        .await
    }
}

/// Query subrequests a Composite call may hold: Salesforce takes at most five sObject
/// Collections or query operations in one call.
pub const MAX_QUERIES: usize = 5;

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Up to [`MAX_QUERIES`] SOQL queries in one Composite call (one API call): each one's
    /// records (without `attributes`), or its own error. Each must fit one page of results.
    ///
    /// # Errors
    /// More than five queries, a whole-call failure that outlasted the retries, or an answer
    /// that is not a Composite answer.
    pub async fn queries(
        &self,
        soqls: &[String],
    ) -> Result<Vec<Result<Vec<Map<String, Value>>, SfError>>, SfError> {
        self.query_subrequests(soqls, query_records).await
    }

    /// Up to [`MAX_QUERIES`] SOQL queries in one Composite call (one API call): each one's
    /// `totalSize` and records (without `attributes`), or its own error; `COUNT()` queries
    /// and record queries may be mixed. Each must fit one page of results.
    ///
    /// # Errors
    /// As [`queries`](Self::queries).
    pub async fn sized_queries(
        &self,
        soqls: &[String],
    ) -> Result<Vec<Result<(u64, Vec<Map<String, Value>>), SfError>>, SfError> {
        self.query_subrequests(soqls, one_page).await
    }

    /// Up to [`MAX_QUERIES`] `SELECT COUNT() …` queries in one Composite call (one API call):
    /// each one's count, or its own error (a count Salesforce timed out is its
    /// `QUERY_TIMEOUT`, the others still counted).
    ///
    /// # Errors
    /// As [`queries`](Self::queries).
    pub async fn counts(&self, soqls: &[String]) -> Result<Vec<Result<u64, SfError>>, SfError> {
        self.query_subrequests(soqls, |url, sub| {
            query_result(url, sub).map(|result| result.total_size)
        })
        .await
    }

    /// The Composite call behind [`queries`](Self::queries) and [`counts`](Self::counts): one
    /// GET subrequest per SOQL, each answer read by `read`.
    async fn query_subrequests<T>(
        &self,
        soqls: &[String],
        read: impl Fn(&str, &SubResponse<'_>) -> Result<T, SfError>,
    ) -> Result<Vec<Result<T, SfError>>, SfError> {
        if soqls.len() > MAX_QUERIES {
            return Err(SfError::Config(format!(
                "{} queries in one Composite call; Salesforce takes at most {MAX_QUERIES}",
                soqls.len()
            )));
        }
        let data_path = self.data_path();
        let urls: Vec<String> = soqls.iter().map(|q| query_url(&data_path, q)).collect();
        let subrequests: Vec<Value> = urls
            .iter()
            .enumerate()
            .map(|(i, url)| json!({"method": "GET", "url": url, "referenceId": format!("q{i}")}))
            .collect();
        let body = json!({
            "allOrNone": false,
            "collateSubrequests": false,
            "compositeRequest": subrequests,
        });
        let path = format!("{data_path}/composite");
        self.send_checked(reqwest::Method::POST, &path, Some(&body), |answer| {
            let answer: Answer<'_> =
                serde_json::from_slice(answer).map_err(|e| SfError::Protocol {
                    url: path.clone(),
                    detail: format!("not a Composite answer: {e}"),
                })?;
            Ok(urls
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let id = format!("q{i}");
                    match answer
                        .composite_response
                        .iter()
                        .find(|r| r.reference_id.as_deref() == Some(id.as_str()))
                    {
                        Some(sub) => read(without_query(url), sub),
                        None => Err(SfError::Protocol {
                            url: without_query(url).to_owned(),
                            detail: "no answer for the query subrequest".to_owned(),
                        }),
                    }
                })
                .collect())
        })
        .await
    }
}

/// `…/query/?q=<soql>`: the SOQL travels in the subrequest's url, inside the POST body, so no
/// request line limit applies to it.
fn query_url(data_path: &str, soql: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    format!("{data_path}/query/?q={encoded}")
}

fn request_body(save: &CollectionRequest, query_url: Option<&str>) -> Value {
    let mut first = json!({
        "method": save.method.as_str(),
        "url": save.path,
        "referenceId": SAVE,
    });
    if let Some(body) = &save.body {
        first["body"] = body.clone();
    }
    let mut subrequests = vec![first];
    if let Some(url) = query_url {
        subrequests.push(json!({"method": "GET", "url": url, "referenceId": QUERY}));
    }
    json!({
        "allOrNone": false,
        "collateSubrequests": false,
        "compositeRequest": subrequests,
    })
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(rename = "compositeResponse", borrow)]
    composite_response: Vec<SubResponse<'a>>,
}

#[derive(Deserialize)]
struct SubResponse<'a> {
    #[serde(borrow, default)]
    body: Option<&'a RawValue>,
    #[serde(rename = "httpStatusCode")]
    http_status_code: u16,
    #[serde(rename = "referenceId", default)]
    reference_id: Option<String>,
}

impl SubResponse<'_> {
    fn succeeded(&self) -> bool {
        (200..300).contains(&self.http_status_code)
    }

    fn body(&self) -> &[u8] {
        self.body.map_or(b"null", |b| b.get().as_bytes())
    }
}

/// A query subresponse's body, as far as it is read.
#[derive(Deserialize)]
struct QueryResult {
    #[serde(rename = "totalSize")]
    total_size: u64,
    done: bool,
    records: Vec<Map<String, Value>>,
}

/// Reads a Composite answer (see the module docs).
fn read_answer(
    path: &str,
    answer: &[u8],
    save: &CollectionRequest,
    query_url: Option<&str>,
) -> Result<SaveAndQuery, SfError> {
    let protocol = |detail: String| SfError::Protocol {
        url: path.to_owned(),
        detail,
    };
    let answer: Answer<'_> = serde_json::from_slice(answer)
        .map_err(|e| protocol(format!("not a Composite answer: {e}")))?;
    let find = |id: &str| {
        answer
            .composite_response
            .iter()
            .find(|r| r.reference_id.as_deref() == Some(id))
    };
    let Some(saved) = find(SAVE) else {
        // Refused whole before any subrequest ran (more subrequests than Salesforce takes):
        // one failed subresponse that names no subrequest.
        if let [only] = answer.composite_response.as_slice()
            && !only.succeeded()
        {
            return Err(SfError::from_response(
                path,
                only.http_status_code,
                None,
                only.body(),
            ));
        }
        return Err(protocol("no answer for the save subrequest".to_owned()));
    };
    let save_url = without_query(&save.path);
    if !saved.succeeded() {
        return Err(SfError::from_response(
            save_url,
            saved.http_status_code,
            None,
            saved.body(),
        ));
    }
    let saved = results(&save.path, saved.body(), save.count)?;
    let queried = match query_url {
        None => Ok(Vec::new()),
        Some(url) => match find(QUERY) {
            Some(answer) => query_records(without_query(url), answer),
            None => Err(protocol("no answer for the query subrequest".to_owned())),
        },
    };
    Ok((saved, queried))
}

/// The records of a one-page query subresponse, each without `attributes`, or its error.
fn query_records(url: &str, answer: &SubResponse<'_>) -> Result<Vec<Map<String, Value>>, SfError> {
    one_page(url, answer).map(|(_, records)| records)
}

/// A one-page query subresponse's `totalSize` and records, each without `attributes`, or its
/// error.
fn one_page(
    url: &str,
    answer: &SubResponse<'_>,
) -> Result<(u64, Vec<Map<String, Value>>), SfError> {
    let result = query_result(url, answer)?;
    if !result.done {
        return Err(SfError::Protocol {
            url: url.to_owned(),
            detail: format!(
                "the query matched {} records, more than one page: read back fewer records a call",
                result.total_size
            ),
        });
    }
    let records = result
        .records
        .into_iter()
        .map(|mut record| {
            record.remove("attributes");
            record
        })
        .collect();
    Ok((result.total_size, records))
}

/// A query subresponse's result, or its error.
fn query_result(url: &str, answer: &SubResponse<'_>) -> Result<QueryResult, SfError> {
    if !answer.succeeded() {
        return Err(SfError::from_response(
            url,
            answer.http_status_code,
            None,
            answer.body(),
        ));
    }
    serde_json::from_slice(answer.body()).map_err(|e| SfError::Protocol {
        url: url.to_owned(),
        detail: format!("query result not understood ({e})"),
    })
}

/// A url for messages, without its query string (SOQL, or a delete's Ids).
fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(path, _)| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update() -> CollectionRequest {
        let mut fields = Map::new();
        fields.insert("Title".into(), json!("Boss"));
        let records = vec![
            ("003000000000001AAA".to_owned(), fields.clone()),
            ("003000000000002AAA".to_owned(), fields),
        ];
        CollectionRequest::new(
            "/services/data/v62.0",
            Save::Update {
                object: "Contact".into(),
                records,
            },
        )
        .unwrap()
    }

    const PATH: &str = "/services/data/v62.0/composite";
    const QUERY_URL: &str = "/services/data/v62.0/query/?q=SELECT+Id+FROM+Contact";

    #[test]
    fn the_request_runs_the_save_then_the_query_in_order() {
        let url = query_url(
            "/services/data/v62.0",
            "SELECT Id, SystemModstamp FROM Contact WHERE Id IN ('003000000000001AAA')",
        );
        assert_eq!(
            url,
            "/services/data/v62.0/query/?q=SELECT+Id%2C+SystemModstamp+FROM+Contact+WHERE+Id+IN+%28%27003000000000001AAA%27%29"
        );
        let body = request_body(&update(), Some(&url));
        assert_eq!(body["allOrNone"], false);
        assert_eq!(body["collateSubrequests"], false);
        let subrequests = body["compositeRequest"].as_array().unwrap();
        assert_eq!(subrequests.len(), 2);
        assert_eq!(subrequests[0]["method"], "PATCH");
        assert_eq!(
            subrequests[0]["url"],
            "/services/data/v62.0/composite/sobjects"
        );
        assert_eq!(subrequests[0]["referenceId"], "save");
        assert_eq!(
            subrequests[0]["body"]["records"][0],
            json!({"Title": "Boss", "id": "003000000000001AAA", "attributes": {"type": "Contact"}})
        );
        assert_eq!(subrequests[0]["body"]["allOrNone"], false);
        assert_eq!(
            subrequests[1],
            json!({"method": "GET", "url": url, "referenceId": "query"})
        );

        let delete = CollectionRequest::new(
            "/services/data/v62.0",
            Save::Delete {
                ids: vec!["003000000000001AAA".into()],
            },
        )
        .unwrap();
        let body = request_body(&delete, None);
        assert_eq!(
            body["compositeRequest"],
            json!([{"method": "DELETE", "referenceId": "save",
                    "url": "/services/data/v62.0/composite/sobjects?ids=003000000000001AAA&allOrNone=false"}])
        );
    }

    #[test]
    fn a_successful_answer_gives_results_and_records() {
        let answer = br#"{"compositeResponse":[
            {"body":[{"id":"003000000000001AAA","success":true,"errors":[]},
                     {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"unable to obtain exclusive access to this record or 1 records: 001000000000001AAA","fields":[]}]}],
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"save"},
            {"body":{"totalSize":1,"done":true,"records":[
                {"attributes":{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/003000000000001AAA"},
                 "Id":"003000000000001AAA","Title":"Boss","SystemModstamp":"2024-05-01T10:00:00.000+0000",
                 "Account":{"attributes":{"type":"Account"},"Name":"Acme"}}]},
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"query"}]}"#;
        let (saved, queried) = read_answer(PATH, answer, &update(), Some(QUERY_URL)).unwrap();
        assert!(saved[0].success);
        assert!(saved[1].errors[0].is_lock());
        let records = queried.unwrap();
        assert_eq!(records.len(), 1);
        assert!(!records[0].contains_key("attributes"));
        assert_eq!(records[0]["Title"], "Boss");
        // Only the top level loses its attributes.
        assert_eq!(records[0]["Account"]["Name"], "Acme");

        let no_query = br#"{"compositeResponse":[{"body":[{"id":"003000000000001AAA","success":true,"errors":[]},
            {"id":"003000000000002AAA","success":true,"errors":[]}],"httpHeaders":{},"httpStatusCode":200,"referenceId":"save"}]}"#;
        let (saved, queried) = read_answer(PATH, no_query, &update(), None).unwrap();
        assert_eq!(saved.len(), 2);
        assert!(queried.unwrap().is_empty());
    }

    #[test]
    fn a_failed_save_subrequest_is_the_error_a_direct_call_gives() {
        let refused = br#"{"compositeResponse":[
            {"body":[{"errorCode":"INVALID_FIELD","message":"No such column 'Foo__c' on sobject of type Contact"}],
             "httpHeaders":{},"httpStatusCode":400,"referenceId":"save"},
            {"body":{"totalSize":0,"done":true,"records":[]},"httpHeaders":{},"httpStatusCode":200,"referenceId":"query"}]}"#;
        let e = read_answer(PATH, refused, &update(), Some(QUERY_URL)).unwrap_err();
        assert_eq!(e.code(), Some("INVALID_FIELD"));
        assert!(!e.is_transient());
        assert_eq!(
            e.to_string(),
            "Salesforce 400 INVALID_FIELD: No such column 'Foo__c' on sobject of type Contact"
        );

        // Statuses a direct call retries stay retryable.
        let unavailable = br#"{"compositeResponse":[{"body":[{"errorCode":"SERVER_UNAVAILABLE","message":"busy"}],
            "httpHeaders":{},"httpStatusCode":503,"referenceId":"save"}]}"#;
        let e = read_answer(PATH, unavailable, &update(), None).unwrap_err();
        assert!(e.is_transient(), "{e}");
        let limit = br#"{"compositeResponse":[{"body":[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"TotalRequests Limit exceeded."}],
            "httpHeaders":{},"httpStatusCode":403,"referenceId":"save"}]}"#;
        assert!(
            read_answer(PATH, limit, &update(), None)
                .unwrap_err()
                .is_request_limit()
        );

        // A call refused whole before anything ran answers one subresponse naming none.
        let too_many = "{\"compositeResponse\":[{\"body\":[{\"errorCode\":\"LIMIT_EXCEEDED\",\"message\":\"The request can\u{2019}t contain more than 25 operations.\"}],\"httpHeaders\":{},\"httpStatusCode\":400,\"referenceId\":null}]}";
        let e = read_answer(PATH, too_many.as_bytes(), &update(), None).unwrap_err();
        assert_eq!(e.code(), Some("LIMIT_EXCEEDED"));

        // One result per record sent, as for a direct call.
        let short = br#"{"compositeResponse":[{"body":[{"id":"003000000000001AAA","success":true,"errors":[]}],
            "httpHeaders":{},"httpStatusCode":200,"referenceId":"save"}]}"#;
        let e = read_answer(PATH, short, &update(), None).unwrap_err();
        assert!(e.to_string().contains("1 results for 2 records"), "{e}");
        assert!(matches!(
            read_answer(PATH, b"<html>", &update(), None),
            Err(SfError::Protocol { .. })
        ));
    }

    #[test]
    fn a_failed_query_leaves_the_save_standing() {
        let answer = br#"{"compositeResponse":[
            {"body":[{"id":"003000000000001AAA","success":true,"errors":[]},{"id":"003000000000002AAA","success":true,"errors":[]}],
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"save"},
            {"body":[{"errorCode":"INVALID_FIELD","message":"\nSELECT Id, Nope__c FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nope__c' on entity 'Contact'."}],
             "httpHeaders":{},"httpStatusCode":400,"referenceId":"query"}]}"#;
        let (saved, queried) = read_answer(PATH, answer, &update(), Some(QUERY_URL)).unwrap();
        assert!(saved.iter().all(|r| r.success));
        let e = queried.unwrap_err();
        assert_eq!(e.code(), Some("INVALID_FIELD"));

        let paged = br#"{"compositeResponse":[
            {"body":[{"id":"003000000000001AAA","success":true,"errors":[]},{"id":"003000000000002AAA","success":true,"errors":[]}],
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"save"},
            {"body":{"totalSize":2500,"done":false,"nextRecordsUrl":"/services/data/v62.0/query/01gX-2000","records":[]},
             "httpHeaders":{},"httpStatusCode":200,"referenceId":"query"}]}"#;
        let (saved, queried) = read_answer(PATH, paged, &update(), Some(QUERY_URL)).unwrap();
        assert_eq!(saved.len(), 2);
        let e = queried.unwrap_err();
        assert!(matches!(e, SfError::Protocol { .. }), "{e}");
        assert!(e.to_string().contains("2500 records"), "{e}");
        assert!(!e.to_string().contains("q="), "{e}");
    }
}
