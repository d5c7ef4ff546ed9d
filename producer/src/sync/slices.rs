//! Where a parallel read cuts its stamp window: into `--parallel` slices holding about as many
//! records each, so that they finish together.
//!
//! Records are not spread evenly over time (a data load stamps a million records within an
//! hour, then a few change a day), so equal stretches of time would make one slice hold most
//! of them. The plan counts instead, cheaply:
//! 1. the oldest and the newest stamp, and the records to read unless `--api auto` counted
//!    them already (one Composite call, sent with the distance check): a read of
//!    `--parallel-above` records or fewer stops here;
//! 2. four Composite calls at once (one API call for five queries) counting twenty equal
//!    stretches of the span;
//! 3. up to two rounds in which every stretch that a cut falls in and that holds more than
//!    half a slice is counted again in five parts, one Composite call each, all at once.
//!
//! Each cut falls inside the stretch holding its `1/parallel` of the total, where it would be
//! were the stretch's records spread evenly. A stretch one second wide cannot be cut (SOQL
//! compares whole seconds): a mass update stamping most records in one second leaves one
//! slice heavier than the others.
//!
//! A full read of 300,000 records into eight slices costs five calls and two round trips
//! this way (more where records crowd together), against the 150 calls the read itself costs.

use anyhow::Context as _;
use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use salesforce::composite::MAX_QUERIES;

use super::{
    run::Run,
    windows::{self, Window},
};
use crate::{salesforce::SfError, soql};

/// Stretches the first round counts (four Composite calls at once).
/// Twenty stretches of records spread about evenly over time hold under half a slice each for
/// eight slices, so no second round is needed unless the records crowd together.
const FIRST_STRETCHES: usize = 4 * MAX_QUERIES;
/// Rounds of recounting the stretches cuts fall in, at most.
const ROUNDS: usize = 2;

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
    // The distance, the stamps' span and (unless counted already) the records to read, at
    // once: one round trip and one API call (wasted when the org turns out near). Cutting the
    // span the records hold, not up to now, keeps the first stretches fine where records
    // stopped changing long ago.
    let (far, span) = tokio::join!(org_is_far(run), span(run, stamp, window, counted));
    if !far {
        return Ok(vec![window]);
    }
    let (bounds, total) = span?;
    let Some((oldest, newest)) = bounds else {
        return Ok(vec![window]);
    };
    let parallel = parallel.min(usize::try_from(total / per_slice.max(1)).unwrap_or(usize::MAX));
    if total <= parallel_above || parallel <= 1 {
        return Ok(vec![window]);
    }
    let low = window.since.unwrap_or(oldest).max(oldest);
    let high = whole_second(newest) + TimeDelta::seconds(1);
    if high <= low + TimeDelta::seconds(1) {
        return Ok(vec![window]);
    }
    // First round, four Composite calls at once: twenty equal stretches of the span.
    let mut stretches = count(run, split(window, low, high, FIRST_STRETCHES)).await?;
    // Then rounds of recounting: every stretch a cut falls in, holding more than half a
    // slice's share, is counted again in five parts, one Composite call each, all at once, so
    // that a round costs one round trip and no more calls than there are cuts. Within a
    // smaller stretch the cut is placed by interpolation (see `cut`).
    let precision = (total / parallel as u64 / 2).max(1);
    for _ in 0..ROUNDS {
        let heavy: Vec<usize> = holding_cuts(&stretches, parallel)
            .into_iter()
            .filter(|&i| {
                stretches[i].records > precision && stretches[i].window.halves(high).is_some()
            })
            .collect();
        if heavy.is_empty() {
            break;
        }
        let recounts = heavy.iter().map(|&i| {
            let (from, to) = ends(stretches[i].window, low, high);
            count(run, split(stretches[i].window, from, to, MAX_QUERIES))
        });
        let parts = futures::future::try_join_all(recounts).await?;
        for (&i, parts) in heavy.iter().zip(parts).rev() {
            stretches.splice(i..=i, parts);
        }
    }
    let slices = cut(window, &stretches, parallel, (low, high));
    tracing::info!(
        object = run.object(),
        records = total,
        slices = slices.len(),
        "Reading the records in slices at once."
    );
    Ok(slices)
}

