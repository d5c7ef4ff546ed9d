//! One run: fresh database and vhost, fake org, workers, then the timed sync and the baselines.
//!
//! The clock starts when the producer is spawned (workers already consuming, the fake org
//! already answering) and stops when `sfsync.page_results` holds a row for every page of the
//! run, which the workers write in the same transaction as the records — the moment the last
//! row is committed, not the moment the producer exits.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_postgres::Client;

use crate::{
    baseline,
    cli::BenchArgs,
    proc_stats::{
        PeakSampler, clock_ticks_per_sec, cpu_delta_by_command, process_cpu_ns, read_host,
        read_minflt, reaped_children_cpu_ns, server_cpu,
    },
    procs::{Binaries, Proc},
    report::RunFigures,
    services::Env,
};

/// How often the bench looks at the producer and at `sfsync.page_results`.
const POLL: Duration = Duration::from_millis(20);
const KIB_PER_MIB: f64 = 1024.0;
const NS_PER_S: f64 = 1e9;
/// The producer's default `--page-size`.
const DEFAULT_PAGE_SIZE: u32 = 2000;
/// What a worker logs once it consumes.
const READY: &str = "Worker consuming.";

/// Runs everything once and removes what it made (unless `--keep`).
///
/// # Errors
/// A service or process failed; the message carries the tail of the relevant log.
pub async fn run_once(args: &BenchArgs, bins: &Binaries, index: u32) -> anyhow::Result<RunFigures> {
    let env = Env::create(&args.pg, &args.amqp, args.keep, args.pg_tls).await?;
    let log_dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    eprintln!(
        "bench: run {index}: {} records, {} workers; database and vhost {}, logs in {}",
        args.records,
        args.workers,
        env.name,
        log_dir.display()
    );
    let result = measure(args, bins, &env, &log_dir).await;
    env.teardown().await?;
    if result.is_ok() && !args.keep {
        let _ = std::fs::remove_dir_all(&log_dir);
    } else {
        eprintln!("bench: logs kept in {}", log_dir.display());
    }
    result
}

