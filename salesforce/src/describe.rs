//! Describe: an object's name, fields and what it can be used for, as much of
//! `GET /sobjects/{Object}/describe` as sfsync uses.

use serde::Deserialize;

use super::{SalesforceClient, SfError};

/// One field of a describe result; only what sfsync uses.
#[derive(Debug, Clone, Deserialize)]
pub struct DescribeField {
    pub name: String,
    #[serde(rename = "type")]
    pub sf_type: String,
    /// A formula field: Salesforce computes its value when it is read, so it can change
    /// without the record's SystemModstamp moving (see `docs/real-orgs.md`).
    #[serde(default)]
    pub calculated: bool,
    /// The integration user may change the field's value (field-level security, and not a
    /// formula or system field): what write-back needs.
    #[serde(default)]
    pub updateable: bool,
    /// An External ID field: an upsert can find records by it (write-back creates records
    /// under one, so that a retried create finds the record it made).
    #[serde(rename = "externalId", default)]
    pub external_id: bool,
    /// A lookup or master-detail field: the objects its Id may point to (one, unless the
    /// field is polymorphic, such as a Task's WhoId).
    #[serde(rename = "referenceTo", default)]
    pub reference_to: Vec<String>,
}

/// The parts of `GET /sobjects/{Object}/describe` that sfsync uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Describe {
    pub name: String,
    #[serde(default = "yes")]
    pub queryable: bool,
    /// Whether getUpdated/getDeleted serve the object. Some objects can be queried but not
    /// replicated (`UserLogin`, the `*Share` objects): getDeleted refuses them ("sObject type
    /// UserLogin is not replicable"), so their deletions are found by comparing Ids instead.
    #[serde(default = "yes")]
    pub replicateable: bool,
    pub fields: Vec<DescribeField>,
}

fn yes() -> bool {
    true
}

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Describes one object.
    ///
    /// # Errors
    /// The object does not exist (a message naming it), or the call failed.
    pub async fn describe(&self, object: &str) -> Result<Describe, SfError> {
        let path = format!("{}/sobjects/{object}/describe", self.data_path());
        let body = self.get(&path, &[]).await.map_err(|e| match e {
            SfError::Api { status: 404, .. } => SfError::Config(format!("object {object:?} does not exist in this org (describe answered NOT_FOUND); check --object against Setup > Object Manager")),
            other => other,
        })?;
        serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            url: path,
            detail: format!("describe result not understood: {e}"),
        })
    }
}
