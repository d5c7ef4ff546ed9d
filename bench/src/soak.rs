//! The soak: `producer sync --watch` against a fake org whose objects change every second, for
//! as long as asked (an hour by default), with the real binaries as processes. It prints what
//! a daemon that runs for months must keep flat or bounded: the producer's resident memory and
//! open file descriptors over time, `sfsync.page_results` and `sfsync.runs` against the
//! retention, the latency from a change in the org to its row (median, 95th percentile, worst),
//! the API calls per pass, and whether every table equals the org at the end (`producer
//! reconcile --dry-run`).

use std::{
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use clap::Parser;

use crate::{
    http::{http, http_with},
    launch::{free_port, wait_for_http, wait_for_log},
    procs::{Binaries, Proc},
    services::Env,
};

/// Flags of `soak`.
#[derive(Debug, Clone, Parser)]
#[command(about = "Soak of sync --watch: memory, descriptors, bookkeeping and latency over time")]
pub struct SoakArgs {
    /// How long the org keeps changing.
    #[arg(long, default_value_t = 60)]
    pub minutes: u64,
    /// Plain custom objects watched (Plain_01__c, ...).
    #[arg(long, default_value_t = 10)]
    pub objects: u32,
    /// Records of each object at the start.
    #[arg(long, default_value_t = 2_000)]
    pub records: u32,
    /// `--interval` of the watch, in seconds.
    #[arg(long, default_value_t = 5)]
    pub interval_secs: u64,
    /// Records updated each second (in one object, the objects in turn); every tenth second
    /// also creates one and deletes one.
    #[arg(long, default_value_t = 3)]
    pub changes_per_sec: u32,
    /// `--retention` of the watch, in minutes (short, so that pruning shows within the soak).
    #[arg(long, default_value_t = 10)]
    pub retention_minutes: u64,
    #[arg(long, default_value_t = 2)]
    pub workers: u16,
    /// Where the release binaries are (default: next to this one).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    #[arg(
        long,
        env = "SFSYNC_BENCH_PG",
        default_value = "postgres://postgres@127.0.0.1:5432"
    )]
    pub pg: String,
    #[arg(
        long,
        env = "SFSYNC_BENCH_AMQP",
        default_value = "amqp://guest:guest@127.0.0.1:5672"
    )]
    pub amqp: String,
}

/// One look at the producer and the bookkeeping.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    page_results: i64,
    runs: i64,
}

/// Runs the soak and prints its figures.
///
/// # Errors
/// A binary is missing or failed, or a service is unreachable.
pub async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let bins = Binaries::locate(args.bin_dir.as_deref())?;
    let amqp = crate::services::Broker::Local(args.amqp.clone());
    let env = Env::create(&args.pg, amqp, false, false).await?;
    let result = soak(&args, &bins, &env).await;
    env.teardown().await?;
    result
}

