//! sfsync's end-to-end benchmark: the real binaries as processes against local RabbitMQ and
//! PostgreSQL, compared with a raw COPY (the limit) and the naive per-record upsert.
//!
//! # Layout
//! - [`cli`] — flags.
//! - [`services`] — a private database and vhost per run, removed afterwards.
//! - [`procs`] — finding, spawning and stopping the binaries; their logs.
//! - [`proc_stats`] — CPU time, page faults and peak RSS of the processes and the host.
//! - [`run`](mod@run) — one run: start everything, time the sync, run the baselines.
//! - [`launch`] — starting the fake org and the workers and waiting until they are ready.
//! - [`clock`] — watching the producer and workers until every page is committed.
//! - [`baseline`] — raw COPY and naive upserts into fresh copies of the table.
//! - [`script`] — `--script-baseline`: the best script a user would write (simple-salesforce
//!   and psycopg), timed against a fake org like sfsync's.
//! - [`report`] — the table, min/median and the one-line result.
//! - [`soak`] — the `soak` binary: `sync --watch` for an hour against an org that keeps
//!   changing; memory, descriptors, bookkeeping, latency and API calls over time.

pub mod baseline;
pub mod cli;
pub mod clock;
mod http;
pub mod launch;
pub mod proc_stats;
pub mod procs;
pub mod report;
pub mod run;
pub mod script;
pub mod services;
pub mod soak;

pub use cli::BenchArgs;

/// Runs the benchmark `--runs` times (each followed by a `--compare-records` run, if asked
/// for) and prints the tables and the result line to stdout.
///
/// # Errors
/// The binaries are missing, or a run failed (what it made is removed first).
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let bins = procs::Binaries::locate(args.bin_dir.as_deref())?;
    let script = if args.script_baseline {
        Some(script::Script::prepare(&args).await?)
    } else {
        None
    };
    let comparison = args.comparison();
    let mut runs = Vec::new();
    let mut others = Vec::new();
    let mut discarded = 0;
    for i in 1..=args.runs {
        runs.push(measured_run(&args, &bins, script.as_ref(), i, &mut discarded).await?);
        if let Some(other) = &comparison {
            others.push(measured_run(other, &bins, None, i, &mut discarded).await?);
        }
    }
    if discarded > 0 {
        println!("({discarded} run(s) discarded because other work kept the host busy)");
    }
    if let Some(other) = &comparison {
        print_summary(other, &others);
        println!();
    }
    print_summary(&args, &runs);
    println!(
        "{}{}{}{}",
        report::last_line(&runs),
        report::comparison_suffix(&runs, &others),
        report::script_suffix(&runs),
        report::network_suffix(&runs)
    );
    Ok(())
}

/// One run, repeated (at most 3 times) while other work on the host took more than
/// `--max-other-pct` of its CPU.
async fn measured_run(
    args: &BenchArgs,
    bins: &procs::Binaries,
    script: Option<&script::Script>,
    i: u32,
    discarded: &mut u32,
) -> anyhow::Result<report::RunFigures> {
    let mut attempt = 0;
    loop {
        let figures = run::run_once(args, bins, script, i).await?;
        let one = std::slice::from_ref(&figures);
        eprintln!(
            "bench: run {i}: {}{}{}",
            report::last_line(one),
            report::script_suffix(one),
            report::network_suffix(one)
        );
        if figures.other_pct <= args.max_other_pct || attempt == 3 {
            return Ok(figures);
        }
        attempt += 1;
        *discarded += 1;
        eprintln!(
            "bench: run {i} discarded: other work took {:.0}% of the host's CPU (limit \
             --max-other-pct {}); repeating it",
            figures.other_pct, args.max_other_pct
        );
    }
}

/// The heading and the table of one size's runs.
fn print_summary(args: &BenchArgs, runs: &[report::RunFigures]) {
    println!(
        "sfsync bench: {} Contacts, {} workers{} (prefetch {}, concurrency {}, page size {}, api {}, parallel {}), naive on {} records{}{}",
        args.records,
        args.workers,
        if args.warm_up {
            " warmed up by an Account sync"
        } else {
            ""
        },
        args.prefetch.map_or("default".into(), |p| p.to_string()),
        args.concurrency.map_or("default".into(), |c| c.to_string()),
        args.page_size.map_or("default".into(), |p| p.to_string()),
        args.api.as_deref().unwrap_or("default"),
        args.parallel.map_or("default".into(), |n| n.to_string()),
        args.naive_records(),
        if args.naive_records() > 0 {
            " (scaled to all)"
        } else {
            ""
        },
        network(args),
    );
    print!("{}", report::table(runs));
}

/// The fake org's network, for the heading: nothing when neither flag is set.
fn network(args: &BenchArgs) -> String {
    let mut parts = Vec::new();
    if let Some(ms) = args.latency_ms {
        parts.push(format!("latency {ms} ms"));
    }
    if let Some(mbps) = args.bandwidth_mbps {
        parts.push(format!("bandwidth {mbps} Mbit/s"));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; fake org {}", parts.join(", "))
    }
}
