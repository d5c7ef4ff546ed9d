//! getUpdated and getDeleted (`/sobjects/{Object}/updated/` and `/deleted/`).
//!
//! Both take `start` and `end` (ISO 8601, any offset), truncate them to the minute and return
//! what changed in `[start, end)`:
//! - updated: live (not deleted) records by SystemModstamp, created ones included;
//! - deleted: the delete log: soft-deleted and purged records, never hard-deleted ones.
//!
//! `latestDateCovered` is `end`, but never past the current minute of the org's clock; later
//! changes always get a stamp at or after it (except `same_modstamp` mutations, see
//! [`super::mutate`]). `earliestDateAvailable` is when the delete log starts: 15 days before
//! the org's clock, or later when the delete log was trimmed (the `delete_log_start` fault),
//! floored to the minute; deletions before it are no longer reported. A window that starts
//! before it is still answered, with what the log still holds: the client must compare
//! `earliestDateAvailable` with its own start (SOAP's GetDeletedResult documents the field as
//! the time of the last physically deleted record).
//!
//! getUpdated reads SystemModstamp, or LastModifiedDate, or CreatedDate, whichever the object
//! has first (the REST docs name the first two; the third is this fake's choice for history
//! objects).
//!
//! Errors (HTTP 400): an object that is not replicateable answers "sObject type X is not
//! replicable" (the message a real org sent, in MinnPost/object-sync-for-salesforce#109; the
//! errorCode is not shown there, `INVALID_TYPE` is this fake's choice); a missing parameter is
//! `MISSING_ARGUMENT`; an unparsable date, `start` after `end`, a window over 30 days, or
//! (getUpdated only) a `start` more than 30 days ago is `INVALID_REPLICATION_DATE`; more than
//! 600,000 results (or the `replication_id_limit` fault's number) is `EXCEEDED_ID_LIMIT`,
//! whose message Salesforce does not document.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use super::{Org, floor_minute};
use crate::calendar::write_datetime;
use crate::data::{ObjectKind, Value};
use crate::error::ApiError;
use crate::soql::parse_datetime;

const DAY_MS: i64 = 86_400_000;
/// getUpdated serves the last 30 days, and no window may be longer.
const WINDOW_MS: i64 = 30 * DAY_MS;
/// The delete log keeps 15 days.
const DELETE_LOG_MS: i64 = 15 * DAY_MS;
/// More results than this is an error; clients split the window.
pub const ID_LIMIT: u64 = 600_000;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "INVALID_REPLICATION_DATE", message)
}

fn datetime(ms: i64) -> String {
    let mut s = String::new();
    write_datetime(&mut s, ms);
    s
}

/// The `[start, end)` window in millis, both floored to the minute.
fn window(start: Option<&str>, end: Option<&str>) -> Result<(i64, i64), ApiError> {
    let parse = |name: &'static str, v: Option<&str>| {
        let v =
            v.ok_or_else(|| ApiError::new(StatusCode::BAD_REQUEST, "MISSING_ARGUMENT", name))?;
        // An unencoded `+00:00` arrives as a space after form decoding.
        parse_datetime(&v.trim().replace(' ', "+"))
            .map(floor_minute)
            .ok_or_else(|| invalid(format!("Invalid {name} date: {v}")))
    };
    let (start, end) = (parse("start", start)?, parse("end", end)?);
    if start > end {
        return Err(invalid("startDate must chronologically precede endDate"));
    }
    if end - start > WINDOW_MS {
        return Err(invalid(
            "The time window between startDate and endDate can't exceed 30 days",
        ));
    }
    Ok((start, end))
}

fn too_many(n: usize, limit: u64) -> Result<(), ApiError> {
    if n as u64 > limit {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("{n} records match; the limit is {limit}: use a smaller time window"),
        ));
    }
    Ok(())
}

impl Org {
    /// The replicateable object `object` names.
    fn replicable(&self, object: &str) -> Result<ObjectKind, ApiError> {
        let schema = self.store.schema();
        let obj = schema.object(object).ok_or_else(ApiError::not_found)?;
        let def = schema.def(obj);
        if !def.replicateable {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_TYPE",
                format!("sObject type {} is not replicable", def.name),
            ));
        }
        Ok(obj)
    }

    fn id_limit(&self) -> u64 {
        self.faults().replication_id_limit.unwrap_or(ID_LIMIT)
    }

    /// `GET /sobjects/{object}/updated/?start=&end=` as JSON: `ids` and `latestDateCovered`.
    ///
    /// # Errors
    /// See the module docs; `NOT_FOUND` for an unknown object.
    pub fn get_updated(
        &self,
        object: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Json, ApiError> {
        let obj = self.replicable(object)?;
        let (start, end) = window(start, end)?;
        let now = self.now_millis();
        if start < floor_minute(now) - WINDOW_MS {
            return Err(invalid("startDate cannot be more than 30 days ago"));
        }
        let latest = end.min(floor_minute(now));
        let view = self.store.view(obj);
        let def = view.def();
        let Some(stamp) = def
            .system_modstamp_field()
            .or(def.last_modified_field())
            .or(def.created_field())
        else {
            return Ok(json!({"ids": [], "latestDateCovered": datetime(latest)}));
        };
        let ids: Vec<String> = view
            .indices()
            .filter(|&i| !view.is_deleted(i))
            .filter(
                |&i| matches!(view.value(i, stamp), Value::DateTime(t) if start <= t && t < end),
            )
            .map(|i| view.id(i).to_string())
            .collect();
        too_many(ids.len(), self.id_limit())?;
        Ok(json!({"ids": ids, "latestDateCovered": datetime(latest)}))
    }

    /// `GET /sobjects/{object}/deleted/?start=&end=` as JSON: `deletedRecords` (`id`,
    /// `deletedDate`, oldest first), `earliestDateAvailable` and `latestDateCovered`.
    ///
    /// # Errors
    /// See the module docs; `NOT_FOUND` for an unknown object.
    pub fn get_deleted(
        &self,
        object: &str,
        start: Option<&str>,
        end: Option<&str>,
    ) -> Result<Json, ApiError> {
        let obj = self.replicable(object)?;
        let (start, end) = window(start, end)?;
        let now = self.now_millis();
        let trimmed = self
            .faults()
            .delete_log_start
            .map_or(i64::MIN, floor_minute);
        let earliest = floor_minute(now - DELETE_LOG_MS).max(trimmed);
        let latest = end.min(floor_minute(now));
        let mut hits: Vec<(i64, u32)> = self.history().deletions[obj.index()]
            .iter()
            .filter(|&(_, &t)| start.max(earliest) <= t && t < end)
            .map(|(&i, &t)| (t, i))
            .collect();
        too_many(hits.len(), self.id_limit())?;
        hits.sort_unstable();
        let generator = self.store.generator();
        let records: Vec<Json> = hits
            .into_iter()
            .map(|(t, i)| json!({"id": generator.id(obj, i).as_str(), "deletedDate": datetime(t)}))
            .collect();
        Ok(json!({
            "deletedRecords": records,
            "earliestDateAvailable": datetime(earliest),
            "latestDateCovered": datetime(latest),
        }))
    }
}