async fn soak(args: &SoakArgs, bins: &Binaries, env: &Env) -> anyhow::Result<()> {
    let log_dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&log_dir)?;
    let objects: Vec<String> = (1..=args.objects)
        .map(|i| format!("Plain_{i:02}__c"))
        .collect();
    let records: Vec<String> = objects
        .iter()
        .map(|o| format!("{o}={}", args.records))
        .collect();
    let port = free_port()?;
    let mut fake = Proc::spawn(
        "fake-salesforce",
        &bins.fake_salesforce,
        &[
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--shape".into(),
            "real".into(),
            "--plain-objects".into(),
            args.objects.to_string(),
            "--records".into(),
            records.join(","),
            "--api-limit".into(),
            "100000000".into(),
        ],
        &[],
        &log_dir,
    )?;
    wait_for_http(&mut fake, port, Duration::from_secs(120)).await?;
    let services = vec![
        ("DATABASE_URL", env.database_url()),
        ("AMQP_URL", env.amqp_url()),
        // info: the workers' readiness line "Worker consuming." is logged at info.
        ("RUST_LOG", "info".to_owned()),
    ];
    let mut with_sf = services.clone();
    with_sf.extend([
        ("SF_LOGIN_URL", format!("http://127.0.0.1:{port}")),
        ("SF_CLIENT_ID", "demo".to_owned()),
        ("SF_CLIENT_SECRET", "demo".to_owned()),
    ]);
    let mut workers = Vec::new();
    for i in 1..=args.workers {
        let mut w = Proc::spawn(
            &format!("worker{i}"),
            &bins.worker,
            &[],
            &services,
            &log_dir,
        )?;
        wait_for_log(&mut w, "Worker consuming.", Duration::from_secs(60)).await?;
        workers.push(w);
    }
    let watch_args = vec![
        "sync".to_owned(),
        "--watch".to_owned(),
        "--object".to_owned(),
        objects.join(","),
        "--interval".to_owned(),
        format!("{}s", args.interval_secs),
        "--retention".to_owned(),
        format!("{}m", args.retention_minutes),
        "--no-progress".to_owned(),
        "--max-api-usage".to_owned(),
        "100".to_owned(),
    ];
    let mut producer = Proc::spawn("producer", &bins.producer, &watch_args, &with_sf, &log_dir)?;
    let db = env.connect().await?;
    // The first pass imports every object.
    let first = Instant::now();
    loop {
        let done: i64 = db
            .query_one(
                "SELECT count(*) FROM sfsync.runs WHERE status = 'published'",
                &[],
            )
            .await
            .map(|r| r.get(0))
            .unwrap_or(0);
        if done >= i64::from(args.objects) {
            break;
        }
        anyhow::ensure!(
            first.elapsed() < Duration::from_secs(600),
            "the first import did not finish in 10 minutes\n{}",
            producer.log_tail(20)
        );
        if let Some(status) = producer.try_exited()? {
            anyhow::bail!("the producer exited ({status})\n{}", producer.log_tail(20));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "soak: imported {} objects in {:?}; changing the org for {} minutes",
        args.objects,
        first.elapsed(),
        args.minutes
    );

    let calls_before = api_usage(port).await?;
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.minutes * 60);
    let mut samples = Vec::new();
    let mut second = 0u64;
    let mut next_sample = started;
    while Instant::now() < until {
        let tick = Instant::now();
        let object = &objects[(second % objects.len() as u64) as usize];
        let extra = second.is_multiple_of(10);
        let changed = mutate(port, object, args.changes_per_sec, extra).await?;
        let table = object.to_lowercase();
        let url = env.database_url();
        let latencies = latencies.clone();
        tokio::spawn(async move {
            if let Ok(took) = arrival(&url, &table, &changed.0, &changed.1, tick).await {
                latencies
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(took);
            }
        });
        if Instant::now() >= next_sample {
            samples.push(sample(&db, producer.pid, started).await?);
            next_sample += Duration::from_secs(30);
        }
        if let Some(status) = producer.try_exited()? {
            anyhow::bail!("the producer exited ({status})\n{}", producer.log_tail(20));
        }
        second += 1;
        tokio::time::sleep_until((tick + Duration::from_secs(1)).into()).await;
    }
    samples.push(sample(&db, producer.pid, started).await?);
    // Less the `/limits` call that asked.
    let calls = api_usage(port).await? - calls_before - 1;
    // The last changes arrive; then the tables are compared with the org.
    tokio::time::sleep(Duration::from_secs(args.interval_secs * 3)).await;
    let passes = (args.minutes * 60) / args.interval_secs.max(1);
    producer.terminate(Duration::from_secs(60)).await?;
    let reconcile = tokio::process::Command::new(&bins.producer)
        .args(["reconcile", "--dry-run", "--object", &objects.join(",")])
        .envs(with_sf.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .context("running producer reconcile --dry-run")?;
    for w in &mut workers {
        w.terminate(Duration::from_secs(60)).await?;
    }
    fake.terminate(Duration::from_secs(10)).await?;

    let latencies = latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    report(args, &samples, &latencies, calls, passes, &reconcile);
    anyhow::ensure!(
        reconcile.status.success(),
        "the tables differ from the org at the end:\n{}",
        String::from_utf8_lossy(&reconcile.stdout)
    );
    Ok(())
}

