//! How far a run's confirmed pages reach when its slices are read at once, and so where the
//! watermark may go.
//!
//! A run reads one or more slices: consecutive stamp windows `[since, until)`, the last one
//! open above. Each slice's pages come in stamp order, and the broker confirms them in the
//! order they were published, so within a slice everything stamped before its last confirmed
//! page's stamp is stored. Across slices, the watermark is gap-free: it only moves past a
//! slice once that slice is finished (its fetcher read its last page and every page it handed
//! over is confirmed), and otherwise stops at the first unfinished slice's own progress.
//!
//! What later slices confirmed beyond the watermark is kept apart, as ranges
//! ([`Coverage::ahead`]), so that a run stopped half-way is resumed by reading only what no
//! slice confirmed (see `sfsync.confirmed_ahead`).

use chrono::{DateTime, Utc};

use super::windows::Window;

/// One slice's progress.
#[derive(Debug, Clone)]
struct Slice {
    window: Window,
    /// The last confirmed page's last stamp: every record stamped before it is stored.
    confirmed_to: Option<DateTime<Utc>>,
    handed: u64,
    confirmed: u64,
    /// Set when the fetcher read the slice's last page; for a slice open above, what it then
    /// covers when more than its last stamp (a Bulk job's creation).
    finished: Option<Option<DateTime<Utc>>>,
}

impl Slice {
    fn done(&self) -> bool {
        self.finished.is_some() && self.confirmed == self.handed
    }

    /// Until where this slice's records are stored (exclusive): `None` when nothing is known
    /// (an open lower end and no page confirmed).
    fn reach(&self) -> Option<DateTime<Utc>> {
        let progress = self.confirmed_to.max(self.window.since);
        if !self.done() {
            return progress;
        }
        match self.window.until {
            Some(until) => Some(until),
            None => self.finished.flatten().max(progress),
        }
    }
}

/// The slices of one run and how far each is confirmed.
#[derive(Debug, Clone)]
pub(super) struct Coverage {
    slices: Vec<Slice>,
    /// What `sfsync.confirmed_ahead` holds for the object: what an earlier run left, then what
    /// [`ahead_changed`](Self::ahead_changed) last returned; `None` when not known, so that the
    /// first call records the run's own ranges (none, at first) whatever was there.
    recorded_ahead: Option<Vec<(DateTime<Utc>, DateTime<Utc>)>>,
}

impl Coverage {
    /// `windows` in ascending order, each read by its own fetcher; `recorded` is what
    /// `sfsync.confirmed_ahead` holds for the object, if known (nothing is written while the
    /// ranges stay as recorded, so a run that is not cut writes nothing there).
    pub fn new(windows: &[Window], recorded: Option<Vec<(DateTime<Utc>, DateTime<Utc>)>>) -> Self {
        Self {
            slices: windows
                .iter()
                .map(|&window| Slice {
                    window,
                    confirmed_to: None,
                    handed: 0,
                    confirmed: 0,
                    finished: None,
                })
                .collect(),
            recorded_ahead: recorded,
        }
    }

    /// The slices' windows, in order.
    pub fn windows(&self) -> Vec<Window> {
        self.slices.iter().map(|s| s.window).collect()
    }

    /// A page of `slice` went to the broker.
    pub fn handed(&mut self, slice: usize) {
        if let Some(s) = self.slices.get_mut(slice) {
            s.handed += 1;
        }
    }

    /// A page of `slice` was confirmed; `last_stamp` is its last record's stamp, for pages in
    /// stamp order.
    pub fn confirmed(&mut self, slice: usize, last_stamp: Option<DateTime<Utc>>) {
        if let Some(s) = self.slices.get_mut(slice) {
            s.confirmed += 1;
            s.confirmed_to = s.confirmed_to.max(last_stamp);
        }
    }

    /// The fetcher of `slice` read its last page; `reached` is what an open slice then covers
    /// beyond its last stamp (a Bulk job's creation), if anything.
    pub fn finished(&mut self, slice: usize, reached: Option<DateTime<Utc>>) {
        if let Some(s) = self.slices.get_mut(slice) {
            s.finished = Some(reached);
        }
    }

    /// Whether every slice is finished and confirmed.
    pub fn complete(&self) -> bool {
        self.slices.iter().all(Slice::done)
    }

    /// Where the watermark may go: everything stamped before it is stored. `None` while
    /// nothing is known (a full read whose first slice has no confirmed page yet).
    pub fn watermark(&self) -> Option<DateTime<Utc>> {
        match self.slices.iter().find(|s| !s.done()) {
            Some(first_unfinished) => first_unfinished.reach(),
            None => self.slices.last().and_then(Slice::reach),
        }
    }

    /// [`ahead`](Self::ahead) when it differs from what is recorded (`Some(empty)` once it
    /// empties): what to record for a resumed run, without a write per page.
    pub fn ahead_changed(&mut self) -> Option<Vec<(DateTime<Utc>, DateTime<Utc>)>> {
        let ahead = self.ahead();
        (self.recorded_ahead.as_ref() != Some(&ahead)).then(|| {
            self.recorded_ahead = Some(ahead.clone());
            ahead
        })
    }

    /// Stamp ranges `[from, to)` stored beyond the watermark by later slices, in order.
    pub fn ahead(&self) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let Some(first_unfinished) = self.slices.iter().position(|s| !s.done()) else {
            return Vec::new();
        };
        self.slices[first_unfinished + 1..]
            .iter()
            .filter_map(|s| Some((s.window.since?, s.reach()?)))
            .filter(|(from, to)| from < to)
            .collect()
    }
}