/// Whether reading at once pays: the org is at least `--parallel-min-latency` away, as one
/// call that costs nothing measures it (not a query, whose time is mostly the org's own work).
/// Near, one page after the other is as fast and holds less memory.
pub(super) async fn org_is_far(run: &Run<'_>) -> bool {
    let min_latency = run.options.parallel_min_latency;
    if min_latency.is_zero() {
        return true;
    }
    let took = run.sf.round_trip().await;
    let far = took.is_none_or(|t| t >= min_latency);
    if !far {
        tracing::debug!(
            object = run.object(),
            ?took,
            "The org answers fast: reading one page after the other."
        );
    }
    far
}

/// The oldest and the newest stamp of the run's live records (whole seconds; `None` when it
/// has none), and the records `window` holds (`counted`, or counted here): one Composite call.
async fn span(
    run: &Run<'_>,
    stamp: &str,
    window: Window,
    counted: Option<u64>,
) -> anyhow::Result<(Option<(DateTime<Utc>, DateTime<Utc>)>, u64)> {
    let select = run.query().select(&[stamp], soql::Order::None)?;
    let mut soqls = vec![
        format!("{select} ORDER BY {stamp} ASC LIMIT 1"),
        format!("{select} ORDER BY {stamp} DESC LIMIT 1"),
    ];
    if counted.is_none() {
        soqls.push(window.apply(run.query()).count()?);
    }
    let mut answers = run.sf.sized_queries(&soqls).await?.into_iter();
    let mut ends = Vec::with_capacity(2);
    for answer in answers.by_ref().take(2) {
        let first = answer?.1.into_iter().next();
        let end = first
            .and_then(|r| r.get(stamp)?.as_str().map(common::sftime::parse_datetime))
            .transpose()
            .with_context(|| format!("the {stamp} of the oldest or newest record"))?;
        ends.push(end.map(whole_second));
    }
    let total = match (counted, answers.next()) {
        (Some(total), _) => total,
        (None, Some(answer)) => answer?.0,
        (None, None) => anyhow::bail!("the Composite call answered fewer queries than asked"),
    };
    let ends = match ends[..] {
        [Some(oldest), Some(newest)] => Some((oldest, newest)),
        _ => None,
    };
    Ok((ends, total))
}

