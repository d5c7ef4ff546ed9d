//! The push message: one batch of one writable table's records and one operation, which a
//! worker applies to Salesforce with one sObject Collections call. It names rows and columns,
//! not values: the worker reads the row's values when it applies the batch, so that what
//! reaches Salesforce is the row as it is then, never an older version of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `type` property of push messages.
pub const MESSAGE_TYPE: &str = "sfsync.push.v1";

/// What a batch asks of Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushOp {
    /// Records Salesforce does not have yet, upserted on the External ID field.
    Create,
    Update,
    Delete,
}

/// What a pull does when Salesforce changed a field that also has a local change waiting to
/// be written back (`conflict` in the object's section of `sfsync.toml`). A conflict is told
/// from the echo of sfsync's own change by the value the field had before the local change,
/// which the outbox keeps: no API call is spent on it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConflictPolicy {
    /// The local value stays and is sent.
    #[default]
    LocalWins,
    /// Salesforce's value is taken and the local change of that field is dropped.
    SalesforceWins,
    /// The local value stays but is not sent: the change is dead-lettered (class `conflict`)
    /// for someone to decide.
    Reject,
}

impl ConflictPolicy {
    /// Every policy, as `sfsync.toml` names them.
    pub const ALL: [ConflictPolicy; 3] = [
        ConflictPolicy::LocalWins,
        ConflictPolicy::SalesforceWins,
        ConflictPolicy::Reject,
    ];

    /// The name in `sfsync.toml` and in `sfsync.writable.conflict`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::LocalWins => "local-wins",
            ConflictPolicy::SalesforceWins => "salesforce-wins",
            ConflictPolicy::Reject => "reject",
        }
    }

    /// The policy named `name`, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// One batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushBatch {
    /// Marks the outbox rows of this batch (`sfsync.outbox.batch_id`).
    pub batch_id: Uuid,
    pub object: String,
    /// The table in schema `salesforce`.
    pub table: String,
    pub op: PushOp,
    /// The object's External ID field, which creates carry their `external_key` in.
    pub external_id_field: String,
    /// Salesforce's field name of each column the records name.
    pub fields: BTreeMap<String, String>,
    pub records: Vec<PushRecord>,
    /// Every column of the table that holds a field, with that field: what the worker reads
    /// back in the same API call as the write, and stores in the rows it applied, so that the
    /// pull that later brings the same record has nothing to rewrite. Empty (as in batches of
    /// an older producer, or dead letters of conflicts): nothing is read back.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read_back: BTreeMap<String, String>,
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRecord {
    /// The row's local id.
    pub row_id: i64,
    /// Update, delete: the record's Id.
    pub sfid: Option<String>,
    /// Create: the External ID value the record is created under.
    pub external_key: Option<Uuid>,
    /// Create, update: the columns whose values are sent.
    pub columns: Vec<String>,
}
