//! sObject Collections: up to [`MAX_RECORDS`] records created (upserted on an external Id),
//! updated or deleted in one call, which Salesforce counts as one API call. sfsync always sends
//! `allOrNone: false`: each record succeeds or fails on its own, and the answer is `200 OK` with
//! one result per record, in the order sent (a failed record's result may have no `id`, so
//! results are matched by position). Whole-call failures (an expired session, 5xx,
//! `REQUEST_LIMIT_EXCEEDED`) are retried by the client like any other call; every call here
//! may be repeated safely: an upsert on the same external Id value finds the record it created,
//! an update writes the same values, a delete of a deleted record answers `ENTITY_IS_DELETED`.
//! The same requests, built here, also travel as a subrequest of a Composite call
//! ([`crate::composite`]), which reads the written records back in the same call.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::composite::Save;
use crate::{SalesforceClient, SfError};

/// Records per call: Salesforce's limit.
pub const MAX_RECORDS: usize = 200;

/// One record's result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SaveResult {
    #[serde(default)]
    pub id: Option<String>,
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<RecordError>,
    /// Upsert: whether the record was created (`false`: an existing one was updated).
    #[serde(default)]
    pub created: Option<bool>,
}

/// Why Salesforce refused one record (`statusCode`, unlike the whole-call errors' `errorCode`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RecordError {
    #[serde(rename = "statusCode")]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

impl RecordError {
    /// Another call held a lock this record needed (its parent's): worth another try, in a
    /// smaller batch.
    pub fn is_lock(&self) -> bool {
        self.status_code == "UNABLE_TO_LOCK_ROW"
    }
}

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Creates or updates `records` of `object` by `external_id_field` (each record carries its
    /// value): `PATCH /composite/sobjects/{object}/{external_id_field}`.
    ///
    /// # Errors
    /// A whole-call failure that outlasted the retries, or an answer that is not one result per
    /// record.
    pub async fn upsert_records(
        &self,
        object: &str,
        external_id_field: &str,
        records: Vec<Map<String, Value>>,
    ) -> Result<Vec<SaveResult>, SfError> {
        self.collection_call(Save::Upsert {
            object: object.to_owned(),
            external_id_field: external_id_field.to_owned(),
            records,
        })
        .await
    }

    /// Updates records of `object`, each given by its Id: `PATCH /composite/sobjects`.
    ///
    /// # Errors
    /// As for [`Self::upsert_records`].
    pub async fn update_records(
        &self,
        object: &str,
        records: Vec<(String, Map<String, Value>)>,
    ) -> Result<Vec<SaveResult>, SfError> {
        self.collection_call(Save::Update {
            object: object.to_owned(),
            records,
        })
        .await
    }

    /// Deletes records by Id: `DELETE /composite/sobjects?ids=…&allOrNone=false`.
    ///
    /// # Errors
    /// As for [`Self::upsert_records`].
    pub async fn delete_records(&self, ids: &[String]) -> Result<Vec<SaveResult>, SfError> {
        self.collection_call(Save::Delete { ids: ids.to_vec() })
            .await
    }

    async fn collection_call(&self, save: Save) -> Result<Vec<SaveResult>, SfError> {
        let request = CollectionRequest::new(&self.data_path(), save)?;
        let (_, answer) = self
            .send(
                request.method.clone(),
                &request.path,
                &[],
                request.body.as_ref(),
            )
            .await?;
        results(&request.path, &answer, request.count)
    }
}

/// One sObject Collections request as sfsync sends it, on its own or as a Composite
/// subrequest: the same method, path and body either way.
pub(crate) struct CollectionRequest {
    pub method: reqwest::Method,
    /// Under the instance (`/services/data/vXX.X/composite/sobjects…`), with a delete's query
    /// string.
    pub path: String,
    /// `None` for a delete.
    pub body: Option<Value>,
    /// Records sent: one result is expected for each.
    pub count: usize,
}