/// Each stretch's `COUNT()`, five to a Composite call, the calls at once. A count Salesforce
/// timed out counts as the most any other stretch holds, so that it is more likely cut again
/// than left whole.
///
/// # Errors
/// A call failed whole, or a count failed otherwise than by timing out.
async fn count(run: &Run<'_>, windows: Vec<Window>) -> anyhow::Result<Vec<Stretch>> {
    let mut counted = Vec::with_capacity(windows.len());
    let calls = windows.chunks(MAX_QUERIES).map(|group| async move {
        let soqls = group
            .iter()
            .map(|w| w.apply(run.query()).count())
            .collect::<Result<Vec<_>, _>>()?;
        Ok::<_, anyhow::Error>(run.sf.counts(&soqls).await?)
    });
    let answers = futures::future::try_join_all(calls).await?;
    for (group, answers) in windows.chunks(MAX_QUERIES).zip(answers) {
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

/// The stretches a cut between slices falls inside of (not on a boundary): those whose records
/// straddle a multiple of `total / parallel`, in order.
fn holding_cuts(stretches: &[Stretch], parallel: usize) -> Vec<usize> {
    let total: u64 = stretches.iter().map(|s| s.records).sum();
    let parallel = parallel.max(1) as u64;
    let mut before = 0u64;
    let mut holding = Vec::new();
    for (i, s) in stretches.iter().enumerate() {
        let after = before + s.records;
        // The first cut past `before`; held when it falls strictly inside.
        let mut k = before * parallel / total.max(1);
        while k < parallel && total * k / parallel <= before {
            k += 1;
        }
        if k < parallel && total * k / parallel < after {
            holding.push(i);
        }
        before = after;
    }
    holding
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
    between(window, cuts)
}

/// `window` cut at `cuts` (increasing, inside it): the first part keeps the window's lower
/// end and the last its upper end, open or not.
fn between(window: Window, cuts: Vec<DateTime<Utc>>) -> Vec<Window> {
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

/// `window`, made of the consecutive `stretches`, cut into at most `parallel` slices of about
/// equal records: each cut falls inside the stretch that holds its share of the running
/// count, where that share would end were the stretch's records spread evenly over its time
/// (`low` and `high` stand for the open ends). The guess is off by less than the stretch
/// holds, which the plan's recounting keeps under half a slice.
fn cut(
    window: Window,
    stretches: &[Stretch],
    parallel: usize,
    (low, high): (DateTime<Utc>, DateTime<Utc>),
) -> Vec<Window> {
    let total: u64 = stretches.iter().map(|s| s.records).sum();
    let parallel = parallel.max(1) as u64;
    let mut cuts: Vec<DateTime<Utc>> = Vec::with_capacity(parallel as usize);
    let mut before = 0u64;
    let mut k = 1u64;
    for s in stretches {
        let after = before + s.records;
        let (from, to) = ends(s.window, low, high);
        while k < parallel && total * k / parallel < after {
            let due = total * k / parallel;
            let share = (due.saturating_sub(before)) as f64 / s.records.max(1) as f64;
            let into = ((to - from).num_milliseconds() as f64 * share) as i64;
            let at = whole_second(from + TimeDelta::milliseconds(into));
            let after_last = cuts.last().is_none_or(|last| at > *last);
            if at > low && at < high && after_last {
                cuts.push(at);
            }
            k += 1;
        }
        before = after;
    }
    between(window, cuts)
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
    fn only_stretches_a_cut_falls_in_are_recounted() {
        // 400 records, 4 slices: cuts due at 100, 200 and 300.
        let stretches = [
            stretch(None, Some(10), 100),     // ends exactly on the first cut
            stretch(Some(10), Some(20), 150), // holds the cut at 200
            stretch(Some(20), Some(30), 10),  // none
            stretch(Some(30), None, 140),     // holds the cut at 300
        ];
        assert_eq!(holding_cuts(&stretches, 4), vec![1, 3]);
        // One stretch holding everything holds every cut, once.
        assert_eq!(holding_cuts(&[stretch(None, None, 1000)], 8), vec![0]);
        assert!(holding_cuts(&[], 4).is_empty());
    }

    #[test]
    fn cut_balances_records_not_time() {
        // Most records in one stretch: the cuts fall inside it, where its share ends.
        let stretches = [
            stretch(None, Some(10), 10),
            stretch(Some(10), Some(20), 10),
            stretch(Some(20), Some(30), 900),
            stretch(Some(30), Some(40), 40),
            stretch(Some(40), None, 40),
        ];
        let slices = cut(Window::from(None), &stretches, 4, (at(0), at(50)));
        assert_eq!(slices.len(), 4, "{slices:?}");
        assert_eq!(slices[0].since, None);
        assert_eq!(slices[3].until, None);
        assert!(slices.windows(2).all(|p| p[0].until == p[1].since));
        // Shares of 250: 230 into the heavy stretch (second 22.55), then 480 and 730.
        let cuts: Vec<_> = slices[..3].iter().map(|s| s.until.unwrap()).collect();
        assert_eq!(cuts, [at(22), at(25), at(28)]);

        // Even records: one slice per share, cut on the boundaries.
        let even: Vec<Stretch> = (0..8)
            .map(|i| {
                stretch(
                    (i > 0).then_some(i * 10),
                    (i < 7).then_some(i * 10 + 10),
                    100,
                )
            })
            .collect();
        let since = Window::from(Some(at(0)));
        let slices = cut(since, &even, 4, (at(0), at(80)));
        assert_eq!(slices.len(), 4);
        assert_eq!(slices[0].since, Some(at(0)));
        assert_eq!(slices[1].since, Some(at(20)));
        assert_eq!(slices[3].until, None);
        // A second cannot be cut twice: fewer slices, never an empty window.
        let one = [stretch(None, Some(1), 1000)];
        let slices = cut(Window::from(None), &one, 8, (at(0), at(1)));
        assert_eq!(slices, vec![Window::from(None)]);
    }
}
