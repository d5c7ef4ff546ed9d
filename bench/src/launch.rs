//! Starting what a run needs and waiting until it is ready: the workers, a free port for the
//! fake org, its first HTTP answer, a worker's readiness line, a quiet host, and the optional
//! warm-up sync of Accounts.

use std::{
    net::{Ipv4Addr, TcpListener},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_postgres::Client;

use crate::{
    cli::BenchArgs,
    clock::Watch,
    proc_stats::read_host,
    procs::{Binaries, Proc},
};

/// The producer's default `--page-size`.
const DEFAULT_PAGE_SIZE: u32 = 2000;

pub(crate) fn start_workers(
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

/// The fake org's Accounts: a tenth of the Contacts, and with `--warm-up` at least two pages
/// per worker, so that every worker stores full pages before the clock starts.
pub(crate) fn accounts(args: &BenchArgs) -> u32 {
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
pub(crate) async fn warm_up(
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

/// Waits (up to `--quiet-wait-secs`) for a second in which the host is at most `--quiet-pct`
/// busy.
pub(crate) async fn wait_for_quiet_host(args: &BenchArgs) -> anyhow::Result<()> {
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

/// The flags of the fake org on `port`: the run's Contacts and Accounts, seed and network.
pub(crate) fn fake_args(args: &BenchArgs, port: u16) -> Vec<String> {
    let mut flags = vec![
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--accounts".into(),
        accounts(args).to_string(),
        "--contacts".into(),
        args.records.to_string(),
        "--seed".into(),
        args.seed.to_string(),
    ];
    if let Some(ms) = args.latency_ms {
        flags.extend(["--latency-ms".into(), ms.to_string()]);
    }
    if let Some(mbps) = args.bandwidth_mbps {
        flags.extend(["--bandwidth-mbps".into(), mbps.to_string()]);
    }
    if args.no_gzip {
        flags.push("--no-gzip".into());
    }
    flags
}

/// Starts a fake org (logging as `name`) on a free port and waits until it answers; returns
/// it and its port.
pub(crate) async fn start_fake(
    args: &BenchArgs,
    bins: &Binaries,
    name: &str,
    log_dir: &Path,
) -> anyhow::Result<(Proc, u16)> {
    let port = free_port()?;
    let mut fake = Proc::spawn(
        name,
        &bins.fake_salesforce,
        &fake_args(args, port),
        &[],
        log_dir,
    )?;
    wait_for_http(&mut fake, port, Duration::from_secs(60)).await?;
    Ok((fake, port))
}

/// A port nobody listens on right now (fake-salesforce binds it a moment later).
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until fake-salesforce answers an HTTP request (its org is built by then).
pub(crate) async fn wait_for_http(
    proc_: &mut Proc,
    port: u16,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let what = format!("answer on port {port}");
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
        keep_waiting(proc_, &what, deadline, timeout).await?;
    }
}

/// Waits until a process logs `needle`.
pub(crate) async fn wait_for_log(
    proc_: &mut Proc,
    needle: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let what = format!("log {needle:?}");
    while !proc_.log_contains(needle) {
        keep_waiting(proc_, &what, deadline, timeout).await?;
    }
    Ok(())
}

/// One round of waiting for `proc_` to `what` (e.g. `log "Worker consuming."`): fails with the
/// log's tail if it has exited or the `timeout` that ends at `deadline` is over, else sleeps
/// before the next look.
async fn keep_waiting(
    proc_: &mut Proc,
    what: &str,
    deadline: Instant,
    timeout: Duration,
) -> anyhow::Result<()> {
    if let Some(status) = proc_.try_exited()? {
        anyhow::bail!("{} exited ({status})\n{}", proc_.name, proc_.log_tail(20));
    }
    anyhow::ensure!(
        Instant::now() < deadline,
        "{} did not {what} within {timeout:?}\n{}",
        proc_.name,
        proc_.log_tail(20)
    );
    tokio::time::sleep(Duration::from_millis(50)).await;
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

    #[test]
    fn the_network_flags_reach_the_fake_org_only_when_set() {
        let args = |flags: &[&str]| BenchArgs::parse_from([&["bench"], flags].concat());
        let plain = fake_args(&args(&["--records", "5000", "--seed", "7"]), 4000);
        assert_eq!(
            plain.join(" "),
            "--listen 127.0.0.1:4000 --accounts 500 --contacts 5000 --seed 7"
        );
        let slow = fake_args(
            &args(&[
                "--records",
                "5000",
                "--latency-ms",
                "300",
                "--bandwidth-mbps",
                "0.5",
            ]),
            4000,
        );
        assert!(
            slow.join(" ")
                .ends_with("--seed 1 --latency-ms 300 --bandwidth-mbps 0.5"),
            "{slow:?}"
        );
        let whole = fake_args(&args(&["--bandwidth-mbps", "50"]), 4000);
        assert!(
            whole.join(" ").ends_with("--bandwidth-mbps 50"),
            "{whole:?}"
        );
        assert!(BenchArgs::try_parse_from(["bench", "--bandwidth-mbps", "0"]).is_err());
    }
}
