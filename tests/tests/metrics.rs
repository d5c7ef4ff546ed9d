//! Prometheus metrics, scraped over HTTP as Prometheus would: during an import they answer
//! and count only what is committed; after it, the workers' counts equal the table's rows and
//! the dead-letter queue's letters, and the producer's show the org's API usage and the
//! watermark lag. A bad `--metrics-addr` fails at start, naming the setting.

use std::{net::SocketAddr, process::Stdio, time::Duration};

use e2e::{
    TestEnv,
    scrape::{declares, sample, scrape},
};
use fake_salesforce::{FailStatus, Faults, OrgConfig};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");

/// The sum of one series over several scrapes (0 where a scrape lacks it).
fn sum(scrapes: &[String], name: &str, labels: &[(&str, &str)]) -> f64 {
    scrapes
        .iter()
        .map(|t| sample(t, name, labels).unwrap_or(0.0))
        .sum()
}

async fn scrape_all(addrs: &[SocketAddr]) -> anyhow::Result<Vec<String>> {
    let mut texts = Vec::new();
    for addr in addrs {
        texts.push(scrape(*addr).await?);
    }
    Ok(texts)
}

const CONTACT: &[(&str, &str)] = &[("object", "Contact")];

/// A producer in `--watch` mode (as it runs in production) serving metrics on a free port.
struct WatchingProducer {
    addr: SocketAddr,
    passes: tokio::sync::mpsc::UnboundedReceiver<Vec<producer::sync::SyncReport>>,
    stop: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl WatchingProducer {
    async fn start(mut args: producer::cli::SyncArgs) -> Self {
        args.watch = true;
        args.interval = Duration::from_secs(600);
        args.metrics.metrics_addr = Some("127.0.0.1:0".into());
        let listener = args.metrics.bind().await.unwrap().unwrap();
        let addr = listener.local_addr();
        let (tx, passes) = tokio::sync::mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let handle = tokio::spawn({
            let stop = stop.clone();
            async move {
                producer::watch_with_metrics(&args, Some(listener), &stop, |reports| {
                    let _ = tx.send(reports.to_vec());
                })
                .await
            }
        });
        Self {
            addr,
            passes,
            stop,
            handle,
        }
    }

    /// The report of the next pass's first object.
    async fn next_pass(&mut self) -> producer::sync::SyncReport {
        tokio::time::timeout(WAIT, self.passes.recv())
            .await
            .expect("a pass ends")
            .expect("the producer is running")
            .remove(0)
    }

    async fn stop(self) {
        self.stop.cancel();
        self.handle.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_counts_match_the_table_and_the_dead_letter_queue() {
    let env = TestEnv::new().await.unwrap();
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 50,
        contacts: 12_000,
        seed: 17,
        ..OrgConfig::default()
    })
    .await
    .unwrap();

    let mut args = env.sync_args(&org, "Contact");
    args.page_size = 1000;
    let mut producer = WatchingProducer::start(args).await;
    // No worker yet: the pages wait on the queue.
    let report = producer.next_pass().await;
    assert_eq!(report.records, 12_000);
    // Pages of 1,000, and a part page at the end of each slice read at once.
    assert!((12..=20).contains(&report.pages), "{report:?}");
    let pages = report.pages as f64;

    let text = scrape(producer.addr).await.unwrap();
    let used = sample(&text, "sfsync_api_calls_used", &[]).unwrap();
    let remaining = sample(&text, "sfsync_api_calls_remaining", &[]).unwrap();
    assert!(used > 0.0, "api calls used: {used}\n{text}");
    assert!(remaining > 0.0, "api calls remaining: {remaining}");
    let lag = sample(&text, "sfsync_watermark_lag_seconds", CONTACT)
        .unwrap_or_else(|| panic!("no watermark lag for Contact:\n{text}"));
    assert!(lag > 0.0, "{lag}");
    assert_eq!(
        sample(&text, "sfsync_records_published_total", CONTACT),
        Some(12_000.0)
    );
    assert_eq!(
        sample(&text, "sfsync_pages_published_total", CONTACT),
        Some(pages)
    );
    assert_eq!(sample(&text, "sfsync_pages_in_flight", &[]), Some(0.0));
    assert!(
        sample(
            &text,
            "sfsync_last_sync_completed_timestamp_seconds",
            CONTACT
        )
        .is_some()
    );
    println!(
        "producer: api calls used {used}, remaining {remaining}, Contact watermark lag {lag:.0} s"
    );

    // Every 100th record is refused by the database, so it goes to the dead-letter queue.
    let ids: Vec<String> = org
        .org()
        .records("Contact")
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    let rejected: Vec<String> = ids.iter().skip(7).step_by(100).cloned().collect();
    assert_eq!(rejected.len(), 120);
    let list = rejected
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE salesforce.contact ADD CONSTRAINT reject_for_test CHECK (sfid NOT IN ({list}))"
    )))
    .execute(&env.pool)
    .await
    .unwrap();

    // During the import: the table is locked, so every page a worker takes waits in its
    // upsert. The endpoints answer, the pages show as in flight, and nothing counts as stored.
    let mut lock = env.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE salesforce.contact IN SHARE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let mut workers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..2 {
        let (worker, addr) = env.spawn_worker_with_metrics(4, 2).await.unwrap();
        workers.push(worker);
        addrs.push(addr);
    }
    env.wait_until(
        "4 pages in flight (2 workers × concurrency 2)",
        WAIT,
        || async { Ok(sum(&scrape_all(&addrs).await?, "sfsync_pages_in_flight", &[]) == 4.0) },
    )
    .await
    .unwrap();
    let during = scrape_all(&addrs).await.unwrap();
    for text in &during {
        for family in [
            "sfsync_records_stored",
            "sfsync_records_dead_lettered",
            "sfsync_upsert_duration_seconds",
            "sfsync_retries",
            "sfsync_pages_in_flight",
        ] {
            assert!(declares(text, family), "{family} missing:\n{text}");
        }
        assert_eq!(sample(text, "sfsync_pages_in_flight", &[]), Some(2.0));
    }
    assert_eq!(
        sum(&during, "sfsync_records_stored_total", CONTACT),
        0.0,
        "nothing is committed while the table is locked"
    );
    assert_eq!(env.pages_done(report.run_id).await.unwrap(), 0);
    println!("during: 2 workers answered, 4 pages in flight, 0 records stored");
    lock.rollback().await.unwrap();

    // After: the counts equal what the table and the DLQ hold.
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    let rows = env.count_rows("contact").await.unwrap();
    assert_eq!(rows, 12_000 - 120);
    env.wait_until("the counters to settle", WAIT, || async {
        let texts = scrape_all(&addrs).await?;
        Ok(
            sum(&texts, "sfsync_records_stored_total", CONTACT) == rows as f64
                && sum(&texts, "sfsync_records_dead_lettered_total", CONTACT) == 120.0
                && sum(&texts, "sfsync_pages_in_flight", &[]) == 0.0,
        )
    })
    .await
    .unwrap();
    let after = scrape_all(&addrs).await.unwrap();
    let letters = env.dead_letters().await.unwrap();
    let stored = sum(&after, "sfsync_records_stored_total", CONTACT);
    let dead = sum(&after, "sfsync_records_dead_lettered_total", CONTACT);
    assert_eq!(stored, rows as f64);
    assert_eq!(dead, letters.len() as f64);
    assert_eq!(letters.len(), 120);
    assert_eq!(
        sum(&after, "sfsync_rows_written_total", CONTACT),
        rows as f64
    );
    assert_eq!(
        sum(&after, "sfsync_upsert_duration_seconds_count", CONTACT),
        pages,
        "one timed store per page"
    );
    let per_worker: Vec<f64> = after
        .iter()
        .map(|t| sample(t, "sfsync_records_stored_total", CONTACT).unwrap_or(0.0))
        .collect();
    assert!(
        per_worker.iter().all(|n| *n > 0.0),
        "both workers stored pages: {per_worker:?}"
    );
    println!(
        "after: records stored {per_worker:?} (sum {stored}) = {rows} rows; dead-lettered {dead} = {} letters on the DLQ",
        letters.len()
    );

    // A message that is not an sfsync page is dead-lettered whole, under object "unknown".
    env.publish_foreign(b"this is not json").await.unwrap();
    let unknown = &[("object", "unknown")];
    env.wait_until("the foreign message counted", WAIT, || async {
        Ok(sum(
            &scrape_all(&addrs).await?,
            "sfsync_records_dead_lettered_total",
            unknown,
        ) == 1.0)
    })
    .await
    .unwrap();
    let last = scrape_all(&addrs).await.unwrap();
    assert_eq!(
        sum(&last, "sfsync_records_dead_lettered_total", CONTACT),
        120.0
    );
    assert_eq!(env.dead_letters().await.unwrap().len(), 121);

    producer.stop().await;
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_counts_each_salesforce_retry_by_cause() {
    let env = TestEnv::new().await.unwrap();
    // Every third data call answers 503; slow calls and tokens living 800 ms make sessions
    // expire mid-paging.
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 50,
        contacts: 10_000,
        seed: 19,
        faults: Faults {
            fail_every: 3,
            fail_status: FailStatus::Unavailable,
            slow_ms: 300,
            token_ttl_ms: Some(800),
            ..Faults::default()
        },
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let mut args = env.sync_args(&org, "Contact");
    args.page_size = 1000;
    let mut producer = WatchingProducer::start(args).await;
    let report = producer.next_pass().await;
    assert_eq!(report.records, 10_000);
    let text = scrape(producer.addr).await.unwrap();
    let stats = org.org().fault_stats();
    let retries = |cause| sample(&text, "sfsync_retries_total", &[("cause", cause)]);
    assert!(
        stats.failed >= 1 && stats.sessions_refused >= 1,
        "{stats:?}"
    );
    assert_eq!(
        retries("salesforce_unavailable"),
        Some(stats.failed as f64),
        "one retry per 503: {stats:?}\n{text}"
    );
    assert_eq!(
        retries("salesforce_session_refresh"),
        Some(stats.sessions_refused as f64),
        "one new login per refused session: {stats:?}"
    );
    assert_eq!(retries("broker_reconnect"), Some(0.0));
    println!(
        "producer retries: {} for 503s, {} session refreshes, as the org counted them",
        stats.failed, stats.sessions_refused
    );
    producer.stop().await;
}

