//! getDeleted: the records removed from the recycle bin in a time window, which queryAll can no
//! longer show; windows split in halves while Salesforce finds too many Ids in one, and what
//! the delete log no longer covers.

use std::future::Future;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use serde::Deserialize;

use super::{SalesforceClient, SfError};

/// One getDeleted answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedAnswer {
    /// (Id, deletion time as Salesforce wrote it), oldest first.
    pub records: Vec<(String, String)>,
    /// Where the org's delete log starts: deletions before it are no longer reported. `None`
    /// when Salesforce did not say.
    pub earliest_available: Option<DateTime<Utc>>,
}

/// What the delete log says about a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteLog {
    /// Every deletion of the window: (Id, deletion time), oldest first.
    Complete(Vec<(String, String)>),
    /// The log cannot answer for the whole window; the reason says why, for the log.
    Incomplete(String),
}

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Records deleted in `[start, end)` as one getDeleted call reports them. Salesforce keeps
    /// them for about 15 days (less in a busy org) and answers windows of at most 30 days.
    ///
    /// # Errors
    /// The window is refused (INVALID_REPLICATION_DATE, EXCEEDED_ID_LIMIT), the object is not
    /// replicateable, or the call failed.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeletedAnswer, SfError> {
        #[derive(Deserialize)]
        struct Deleted {
            id: String,
            #[serde(rename = "deletedDate")]
            deleted_date: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Answer {
            #[serde(default)]
            deleted_records: Vec<Deleted>,
            earliest_date_available: Option<String>,
        }
        let enc = |t: DateTime<Utc>| {
            url::form_urlencoded::byte_serialize(common::sftime::format_soql(t).as_bytes())
                .collect::<String>()
        };
        let path = format!(
            "{}/sobjects/{object}/deleted/?start={}&end={}",
            self.data_path(),
            enc(start),
            enc(end)
        );
        let body = self.get(&path, &[]).await?;
        let protocol = |detail: String| SfError::Protocol {
            url: path.clone(),
            detail: format!("getDeleted answer not understood: {detail}"),
        };
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| protocol(e.to_string()))?;
        let earliest_available = answer
            .earliest_date_available
            .as_deref()
            .map(common::sftime::parse_datetime)
            .transpose()
            .map_err(|e| protocol(e.to_string()))?;
        Ok(DeletedAnswer {
            records: answer
                .deleted_records
                .into_iter()
                .map(|d| (d.id, d.deleted_date))
                .collect(),
            earliest_available,
        })
    }

    /// Every record deleted in `[start, end)`, or why the delete log cannot say: windows over
    /// Salesforce's 600,000-Id limit are split in halves and the answers merged; a window of one
    /// minute still over it, or a delete log that starts after a window's start (it was trimmed,
    /// or the window reaches further back than the log keeps), is [`DeleteLog::Incomplete`].
    ///
    /// # Errors
    /// As for [`Self::get_deleted`], `EXCEEDED_ID_LIMIT` aside.
    pub async fn deleted_between(
        &self,
        object: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<DeleteLog, SfError> {
        split_windows(start, end, |s, e| self.get_deleted(object, s, e)).await
    }
}

/// [`SalesforceClient::deleted_between`] over any getDeleted `fetch`.
async fn split_windows<F, Fut>(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    mut fetch: F,
) -> Result<DeleteLog, SfError>
where
    F: FnMut(DateTime<Utc>, DateTime<Utc>) -> Fut,
    Fut: Future<Output = Result<DeletedAnswer, SfError>>,
{
    let mut records = Vec::new();
    // Windows still to ask for, the earliest last (it is asked first).
    let mut windows = vec![(start, end)];
    while let Some((from, to)) = windows.pop() {
        let answer = match fetch(from, to).await {
            Ok(answer) => answer,
            Err(e) if e.code() == Some("EXCEEDED_ID_LIMIT") => {
                let Some(middle) = halve(from, to) else {
                    return Ok(DeleteLog::Incomplete(format!(
                        "getDeleted finds more Ids than it may answer (EXCEEDED_ID_LIMIT) within the single minute from {from}"
                    )));
                };
                tracing::debug!(%from, %middle, %to, "getDeleted window over the Id limit; splitting it.");
                windows.push((middle, to));
                windows.push((from, middle));
                continue;
            }
            Err(e) => return Err(e),
        };
        if let Some(earliest) = answer.earliest_available
            && earliest > minute(from)
        {
            return Ok(DeleteLog::Incomplete(format!(
                "the org's delete log starts at {earliest}, after the window's start {from}: deletions before then are no longer reported"
            )));
        }
        records.extend(answer.records);
    }
    Ok(DeleteLog::Complete(records))
}

