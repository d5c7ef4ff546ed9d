//! Writes through sObject Collections: create, update, upsert on an external Id field and
//! delete, up to 200 records a call, with Salesforce's per-record results.
//!
//! A call is read first (`prepare`: the checks that refuse it whole with a 400), then takes
//! the row locks of its records' parents (`locks`), holds them for
//! [`Faults::write_ms`](crate::Faults::write_ms), and is applied (`commit`: the per-record
//! checks, validation rules from `rules`, `allOrNone`, one stamp for the whole call).

mod commit;
mod locks;
mod pending;
mod prepare;
mod rules;

use std::time::Duration;

use serde_json::{Map, Value as Json, json};

use super::Org;
use crate::data::Value;
use crate::error::ApiError;
use common::sfid::SalesforceId;
use prepare::Prepared;

pub use commit::ROLLED_BACK;
pub(crate) use locks::RowLocks;
pub use prepare::MAX_RECORDS;
pub(crate) use rules::Rules;
pub use rules::{ValidationRequest, ValidationResponse};

/// What a call does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `POST /composite/sobjects`.
    Create,
    /// `PATCH /composite/sobjects`: each record names its `id`.
    Update,
    /// `PATCH /composite/sobjects/{object}/{field}`: matched on the external Id `field`.
    Upsert { object: String, field: String },
    /// `DELETE /composite/sobjects?ids=…`.
    Delete,
}

/// One sObject Collections call.
#[derive(Debug, Clone)]
pub struct WriteCall {
    pub op: Operation,
    /// Roll back every record when one fails.
    pub all_or_none: bool,
    /// The records of a create, update or upsert, each with `attributes.type`.
    pub records: Vec<Map<String, Json>>,
    /// The Ids a delete names.
    pub ids: Vec<String>,
}

/// One error of one record: `{"statusCode","message","fields"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    pub status_code: &'static str,
    pub message: String,
    pub fields: Vec<String>,
}

/// One record's result, in request order: a SaveResult, UpsertResult (with `created`) or
/// DeleteResult.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordResult {
    /// The record's Id; absent when it failed (Salesforce leaves it out then), but present on
    /// an existing record rolled back by `allOrNone`.
    pub id: Option<String>,
    /// Upserts only: whether the record was created.
    pub created: Option<bool>,
    pub errors: Vec<RecordError>,
    /// Whether this record was (or would have been) created.
    new: bool,
}

impl RecordResult {
    pub fn success(&self) -> bool {
        self.errors.is_empty()
    }

    /// The JSON Salesforce answers for this record.
    pub fn to_json(&self) -> Json {
        let errors: Vec<Json> = self
            .errors
            .iter()
            .map(|e| json!({"statusCode": e.status_code, "message": e.message, "fields": e.fields}))
            .collect();
        let mut out = Map::new();
        if let Some(id) = &self.id {
            out.insert("id".to_owned(), json!(id));
        }
        out.insert("success".to_owned(), json!(self.success()));
        out.insert("errors".to_owned(), Json::Array(errors));
        if let Some(created) = self.created {
            out.insert("created".to_owned(), json!(created));
        }
        Json::Object(out)
    }
}

impl Org {
    /// Applies one sObject Collections call and answers each record's result in request
    /// order. Waits for row locks and [`Faults::write_ms`](crate::Faults::write_ms).
    ///
    /// # Errors
    /// The 400 answers that refuse the whole call (see `prepare`); nothing is written then.
    pub async fn write(&self, call: &WriteCall) -> Result<Vec<RecordResult>, ApiError> {
        let prepared = prepare::prepare(&self.store.schema(), call)?;
        let faults = self.faults();
        let wanted = self.lock_keys(&prepared);
        let (held, locked) = self
            .locks
            .acquire(&wanted, Duration::from_millis(faults.lock_wait_ms))
            .await;
        if faults.write_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.write_ms)).await;
        }
        let results = self.commit(&prepared, locked, call.all_or_none);
        drop(held);
        tracing::debug!(
            op = ?call.op,
            records = results.len(),
            failed = results.iter().filter(|r| !r.success()).count(),
            "Applied a collections call."
        );
        Ok(results)
    }

    /// Per record, the parents a write locks: the Account a record's `AccountId` names (the
    /// new value, else the current one) and an Account written itself.
    fn lock_keys(&self, prepared: &Prepared) -> Vec<Vec<String>> {
        let snapshot = self.store.snapshot();
        prepared
            .items
            .iter()
            .map(|item| {
                let Some(obj) = item.obj else {
                    return Vec::new();
                };
                let def = snapshot.schema.def(obj);
                let mut keys = Vec::new();
                if def.name == "Account"
                    && let Some(id) = &item.id
                {
                    keys.push(id.to_string());
                }
                let parent = def
                    .field_index("AccountId")
                    .filter(|&f| def.fields[f].reference_to.contains(&"Account"));
                if let Some(f) = parent {
                    let given = item.values.iter().find(|(g, _)| *g == f).map(|(_, v)| v);
                    let current = || {
                        let view = self.store.view_in(&snapshot, obj);
                        let index = view.index_of(item.id.as_ref()?)?;
                        Some(view.value(index, f))
                    };
                    let value = given.cloned().or_else(current);
                    if let Some(Value::Id(parent)) = value {
                        keys.push(parent.to_string());
                    }
                }
                keys
            })
            .collect()
    }

    /// The 18-character Ids of the live (not deleted) records of `object` whose external Id
    /// field holds `value`, ignoring case, in Id order: a test asserts that a record exists
    /// exactly once.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn find_by_external_id(&self, object: &str, value: &str) -> Vec<String> {
        let view = self.store.view(self.object(object));
        let Some(f) = view.def().fields.iter().position(|f| f.external_id) else {
            return Vec::new();
        };
        let mut found: Vec<u32> = view
            .changed()
            .filter(|&i| !view.is_deleted(i))
            .filter(
                |&i| matches!(view.value(i, f), Value::Text(t) if t.eq_ignore_ascii_case(value)),
            )
            .collect();
        found.sort_unstable();
        found.into_iter().map(|i| view.id(i).to_string()).collect()
    }

    /// Sets the external Id of record `id` to `value` without the uniqueness check or a new
    /// SystemModstamp, as data loaded before the field was made unique holds it: how a test
    /// makes an upsert match several records.
    ///
    /// # Panics
    /// For an unknown object or record, or an org without the external Id field.
    pub fn force_external_id(&self, object: &str, id: &str, value: &str) {
        let obj = self.object(object);
        let def = self.store.schema().def_arc(obj);
        let f = def
            .fields
            .iter()
            .position(|f| f.external_id)
            .expect("the org has an external Id field");
        let index = SalesforceId::parse(id)
            .ok()
            .and_then(|id| self.store.view(obj).index_of(&id))
            .unwrap_or_else(|| panic!("{object} has no record {id}"));
        let value = Value::Text(std::borrow::Cow::Owned(value.to_owned()));
        self.store
            .edit(obj, |edit| edit.update(index, &[(f, value)]));
    }

    /// A record by Id alone (its object from the key prefix), as
    /// [`Self::record_json_by_id`] renders it; `None` when queryAll would not return it.
    pub fn record_by_id(&self, id: &str) -> Option<Map<String, Json>> {
        let parsed = SalesforceId::parse(id).ok()?;
        let obj = self.store.schema().by_prefix(parsed.key_prefix())?;
        let name = self.store.schema().def(obj).name;
        self.record_json_by_id(name, id)
    }
}