/// Prints the figures.
fn report(
    args: &SoakArgs,
    samples: &[Sample],
    latencies: &[Duration],
    calls: u64,
    passes: u64,
    reconcile: &std::process::Output,
) {
    println!(
        "soak: {} objects of {} records, {} changes a second, watch --interval {}s, --retention {}m, {} workers, {} minutes",
        args.objects,
        args.records,
        args.changes_per_sec,
        args.interval_secs,
        args.retention_minutes,
        args.workers,
        args.minutes
    );
    println!(
        "{:>8} {:>10} {:>5} {:>13} {:>6}",
        "minute", "rss_mib", "fds", "page_results", "runs"
    );
    for s in samples {
        println!(
            "{:>8.1} {:>10.1} {:>5} {:>13} {:>6}",
            s.at.as_secs_f64() / 60.0,
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.page_results,
            s.runs
        );
    }
    // Warm-up: the first tenth of the soak.
    let warm: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.at.as_secs() >= args.minutes * 6)
        .collect();
    if let (Some(first), Some(last)) = (warm.first(), warm.last()) {
        let max = warm.iter().map(|s| s.rss_kib).max().unwrap_or(0);
        println!(
            "producer rss after warm-up: {:.1} MiB, at the end {:.1} MiB (max {:.1}, {:+.1}%); fds {} -> {}",
            first.rss_kib as f64 / 1024.0,
            last.rss_kib as f64 / 1024.0,
            max as f64 / 1024.0,
            100.0 * (last.rss_kib as f64 - first.rss_kib as f64) / first.rss_kib.max(1) as f64,
            first.fds,
            last.fds
        );
    }
    let max_pages = samples.iter().map(|s| s.page_results).max().unwrap_or(0);
    println!(
        "page_results at most {max_pages}; runs at the end {}",
        samples.last().map_or(0, |s| s.runs)
    );
    let mut sorted = latencies.to_vec();
    sorted.sort();
    let at = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "change to row: {} changes, median {:.2}s, p95 {:.2}s, worst {:.2}s (interval {}s)",
        sorted.len(),
        at(0.5).as_secs_f64(),
        at(0.95).as_secs_f64(),
        sorted.last().copied().unwrap_or_default().as_secs_f64(),
        args.interval_secs
    );
    println!(
        "API calls during the soak: {calls} ({:.2} per object per pass over about {passes} passes; a day at this rate: {:.0})",
        calls as f64 / (passes.max(1) * u64::from(args.objects)) as f64,
        calls as f64 * 86_400.0 / (args.minutes * 60) as f64
    );
    println!(
        "tables against the org at the end (producer reconcile --dry-run): {}",
        if reconcile.status.success() {
            "equal"
        } else {
            "DIFFERENT"
        }
    );
}

async fn sample(db: &tokio_postgres::Client, pid: u32, started: Instant) -> anyhow::Result<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    let row = db
        .query_one(
            "SELECT (SELECT count(*) FROM sfsync.page_results), (SELECT count(*) FROM sfsync.runs)",
            &[],
        )
        .await?;
    Ok(Sample {
        at: started.elapsed(),
        rss_kib,
        fds,
        page_results: row.get(0),
        runs: row.get(1),
    })
}

/// One `POST /__admin/mutate` of `object`: `n` updates (and, with `extra`, one create and one
/// delete). Returns the updated Ids and their SystemModstamp (epoch ms).
async fn mutate(
    port: u16,
    object: &str,
    n: u32,
    extra: bool,
) -> anyhow::Result<(Vec<String>, i64)> {
    let (create, delete) = if extra { (1, 1) } else { (0, 0) };
    let body =
        format!(r#"{{"object":"{object}","update":{n},"create":{create},"delete":{delete}}}"#);
    let answer = http(port, "POST", "/__admin/mutate", &body).await?;
    let json: serde_json::Value =
        serde_json::from_str(&answer).with_context(|| format!("mutate answered {answer}"))?;
    let ids = json["updated"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Ok((ids, json["systemModstampMillis"].as_i64().unwrap_or(0)))
}

/// The org's API calls so far, as its `/limits` reports them (this call included) under the
/// demo login.
async fn api_usage(port: u16) -> anyhow::Result<u64> {
    let token = http(
        port,
        "POST",
        "/services/oauth2/token",
        "grant_type=client_credentials&client_id=demo&client_secret=demo",
    )
    .await?;
    let token: serde_json::Value = serde_json::from_str(&token)?;
    let token = token["access_token"].as_str().context("no access_token")?;
    let limits = http_with(port, "GET", "/services/data/v62.0/limits", "", Some(token)).await?;
    let limits: serde_json::Value = serde_json::from_str(&limits)?;
    let max = limits["DailyApiRequests"]["Max"].as_u64().unwrap_or(0);
    let remaining = limits["DailyApiRequests"]["Remaining"]
        .as_u64()
        .unwrap_or(0);
    Ok(max - remaining)
}

/// Waits until the rows of `ids` in `table` have the stamp `stamp_ms` (or later); returns the
/// time since `since`.
async fn arrival(
    url: &str,
    table: &str,
    ids: &[String],
    stamp_ms: &i64,
    since: Instant,
) -> anyhow::Result<Duration> {
    let db = crate::services::connect(url, false).await?;
    let stamp = *stamp_ms as f64 / 1000.0;
    let deadline = since + Duration::from_secs(600);
    loop {
        let row = db
            .query_one(
                &format!(
                    "SELECT count(*) FROM salesforce.{table}
                      WHERE sfid = ANY($1) AND systemmodstamp >= to_timestamp($2)"
                ),
                &[&ids, &stamp],
            )
            .await?;
        if row.get::<_, i64>(0) >= ids.len() as i64 {
            return Ok(since.elapsed());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "a change did not arrive in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
