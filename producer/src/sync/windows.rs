//! Stamp windows for queries Salesforce times out. A REST query or a `COUNT()` that runs too
//! long answers 400 `QUERY_TIMEOUT`; the same query over a narrower range of stamps is cheaper,
//! so the window is halved (as tap-salesforce does) and each half read in turn, earlier first.
//! Every window is read in stamp order, and windows in ascending order, so the pages of a run
//! stay in stamp order and the watermark moves forward only, as without windows.
//!
//! A run's first window is `[since, open)`, `since` being the watermark less the overlap, or
//! nothing for a full sync: the windows are open at both ends, so no record can fall outside
//! them, whatever its stamp. Halving needs two instants, though: an open end counts as
//! [`nominal_start`] below and a minute after now above (the halves keep the open ends). A
//! window one second wide cannot be halved (SOQL datetimes count whole seconds): that is the
//! floor, where the REST fetch reads the window through a Bulk API 2.0 job instead (Bulk
//! splits a job by Id, not by stamp), and a count counts as too many for REST.

use std::fmt;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use common::metrics::RetryCause;

use super::run::Run;
use crate::{
    salesforce::{SfError, page::QueryPage},
    soql,
};

/// A range of stamps, `[since, until)`; `None` leaves that end open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// Where halving puts an open lower end: no org has records stamped before 2000 (Salesforce
/// went live in 1999), and records that do still fall in the open window.
pub(super) fn nominal_start() -> DateTime<Utc> {
    DateTime::from_timestamp(946_684_800, 0).unwrap_or_default()
}

/// Whether Salesforce refused a query for running too long.
pub(super) fn is_timeout(e: &SfError) -> bool {
    e.code() == Some("QUERY_TIMEOUT")
}

impl Window {
    /// `[since, open)`, `since` rounded down to the second as SOQL would.
    pub fn from(since: Option<DateTime<Utc>>) -> Self {
        Self {
            since: since.map(whole_second),
            until: None,
        }
    }

    /// `query` narrowed to this window.
    pub fn apply<'a>(self, query: soql::Query<'a>) -> soql::Query<'a> {
        soql::Query {
            since: self.since,
            until: self.until,
            ..query
        }
    }

    /// The two halves (earlier first), or `None` for a window one second wide.
    pub fn halves(self, now: DateTime<Utc>) -> Option<(Window, Window)> {
        let low = self.since.unwrap_or_else(nominal_start);
        let high = self
            .until
            .unwrap_or_else(|| now.max(low) + TimeDelta::minutes(1));
        let middle = whole_second(low + (high - low) / 2);
        (middle > low && middle < high).then_some((
            Window {
                since: self.since,
                until: Some(middle),
            },
            Window {
                since: Some(middle),
                until: self.until,
            },
        ))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end =
            |t: Option<DateTime<Utc>>, open| t.map_or_else(|| open, common::sftime::format_soql);
        write!(
            f,
            "[{}, {})",
            end(self.since, "the beginning".into()),
            end(self.until, "now".into())
        )
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t)
}

/// The windows still to read, the next one last.
pub(super) struct Windows(Vec<Window>);

impl Windows {
    pub fn new(first: Window) -> Self {
        Self(vec![first])
    }

    pub fn next(&mut self) -> Option<Window> {
        self.0.pop()
    }

    /// Reads `window`, which timed out, as two halves next (counted and logged as a retry);
    /// `false` when it is one second wide already and cannot be halved.
    ///
    /// # Errors
    /// The object has no stamp to narrow by.
    pub fn narrow(&mut self, run: &Run<'_>, window: Window) -> anyhow::Result<bool> {
        let halves = halve(run, window, "query")?;
        if let Some(halves) = halves {
            self.push_halves(halves);
        }
        Ok(halves.is_some())
    }

    /// Reads `earlier`, then `later`, before the windows already waiting (which are later).
    fn push_halves(&mut self, (earlier, later): (Window, Window)) {
        self.0.push(later);
        self.0.push(earlier);
    }
}

/// The halves of `window` after a timeout of `what`, counted and logged; `None` when the
/// window is one second wide.
///
/// # Errors
/// The object has no stamp to narrow by.
fn halve(run: &Run<'_>, window: Window, what: &str) -> anyhow::Result<Option<(Window, Window)>> {
    let object = run.object();
    anyhow::ensure!(
        run.query().stamp.is_some(),
        "Salesforce timed out (QUERY_TIMEOUT) the {what} of {object}, which has no stamp field to narrow it by; \
         read it with --api bulk"
    );
    let halves = window.halves(Utc::now());
    if let Some((earlier, _)) = halves {
        run.sf.metrics().retry(RetryCause::SalesforceQueryTimeout);
        tracing::warn!(object, %window, what, middle = ?earlier.until, "Salesforce timed out the query (QUERY_TIMEOUT); running it again over each half of its stamp window.");
    }
    Ok(halves)
}