async fn measure(
    args: &BenchArgs,
    bins: &Binaries,
    env: &Env,
    log_dir: &Path,
) -> anyhow::Result<RunFigures> {
    let ticks = clock_ticks_per_sec() as f64;
    let records = u64::from(args.records);
    let services = [
        ("DATABASE_URL", env.database_url()),
        ("AMQP_URL", env.amqp_url()),
    ];

    let port = free_port()?;
    let mut fake = Proc::spawn(
        "fake-salesforce",
        &bins.fake_salesforce,
        &[
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--accounts".into(),
            accounts(args).to_string(),
            "--contacts".into(),
            args.records.to_string(),
            "--seed".into(),
            args.seed.to_string(),
        ],
        &[],
        log_dir,
    )?;
    wait_for_http(&mut fake, port, Duration::from_secs(60)).await?;

    let mut workers = Vec::new();
    if !args.split {
        // One worker first, so that it alone declares the quorum queue: RabbitMQ 3.10 may fail a
        // basic.consume that races the queue's start (INTERNAL_ERROR, `{badmatch,{error,noproc}}`
        // in rabbit_quorum_queue:consume), which kills the worker.
        workers = start_workers(args, bins, &services, log_dir, 1..=1)?;
        wait_for_log(&mut workers[0], READY, Duration::from_secs(60)).await?;
        workers.extend(start_workers(
            args,
            bins,
            &services,
            log_dir,
            2..=args.workers,
        )?);
        for w in &mut workers {
            wait_for_log(w, READY, Duration::from_secs(60)).await?;
        }
    }

    let db = env.connect().await?;
    let mut producer_env = services.to_vec();
    producer_env.extend([
        ("SF_LOGIN_URL", format!("http://127.0.0.1:{port}")),
        ("SF_CLIENT_ID", "demo".to_owned()),
        ("SF_CLIENT_SECRET", "demo".to_owned()),
    ]);
    if args.warm_up {
        warm_up(args, bins, &producer_env, &mut workers, &db, log_dir).await?;
    }

    wait_for_quiet_host(args).await?;
    // Start every run from the same state: no checkpoint owed from creating the database.
    db.batch_execute("CHECKPOINT").await?;
    let sampler = PeakSampler::start(workers.iter().map(|w| w.pid).collect());
    let fake_cpu0 = process_cpu_ns(fake.pid)?;
    let (mut workers_cpu0, mut workers_faults0) = (0, 0);
    for w in &workers {
        workers_cpu0 += process_cpu_ns(w.pid)?;
        workers_faults0 += read_minflt(w.pid)?;
    }
    let self_children0 = reaped_children_cpu_ns()?;
    let host0 = read_host()?;
    let servers0 = server_cpu(&env.name);

    let mut producer_args: Vec<String> = ["sync", "--object", "Contact", "--no-progress"]
        .map(String::from)
        .into();
    if let Some(p) = args.page_size {
        producer_args.extend(["--page-size".to_owned(), p.to_string()]);
    }
    if let Some(api) = &args.api {
        producer_args.extend(["--api".to_owned(), api.clone()]);
    }
    let started = Instant::now();
    let mut producer = Proc::spawn(
        "producer",
        &bins.producer,
        &producer_args,
        &producer_env,
        log_dir,
    )?;
    sampler.watch(producer.pid);

    let mut watch = Watch::new(&mut producer, "Contact", self_children0, started, args);
    let mut store_seconds = None;
    let seconds = if args.split {
        // Publish with nobody consuming, then time the workers draining the queue.
        let published = watch.run(&db, Some(&sampler), &mut workers, true).await?;
        workers = start_workers(args, bins, &services, log_dir, 1..=args.workers)?;
        for w in &workers {
            sampler.watch(w.pid);
        }
        let drain = Instant::now();
        let all = watch.run(&db, Some(&sampler), &mut workers, false).await?;
        store_seconds = Some(drain.elapsed().as_secs_f64());
        debug_assert!(all >= published);
        all
    } else {
        watch.run(&db, Some(&sampler), &mut workers, false).await?
    };
    let (publish_seconds, producer_cpu_ns) = watch.producer_done.unwrap_or((seconds, 0));
    let producer_peak_kib = watch.producer_peak_kib;

    // Read before stopping anything: the work is done, shutdown is not part of it.
    let host = read_host()?;
    let servers = cpu_delta_by_command(&servers0, &server_cpu(&env.name));
    let mut worker_peak_kib = 0;
    let (mut workers_cpu, mut workers_faults) = (0, 0);
    for w in &workers {
        worker_peak_kib = worker_peak_kib.max(sampler.peak_kib(w.pid));
        workers_cpu += process_cpu_ns(w.pid)?;
        workers_faults += read_minflt(w.pid)?;
    }
    let fake_cpu = process_cpu_ns(fake.pid)?.saturating_sub(fake_cpu0);
    drop(sampler);

    let stored: i64 = db
        .query_one("SELECT count(*) FROM salesforce.contact", &[])
        .await?
        .get(0);
    if stored as u64 != records {
        eprintln!("bench: warning: salesforce.contact holds {stored} rows, expected {records}");
    }
    for w in &mut workers {
        w.terminate(Duration::from_secs(30)).await?;
    }
    fake.terminate(Duration::from_secs(10)).await?;

    let baselines = if args.no_baselines {
        baseline::Baselines::default()
    } else {
        eprintln!(
            "bench: sync took {seconds:.3} s; timing the baselines (naive: {} records)",
            args.naive_records()
        );
        wait_for_quiet_host(args).await?;
        baseline::run(&db, args.naive_records()).await?
    };
    drop(db);

    let host_busy = host.busy.saturating_sub(host0.busy) as f64;
    let host_total = host.total.saturating_sub(host0.total) as f64;
    let mut figures = RunFigures {
        records,
        workers: args.workers,
        seconds,
        publish_seconds,
        store_seconds,
        copy_seconds: baselines.copy_seconds,
        naive_seconds: baselines.naive.map(|n| n.scaled_seconds),
        naive_records: baselines.naive.map_or(0, |n| n.records),
        producer_rss_mib: producer_peak_kib as f64 / KIB_PER_MIB,
        worker_rss_mib: worker_peak_kib as f64 / KIB_PER_MIB,
        producer_cpu_s: producer_cpu_ns as f64 / NS_PER_S,
        workers_cpu_s: workers_cpu.saturating_sub(workers_cpu0) as f64 / NS_PER_S,
        fake_cpu_s: fake_cpu as f64 / NS_PER_S,
        workers_faults: workers_faults.saturating_sub(workers_faults0) as f64,
        postgres_cpu_s: servers.get("postgres").copied().unwrap_or(0) as f64 / ticks,
        rabbitmq_cpu_s: servers.get("beam.smp").copied().unwrap_or(0) as f64 / ticks,
        other_cpu_s: 0.0,
        other_pct: 0.0,
        host_busy_pct: if host_total > 0.0 {
            100.0 * host_busy / host_total
        } else {
            0.0
        },
    };
    // Whatever else kept the host busy: the bench's polling, the kernel, other people's work.
    let host_busy_s = host_busy / ticks;
    let capacity_s = host_total / ticks;
    figures.other_cpu_s = (host_busy_s
        - figures.producer_cpu_s
        - figures.workers_cpu_s
        - figures.fake_cpu_s
        - figures.postgres_cpu_s
        - figures.rabbitmq_cpu_s)
        .max(0.0);
    figures.other_pct = if capacity_s > 0.0 {
        100.0 * figures.other_cpu_s / capacity_s
    } else {
        0.0
    };
    Ok(figures)
}

