//! One run: fresh database and vhost, fake org, workers, then the timed sync and the baselines.
//!
//! The clock starts when the producer is spawned (workers already consuming, the fake org
//! already answering) and stops when `sfsync.page_results` holds a row for every page of the
//! run, which the workers write in the same transaction as the records — the moment the last
//! row is committed, not the moment the producer exits.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;

use crate::{
    baseline,
    cli::BenchArgs,
    clock::Watch,
    launch::{start_fake, start_workers, wait_for_log, wait_for_quiet_host, warm_up},
    proc_stats::{
        PeakSampler, clock_ticks_per_sec, cpu_delta_by_command, process_cpu_ns, read_host,
        read_minflt, reaped_children_cpu_ns, server_cpu,
    },
    procs::{Binaries, Proc},
    report::{self, RunFigures},
    script::{self, Script},
    services::Env,
};

const KIB_PER_MIB: f64 = 1024.0;
const NS_PER_S: f64 = 1e9;
/// What a worker logs once it consumes.
const READY: &str = "Worker consuming.";

/// Runs everything once and removes what it made (unless `--keep`). With a `script`, the
/// script baseline runs too.
///
/// # Errors
/// A service or process failed; the message carries the tail of the relevant log.
pub async fn run_once(
    args: &BenchArgs,
    bins: &Binaries,
    script: Option<&Script>,
    index: u32,
) -> anyhow::Result<RunFigures> {
    let amqp = if args.rabbitmq_cluster {
        crate::services::Broker::cluster().await?
    } else {
        crate::services::Broker::Local(args.amqp.clone())
    };
    let env = Env::create(&args.pg, amqp, args.keep, args.pg_tls).await?;
    let log_dir = std::env::temp_dir().join(&env.name);
    std::fs::create_dir_all(&log_dir).with_context(|| format!("creating {}", log_dir.display()))?;
    eprintln!(
        "bench: run {index}: {} records, {} workers; database and vhost {}, logs in {}",
        args.records,
        args.workers,
        env.name,
        log_dir.display()
    );
    let result = measure(args, bins, script, &env, &log_dir).await;
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
    script: Option<&Script>,
    env: &Env,
    log_dir: &Path,
) -> anyhow::Result<RunFigures> {
    let ticks = clock_ticks_per_sec() as f64;
    let records = u64::from(args.records);
    let services = [
        ("DATABASE_URL", env.database_url()),
        ("AMQP_URL", env.amqp_url()),
    ];

    let (mut fake, port) = start_fake(args, bins, "fake-salesforce", log_dir).await?;

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

    let wire0 = crate::http::wire(port).await?;
    let producer_args = producer_args(args);
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
    let wire = crate::http::wire(port).await?;
    let (api_calls, wire_bytes) = (
        wire.api_calls.saturating_sub(wire0.api_calls),
        wire.bytes.saturating_sub(wire0.bytes),
    );

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

    let scripted = match script {
        Some(script) => {
            eprintln!("bench: sync took {seconds:.3} s; timing the script baseline");
            let figures = script::run(args, bins, script, env, &db, log_dir).await?;
            eprintln!(
                "bench: the script took {:.3} s ({:.3} s from spawn to exit), {} API calls",
                figures.report.seconds, figures.wall_seconds, figures.report.api_calls
            );
            Some(figures)
        }
        None => None,
    };

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
        script_seconds: scripted.map(|s| s.report.seconds),
        script_wall_seconds: scripted.map(|s| s.wall_seconds),
        script_cpu_s: scripted.map(|s| s.cpu_s),
        script_api_calls: scripted.map(|s| s.report.api_calls),
        api_calls: Some(api_calls),
        wire_mb: Some(wire_bytes as f64 / 1e6),
        floor_seconds: report::floor_seconds(
            api_calls,
            wire_bytes,
            args.latency_ms,
            args.bandwidth_mbps,
            parallelism(args),
        ),
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

/// The calls the producer has in flight at once while it reads (the producer's own rules):
/// for REST, `--parallel` slices (8 by default), no more than one per page; for a Bulk job,
/// result chunks of 10,000 records (the fake's) downloaded `--parallel` at a time, at most
/// four. The reading is most of a sync's calls; describe, the count, the plan and a Bulk
/// job's creation and polls go one at a time, so the floor is a little under what is possible.
fn parallelism(args: &BenchArgs) -> u64 {
    let parallel = u64::from(args.parallel.unwrap_or(8));
    let records = u64::from(args.records);
    let bulk = match args.api.as_deref() {
        Some("bulk") => true,
        Some("rest") => false,
        _ => records > 100_000,
    };
    if bulk {
        return parallel.min(4).min(records / 10_000).max(1);
    }
    parallel
        .min(records / u64::from(args.page_size.unwrap_or(2000)))
        .max(1)
}

/// The producer's command line for the timed sync.
fn producer_args(args: &BenchArgs) -> Vec<String> {
    let mut producer_args: Vec<String> = ["sync", "--object", "Contact", "--no-progress"]
        .map(String::from)
        .into();
    if let Some(p) = args.page_size {
        producer_args.extend(["--page-size".to_owned(), p.to_string()]);
    }
    if let Some(api) = &args.api {
        producer_args.extend(["--api".to_owned(), api.clone()]);
    }
    if let Some(n) = args.parallel {
        producer_args.extend(["--parallel".to_owned(), n.to_string()]);
    }
    producer_args
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn the_producer_gets_only_the_flags_that_were_set() {
        let args = |flags: &[&str]| BenchArgs::parse_from([&["bench"], flags].concat());
        assert_eq!(
            producer_args(&args(&[])).join(" "),
            "sync --object Contact --no-progress"
        );
        assert_eq!(
            producer_args(&args(&["--api", "rest", "--parallel", "8"])).join(" "),
            "sync --object Contact --no-progress --api rest --parallel 8"
        );
        assert!(BenchArgs::try_parse_from(["bench", "--parallel", "0"]).is_err());
    }
}