/// Salesforce reads getDeleted's dates to the minute.
fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// The whole minute between `from` and `to` that splits the window in two, if any (a window of
/// one minute cannot be split: getDeleted reads whole minutes).
fn halve(from: DateTime<Utc>, to: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let middle = minute(from + (to - from) / 2);
    (middle > minute(from) && middle < minute(to)).then_some(middle)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use chrono::TimeZone;

    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap() + TimeDelta::minutes(minutes)
    }

    /// A delete log holding one deletion per entry of `log` (minutes), answering at most
    /// `limit` Ids per window, starting at `earliest`; records the windows asked for.
    async fn ask(
        log: &[i64],
        limit: usize,
        earliest: i64,
        start: i64,
        end: i64,
    ) -> (DeleteLog, Vec<(i64, i64)>) {
        let asked = RefCell::new(Vec::new());
        let result = split_windows(at(start), at(end), |s, e| {
            let window = ((s - at(0)).num_minutes(), (e - at(0)).num_minutes());
            asked.borrow_mut().push(window);
            let hits: Vec<(String, String)> = log
                .iter()
                .enumerate()
                .filter(|(_, t)| (window.0..window.1).contains(t))
                .map(|(i, t)| (format!("id{i}"), t.to_string()))
                .collect();
            let answer = if hits.len() > limit {
                Err(SfError::Api {
                    status: 400,
                    code: "EXCEEDED_ID_LIMIT".into(),
                    message: "too many".into(),
                })
            } else {
                Ok(DeletedAnswer {
                    records: hits,
                    earliest_available: Some(at(earliest)),
                })
            };
            async move { answer }
        })
        .await
        .unwrap();
        (result, asked.into_inner())
    }

    #[tokio::test]
    async fn windows_over_the_id_limit_are_halved_and_merged_in_order() {
        let log = [1, 2, 3, 10, 11, 30, 31, 32, 33, 60];
        let (result, asked) = ask(&log, 3, 0, 0, 64).await;
        let DeleteLog::Complete(records) = result else {
            panic!("{result:?}")
        };
        let ids: Vec<&str> = records.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "id0", "id1", "id2", "id3", "id4", "id5", "id6", "id7", "id8", "id9"
            ]
        );
        assert_eq!(
            asked,
            [
                (0, 64),
                (0, 32),
                (0, 16),
                (0, 8),
                (8, 16),
                (16, 32),
                (32, 64)
            ]
        );
    }

    #[tokio::test]
    async fn what_the_log_cannot_answer_is_incomplete_not_empty() {
        // Four deletions in one minute, three allowed: no split can help.
        let (result, _) = ask(&[5, 5, 5, 5], 3, 0, 0, 64).await;
        assert!(
            matches!(&result, DeleteLog::Incomplete(why) if why.contains("EXCEEDED_ID_LIMIT") && why.contains("single minute")),
            "{result:?}"
        );
        // The log starts after the window does.
        let (result, _) = ask(&[20], 3, 10, 0, 64).await;
        assert!(
            matches!(&result, DeleteLog::Incomplete(why) if why.contains("delete log starts at 2024-05-01 00:10:00 UTC")),
            "{result:?}"
        );
        // A log that starts within the window's first minute covers it.
        let (result, _) = ask(&[20], 3, 0, 0, 64).await;
        assert_eq!(
            result,
            DeleteLog::Complete(vec![("id0".into(), "20".into())])
        );
    }

    #[test]
    fn windows_split_on_whole_minutes() {
        assert_eq!(halve(at(0), at(64)), Some(at(32)));
        assert_eq!(halve(at(0), at(3)), Some(at(1)));
        assert_eq!(halve(at(0), at(1)), None);
        let late = at(0) + TimeDelta::seconds(50);
        assert_eq!(halve(late, at(2)), Some(at(1)));
        assert_eq!(halve(late, at(1) + TimeDelta::seconds(30)), None);
    }
}
