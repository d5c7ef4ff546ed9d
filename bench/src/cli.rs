//! The benchmark's command line.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

/// sfsync benchmark: imports N Contacts from a local fake-salesforce through RabbitMQ into
/// PostgreSQL with W worker processes and times it against a raw COPY of the same rows (the
/// limit) and the naive one-upsert-per-record way (what sfsync replaces).
///
/// Needs the release binaries next to this one:
/// `cargo build --release -p producer -p worker -p fake-salesforce`.
#[derive(Debug, Clone, Parser)]
#[command(name = "bench", version, about, long_about = None)]
pub struct BenchArgs {
    /// Contacts in the fake org (it also gets records/10 Accounts).
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub records: u32,
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// Repeat the whole run this many times (each with a fresh database and vhost) and report
    /// the minimum and median of every figure.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub runs: u32,
    /// Passed to each worker as `--prefetch` (default: the worker's own default).
    #[arg(long)]
    pub prefetch: Option<u16>,
    /// Passed to each worker as `--concurrency` (default: the worker's own default).
    #[arg(long)]
    pub concurrency: Option<u16>,
    /// Passed to the producer as `--page-size` (default: the producer's own default).
    #[arg(long)]
    pub page_size: Option<u32>,
    /// Passed to the producer as `--api` (rest, bulk or auto; default: the producer's own
    /// default, auto, which picks Bulk above 100,000 records).
    #[arg(long)]
    pub api: Option<String>,
    /// Share of the records the naive baseline really stores (it is then scaled to all of
    /// them); 0 skips it. One transaction per record is slow: 5% of 300,000 takes a while.
    #[arg(long, default_value_t = 0.05, value_parser = parse_fraction)]
    pub naive_fraction: f64,
    /// Publish everything first with no worker running, then start the workers and time the
    /// drain: separates publish time (`publish_s`) from store time (`store_s`).
    #[arg(long)]
    pub split: bool,
    /// Skip the raw COPY and naive baselines (the script baseline still runs when
    /// `--script-baseline` asks for it).
    #[arg(long)]
    pub no_baselines: bool,
    /// In each run, also time the best script a user would write (simple-salesforce
    /// `query_all_iter`, psycopg COPY into a staging table 2,000 rows a transaction, one upsert
    /// into the final table; bench/script-baseline/sf_to_pg.py) against a fresh fake org
    /// started with the same flags and records, into its own schema `script`, and report
    /// sfsync's time divided by the script's. Its Python virtualenv is made on first use by
    /// bench/scripts/script-baseline-setup.sh.
    #[arg(long)]
    pub script_baseline: bool,
    /// The Python that runs the script baseline (it needs simple-salesforce and psycopg 3);
    /// default: the virtualenv bench/scripts/script-baseline-setup.sh makes or finds.
    #[arg(long, requires = "script_baseline")]
    pub script_python: Option<PathBuf>,
    /// Passed to fake-salesforce as `--latency-ms`: every API call waits this long before it
    /// is answered, as across the internet (default: the fake's own, no latency).
    #[arg(long)]
    pub latency_ms: Option<u64>,
    /// Passed to fake-salesforce as `--bandwidth-mbps`: responses cross one link of this many
    /// megabits per second, which those sent at once share (default: the fake's own, unlimited).
    #[arg(long, value_parser = parse_positive)]
    pub bandwidth_mbps: Option<f64>,
    /// Passed to fake-salesforce as `--no-gzip`: it answers uncompressed even when asked for
    /// gzip, to see what compression saves on the wire.
    #[arg(long)]
    pub no_gzip: bool,
    /// Passed to the producer's `sync` as `--parallel` (default: the producer's own).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: Option<u16>,
    /// Before the clock starts, sync the fake org's Accounts through the same workers (the org
    /// then has at least two pages of them per worker), as deployed workers have served syncs
    /// before: the figures then leave out each worker process's first pages (memory touched for
    /// the first time, cold caches). Off by default; not with --split.
    #[arg(long, conflicts_with = "split")]
    pub warm_up: bool,
    /// After each run, one more sync of this many records (same flags, no baselines), so that
    /// CPU per 1,000 records at two sizes is measured side by side: the last line then ends
    /// with both and their ratio, the median of each pair's own ratio. The host's speed drifts
    /// by 10% and more within minutes, so sizes timed in separate series are not comparable.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub compare_records: Option<u32>,
    /// Keep the database, the vhost and the logs afterwards (for debugging); their names are
    /// printed.
    #[arg(long)]
    pub keep: bool,
    /// Data seed of the fake org.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// PostgreSQL server, without a database name; the bench creates and drops its own
    /// database there.
    #[arg(
        long,
        env = "SFSYNC_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
    /// Reach PostgreSQL over TLS (`sslmode=require`: encrypted, the certificate not checked),
    /// sfsync and both baselines alike, to see what encryption costs; the server needs
    /// `ssl = on`. Without it every connection is plain (`sslmode=disable`).
    #[arg(long)]
    pub pg_tls: bool,
    /// RabbitMQ server, without a vhost; the bench creates and deletes its own vhost with
    /// `rabbitmqctl`, which must run on this host.
    #[arg(
        long,
        env = "SFSYNC_BENCH_AMQP",
        default_value = "amqp://guest:guest@127.0.0.1:5672",
        hide_default_value = true
    )]
    pub amqp: String,
    /// RabbitMQ is the three-node cluster of `scripts/rabbitmq-cluster` (started if it is not
    /// running; `SFSYNC_CLUSTER_NAME` and `SFSYNC_CLUSTER_PORT` choose which) instead of
    /// `--amqp`: the run's vhost is made on it, and the workers and the producer get its three
    /// nodes in `AMQP_URL` (each process picks its own node). Run once with and once without
    /// it to compare one node with three.
    #[arg(long)]
    pub rabbitmq_cluster: bool,
    /// Where producer, worker and fake-salesforce are (default: next to this binary).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Before starting the clock, wait until the host's CPUs are at most this busy (in %,
    /// over one second), so that other work on the machine does not end up in the figures.
    #[arg(long, default_value_t = 20.0)]
    pub quiet_pct: f64,
    /// How long to wait for a quiet host before running anyway (with a warning); 0 does not
    /// wait.
    #[arg(long, default_value_t = 120)]
    pub quiet_wait_secs: u64,
    /// Discard and repeat a run (at most 3 times) when CPU use not accounted for by sfsync,
    /// fake-salesforce, PostgreSQL and RabbitMQ (other work on the host) exceeded this share
    /// (in %) of the host's capacity while the clock ran; 100 keeps every run.
    #[arg(long, default_value_t = 15.0)]
    pub max_other_pct: f64,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
}