/// Runs a binary that should fail at once; returns its stderr.
async fn fails(binary: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    let out = e2e::binary::output(command, WAIT).await;
    assert!(!out.success);
    out.stderr.trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_metrics_address_fails_at_start_naming_the_setting_and_the_value() {
    // Nothing is connected before the address is bound, so no services are needed.
    let nowhere = [
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:1/%2f"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none"),
    ];
    // (binary, flags, environment, the value the error must quote)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 3] = [
        (
            WORKER,
            vec![],
            vec![("SFSYNC_METRICS_ADDR", "nonsense")],
            "nonsense",
        ),
        (
            WORKER,
            vec!["--metrics-addr", "127.0.0.1:99999"],
            vec![],
            "127.0.0.1:99999",
        ),
        (
            PRODUCER,
            vec!["sync", "--object", "Contact", "--metrics-addr", "localhost"],
            vec![],
            "localhost",
        ),
    ];
    for (binary, args, extra, value) in cases {
        let mut env = nowhere.to_vec();
        env.extend(extra);
        let stderr = fails(binary, &args, &env).await;
        assert_eq!(stderr.lines().count(), 1, "not one line: {stderr}");
        assert!(
            stderr.starts_with("error: --metrics-addr/SFSYNC_METRICS_ADDR: ")
                && stderr.contains(&format!("{value:?}")),
            "{stderr}"
        );
        println!("{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_binary_logs_the_address_it_serves_metrics_on() {
    let env = TestEnv::new().await.unwrap();
    let mut worker = env
        .worker_process(
            WORKER,
            &["--metrics-addr", "127.0.0.1:0"],
            &[("RUST_LOG", "info".into()), ("LOG_FORMAT", "json".into())],
            Stdio::piped(),
        )
        .unwrap();
    let mut lines = BufReader::new(worker.stderr.take().unwrap()).lines();
    let addr: SocketAddr = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if let Some(addr) = event["fields"]["metrics_addr"].as_str() {
                return addr.parse().unwrap();
            }
        }
        panic!("the worker ended without logging its metrics address");
    })
    .await
    .expect("the metrics address is logged");
    assert_ne!(addr.port(), 0);
    let text = scrape(addr).await.unwrap();
    // Per-object series appear with the first page; these exist from the start.
    assert_eq!(
        sample(&text, "sfsync_retries_total", &[("cause", "database")]),
        Some(0.0),
        "{text}"
    );
    assert_eq!(sample(&text, "sfsync_pages_in_flight", &[]), Some(0.0));
    println!("the worker process serves metrics on {addr}");
    worker.kill().await.unwrap();
}
