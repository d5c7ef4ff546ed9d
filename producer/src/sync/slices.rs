//! Where a parallel read cuts its stamp window: into `--parallel` slices holding about as many
//! records each, so that they finish together.
//!
//! Records are not spread evenly over time (a data load stamps a million records within an
//! hour, then a few change a day), so equal stretches of time would make one slice hold most
//! of them. The plan counts instead, cheaply: the oldest stamp (one query, for a full read),
//! then one Composite call (one API call for five queries) counting the whole window and four
//! equal stretches of it, then up to three rounds in which every stretch holding more than
//! half a slice's share is counted again in five parts, one Composite call each, all at once.
//! The cuts fall on the stretch boundaries nearest to each `1/parallel` of the total. A stretch
//! one second wide cannot be cut (SOQL compares whole seconds): a mass update stamping most
//! records in one second leaves one slice heavier than the others.
//!
//! A full read of 300,000 records into eight slices costs about ten calls and four round trips
//! this way, against the 150 calls the read itself costs.

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use salesforce::composite::MAX_QUERIES;

use super::{
    record,
    run::Run,
    windows::{self, Window},
};
use crate::{
    salesforce::{SfError, page::QueryPage},
    soql,
};

/// Rounds of recounting heavy stretches in parts, at most.
const ROUNDS: usize = 3;
/// Records a Bulk slice holds at least: each slice is a job of its own, whose creation, state
/// polls and deletion cost calls beside its result chunks of 5,000 records, so a job is worth
/// it only when it downloads ten chunks or more.
pub(super) const BULK_RECORDS_PER_SLICE: u64 = 50_000;

/// One stretch of time and the records it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stretch {
    window: Window,
    records: u64,
}

/// The slices to read `window` in: `parallel` of them at most, and no more than one per
/// `per_slice` records, `[window]` when the window holds `parallel_above` records or fewer
/// (`counted`, when the caller counted them already),
/// or cannot be cut (no stamp, no records, or Salesforce timed out a count: the read then
/// goes one page after the other, as without `--parallel`).
///
/// # Errors
/// A query or a Composite call failed whole, other than by timing out.
pub(super) async fn plan(
    run: &Run<'_>,
    window: Window,
    (parallel, parallel_above, per_slice): (usize, u64, u64),
    counted: Option<u64>,
) -> anyhow::Result<Vec<Window>> {
    let parallel = match counted {
        Some(n) => parallel.min(usize::try_from(n / per_slice.max(1)).unwrap_or(usize::MAX)),
        None => parallel,
    };
    if parallel <= 1 || run.query().stamp.is_none() || counted.is_some_and(|n| n <= parallel_above)
    {
        return Ok(vec![window]);
    }
    match plan_counted(run, window, (parallel, parallel_above, per_slice), counted).await {
        Ok(slices) => Ok(slices),
        Err(e) if e.downcast_ref::<SfError>().is_some_and(windows::is_timeout) => {
            tracing::warn!(object = run.object(), error = %e, "Salesforce timed out counting the slices of a parallel read; reading one page after the other.");
            Ok(vec![window])
        }
        Err(e) => Err(e),
    }
}