impl BenchArgs {
    /// The flags of the `--compare-records` syncs, if asked for.
    pub fn comparison(&self) -> Option<Self> {
        self.compare_records.map(|records| Self {
            records,
            no_baselines: true,
            script_baseline: false,
            compare_records: None,
            ..self.clone()
        })
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Records the naive baseline stores (0 when skipped).
    pub fn naive_records(&self) -> u64 {
        if self.no_baselines || self.naive_fraction <= 0.0 {
            return 0;
        }
        ((f64::from(self.records) * self.naive_fraction).ceil() as u64).max(1)
    }
}

fn parse_fraction(s: &str) -> Result<f64, String> {
    let f: f64 = s
        .parse()
        .map_err(|_| format!("{s:?} is not a number such as 0.05"))?;
    if (0.0..=1.0).contains(&f) {
        Ok(f)
    } else {
        Err(format!("{s} is not between 0 and 1"))
    }
}

fn parse_positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!("{s:?} is not a number above 0 such as 50 or 0.5")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_share_rounds_up_and_can_be_skipped() {
        let args = BenchArgs::parse_from(["bench", "--records", "300000"]);
        assert_eq!(args.naive_records(), 15_000);
        let args = BenchArgs::parse_from(["bench", "--records", "10", "--naive-fraction", "0.01"]);
        assert_eq!(args.naive_records(), 1);
        let args = BenchArgs::parse_from(["bench", "--naive-fraction", "0"]);
        assert_eq!(args.naive_records(), 0);
        assert!(BenchArgs::try_parse_from(["bench", "--naive-fraction", "2"]).is_err());
    }

    #[test]
    fn comparison_runs_the_other_size_without_baselines() {
        let args = BenchArgs::parse_from(["bench", "--records", "30000", "--workers", "2"]);
        assert!(args.comparison().is_none());
        let args = BenchArgs::parse_from([
            "bench",
            "--records",
            "30000",
            "--compare-records",
            "1000000",
            "--workers",
            "2",
        ]);
        let other = args.comparison().unwrap();
        assert_eq!((other.records, other.workers), (1_000_000, 2));
        assert_eq!(other.naive_records(), 0);
        assert!(other.comparison().is_none());
        assert!(BenchArgs::try_parse_from(["bench", "--compare-records", "0"]).is_err());
    }

    #[test]
    fn the_comparison_size_runs_no_script_baseline() {
        let args = BenchArgs::parse_from([
            "bench",
            "--script-baseline",
            "--compare-records",
            "1000",
            "--latency-ms",
            "300",
        ]);
        assert!(args.script_baseline);
        let other = args.comparison().unwrap();
        assert!(!other.script_baseline);
        // The same network for both sizes.
        assert_eq!(other.latency_ms, Some(300));
        assert!(
            BenchArgs::try_parse_from(["bench", "--script-python", "/usr/bin/python3"]).is_err()
        );
    }

    #[test]
    fn warm_up_needs_workers_running_during_the_publish() {
        assert!(BenchArgs::parse_from(["bench", "--warm-up"]).warm_up);
        let both = BenchArgs::try_parse_from(["bench", "--warm-up", "--split"]).unwrap_err();
        assert!(both.to_string().contains("--split"), "{both}");
    }
}
