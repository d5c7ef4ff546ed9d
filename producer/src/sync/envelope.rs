//! The page envelope: what every message of a run carries around its records (object, run id,
//! page number, kind, hard delete, table override, stamp field). REST pages, Bulk pages,
//! deletion pages and reconcile's repair pages are all built here, so they cannot disagree on
//! what a page says.

use chrono::{DateTime, Utc};
use common::message::{PageKind, PageMessage, Stamp};
use serde::Serialize;
use uuid::Uuid;

use crate::{objects::ObjectSettings, publisher::OutgoingPage};

/// What every page of one run carries besides its number and its records.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    /// Salesforce API name of the object, as describe spells it.
    pub object: String,
    pub run_id: Uuid,
    /// Remove rows of deleted records instead of marking them `isdeleted`.
    pub hard_delete: bool,
    /// The table `sfsync.toml` names, when it is not the default one.
    pub table: Option<String>,
    /// The field of the records the worker stores as `systemmodstamp`.
    pub stamp: Stamp,
}

impl Envelope {
    /// The envelope of an object whose stamp is SystemModstamp; see [`Self::with_stamp`].
    pub fn new(object: &str, run_id: Uuid, hard_delete: bool, settings: &ObjectSettings) -> Self {
        Self {
            object: object.to_owned(),
            run_id,
            hard_delete,
            table: settings.table_override(object),
            stamp: Stamp::default(),
        }
    }

    /// The same envelope for an object whose stamp is `stamp` (the replication key
    /// [`crate::tables::FieldSelection::stamp`]; `None` when it has none).
    pub fn with_stamp(self, stamp: Option<&str>) -> Self {
        Self {
            stamp: Stamp::from(stamp),
            ..self
        }
    }

    /// Page `page` of the run, holding `records` of `kind`. Deletion records carry
    /// SystemModstamp (see [`Self::deletion`]), so their pages name no other stamp field.
    pub fn message<R>(&self, kind: PageKind, page: u64, records: R) -> PageMessage<R> {
        let stamp = match kind {
            PageKind::Deleted => Stamp::default(),
            _ => self.stamp.clone(),
        };
        PageMessage {
            kind,
            hard_delete: self.hard_delete,
            table: self.table.clone(),
            stamp,
            ..PageMessage::records(self.object.clone(), self.run_id, page, records)
        }
    }

    /// A serialized page ready to publish, with what its headers say about it.
    pub fn outgoing(
        &self,
        page: u64,
        records: u64,
        last_stamp: Option<DateTime<Utc>>,
        body: Vec<u8>,
    ) -> OutgoingPage {
        OutgoingPage {
            object: self.object.clone(),
            run_id: self.run_id,
            page,
            slice: 0,
            records,
            last_stamp,
            body,
        }
    }

    /// `message` serialized, ready to publish. For pages that are not in stamp order
    /// (deletions, re-pulled records), so they carry no stamp for the watermark.
    ///
    /// # Errors
    /// Serializing failed (it cannot for records that are JSON already).
    pub fn unstamped<R: Serialize>(
        &self,
        message: &PageMessage<&[R]>,
    ) -> serde_json::Result<OutgoingPage> {
        let body = serde_json::to_vec(message)?;
        Ok(self.outgoing(message.page, message.records.len() as u64, None, body))
    }

    /// A record of a [`PageKind::Deleted`] page: the Id and when it was deleted, shaped like a
    /// queried record.
    pub fn deletion(&self, id: &str, deleted_at: &str) -> serde_json::Value {
        serde_json::json!({"attributes": {"type": self.object}, "Id": id, "SystemModstamp": deleted_at})
    }
}