impl CollectionRequest {
    /// The request for `save` under `data_path` (`/services/data/v62.0`).
    ///
    /// # Errors
    /// More than [`MAX_RECORDS`] records.
    pub(crate) fn new(data_path: &str, save: Save) -> Result<Self, SfError> {
        let (method, path, body, count) = match save {
            Save::Upsert {
                object,
                external_id_field,
                records,
            } => {
                let count = records.len();
                (
                    reqwest::Method::PATCH,
                    format!("{data_path}/composite/sobjects/{object}/{external_id_field}"),
                    Some(body(&object, records.into_iter())),
                    count,
                )
            }
            Save::Update { object, records } => {
                let count = records.len();
                let records = records.into_iter().map(|(id, mut fields)| {
                    fields.insert("id".to_owned(), Value::String(id));
                    fields
                });
                (
                    reqwest::Method::PATCH,
                    format!("{data_path}/composite/sobjects"),
                    Some(body(&object, records)),
                    count,
                )
            }
            Save::Delete { ids } => (
                reqwest::Method::DELETE,
                format!(
                    "{data_path}/composite/sobjects?ids={}&allOrNone=false",
                    ids.join(",")
                ),
                None,
                ids.len(),
            ),
        };
        if count > MAX_RECORDS {
            return Err(SfError::Config(format!(
                "{count} records in one sObject Collections call; Salesforce takes at most {MAX_RECORDS}"
            )));
        }
        Ok(Self {
            method,
            path,
            body,
            count,
        })
    }
}

/// `{"allOrNone": false, "records": [...]}` with each record's `attributes.type`.
fn body(object: &str, records: impl Iterator<Item = Map<String, Value>>) -> Value {
    let records: Vec<Value> = records
        .map(|mut fields| {
            fields.insert("attributes".to_owned(), json!({ "type": object }));
            Value::Object(fields)
        })
        .collect();
    json!({ "allOrNone": false, "records": records })
}

/// The per-record results of a collection call, one per record sent.
pub(crate) fn results(path: &str, answer: &[u8], sent: usize) -> Result<Vec<SaveResult>, SfError> {
    let protocol = |detail: String| SfError::Protocol {
        url: path.split('?').next().unwrap_or(path).to_owned(),
        detail,
    };
    let results: Vec<SaveResult> = serde_json::from_slice(answer)
        .map_err(|e| protocol(format!("not an sObject Collections result array: {e}")))?;
    if results.len() != sent {
        return Err(protocol(format!(
            "{} results for {sent} records",
            results.len()
        )));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_read_by_position_with_their_errors() {
        // The shape of Salesforce's answer with allOrNone=false: a failed record has no id.
        let answer = br#"[
            {"id": "003000000000001AAA", "success": true, "errors": [], "created": true},
            {"success": false, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
              "message": "Email must contain @", "fields": ["Email"]}]},
            {"id": "003000000000003AAA", "success": false, "errors": [{"statusCode":
              "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record or 1 records: 001000000000001AAA", "fields": []}]}
        ]"#;
        let read = results("/x", answer, 3).unwrap();
        assert_eq!(read[0].created, Some(true));
        assert_eq!(read[1].id, None);
        assert_eq!(read[1].errors[0].fields, ["Email"]);
        assert!(!read[1].errors[0].is_lock());
        assert!(read[2].errors[0].is_lock());
        let short = results("/x?ids=1", answer, 4).unwrap_err().to_string();
        assert!(short.contains("3 results for 4 records"), "{short}");
        assert!(!short.contains("ids="), "{short}");
    }

    #[test]
    fn the_body_names_each_records_type_and_never_all_or_none() {
        let mut fields = Map::new();
        fields.insert("Email".into(), json!("a@example.com"));
        let body = body("Contact", [fields].into_iter());
        assert_eq!(
            body,
            json!({"allOrNone": false, "records": [
                {"Email": "a@example.com", "attributes": {"type": "Contact"}}
            ]})
        );
    }
}