fn start_workers(
    args: &BenchArgs,
    bins: &Binaries,
    services: &[(&str, String)],
    log_dir: &Path,
    numbers: std::ops::RangeInclusive<u16>,
) -> anyhow::Result<Vec<Proc>> {
    let mut worker_args = Vec::new();
    if let Some(p) = args.prefetch {
        worker_args.extend(["--prefetch".to_owned(), p.to_string()]);
    }
    if let Some(c) = args.concurrency {
        worker_args.extend(["--concurrency".to_owned(), c.to_string()]);
    }
    numbers
        .map(|i| {
            Proc::spawn(
                &format!("worker{i}"),
                &bins.worker,
                &worker_args,
                services,
                log_dir,
            )
        })
        .collect()
}

/// Watches the producer and the workers while the clock runs (or while `--warm-up` runs).
struct Watch<'a> {
    producer: &'a mut Proc,
    /// The object whose run the producer makes.
    object: &'static str,
    /// Seconds until the producer exited, and its CPU time in nanoseconds (whole life).
    producer_done: Option<(f64, u64)>,
    producer_peak_kib: u64,
    /// Our reaped children's CPU nanoseconds before the producer started.
    self_children0: u64,
    started: Instant,
    timeout: Duration,
}

impl<'a> Watch<'a> {
    /// Watches `producer`, started at `started`, syncing `object`; `self_children0` is our
    /// reaped children's CPU nanoseconds before it started.
    fn new(
        producer: &'a mut Proc,
        object: &'static str,
        self_children0: u64,
        started: Instant,
        args: &BenchArgs,
    ) -> Self {
        Self {
            producer,
            object,
            producer_done: None,
            producer_peak_kib: 0,
            self_children0,
            started,
            timeout: args.timeout(),
        }
    }