async fn plan_counted(
    run: &Run<'_>,
    window: Window,
    (parallel, parallel_above, per_slice): (usize, u64, u64),
    counted: Option<u64>,
) -> anyhow::Result<Vec<Window>> {
    let Some(stamp) = run.query().stamp else {
        return Ok(vec![window]);
    };
    // How far the org is, by a call that costs nothing (and not by a query, whose time is
    // mostly the org's own work).
    let min_latency = run.options.parallel_min_latency;
    if !min_latency.is_zero() {
        let took = run.sf.round_trip().await;
        if took.is_some_and(|t| t < min_latency) {
            tracing::debug!(
                object = run.object(),
                ?took,
                "The org answers fast: reading one page after the other."
            );
            return Ok(vec![window]);
        }
    }
    let low = match window.since {
        Some(since) => Some(since),
        None => oldest(run, stamp).await?,
    };
    let Some(low) = low else {
        return Ok(vec![window]);
    };
    let high = whole_second(Utc::now()) + TimeDelta::seconds(1);
    if high <= low + TimeDelta::seconds(1) {
        return Ok(vec![window]);
    }
    // First call: the whole window (unless counted already) and a first few stretches.
    let head = match counted {
        Some(_) => split(window, low, high, MAX_QUERIES),
        None => {
            let mut head = vec![window];
            head.extend(split(window, low, high, MAX_QUERIES - 1));
            head
        }
    };
    let mut stretches = count(run, head).await?;
    let total = match counted {
        Some(total) => total,
        None => stretches.remove(0).records,
    };
    let parallel = parallel.min(usize::try_from(total / per_slice.max(1)).unwrap_or(usize::MAX));
    if total <= parallel_above || parallel <= 1 {
        return Ok(vec![window]);
    }
    // Then rounds of recounting: every stretch holding more than half a slice's share is
    // counted again in five parts, one Composite call each, all at once, so that a round
    // costs one round trip however many stretches it recounts.
    let half_share = total / parallel as u64 / 2;
    for _ in 0..ROUNDS {
        let mut heavy: Vec<usize> = (0..stretches.len())
            .filter(|&i| {
                stretches[i].records > half_share && stretches[i].window.halves(high).is_some()
            })
            .collect();
        if heavy.is_empty() {
            break;
        }
        heavy.sort_by_key(|&i| std::cmp::Reverse(stretches[i].records));
        heavy.truncate(parallel);
        heavy.sort_unstable();
        let recounts = heavy.iter().map(|&i| {
            let (from, to) = ends(stretches[i].window, low, high);
            count(run, split(stretches[i].window, from, to, MAX_QUERIES))
        });
        let parts = futures::future::try_join_all(recounts).await?;
        for (&i, parts) in heavy.iter().zip(parts).rev() {
            stretches.splice(i..=i, parts);
        }
    }
    let slices = cut(&stretches, parallel);
    tracing::info!(
        object = run.object(),
        records = total,
        slices = slices.len(),
        "Reading the records in slices at once."
    );
    Ok(slices)
}

/// The oldest stamp of the run's records, `None` when it has none.
async fn oldest(run: &Run<'_>, stamp: &str) -> anyhow::Result<Option<DateTime<Utc>>> {
    let soql = format!(
        "{} LIMIT 1",
        run.query().select(&[stamp], soql::Order::ByStamp)?
    );
    let body = run.sf.query(&soql, true, 200).await?;
    let page = QueryPage::parse(&body, "query")?;
    Ok(page
        .records
        .first()
        .and_then(|r| record::stamp(r, stamp))
        .map(whole_second))
}

/// Each stretch's `COUNT()`, five to a Composite call. A count Salesforce timed out counts as
/// the most any other stretch holds, so that it is more likely cut again than left whole.
///
/// # Errors
/// A call failed whole, or a count failed otherwise than by timing out.
async fn count(run: &Run<'_>, windows: Vec<Window>) -> anyhow::Result<Vec<Stretch>> {
    let mut counted = Vec::with_capacity(windows.len());
    for group in windows.chunks(MAX_QUERIES) {
        let soqls = group
            .iter()
            .map(|w| w.apply(run.query()).count())
            .collect::<Result<Vec<_>, _>>()?;
        let answers = run.sf.counts(&soqls).await?;
        for (window, answer) in group.iter().zip(answers) {
            let records = match answer {
                Ok(records) => Some(records),
                Err(e) if !windows::is_timeout(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(object = run.object(), %window, error = %e, "A slice count failed; estimating it.");
                    None
                }
            };
            counted.push((*window, records));
        }
    }
    let most = counted.iter().filter_map(|(_, r)| *r).max().unwrap_or(0);
    Ok(counted
        .into_iter()
        .map(|(window, records)| Stretch {
            window,
            records: records.unwrap_or(most),
        })
        .collect())
}

/// `window` cut into `parts` equal stretches of time between `low` and `high` (whole seconds);
/// the first keeps the window's lower end and the last its upper end, open or not.
fn split(window: Window, low: DateTime<Utc>, high: DateTime<Utc>, parts: usize) -> Vec<Window> {
    let step = (high - low) / i32::try_from(parts.max(1)).unwrap_or(i32::MAX);
    let mut cuts: Vec<DateTime<Utc>> = (1..parts)
        .map(|i| whole_second(low + step * i32::try_from(i).unwrap_or(i32::MAX)))
        .filter(|c| *c > low && *c < high)
        .collect();
    cuts.dedup();
    let mut windows = Vec::with_capacity(cuts.len() + 1);
    let mut since = window.since;
    for c in cuts {
        windows.push(Window {
            since,
            until: Some(c),
        });
        since = Some(c);
    }
    windows.push(Window {
        since,
        until: window.until,
    });
    windows
}

