//! Figures of a run, the table, the min/median summary and the one-line result.

use std::fmt::Write as _;

/// Everything one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunFigures {
    pub records: u64,
    pub workers: u16,
    /// Producer start until the last page of the run was committed.
    pub seconds: f64,
    /// Producer start until it exited (every page confirmed by the broker).
    pub publish_seconds: f64,
    /// With `--split` only: worker start until the last page was committed, the producer done.
    pub store_seconds: Option<f64>,
    pub copy_seconds: Option<f64>,
    /// Naive upserts, scaled to `records`.
    pub naive_seconds: Option<f64>,
    /// Records the naive baseline really stored.
    pub naive_records: u64,
    /// With `--script-baseline`: the script's own time (token request until its last commit).
    pub script_seconds: Option<f64>,
    /// With `--script-baseline`: the script process's spawn until its exit.
    pub script_wall_seconds: Option<f64>,
    /// With `--script-baseline`: the script process's CPU seconds.
    pub script_cpu_s: Option<f64>,
    /// With `--script-baseline`: the script's REST API calls.
    pub script_api_calls: Option<u64>,
    /// API calls of the sync (every call the fake org counted, the login aside).
    pub api_calls: Option<u64>,
    /// Response body bytes the fake org sent during the sync (after gzip), in MB (10^6).
    pub wire_mb: Option<f64>,
    /// With a network: the least time the sync's calls could take,
    /// `calls × latency / parallelism + bytes / bandwidth` (see [`floor_seconds`]).
    pub floor_seconds: Option<f64>,
    pub producer_rss_mib: f64,
    /// Peak RSS of the largest worker.
    pub worker_rss_mib: f64,
    /// CPU seconds of the producer (its whole life).
    pub producer_cpu_s: f64,
    /// CPU seconds of all workers while the clock ran.
    pub workers_cpu_s: f64,
    /// CPU seconds of fake-salesforce while the clock ran.
    pub fake_cpu_s: f64,
    /// Minor page faults of all workers while the clock ran.
    pub workers_faults: f64,
    /// CPU seconds of all `postgres` processes while the clock ran (backends that ended
    /// meanwhile, such as the producer's, are missed).
    pub postgres_cpu_s: f64,
    /// CPU seconds of RabbitMQ (`beam.smp`) while the clock ran.
    pub rabbitmq_cpu_s: f64,
    /// Host CPU seconds not accounted for by the above while the clock ran: the bench itself,
    /// the kernel, and anything else running on the host (a noise indicator).
    pub other_cpu_s: f64,
    /// `other_cpu_s` as a share of the host's capacity (all cores × seconds).
    pub other_pct: f64,
    /// Busy share of all cores of the host while the clock ran.
    pub host_busy_pct: f64,
}

impl RunFigures {
    pub fn ratio(&self) -> Option<f64> {
        self.copy_seconds
            .filter(|c| *c > 0.0)
            .map(|c| self.seconds / c)
    }

    /// sfsync's time divided by the script baseline's (below 1: sfsync is faster).
    pub fn script_ratio(&self) -> Option<f64> {
        self.script_seconds
            .filter(|s| *s > 0.0)
            .map(|s| self.seconds / s)
    }

    /// sfsync's time divided by its network floor (1.0: the network alone would take as long).
    pub fn floor_ratio(&self) -> Option<f64> {
        self.floor_seconds
            .filter(|f| *f > 0.0)
            .map(|f| self.seconds / f)
    }

    pub fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    /// CPU milliseconds of sfsync (producer + workers) per 1,000 records.
    pub fn cpu_ms_per_1k(&self) -> f64 {
        per_1k(self.producer_cpu_s + self.workers_cpu_s, self.records)
    }

    pub fn fake_cpu_ms_per_1k(&self) -> f64 {
        per_1k(self.fake_cpu_s, self.records)
    }
}

