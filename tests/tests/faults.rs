//! Fault tests: workers killed, broker connections cut, the database unreachable, Salesforce
//! failing in every way it does, SIGTERM mid-import. Each ends with the same table as a clean
//! run (compared field by field with the org), nothing lost and nothing dead-lettered.
//!
//! The scenarios run one at a time (the `SERIAL` lock): they load the machine, and several
//! measure how long a recovery takes.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use e2e::{TestEnv, compare, proxy::TcpProxy};
use fake_salesforce::{FailStatus, FakeOrg, Faults, OrgConfig};
use tokio::{process::Child, sync::Mutex};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

static SERIAL: Mutex<()> = Mutex::const_new(());

const WAIT: Duration = Duration::from_secs(90);
const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");

async fn org(contacts: u32, seed: u64, faults: Faults) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 200,
        contacts,
        seed,
        faults,
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

/// Pauses before retrying 403 REQUEST_LIMIT_EXCEEDED in these tests (30 s in production).
const LIMIT_BACKOFF: Duration = Duration::from_millis(100);

/// `sfsync_retries_total{cause}` added up over the workers' metrics endpoints.
async fn retries(metrics: &[std::net::SocketAddr], cause: &str) -> f64 {
    let mut total = 0.0;
    for addr in metrics {
        let text = e2e::scrape::scrape(*addr).await.unwrap();
        total +=
            e2e::scrape::sample(&text, "sfsync_retries_total", &[("cause", cause)]).unwrap_or(0.0);
    }
    total
}

/// Publishes every Contact of the org with the in-process producer (no worker needs to run).
async fn publish(env: &TestEnv, org: &FakeOrg, page_size: u32) -> producer::sync::SyncReport {
    let mut args = env.sync_args(org, "Contact");
    args.page_size = page_size;
    args.full = true;
    args.limit_retry.sf_limit_backoff = LIMIT_BACKOFF;
    producer::run_sync(&args, &CancellationToken::new())
        .await
        .expect("the producer publishes every page")
}

/// The end state every scenario must reach: every page processed, both queues empty, nothing
/// dead-lettered, and the table equal to the org field by field.
async fn assert_exact(env: &TestEnv, org: &FakeOrg, run_id: Uuid, pages: u64) {
    env.wait_for_run(run_id, pages, WAIT)
        .await
        .expect("every page processed");
    env.wait_until("an empty work queue", WAIT, || async {
        Ok(env.queue_depth(common::topology::WORK_QUEUE).await? == 0)
    })
    .await
    .unwrap();
    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM sfsync.dead_letters")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "no dead letters booked");
    compare::assert_table_matches(&env.pool, "contact", org.org().records("Contact")).await;
}

/// Syncs the org with `faults` injected into its API and checks that the table ends exact;
/// returns how many calls the org failed, cut short or garbled meanwhile.
async fn sync_exactly_despite(env: &TestEnv, org: &FakeOrg, name: &str, faults: Faults) -> u64 {
    let before = org.org().fault_stats();
    org.org().set_faults(faults);
    let t = Instant::now();
    let report = publish(env, org, 1000).await;
    let after = org.org().fault_stats();
    let injected = (after.failed - before.failed)
        + (after.truncated - before.truncated)
        + (after.garbled - before.garbled);
    println!(
        "{name}: {injected} calls failed, cut or garbled, sync of {} pages completed in {:?}",
        report.pages,
        t.elapsed()
    );
    assert_exact(env, org, report.run_id, report.pages).await;
    injected
}

async fn wait_pages(env: &TestEnv, run_id: Uuid, at_least: i64) {
    env.wait_until(&format!("{at_least} pages processed"), WAIT, || async {
        Ok(env.pages_done(run_id).await? >= at_least)
    })
    .await
    .unwrap();
}

fn spawn_worker(env: &TestEnv, extra_env: &[(&str, String)], stderr: Stdio) -> Child {
    env.worker_process(
        WORKER,
        &["--prefetch", "4", "--concurrency", "2"],
        extra_env,
        stderr,
    )
    .expect("worker starts")
}