/// How many records a run reads, as `--api auto` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Count {
    Records(u64),
    /// Even a one-second window's `COUNT()` times out: more than REST can read there.
    TooManyToCount,
}

/// Counts the records of the run's query with `COUNT()`, over halved windows summed when
/// Salesforce times a count out.
///
/// # Errors
/// A count failed otherwise, or the object has no stamp to narrow by.
pub(super) async fn count(run: &Run<'_>) -> anyhow::Result<Count> {
    let mut windows = Windows::new(Window::from(run.since));
    let mut total = 0;
    while let Some(window) = windows.next() {
        let soql = window.apply(run.query()).count()?;
        match run.sf.query(&soql, true, 2000).await {
            Ok(body) => total += QueryPage::parse(&body, "queryAll")?.total_size,
            Err(e) if is_timeout(&e) => match halve(run, window, "COUNT()")? {
                Some(halves) => windows.push_halves(halves),
                None => {
                    tracing::warn!(object = run.object(), %window, "Salesforce timed out counting even a one-second window; counting the records as too many for REST.");
                    return Ok(Count::TooManyToCount);
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Count::Records(total))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        common::sftime::parse_datetime(s).unwrap()
    }

    #[test]
    fn halves_keep_open_ends_and_whole_seconds() {
        let now = at("2024-06-01T00:00:00Z");
        let full = Window::from(None);
        let (a, b) = full.halves(now).unwrap();
        assert_eq!(a.since, None, "the first half is still open below");
        assert_eq!(b.until, None, "the second half is still open above");
        assert_eq!(a.until, b.since);
        let middle = a.until.unwrap();
        assert!(middle > nominal_start() && middle < now);
        assert_eq!(middle.timestamp_subsec_nanos(), 0);

        let since = Window::from(Some(at("2024-01-15T10:20:30.750Z")));
        assert_eq!(
            since.since,
            Some(at("2024-01-15T10:20:30Z")),
            "rounded down"
        );
        let (a, b) = since.halves(now).unwrap();
        assert_eq!(a.since, since.since);
        assert!(a.until.unwrap() < now && b.since == a.until);
    }

    #[test]
    fn halving_stops_at_one_second() {
        let mut window = Window {
            since: Some(at("2024-01-15T10:20:30Z")),
            until: Some(at("2024-01-15T10:20:34Z")),
        };
        let mut splits = 0;
        while let Some((a, b)) = window.halves(Utc::now()) {
            assert!(a.since < a.until && b.since < b.until && a.until == b.since);
            window = b;
            splits += 1;
        }
        assert_eq!(splits, 2);
        assert_eq!(
            window.until.unwrap() - window.since.unwrap(),
            TimeDelta::seconds(1)
        );
        // An open window above a lower end in the future (clocks disagree) still halves.
        let ahead = Window::from(Some(Utc::now() + TimeDelta::hours(1)));
        assert!(ahead.halves(Utc::now()).is_some());
    }

    #[test]
    fn windows_come_back_in_ascending_order() {
        let now = at("2024-06-01T00:00:00Z");
        let mut windows = Windows::new(Window::from(Some(at("2024-01-01T00:00:00Z"))));
        let first = windows.next().unwrap();
        let (a, b) = first.halves(now).unwrap();
        windows.push_halves((a, b));
        let next = windows.next().unwrap();
        assert_eq!(next, a);
        let (c, d) = next.halves(now).unwrap();
        windows.push_halves((c, d));
        let order: Vec<Window> = std::iter::from_fn(|| windows.next()).collect();
        assert_eq!(order, vec![c, d, b]);
        assert_eq!(order[0].since, first.since);
        assert!(order.windows(2).all(|w| w[0].until == w[1].since));
        assert_eq!(order[2].until, None);
    }

    #[test]
    fn windows_read_as_soql_and_print_their_ends() {
        let window = Window {
            since: None,
            until: Some(Utc.with_ymd_and_hms(2024, 1, 15, 10, 20, 30).unwrap()),
        };
        assert_eq!(
            window.apply(soql::Query::all("Contact")).count().unwrap(),
            "SELECT COUNT() FROM Contact WHERE SystemModstamp < 2024-01-15T10:20:30Z"
        );
        assert_eq!(window.to_string(), "[the beginning, 2024-01-15T10:20:30Z)");
    }
}
