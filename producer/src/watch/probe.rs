//! The probe: which objects changed since their watermark, asked for five objects in one API
//! call. An idle `sync --watch` pass then costs one call per five objects instead of one (or,
//! before the cadence, four) per object. Each object's question is `SELECT Id, <stamp> FROM
//! <object> WHERE <stamp> >= <watermark's second> ORDER BY <stamp> DESC LIMIT 1`, one query
//! subrequest of a Composite call: SOQL compares datetimes to the second, so the answer's
//! stamp (to the millisecond) is what tells whether the newest record is after the watermark.
//!
//! An object is synced without asking when the probe cannot answer for it: no describe kept
//! (it is read again), no watermark yet, no stamp to ask by, or its deletions are due (every
//! `--deleted-interval`). That periodic sync also reads the overlap behind the watermark, so a
//! record committed late with a stamp behind it (which the probe, asking after the watermark,
//! does not see) arrives within that interval.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

use crate::{
    objects::ObjectsConfig,
    salesforce::{SalesforceClient, composite::MAX_QUERIES},
    soql::{Order, Query},
    sync::{Cadence, DescribeCache},
    sync_state, tables,
};

/// What a pass does with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Sync it (why, for the debug log).
    Sync(&'static str),
    /// Nothing changed since its watermark.
    Idle,
}

/// What the probe needs of one object.
struct Candidate {
    object: String,
    soql: String,
    stamp: String,
    watermark: DateTime<Utc>,
}

/// Decides, for each of `objects`, whether this pass syncs it; returns them in order.
///
/// # Errors
/// The Composite call failed as a whole (the caller syncs every object instead, or pauses on
/// [`SfError::Quota`]), or the database could not be read.
pub async fn decide(
    sf: &SalesforceClient,
    pool: &PgPool,
    describes: &DescribeCache,
    config: &ObjectsConfig,
    objects: &[String],
    cadence: Cadence,
) -> anyhow::Result<Vec<(String, Decision)>> {
    let now = Utc::now();
    let mut decisions = Vec::with_capacity(objects.len());
    let mut candidates = Vec::new();
    for object in objects {
        match candidate(pool, describes, config, object, cadence, now).await? {
            Ok(c) => {
                decisions.push((object.clone(), Decision::Idle));
                candidates.push((decisions.len() - 1, c));
            }
            Err(why) => decisions.push((object.clone(), Decision::Sync(why))),
        }
    }
    for chunk in candidates.chunks(MAX_QUERIES) {
        let soqls: Vec<String> = chunk.iter().map(|(_, c)| c.soql.clone()).collect();
        let answers = sf.queries(&soqls).await?;
        for ((i, c), answer) in chunk.iter().zip(answers) {
            decisions[*i].1 = match answer {
                Ok(records) if newest_after(&records, &c.stamp, c.watermark) => {
                    Decision::Sync("changed")
                }
                Ok(_) => Decision::Idle,
                Err(e) => {
                    tracing::debug!(object = c.object, error = %e, "The probe could not ask; syncing the object.");
                    Decision::Sync("probe failed")
                }
            };
        }
    }
    Ok(decisions)
}

/// The probe's question for `object`, or why it must be synced without asking.
async fn candidate(
    pool: &PgPool,
    describes: &DescribeCache,
    config: &ObjectsConfig,
    object: &str,
    cadence: Cadence,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<Candidate, &'static str>> {
    let Some(describe) = describes.cached(object, cadence.describe) else {
        return Ok(Err("describe due"));
    };
    let Ok(selection) = tables::select_fields(&describe) else {
        return Ok(Err("fields to select"));
    };
    let Some(stamp) = selection.stamp.as_deref() else {
        return Ok(Err("no stamp"));
    };
    let Some(watermark) = sync_state::load(pool, &describe.name).await? else {
        return Ok(Err("no watermark"));
    };
    let checked = sync_state::deletions_checked_until(pool, &describe.name).await?;
    let deletions = chrono::Duration::from_std(cadence.deletions).unwrap_or_default();
    if checked.is_none_or(|c| now - c >= deletions) {
        return Ok(Err("deletions due"));
    }
    let settings = config.settings(object);
    let query = Query {
        object: &describe.name,
        stamp: Some(stamp),
        filter: settings.filter.as_deref(),
        since: Some(watermark),
        until: None,
    };
    let Ok(soql) = query.select(&["Id", stamp], Order::None) else {
        return Ok(Err("query"));
    };
    Ok(Ok(Candidate {
        object: object.to_owned(),
        soql: format!("{soql} ORDER BY {stamp} DESC LIMIT 1"),
        stamp: stamp.to_owned(),
        watermark,
    }))
}

/// Whether the newest record (the probe's one answer) changed after the watermark; an answer
/// that cannot be read counts as a change (the sync will tell).
fn newest_after(
    records: &[serde_json::Map<String, serde_json::Value>],
    stamp: &str,
    watermark: DateTime<Utc>,
) -> bool {
    let Some(newest) = records.first() else {
        return false;
    };
    newest
        .get(stamp)
        .and_then(serde_json::Value::as_str)
        .and_then(|s| common::sftime::parse_datetime(s).ok())
        .is_none_or(|at| at > watermark)
}