/// Counts every committed write of a `sfsync.page_results` row, i.e. every time a worker
/// finished a page (a redelivered page overwrites its row, and is counted again here).
async fn count_page_writes(env: &TestEnv) {
    sqlx::raw_sql(
        "CREATE TABLE public.page_writes (run_id uuid, page bigint);
         CREATE FUNCTION public.count_page_write() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO public.page_writes VALUES (NEW.run_id, NEW.page); RETURN NULL; END $$;
         CREATE TRIGGER count_page_write AFTER INSERT OR UPDATE ON sfsync.page_results
           FOR EACH ROW EXECUTE FUNCTION public.count_page_write();",
    )
    .execute(&env.pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_repeatedly_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let env = TestEnv::new().await.unwrap();
    let org = org(50_000, 21, Faults::default()).await;
    let report = publish(&env, &org, 1000).await;
    assert_eq!(report.records, 50_000);
    // 50 pages of 1,000, and a part page at the end of each slice read at once.
    assert!((50..=58).contains(&report.pages), "{report:?}");
    let pages = report.pages as i64;

    let mut workers: Vec<Child> = (0..4)
        .map(|_| spawn_worker(&env, &[], Stdio::null()))
        .collect();
    // Kill -9 a different worker at every eighth of the pages, and start a new one.
    let mut kills = 0;
    for round in 1..=6 {
        wait_pages(&env, report.run_id, round * pages / 8).await;
        let victim = round as usize % workers.len();
        workers[victim].start_kill().unwrap(); // SIGKILL
        workers[victim].wait().await.unwrap();
        workers[victim] = spawn_worker(&env, &[], Stdio::null());
        kills += 1;
    }
    assert_exact(&env, &org, report.run_id, report.pages).await;
    for mut w in workers {
        w.start_kill().unwrap();
        w.wait().await.unwrap();
    }
    println!(
        "kill -9: {kills} workers killed during a 50,000-record import; exact table after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_after_their_broker_connections_are_cut() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let env = TestEnv::new().await.unwrap();
    let org = org(50_000, 22, Faults::default()).await;
    let workers: Vec<_> = (0..3).map(|_| env.spawn_worker(4, 2)).collect();
    // The producer publishes while the workers consume; only the workers' connections are
    // cut (they name themselves sfsync-worker), so the producer is not part of this fault.
    let producer = {
        let mut args = env.sync_args(&org, "Contact");
        args.page_size = 1000;
        tokio::spawn(async move { producer::run_sync(&args, &CancellationToken::new()).await })
    };
    env.wait_until("a sync run", WAIT, || async {
        Ok(
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sfsync.runs")
                .fetch_one(&env.pool)
                .await
                .unwrap_or(0)
                > 0,
        )
    })
    .await
    .unwrap();
    let run_id: Uuid = sqlx::query_scalar("SELECT run_id FROM sfsync.runs")
        .fetch_one(&env.pool)
        .await
        .unwrap();

    for at in [10, 25] {
        wait_pages(&env, run_id, at).await;
        let before = env.connections_named("sfsync-worker").unwrap();
        assert_eq!(before.len(), 3, "{before:?}");
        env.close_connections(&before).unwrap();
        let cut = Instant::now();
        env.wait_until("three new worker connections", WAIT, || async {
            let now = env.connections_named("sfsync-worker")?;
            Ok(now.len() == 3 && now.iter().all(|p| !before.contains(p)))
        })
        .await
        .unwrap();
        println!(
            "broker cut at page {at}: workers reconnected in {:?}",
            cut.elapsed()
        );
    }
    // The QoS was set again on the new channels.
    let consumers = std::process::Command::new("rabbitmqctl")
        .args([
            "list_consumers",
            "-q",
            "--no-table-headers",
            "-p",
            &env.name,
        ])
        .args(["queue_name", "prefetch_count"])
        .output()
        .unwrap();
    let consumers = String::from_utf8_lossy(&consumers.stdout).into_owned();
    let prefetch: Vec<&str> = consumers
        .lines()
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    assert_eq!(prefetch, ["4", "4", "4"], "{consumers}");
    let report = producer.await.unwrap().expect("the producer finishes");
    assert_exact(&env, &org, report.run_id, report.pages).await;
    println!("broker cut: exact table after {:?}", started.elapsed());

    // Dead letters go out on the new connections too.
    let id = org.org().record_id("Contact", 0);
    // A stamp that is no datetime: the record cannot be mapped, so a worker dead-letters it.
    let poison = serde_json::json!({"attributes": {"type": "Contact"}, "Id": id,
        "SystemModstamp": "not a datetime", "IsDeleted": false, "LastName": "Refused"});
    env.publish_pages("Contact", Uuid::now_v7(), &[vec![poison]])
        .await
        .unwrap();
    env.wait_until("the refused record on the DLQ", WAIT, || async {
        Ok(env.queue_depth(common::topology::DEAD_QUEUE).await? == 1)
    })
    .await
    .unwrap();
    let letters = env.dead_letters().await.unwrap();
    assert_eq!(
        letters[0].info.error_class.map(|c| c.as_str()),
        Some("mapping"),
        "published by a worker, not dead-lettered by the broker: {letters:?}"
    );
    for w in workers {
        assert!(!w.handle.is_finished(), "a worker gave up");
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_retry_until_the_broker_is_reachable_again() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let env = TestEnv::new().await.unwrap();
    let org = org(20_000, 29, Faults::default()).await;
    let report = publish(&env, &org, 1000).await;
    // A partition between the workers and the broker: the proxy drops their connections and
    // refuses new ones, so every reconnect attempt fails until it is restored.
    let proxy = TcpProxy::start(env.amqp_addr().await.unwrap())
        .await
        .unwrap();
    let via_proxy = env.amqp_url_via(proxy.addr()).unwrap();
    let mut workers = Vec::new();
    let mut metrics = Vec::new();
    for _ in 0..2 {
        let mut args = env.worker_args(4, 2);
        args.services.amqp_url = via_proxy.clone().into();
        let (worker, addr) = TestEnv::spawn_worker_serving_metrics(args).await.unwrap();
        workers.push(worker);
        metrics.push(addr);
    }
    wait_pages(&env, report.run_id, 3).await;
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let refused = proxy.dropped();
    proxy.restore();
    let restored = Instant::now();
    assert!(
        refused > 2,
        "reconnect attempts were refused during the cut ({refused})"
    );
    env.wait_until("both workers back", WAIT, || async {
        Ok(env.connections_named("sfsync-worker")?.len() == 2)
    })
    .await
    .unwrap();
    println!(
        "broker partition of 6 s: {refused} connections dropped or refused, workers back {:?} after it",
        restored.elapsed()
    );
    assert_exact(&env, &org, report.run_id, report.pages).await;
    let reconnects = retries(&metrics, "broker_reconnect").await;
    assert!(
        reconnects >= 2.0,
        "each worker counted its reconnect attempts: {reconnects}"
    );
    for w in workers {
        assert!(!w.handle.is_finished(), "a worker gave up");
        w.stop().await;
    }
    println!(
        "broker partition: sfsync_retries_total{{cause=\"broker_reconnect\"}} {reconnects} over the workers; exact table after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_wait_out_a_database_outage() {
    let _serial = SERIAL.lock().await;
    let started = Instant::now();
    let env = TestEnv::new().await.unwrap();
    let org = org(30_000, 23, Faults::default()).await;
    let report = publish(&env, &org, 1000).await;
    let proxy = TcpProxy::start(env.database_addr().await.unwrap())
        .await
        .unwrap();
    let via_proxy = env.database_url_via(proxy.addr()).unwrap();
    let mut workers = Vec::new();
    let mut metrics = Vec::new();
    for _ in 0..3 {
        let mut args = env.worker_args(4, 2);
        args.services.database_url = via_proxy.clone().into();
        let (worker, addr) = TestEnv::spawn_worker_serving_metrics(args).await.unwrap();
        workers.push(worker);
        metrics.push(addr);
    }

    wait_pages(&env, report.run_id, 5).await;
    proxy.cut();
    let outage = Duration::from_secs(15);
    let cut_at = Instant::now();
    // While the database is unreachable the workers hold their pages and retry.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = env.pages_done(report.run_id).await.unwrap();
    tokio::time::sleep(outage - Duration::from_secs(2)).await;
    assert_eq!(
        env.pages_done(report.run_id).await.unwrap(),
        during,
        "no page can finish while the database is cut off"
    );
    assert!(
        workers.iter().all(|w| !w.handle.is_finished()),
        "a worker gave up"
    );
    assert!(
        (during as u64) < report.pages,
        "the outage must fall mid-import"
    );
    proxy.restore();
    let restored = Instant::now();
    wait_pages(&env, report.run_id, during + 1).await;
    println!(
        "database outage of {:?} at page {during}: first page after it {:?} later; {} connections dropped or refused",
        cut_at.elapsed() - restored.elapsed(),
        restored.elapsed(),
        proxy.dropped()
    );
    assert!(proxy.dropped() > 0, "the cut hit live connections");
    assert_exact(&env, &org, report.run_id, report.pages).await;
    let database = retries(&metrics, "database").await;
    assert!(database > 0.0, "the retries were counted");
    for w in workers {
        w.stop().await;
    }
    println!(
        "database outage: sfsync_retries_total{{cause=\"database\"}} {database} over the workers; exact table after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_mid_paging_costs_one_new_token() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    // 20 query calls of at least 150 ms each, tokens living 800 ms: several expire mid-paging.
    let org = org(
        20_000,
        24,
        Faults {
            slow_ms: 150,
            token_ttl_ms: Some(800),
            ..Faults::default()
        },
    )
    .await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let report = publish(&env, &org, 1000).await;
    let stats = org.org().fault_stats();
    let tokens = org.org().issued_tokens().len() as u64;
    assert!(stats.sessions_refused >= 1, "{stats:?}");
    assert_eq!(
        tokens,
        stats.sessions_refused + 1,
        "exactly one new token per expiry"
    );
    println!(
        "session expiry: {} expiries mid-paging, {tokens} tokens issued, sync completed",
        stats.sessions_refused
    );
    assert_exact(&env, &org, report.run_id, report.pages).await;
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_truncated_and_slow_salesforce_calls_are_retried() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    let org = org(10_000, 25, Faults::default()).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let every_third = |fail_status| Faults {
        fail_every: 3,
        fail_status,
        ..Faults::default()
    };
    let cases = [
        (
            "503 SERVER_UNAVAILABLE",
            every_third(FailStatus::Unavailable),
        ),
        (
            "500 with an HTML body",
            every_third(FailStatus::InternalHtml),
        ),
        (
            "truncated body",
            Faults {
                truncate_every: 3,
                ..Faults::default()
            },
        ),
        (
            "slow answers",
            Faults {
                slow_ms: 400,
                ..Faults::default()
            },
        ),
    ];
    for (name, faults) in cases {
        let injected = sync_exactly_despite(&env, &org, name, faults).await;
        if name != "slow answers" {
            assert!(injected >= 3, "{name}: only {injected} calls failed or cut");
        }
    }
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passing_request_limit_and_garbled_bodies_are_retried() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    let org = org(10_000, 27, Faults::default()).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let cases = [
        (
            // Every third call refused; the retry after LIMIT_BACKOFF goes through.
            "403 REQUEST_LIMIT_EXCEEDED, lifting at the next try",
            Faults {
                fail_every: 3,
                fail_status: FailStatus::LimitExceeded,
                ..Faults::default()
            },
        ),
        (
            "200 with a full-length but invalid JSON body",
            Faults {
                garble_every: 3,
                ..Faults::default()
            },
        ),
    ];
    for (name, faults) in cases {
        let injected = sync_exactly_despite(&env, &org, name, faults).await;
        assert!(
            injected >= 3,
            "{name}: only {injected} calls refused or garbled"
        );
    }
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_api_limit_fails_the_run_clearly() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    let org = org(
        10_000,
        26,
        Faults {
            slow_ms: 200,
            ..Faults::default()
        },
    )
    .await;
    let producer = tokio::process::Command::new(PRODUCER)
        .args(["sync", "--object", "Contact", "--page-size", "1000"])
        // The REST path, and no usage check of sfsync's own: Salesforce itself refuses.
        .args(["--api", "rest", "--max-api-usage", "100"])
        .envs(env.process_env())
        .env("RUST_LOG", "error")
        // Two retries, from 300 ms (production: three, from 30 s).
        .env("SF_LIMIT_RETRIES", "2")
        .env("SF_LIMIT_BACKOFF", "300ms")
        .env("SF_LOGIN_URL", org.base_url())
        .env("SF_CLIENT_ID", "demo")
        .env("SF_CLIENT_SECRET", "demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Two query calls in, every call gets 403 REQUEST_LIMIT_EXCEEDED, for good.
    env.wait_until("two query calls", WAIT, || async {
        Ok(org.org().fault_stats().data_calls >= 2)
    })
    .await
    .unwrap();
    org.org().set_faults(Faults {
        fail_every: 1,
        fail_status: FailStatus::LimitExceeded,
        ..Faults::default()
    });
    let started = Instant::now();
    let out = tokio::time::timeout(WAIT, producer.wait_with_output())
        .await
        .expect("the producer gives up")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("REQUEST_LIMIT_EXCEEDED"),
        "the error names the limit: {stderr}"
    );
    assert!(
        stderr.contains("still refused after 2 retries"),
        "retried, then gave up: {stderr}"
    );
    // Retried with backoff (300 ms, then 600 ms, each plus up to as much jitter), bounded.
    let gave_up_after = started.elapsed();
    assert!(
        gave_up_after >= Duration::from_millis(900) && gave_up_after < Duration::from_secs(30),
        "{gave_up_after:?}"
    );
    assert!(
        org.org().fault_stats().failed >= 3,
        "one call and two retries refused: {:?}",
        org.org().fault_stats()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("published"),
        "no success claimed"
    );
    let (status, error, pages): (String, Option<String>, i64) =
        sqlx::query_as("SELECT status, error, pages_published FROM sfsync.runs")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(
        error
            .as_deref()
            .unwrap_or("")
            .contains("REQUEST_LIMIT_EXCEEDED"),
        "{error:?}"
    );
    println!(
        "API limit: producer exited {:?} {:?} after the limit hit, {pages} pages confirmed, {} refused calls; stderr: {}",
        out.status.code(),
        started.elapsed(),
        org.org().fault_stats().failed,
        stderr.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_query_locator_never_ends_in_a_claimed_success_with_a_gap() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    let org = org(
        10_000,
        27,
        Faults {
            slow_ms: 150,
            ..Faults::default()
        },
    )
    .await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let producer = {
        let mut args = env.sync_args(&org, "Contact");
        args.page_size = 1000;
        tokio::spawn(async move { producer::run_sync(&args, &CancellationToken::new()).await })
    };
    env.wait_until("three query calls", WAIT, || async {
        Ok(org.org().fault_stats().data_calls >= 3)
    })
    .await
    .unwrap();
    org.org().expire_all_cursors();
    let result = producer.await.unwrap();
    assert!(org.org().fault_stats().locators_refused >= 1);
    match result {
        // The producer restarted the window: the table must be exact.
        Ok(report) => {
            println!("locator expiry: the producer recovered");
            assert_exact(&env, &org, report.run_id, report.pages).await;
        }
        // The producer gave up: it must say so, and the run must not claim success.
        Err(e) => {
            let text = format!("{e:#}");
            println!("locator expiry: the producer stopped: {text}");
            assert!(text.contains("INVALID_QUERY_LOCATOR"), "{text}");
            let status: String = sqlx::query_scalar("SELECT status FROM sfsync.runs")
                .fetch_one(&env.pool)
                .await
                .unwrap();
            assert_eq!(status, "failed");
        }
    }
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_and_acks_the_pages_in_work() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    let org = org(20_000, 28, Faults::default()).await;
    let report = publish(&env, &org, 1000).await;
    count_page_writes(&env).await;
    // Every page's upsert takes at least 300 ms, so a worker always has pages in work.
    sqlx::raw_sql(
        "CREATE FUNCTION public.slow_down() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(0.3); RETURN NULL; END $$;
         CREATE TRIGGER slow_down AFTER INSERT ON salesforce.contact
           FOR EACH STATEMENT EXECUTE FUNCTION public.slow_down();",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let log = [("RUST_LOG", "info".to_owned())];
    let first = spawn_worker(&env, &log, Stdio::piped());
    let mut second = spawn_worker(&env, &log, Stdio::piped());

    wait_pages(&env, report.run_id, 4).await;
    e2e::sigterm(&first);
    let stopping = Instant::now();
    let out = tokio::time::timeout(WAIT, first.wait_with_output())
        .await
        .expect("the worker stops")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("Finishing pages in work."), "{stderr}");
    println!(
        "SIGTERM: worker exited 0 after {:?} ({} log lines)",
        stopping.elapsed(),
        stderr.lines().count()
    );

    assert_exact(&env, &org, report.run_id, report.pages).await;
    e2e::stop_gracefully(&mut second).await;
    // Each page finished exactly once: the stopped worker's pages were acked, not redelivered.
    let writes: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT page, count(*) FROM public.page_writes WHERE run_id = $1 GROUP BY page ORDER BY page",
    )
    .bind(report.run_id)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(writes.len() as u64, report.pages);
    let twice: Vec<_> = writes.iter().filter(|(_, n)| *n != 1).collect();
    assert!(twice.is_empty(), "pages finished more than once: {twice:?}");
}

/// The producer's own broker connection is cut mid-sync: it reconnects and syncs again from
/// the watermark; it never reports success with a page unconfirmed, and the table ends exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_reconnects_and_resumes_from_the_watermark() {
    let _serial = SERIAL.lock().await;
    let env = TestEnv::new().await.unwrap();
    // Slow pages, so the cut lands in the middle of paging.
    let org = org(
        20_000,
        27,
        Faults {
            slow_ms: 150,
            ..Faults::default()
        },
    )
    .await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let producer = {
        let mut args = env.sync_args(&org, "Contact");
        args.page_size = 1000;
        // One page after the other: read in slices, the run can be over before the cut.
        args.parallel = 1;
        tokio::spawn(async move { producer::run_sync(&args, &CancellationToken::new()).await })
    };
    env.wait_until("some confirmed pages", WAIT, || async {
        Ok(
            sqlx::query_scalar::<_, Option<i64>>("SELECT max(pages_published) FROM sfsync.runs")
                .fetch_one(&env.pool)
                .await
                .ok()
                .flatten()
                .unwrap_or(0)
                >= 1
                || env.pages_done_any().await? >= 3,
        )
    })
    .await
    .unwrap();
    let cut = env.connections_named("sfsync-producer").unwrap();
    assert_eq!(cut.len(), 1, "{cut:?}");
    env.close_connections(&cut).unwrap();

    let report = producer
        .await
        .unwrap()
        .expect("the sync succeeds after reconnecting");
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    let statuses: Vec<String> =
        sqlx::query_scalar("SELECT status FROM sfsync.runs ORDER BY started_at")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        ["failed", "published"],
        "the cut run is recorded as failed, the resumed one as published"
    );
    assert!(
        matches!(report.mode, producer::sync::SyncMode::Incremental { .. }),
        "resumed from the watermark: {:?}",
        report.mode
    );
    assert!(
        report.records < 20_000,
        "the resumed run read only what was not confirmed (plus the overlap): {}",
        report.records
    );
    compare::assert_table_matches(&env.pool, "contact", org.org().records("Contact")).await;
    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0
    );
    for w in workers {
        w.stop().await;
    }
}