/// The instants a stretch spans, its open ends replaced by the plan's.
fn ends(window: Window, low: DateTime<Utc>, high: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    (window.since.unwrap_or(low), window.until.unwrap_or(high))
}

/// Consecutive stretches grouped into at most `parallel` slices of about equal records: each
/// slice ends on the stretch boundary nearest to its share of the running count.
fn cut(stretches: &[Stretch], parallel: usize) -> Vec<Window> {
    let total: u64 = stretches.iter().map(|s| s.records).sum();
    let parallel = parallel.max(1) as u64;
    let mut slices: Vec<Window> = Vec::with_capacity(parallel as usize);
    let mut open: Option<Window> = None;
    let mut so_far = 0u64;
    for s in stretches {
        let due = total * (slices.len() as u64 + 1) / parallel;
        let more_slices = (slices.len() as u64 + 1) < parallel;
        // Close before this stretch when stopping short of the share is nearer than passing it.
        if more_slices && open.is_some() && so_far + s.records > due {
            let over = so_far + s.records - due;
            if due.saturating_sub(so_far) < over {
                slices.extend(open.take());
            }
        }
        open = Some(match open {
            None => s.window,
            Some(w) => Window {
                since: w.since,
                until: s.window.until,
            },
        });
        so_far += s.records;
        let due = total * (slices.len() as u64 + 1) / parallel;
        if so_far >= due && (slices.len() as u64 + 1) < parallel {
            slices.extend(open.take());
        }
    }
    if let Some(w) = open {
        slices.push(w);
    } else if let Some(last) = slices.last_mut() {
        // The last stretch closed a slice: that slice keeps the window's upper end.
        last.until = stretches.last().and_then(|s| s.window.until);
    }
    slices
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::seconds(1)).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    fn stretch(since: Option<i64>, until: Option<i64>, records: u64) -> Stretch {
        Stretch {
            window: Window {
                since: since.map(at),
                until: until.map(at),
            },
            records,
        }
    }

    #[test]
    fn split_keeps_the_window_ends_and_whole_seconds() {
        let parts = split(Window::from(None), at(0), at(100), 4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0].since, None);
        assert_eq!(parts[3].until, None);
        assert!(parts.windows(2).all(|p| p[0].until == p[1].since));
        assert_eq!(parts[1].since, Some(at(25)));
        // Two seconds cannot make five stretches.
        assert_eq!(split(Window::from(Some(at(0))), at(0), at(2), 5).len(), 2);
    }

    #[test]
    fn cut_balances_records_not_time() {
        // Most records in one stretch: it gets a slice of its own.
        let stretches = [
            stretch(None, Some(10), 10),
            stretch(Some(10), Some(20), 10),
            stretch(Some(20), Some(30), 900),
            stretch(Some(30), Some(40), 40),
            stretch(Some(40), None, 40),
        ];
        let slices = cut(&stretches, 4);
        assert!(slices.len() <= 4 && slices.len() >= 2, "{slices:?}");
        assert_eq!(slices[0].since, None);
        assert_eq!(slices.last().unwrap().until, None);
        assert!(slices.windows(2).all(|p| p[0].until == p[1].since));
        assert!(
            slices.contains(&Window {
                since: Some(at(20)),
                until: Some(at(30))
            }) || slices.iter().any(|s| s.until == Some(at(30))),
            "the heavy stretch ends a slice: {slices:?}"
        );
        // Even records: one slice per share.
        let even: Vec<Stretch> = (0..8)
            .map(|i| {
                stretch(
                    (i > 0).then_some(i * 10),
                    (i < 7).then_some(i * 10 + 10),
                    100,
                )
            })
            .collect();
        let slices = cut(&even, 4);
        assert_eq!(slices.len(), 4);
        assert_eq!(slices[1].since, Some(at(20)));
        assert_eq!(slices[3].until, None);
    }
}