/// The least time a sync of `calls` API calls and `wire_bytes` bytes could take over a network
/// of `latency_ms` per call and `bandwidth_mbps` (one link all responses share), `parallelism`
/// calls at a time: `calls × latency / parallelism + bytes / bandwidth`. `None` without a
/// network.
pub fn floor_seconds(
    calls: u64,
    wire_bytes: u64,
    latency_ms: Option<u64>,
    bandwidth_mbps: Option<f64>,
    parallelism: u64,
) -> Option<f64> {
    if latency_ms.is_none() && bandwidth_mbps.is_none() {
        return None;
    }
    let waits = calls as f64 * latency_ms.unwrap_or(0) as f64 / 1000.0 / parallelism.max(1) as f64;
    let transfer = bandwidth_mbps
        .filter(|m| *m > 0.0)
        .map_or(0.0, |m| wire_bytes as f64 / (m * 1_000_000.0 / 8.0));
    Some(waits + transfer)
}

fn per_1k(cpu_s: f64, records: u64) -> f64 {
    if records == 0 {
        return 0.0;
    }
    cpu_s * 1000.0 * 1000.0 / records as f64
}

/// The columns of the table: header, and how to get the figure from a run.
type Figure = (&'static str, fn(&RunFigures) -> Option<f64>);

const FIGURES: &[Figure] = &[
    ("seconds", |r| Some(r.seconds)),
    ("publish_s", |r| Some(r.publish_seconds)),
    ("store_s", |r| r.store_seconds),
    ("rec/s", |r| Some(r.records_per_sec())),
    ("copy_s", |r| r.copy_seconds),
    ("ratio", |r| r.ratio()),
    ("naive_s", |r| r.naive_seconds),
    ("script_s", |r| r.script_seconds),
    ("vs_script", |r| r.script_ratio()),
    ("script_cpu", |r| r.script_cpu_s),
    ("script_api", |r| r.script_api_calls.map(|n| n as f64)),
    ("api_calls", |r| r.api_calls.map(|n| n as f64)),
    ("wire_MB", |r| r.wire_mb),
    ("floor_s", |r| r.floor_seconds),
    ("vs_floor", |r| r.floor_ratio()),
    ("prod_MiB", |r| Some(r.producer_rss_mib)),
    ("wrk_MiB", |r| Some(r.worker_rss_mib)),
    ("cpu_ms/1k", |r| Some(r.cpu_ms_per_1k())),
    ("prod_cpu_s", |r| Some(r.producer_cpu_s)),
    ("wrk_cpu_s", |r| Some(r.workers_cpu_s)),
    ("wrk_faults", |r| Some(r.workers_faults)),
    ("fake_ms/1k", |r| Some(r.fake_cpu_ms_per_1k())),
    ("pg_cpu_s", |r| Some(r.postgres_cpu_s)),
    ("rmq_cpu_s", |r| Some(r.rabbitmq_cpu_s)),
    ("other_cpu_s", |r| Some(r.other_cpu_s)),
    ("other%", |r| Some(r.other_pct)),
    ("host_busy%", |r| Some(r.host_busy_pct)),
];

fn cell(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{v:.0}"),
        Some(v) if v >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.3}"),
    }
}

/// The median of `values` (the mean of the middle two for an even count); `None` for none.
fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

/// Minimum and median of each figure over runs (`None` where no run has it).
pub fn min_median(runs: &[RunFigures]) -> Vec<(Option<f64>, Option<f64>)> {
    FIGURES
        .iter()
        .map(|(_, get)| {
            let values = runs.iter().filter_map(get);
            (values.clone().reduce(f64::min), median(values))
        })
        .collect()
}

/// One row per run, then `min` and `median` rows when there are several.
pub fn table(runs: &[RunFigures]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<8}", "run");
    for (name, _) in FIGURES {
        let _ = write!(out, " {name:>10}");
    }
    out.push('\n');
    for (i, run) in runs.iter().enumerate() {
        let _ = write!(out, "{:<8}", i + 1);
        for (_, get) in FIGURES {
            let _ = write!(out, " {:>10}", cell(get(run)));
        }
        out.push('\n');
    }
    if runs.len() > 1 {
        let stats = min_median(runs);
        for (label, pick) in [("min", 0), ("median", 1)] {
            let _ = write!(out, "{label:<8}");
            for s in &stats {
                let v = if pick == 0 { s.0 } else { s.1 };
                let _ = write!(out, " {:>10}", cell(v));
            }
            out.push('\n');
        }
    }
    out
}