    /// Polls until the producer has exited and, unless `publish_only`, every page it
    /// published is committed. Returns the seconds since the producer started.
    /// `sampler` gives the producer's peak RSS (none for the warm-up, which is not measured).
    async fn run(
        &mut self,
        db: &Client,
        sampler: Option<&PeakSampler>,
        workers: &mut [Proc],
        publish_only: bool,
    ) -> anyhow::Result<f64> {
        loop {
            if self.producer_done.is_none() {
                // Sampled while it lives: a zombie has no VmHWM.
                if let Some(sampler) = sampler {
                    self.producer_peak_kib = sampler.peak_kib(self.producer.pid);
                }
                if let Some(status) = self.producer.try_exited()? {
                    let seconds = self.started.elapsed().as_secs_f64();
                    // Reaped just now, so its CPU time has moved into our children's total.
                    let cpu = reaped_children_cpu_ns()?.saturating_sub(self.self_children0);
                    self.producer_done = Some((seconds, cpu));
                    anyhow::ensure!(
                        status.success(),
                        "the producer failed ({status})\n{}",
                        self.producer.log_tail(30)
                    );
                    if publish_only {
                        return Ok(seconds);
                    }
                }
            }
            if !publish_only && let Some(progress) = progress(db, self.object).await? {
                anyhow::ensure!(
                    progress.status != "failed",
                    "the run failed\n{}",
                    self.producer.log_tail(30)
                );
                if self.producer_done.is_some()
                    && progress.status == "published"
                    && progress.pages_done >= progress.pages_published
                {
                    return Ok(self.started.elapsed().as_secs_f64());
                }
            }
            for w in workers.iter_mut() {
                if let Some(status) = w.try_exited()? {
                    anyhow::bail!("{} exited early ({status})\n{}", w.name, w.log_tail(30));
                }
            }
            if self.started.elapsed() > self.timeout {
                let tails: Vec<String> = workers.iter().map(|w| w.log_tail(10)).collect();
                anyhow::bail!(
                    "not every page was stored after {:?} (dead-lettered pages never are; see \
                     the logs)\n{}\n{}",
                    self.timeout,
                    self.producer.log_tail(20),
                    tails.join("\n")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// The fake org's Accounts: a tenth of the Contacts, and with `--warm-up` at least two pages
/// per worker, so that every worker stores full pages before the clock starts.
fn accounts(args: &BenchArgs) -> u32 {
    let tenth = (args.records / 10).max(1);
    if args.warm_up {
        let pages = u32::from(args.workers) * 2;
        tenth.max(pages.saturating_mul(args.page_size.unwrap_or(DEFAULT_PAGE_SIZE)))
    } else {
        tenth
    }
}

/// `--warm-up`: syncs the Accounts through the workers and waits until every page is
/// committed, before anything is measured.
async fn warm_up(
    args: &BenchArgs,
    bins: &Binaries,
    producer_env: &[(&str, String)],
    workers: &mut [Proc],
    db: &Client,
    log_dir: &Path,
) -> anyhow::Result<()> {
    let sync = ["sync", "--object", "Account", "--no-progress"].map(String::from);
    let mut producer = Proc::spawn(
        "producer-warm-up",
        &bins.producer,
        &sync,
        producer_env,
        log_dir,
    )?;
    // Its CPU is not reported, so the children's total before it does not matter.
    Watch::new(&mut producer, "Account", 0, Instant::now(), args)
        .run(db, None, workers, false)
        .await
        .context("the warm-up sync of Accounts")?;
    Ok(())
}

/// An object's run in `sfsync.runs` (one run per object in a fresh database) and its
/// processed pages.
struct Progress {
    status: String,
    pages_published: i64,
    pages_done: i64,
}

async fn progress(db: &Client, object: &str) -> anyhow::Result<Option<Progress>> {
    let row = db
        .query_opt(
            "SELECT r.status, r.pages_published,
                    (SELECT count(*) FROM sfsync.page_results p WHERE p.run_id = r.run_id)
               FROM sfsync.runs r WHERE r.object = $1",
            &[&object],
        )
        .await
        .context("polling sfsync.runs and sfsync.page_results")?;
    Ok(row.map(|r| Progress {
        status: r.get(0),
        pages_published: r.get(1),
        pages_done: r.get(2),
    }))
}

/// Waits (up to `--quiet-wait-secs`) for a second in which the host is at most `--quiet-pct`
/// busy.
async fn wait_for_quiet_host(args: &BenchArgs) -> anyhow::Result<()> {
    if args.quiet_wait_secs == 0 {
        return Ok(());
    }
    let deadline = Instant::now() + Duration::from_secs(args.quiet_wait_secs);
    let mut warned = false;
    loop {
        let before = read_host()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = read_host()?;
        let total = after.total.saturating_sub(before.total).max(1) as f64;
        let busy = 100.0 * after.busy.saturating_sub(before.busy) as f64 / total;
        if busy <= args.quiet_pct {
            return Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "bench: warning: the host is still {busy:.0}% busy after {} s; measuring anyway \
                 (see other_cpu_s)",
                args.quiet_wait_secs
            );
            return Ok(());
        }
        if !warned {
            eprintln!(
                "bench: the host is {busy:.0}% busy with other work; waiting for it to calm down"
            );
            warned = true;
        }
    }
}

/// A port nobody listens on right now (fake-salesforce binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until fake-salesforce answers an HTTP request (its org is built by then).
async fn wait_for_http(proc_: &mut Proc, port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(mut stream) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await {
            let request =
                "GET /services/data HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            let mut buf = [0u8; 16];
            if stream.write_all(request.as_bytes()).await.is_ok()
                && matches!(stream.read(&mut buf).await, Ok(n) if buf[..n].starts_with(b"HTTP/"))
            {
                return Ok(());
            }
        }
        if let Some(status) = proc_.try_exited()? {
            anyhow::bail!("{} exited ({status})\n{}", proc_.name, proc_.log_tail(20));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} did not answer on port {port} within {timeout:?}\n{}",
            proc_.name,
            proc_.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until a process logs `needle`.
async fn wait_for_log(proc_: &mut Proc, needle: &str, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !proc_.log_contains(needle) {
        if let Some(status) = proc_.try_exited()? {
            anyhow::bail!("{} exited ({status})\n{}", proc_.name, proc_.log_tail(20));
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} did not log {needle:?} within {timeout:?}\n{}",
            proc_.name,
            proc_.log_tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn warm_up_gives_every_worker_two_full_pages_of_accounts() {
        let args = |flags: &[&str]| BenchArgs::parse_from([&["bench"], flags].concat());
        assert_eq!(accounts(&args(&["--records", "30000"])), 3_000);
        assert_eq!(accounts(&args(&["--records", "5"])), 1);
        let warm = args(&["--records", "30000", "--workers", "4", "--warm-up"]);
        assert_eq!(accounts(&warm), 16_000);
        let small_pages = args(&["--records", "30000", "--warm-up", "--page-size", "500"]);
        assert_eq!(accounts(&small_pages), 4_000);
        let large = args(&["--records", "1000000", "--workers", "4", "--warm-up"]);
        assert_eq!(accounts(&large), 100_000);
    }
}
