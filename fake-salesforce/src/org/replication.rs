//! getUpdated and getDeleted (`/sobjects/{Object}/updated/` and `/deleted/`).
//!
//! Both take `start` and `end` (ISO 8601, any offset), truncate them to the minute and return
//! what changed in `[start, end)`:
//! - updated: live (not deleted) records by SystemModstamp, created ones included;
//! - deleted: the delete log: soft-deleted and purged records, never hard-deleted ones.
//!
//! `latestDateCovered` is `end`, but never past the current minute of the org's clock; later
//! changes always get a stamp at or after it (except `same_modstamp` mutations, see
//! [`super::mutate`]). `earliestDateAvailable` is 15 days before the org's clock.
//!
//! Errors (HTTP 400): a missing parameter is `MISSING_ARGUMENT`; an unparsable date, `start`
//! after `end`, a window over 30 days, or (getUpdated only) a `start` more than 30 days ago
//! is `INVALID_REPLICATION_DATE`; more than 600,000 results is `EXCEEDED_ID_LIMIT`.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use super::{Org, floor_minute, kind_of};
use crate::calendar::write_datetime;
use crate::data::Value;
use crate::error::ApiError;
use crate::soql::parse_datetime;

const DAY_MS: i64 = 86_400_000;
/// getUpdated serves the last 30 days, and no window may be longer.
const WINDOW_MS: i64 = 30 * DAY_MS;
/// The delete log keeps 15 days.
const DELETE_LOG_MS: i64 = 15 * DAY_MS;
/// More results than this is an error; clients split the window.
const ID_LIMIT: usize = 600_000;

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

fn too_many(n: usize) -> Result<(), ApiError> {
    if n > ID_LIMIT {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            format!("{n} records match; the limit is {ID_LIMIT}: use a smaller time window"),
        ));
    }
    Ok(())
}

impl Org {
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
        let obj = kind_of(object).ok_or_else(ApiError::not_found)?;
        let (start, end) = window(start, end)?;
        let now = self.now_millis();
        if start < floor_minute(now) - WINDOW_MS {
            return Err(invalid("startDate cannot be more than 30 days ago"));
        }
        let latest = end.min(floor_minute(now));
        let view = self.store.view(obj);
        let stamp = obj
            .def()
            .field_index("SystemModstamp")
            .expect("every object has SystemModstamp");
        let ids: Vec<String> = view
            .indices()
            .filter(|&i| !view.is_deleted(i))
            .filter(
                |&i| matches!(view.value(i, stamp), Value::DateTime(t) if start <= t && t < end),
            )
            .map(|i| view.id(i).to_string())
            .collect();
        too_many(ids.len())?;
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
        let obj = kind_of(object).ok_or_else(ApiError::not_found)?;
        let (start, end) = window(start, end)?;
        let now = self.now_millis();
        let earliest = floor_minute(now - DELETE_LOG_MS);
        let latest = end.min(floor_minute(now));
        let mut hits: Vec<(i64, u32)> = self.history().deletions[obj as usize]
            .iter()
            .filter(|&(_, &t)| start.max(earliest) <= t && t < end)
            .map(|(&i, &t)| (t, i))
            .collect();
        too_many(hits.len())?;
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