/// The run whose figures are each the median over `runs` (the run itself for one run).
pub fn median_run(runs: &[RunFigures]) -> RunFigures {
    let Some(first) = runs.first() else {
        return RunFigures::default();
    };
    if runs.len() == 1 {
        return first.clone();
    }
    let med = |get: fn(&RunFigures) -> Option<f64>| median(runs.iter().filter_map(get));
    RunFigures {
        records: first.records,
        workers: first.workers,
        seconds: med(|r| Some(r.seconds)).unwrap_or_default(),
        publish_seconds: med(|r| Some(r.publish_seconds)).unwrap_or_default(),
        store_seconds: med(|r| r.store_seconds),
        copy_seconds: med(|r| r.copy_seconds),
        naive_seconds: med(|r| r.naive_seconds),
        naive_records: first.naive_records,
        script_seconds: med(|r| r.script_seconds),
        script_wall_seconds: med(|r| r.script_wall_seconds),
        script_cpu_s: med(|r| r.script_cpu_s),
        script_api_calls: med(|r| r.script_api_calls.map(|n| n as f64)).map(|n| n.round() as u64),
        api_calls: med(|r| r.api_calls.map(|n| n as f64)).map(|n| n.round() as u64),
        wire_mb: med(|r| r.wire_mb),
        floor_seconds: med(|r| r.floor_seconds),
        producer_rss_mib: med(|r| Some(r.producer_rss_mib)).unwrap_or_default(),
        worker_rss_mib: med(|r| Some(r.worker_rss_mib)).unwrap_or_default(),
        producer_cpu_s: med(|r| Some(r.producer_cpu_s)).unwrap_or_default(),
        workers_cpu_s: med(|r| Some(r.workers_cpu_s)).unwrap_or_default(),
        fake_cpu_s: med(|r| Some(r.fake_cpu_s)).unwrap_or_default(),
        workers_faults: med(|r| Some(r.workers_faults)).unwrap_or_default(),
        postgres_cpu_s: med(|r| Some(r.postgres_cpu_s)).unwrap_or_default(),
        rabbitmq_cpu_s: med(|r| Some(r.rabbitmq_cpu_s)).unwrap_or_default(),
        other_cpu_s: med(|r| Some(r.other_cpu_s)).unwrap_or_default(),
        other_pct: med(|r| Some(r.other_pct)).unwrap_or_default(),
        host_busy_pct: med(|r| Some(r.host_busy_pct)).unwrap_or_default(),
    }
}

/// The machine-readable last line (medians over runs when there are several). Its
/// `cpu_ms_per_1k` is the median of the runs' own values, as in the table: the producer's and
/// the workers' medians may come from different runs, and their sum from none.
pub fn last_line(runs: &[RunFigures]) -> String {
    let m = median_run(runs);
    let cpu_ms_per_1k = median(runs.iter().map(RunFigures::cpu_ms_per_1k)).unwrap_or_default();
    let opt = |v: Option<f64>, decimals: usize| {
        v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
    };
    format!(
        "records={} workers={} seconds={:.3} copy_seconds={} ratio={} naive_seconds={} \
         producer_rss_mib={:.1} worker_rss_mib={:.1} cpu_ms_per_1k={:.1} \
         publish_seconds={:.3} fake_cpu_ms_per_1k={:.1} runs={}",
        m.records,
        m.workers,
        m.seconds,
        opt(m.copy_seconds, 3),
        opt(m.ratio(), 2),
        opt(m.naive_seconds, 1),
        m.producer_rss_mib,
        m.worker_rss_mib,
        cpu_ms_per_1k,
        m.publish_seconds,
        m.fake_cpu_ms_per_1k(),
        runs.len()
    )
}

/// What the last line ends with beside the other suffixes: the sync's API calls and bytes on
/// the wire, and with a network, its floor and `seconds / floor` (medians over runs).
pub fn network_suffix(runs: &[RunFigures]) -> String {
    let m = median_run(runs);
    let opt = |v: Option<f64>, decimals: usize| {
        v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
    };
    format!(
        " api_calls={} wire_mb={} floor_seconds={} floor_ratio={}",
        m.api_calls
            .map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
        opt(m.wire_mb, 1),
        opt(m.floor_seconds, 3),
        opt(median(runs.iter().filter_map(RunFigures::floor_ratio)), 2),
    )
}