/// The parts of `window` that `ahead` (ranges stored by an earlier run, each ending `overlap`
/// earlier, for records committed late) does not cover, in ascending order.
pub(super) fn uncovered(
    window: Window,
    ahead: &[(DateTime<Utc>, DateTime<Utc>)],
    overlap: chrono::TimeDelta,
) -> Vec<Window> {
    let mut parts = Vec::new();
    let mut since = window.since;
    let mut ranges: Vec<_> = ahead
        .iter()
        .map(|&(from, to)| (from, to - overlap))
        .filter(|(from, to)| from < to && since.is_none_or(|s| *to > s))
        .collect();
    ranges.sort();
    for (from, to) in ranges {
        if since.is_none_or(|s| from > s) {
            parts.push(Window {
                since,
                until: Some(from),
            });
        }
        since = Some(since.map_or(to, |s| s.max(to)));
    }
    parts.push(Window {
        since,
        until: window.until,
    });
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + i64::from(s), 0).unwrap()
    }

    fn slices() -> Coverage {
        Coverage::new(
            &[
                Window {
                    since: None,
                    until: Some(at(100)),
                },
                Window {
                    since: Some(at(100)),
                    until: Some(at(200)),
                },
                Window {
                    since: Some(at(200)),
                    until: None,
                },
            ],
            None,
        )
    }

    #[test]
    fn the_watermark_waits_for_the_first_unfinished_slice() {
        let mut c = slices();
        assert_eq!(
            c.watermark(),
            None,
            "nothing confirmed in an open first slice"
        );
        // The later slices run ahead.
        c.handed(1);
        c.confirmed(1, Some(at(150)));
        c.handed(2);
        c.confirmed(2, Some(at(250)));
        assert_eq!(c.watermark(), None);
        assert_eq!(c.ahead(), vec![(at(100), at(150)), (at(200), at(250))]);
        c.handed(0);
        c.confirmed(0, Some(at(40)));
        assert_eq!(c.watermark(), Some(at(40)));
        // Slice 0's fetcher is done but a page is still unconfirmed: not past it yet.
        c.handed(0);
        c.finished(0, None);
        assert_eq!(c.watermark(), Some(at(40)));
        c.confirmed(0, Some(at(90)));
        assert_eq!(
            c.watermark(),
            Some(at(150)),
            "slice 0 done: up to slice 1's progress"
        );
        c.finished(1, None);
        assert_eq!(
            c.watermark(),
            Some(at(250)),
            "slice 1 done: its whole window"
        );
        assert_eq!(c.ahead(), vec![]);
        assert!(!c.complete());
        c.finished(2, None);
        assert!(c.complete());
        assert_eq!(
            c.watermark(),
            Some(at(250)),
            "the open slice reaches its last stamp"
        );
    }

    #[test]
    fn ranges_are_recorded_only_when_they_differ_from_the_table() {
        let mut c = slices();
        assert_eq!(
            c.ahead_changed(),
            Some(vec![]),
            "not knowing the table, the first call replaces what an earlier run left"
        );
        assert_eq!(c.ahead_changed(), None);
        let mut quiet = Coverage::new(&c.windows(), Some(vec![]));
        assert_eq!(
            quiet.ahead_changed(),
            None,
            "nothing recorded, nothing to write"
        );
        let mut stale = Coverage::new(&c.windows(), Some(vec![(at(300), at(400))]));
        assert_eq!(
            stale.ahead_changed(),
            Some(vec![]),
            "an earlier run's ranges go"
        );
        c.handed(1);
        c.confirmed(1, Some(at(150)));
        assert_eq!(c.ahead_changed(), Some(vec![(at(100), at(150))]));
        assert_eq!(c.ahead_changed(), None);
        c.finished(0, None);
        assert_eq!(c.ahead_changed(), Some(vec![]), "the watermark passed it");
    }

    #[test]
    fn an_empty_or_bulk_open_slice_reaches_its_start_or_the_job() {
        let mut c = slices();
        c.finished(0, None);
        c.finished(1, None);
        c.finished(2, None);
        assert_eq!(c.watermark(), Some(at(200)), "nothing read above 200");
        let mut bulk = slices();
        bulk.finished(0, None);
        bulk.finished(1, None);
        bulk.handed(2);
        bulk.confirmed(2, None);
        bulk.finished(2, Some(at(300)));
        assert_eq!(
            bulk.watermark(),
            Some(at(300)),
            "a Bulk job covers until it was created"
        );
    }

    #[test]
    fn a_resumed_run_reads_only_the_gaps() {
        let window = Window {
            since: Some(at(40)),
            until: None,
        };
        let ahead = [(at(100), at(150)), (at(200), at(260))];
        let parts = uncovered(window, &ahead, chrono::TimeDelta::seconds(10));
        assert_eq!(
            parts,
            vec![
                Window {
                    since: Some(at(40)),
                    until: Some(at(100))
                },
                Window {
                    since: Some(at(140)),
                    until: Some(at(200))
                },
                Window {
                    since: Some(at(250)),
                    until: None
                },
            ]
        );
        // A full read (open below) with a range already behind it.
        let parts = uncovered(
            Window::from(None),
            &[(at(0), at(50))],
            chrono::TimeDelta::zero(),
        );
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].until, Some(at(0)));
        assert_eq!(parts[1].since, Some(at(50)));
        // Ranges the window already passed change nothing.
        let parts = uncovered(
            Window::from(Some(at(500))),
            &ahead,
            chrono::TimeDelta::zero(),
        );
        assert_eq!(parts, vec![Window::from(Some(at(500)))]);
    }
}