/// What `--script-baseline` appends to the last line (after everything else, so the keys
/// before it stay where they were): the script's time, sfsync's time divided by it, and the
/// script's wall time and API calls, medians over runs. As with `ratio`, `script_ratio` is the
/// median seconds over the script's median seconds. Empty when the script did not run.
pub fn script_suffix(runs: &[RunFigures]) -> String {
    if runs.iter().all(|r| r.script_seconds.is_none()) {
        return String::new();
    }
    let m = median_run(runs);
    let opt = |v: Option<f64>, decimals: usize| {
        v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
    };
    format!(
        " script_seconds={} script_ratio={} script_wall_seconds={} script_api_calls={}",
        opt(m.script_seconds, 3),
        opt(m.script_ratio(), 3),
        opt(m.script_wall_seconds, 3),
        m.script_api_calls
            .map_or_else(|| "n/a".to_owned(), |n| n.to_string())
    )
}

/// What `--compare-records` appends to the last line: the other size, its CPU per 1,000
/// records (median) and the ratio of ours to it. The ratio is the median of each pair's own
/// ratio (run i of both sizes ran one after the other), not a ratio of two medians, so the
/// host's drift between rounds cancels out.
pub fn comparison_suffix(runs: &[RunFigures], others: &[RunFigures]) -> String {
    let Some(first) = others.first() else {
        return String::new();
    };
    let other_cpu = median(others.iter().map(RunFigures::cpu_ms_per_1k)).unwrap_or_default();
    let ratios = runs
        .iter()
        .zip(others)
        .map(|(ours, other)| ours.cpu_ms_per_1k() / other.cpu_ms_per_1k())
        .filter(|r| r.is_finite());
    let ratio = median(ratios).map_or_else(|| "n/a".to_owned(), |r| format!("{r:.2}"));
    format!(
        " compare_records={} compare_cpu_ms_per_1k={other_cpu:.1} cpu_ratio={ratio}",
        first.records
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_latency_over_parallelism_plus_bytes_over_bandwidth() {
        assert_eq!(floor_seconds(150, 1_000_000, None, None, 8), None);
        // 160 calls of 300 ms, 8 at a time: 6 s.
        let f = floor_seconds(160, 0, Some(300), None, 8).unwrap();
        assert!((f - 6.0).abs() < 1e-9, "{f}");
        // 50 MB over 50 Mbit/s (6.25 MB/s): 8 s, however many calls run at once.
        let f = floor_seconds(10, 50_000_000, None, Some(50.0), 8).unwrap();
        assert!((f - 8.0).abs() < 1e-9, "{f}");
        let f = floor_seconds(10, 50_000_000, Some(100), Some(50.0), 1).unwrap();
        assert!((f - 9.0).abs() < 1e-9, "{f}");
    }

    fn run(seconds: f64, copy: f64) -> RunFigures {
        RunFigures {
            records: 300_000,
            workers: 4,
            seconds,
            publish_seconds: 1.0,
            store_seconds: None,
            copy_seconds: Some(copy),
            naive_seconds: Some(600.0),
            naive_records: 15_000,
            script_seconds: None,
            script_wall_seconds: None,
            script_cpu_s: None,
            script_api_calls: None,
            api_calls: Some(160),
            wire_mb: Some(12.5),
            floor_seconds: None,
            producer_rss_mib: 20.0,
            worker_rss_mib: 40.0,
            producer_cpu_s: 1.5,
            workers_cpu_s: 3.0,
            fake_cpu_s: 0.6,
            workers_faults: 40_000.0,
            postgres_cpu_s: 2.0,
            rabbitmq_cpu_s: 1.0,
            other_cpu_s: 0.5,
            other_pct: 5.0,
            host_busy_pct: 90.0,
        }
    }

    #[test]
    fn last_line_has_the_agreed_keys_in_order() {
        let line = last_line(&[run(3.5, 1.0)]);
        assert_eq!(
            line,
            "records=300000 workers=4 seconds=3.500 copy_seconds=1.000 ratio=3.50 \
             naive_seconds=600.0 producer_rss_mib=20.0 worker_rss_mib=40.0 cpu_ms_per_1k=15.0 \
             publish_seconds=1.000 fake_cpu_ms_per_1k=2.0 runs=1"
        );
    }

    #[test]
    fn several_runs_report_medians() {
        let runs = [run(4.0, 1.0), run(3.0, 1.0), run(5.0, 2.0)];
        let line = last_line(&runs);
        assert!(line.contains("seconds=4.000 copy_seconds=1.000"), "{line}");
        // The ratio is that of the medians, not the median of the ratios.
        assert!(line.contains("ratio=4.00"), "{line}");
        let stats = min_median(&runs);
        assert_eq!(stats[0], (Some(3.0), Some(4.0)));
        let table = table(&runs);
        assert!(table.lines().any(|l| l.starts_with("median")), "{table}");
    }

    #[test]
    fn cpu_per_1k_is_the_median_of_the_runs() {
        // Totals 0.2, 0.3 and 0.3 CPU s; the medians of the parts (0.1 + 0.1) make 0.2.
        let parts = [(0.1, 0.1), (0.3, 0.0), (0.0, 0.3)];
        let runs = parts.map(|(producer, workers)| RunFigures {
            producer_cpu_s: producer,
            workers_cpu_s: workers,
            ..run(3.0, 1.0)
        });
        let line = last_line(&runs);
        assert!(line.contains("cpu_ms_per_1k=1.0 "), "{line}");
    }

    #[test]
    fn comparison_takes_the_median_of_paired_ratios() {
        let cpu = |records: u64, total: f64| RunFigures {
            records,
            producer_cpu_s: total,
            workers_cpu_s: 0.0,
            ..run(3.0, 1.0)
        };
        // ms per 1k: small 10, 12, 9; large 8, 10, 9 -> pairs 1.25, 1.20, 1.00. The ratio of
        // the medians (10 / 9) would be 1.11.
        let small = [cpu(30_000, 0.30), cpu(30_000, 0.36), cpu(30_000, 0.27)];
        let large = [
            cpu(1_000_000, 8.0),
            cpu(1_000_000, 10.0),
            cpu(1_000_000, 9.0),
        ];
        assert_eq!(
            comparison_suffix(&small, &large),
            " compare_records=1000000 compare_cpu_ms_per_1k=9.0 cpu_ratio=1.20"
        );
        assert_eq!(comparison_suffix(&small, &[]), "");
        let idle = [cpu(1_000_000, 0.0)];
        assert!(comparison_suffix(&small[..1], &idle).ends_with("cpu_ratio=n/a"));
    }

    #[test]
    fn the_script_baseline_adds_its_keys_at_the_end() {
        assert_eq!(script_suffix(&[run(3.0, 1.0)]), "");
        let scripted = |seconds: f64, script: f64, calls: u64| RunFigures {
            script_seconds: Some(script),
            script_wall_seconds: Some(script + 0.4),
            script_cpu_s: Some(script / 2.0),
            script_api_calls: Some(calls),
            ..run(seconds, 1.0)
        };
        let one = [scripted(3.0, 60.0, 151)];
        assert_eq!(one[0].script_ratio(), Some(0.05));
        assert_eq!(
            script_suffix(&one),
            " script_seconds=60.000 script_ratio=0.050 script_wall_seconds=60.400 \
             script_api_calls=151"
        );
        // The agreed keys stay as they were; the script's come after them.
        assert!(last_line(&one).ends_with("runs=1"));
        let three = [
            scripted(4.0, 50.0, 151),
            scripted(3.0, 40.0, 151),
            scripted(5.0, 60.0, 152),
        ];
        let suffix = script_suffix(&three);
        assert!(
            suffix.starts_with(" script_seconds=50.000 script_ratio=0.080 "),
            "{suffix}"
        );
        assert!(suffix.ends_with("script_api_calls=151"), "{suffix}");
        let table = table(&three);
        assert!(
            table.lines().next().unwrap().contains("vs_script"),
            "{table}"
        );
    }

    #[test]
    fn missing_baselines_print_as_na() {
        let mut r = run(3.0, 1.0);
        r.copy_seconds = None;
        r.naive_seconds = None;
        let line = last_line(&[r]);
        assert!(
            line.contains("copy_seconds=n/a ratio=n/a naive_seconds=n/a"),
            "{line}"
        );
    }
}
