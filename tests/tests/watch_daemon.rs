//! `producer sync --watch` as a daemon that runs for months: an idle pass costs less than one
//! API call per object (the fake org counts them as Salesforce does); the API quota pauses it
//! and it resumes by itself; a failing object backs off while the others' changes keep
//! arriving; old runs are pruned.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::TestEnv;
use fake_salesforce::{FakeOrg, Faults, MutateRequest};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");

async fn org(records: &[(&str, u32)]) -> FakeOrg {
    e2e::org::real_org(records, 20, Faults::default()).await
}

/// Watch arguments for `objects` with `interval` between passes.
fn watch_args(
    env: &TestEnv,
    org: &FakeOrg,
    objects: &str,
    interval: Duration,
) -> producer::cli::SyncArgs {
    let mut args = env.sync_args(org, objects);
    args.objects = objects.split(',').map(str::to_owned).collect();
    args.watch = true;
    args.interval = interval;
    args
}

/// A watch running in this process, counting its passes.
struct Watch {
    cancel: CancellationToken,
    passes: Arc<AtomicUsize>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Watch {
    fn start(args: producer::cli::SyncArgs) -> Self {
        let cancel = CancellationToken::new();
        let passes = Arc::new(AtomicUsize::new(0));
        let handle = {
            let (cancel, passes) = (cancel.clone(), passes.clone());
            tokio::spawn(async move {
                producer::watch(&args, &cancel, |_| {
                    passes.fetch_add(1, Ordering::SeqCst);
                })
                .await
            })
        };
        Self {
            cancel,
            passes,
            handle,
        }
    }

    fn passes(&self) -> usize {
        self.passes.load(Ordering::SeqCst)
    }

    async fn wait_passes(&self, env: &TestEnv, n: usize) {
        env.wait_until(&format!("{n} passes"), WAIT, || async {
            Ok(self.passes() >= n)
        })
        .await
        .unwrap();
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.handle
            .await
            .expect("watch task")
            .expect("watch ends Ok");
    }
}

/// Waits until `object`'s record `id` has `last_name` in `table`; returns how long it took.
async fn arrives(env: &TestEnv, table: &str, id: &str, last_name: &str) -> Duration {
    let started = Instant::now();
    env.wait_until(&format!("{id} in {table}"), WAIT, || async {
        let name: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT lastname FROM salesforce.{table} WHERE sfid = $1"
        )))
        .bind(id)
        .fetch_optional(&env.pool)
        .await?;
        Ok(name.as_deref() == Some(last_name))
    })
    .await
    .unwrap();
    started.elapsed()
}

/// Changes one record of `object` in the org; returns its Id and new LastName.
fn change_one(org: &FakeOrg, object: &str) -> (String, String) {
    let changed = org.org().mutate(MutateRequest {
        update: 1,
        ..MutateRequest::new(object)
    });
    let id = changed.updated[0].clone();
    let record = org.org().record_json_by_id(object, &id).unwrap();
    (id, record["LastName"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_watch_pass_costs_less_than_one_api_call_per_object() {
    let env = TestEnv::new().await.unwrap();
    let org = org(&[("Account", 50), ("Contact", 300), ("Lead", 200)]).await;
    let worker = env.spawn_worker(4, 2);
    let objects = "Account,Contact,Lead";
    // Imported first, as a daemon usually starts on tables that exist.
    let mut once = env.sync_args(&org, objects);
    once.objects = objects.split(',').map(str::to_owned).collect();
    producer::run_sync_all(&once, &CancellationToken::new())
        .await
        .unwrap();
    env.wait_for_all_runs(WAIT).await.unwrap();

    let before = org.org().api_usage();
    let watch = Watch::start(watch_args(&env, &org, objects, Duration::from_millis(20)));
    watch.wait_passes(&env, 100).await;
    let calls = org.org().api_usage() - before;
    let passes = watch.passes();
    watch.stop().await;
    let per_object_pass = calls as f64 / (3 * passes) as f64;
    println!(
        "idle watch: {passes} passes over 3 objects cost {calls} API calls: {per_object_pass:.3} per object per pass"
    );
    // The first pass describes and reads each object (2 calls each); every later pass asks
    // the three in one Composite call.
    assert!(per_object_pass <= 1.0, "{calls} calls for {passes} passes");
    assert!(
        calls as usize <= 3 * 2 + passes,
        "{calls} calls for {passes} passes"
    );

    // A change made in the org still arrives.
    let watch = Watch::start(watch_args(&env, &org, objects, Duration::from_millis(500)));
    let (id, name) = change_one(&org, "Contact");
    let took = arrives(&env, "contact", &id, &name).await;
    println!("a change arrived after {took:?} (interval 0.5 s)");
    watch.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_quota_pauses_the_watch_and_it_resumes_by_itself() {
    let env = TestEnv::new().await.unwrap();
    let org = org(&[("Contact", 200)]).await;
    let worker = env.spawn_worker(4, 2);
    let mut args = watch_args(&env, &org, "Contact", Duration::from_millis(200));
    args.max_api_usage = 80.0;
    let watch = Watch::start(args);
    env.wait_until("the first import", WAIT, || async {
        Ok(env.count_rows("contact").await.unwrap_or(0) == 200)
    })
    .await
    .unwrap();

    let limit = org.org().config().api_limit;
    org.org().set_api_usage(limit * 9 / 10);
    env.wait_until("the watch pauses", WAIT, || async {
        let status = producer::watch::health::status(&env.pool).await?;
        Ok(status
            .iter()
            .any(|s| s.paused.as_deref() == Some("API quota")))
    })
    .await
    .unwrap();
    // Paused, it spends at most one call a pass, asking the usage.
    let (id, name) = change_one(&org, "Contact");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stored: Option<String> =
        sqlx::query_scalar("SELECT lastname FROM salesforce.contact WHERE sfid = $1")
            .bind(&id)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_ne!(
        stored.as_deref(),
        Some(name.as_str()),
        "nothing synced while paused"
    );
    assert!(!watch.handle.is_finished(), "the daemon keeps running");

    // The usage falls (the rolling 24 hours moved on): it syncs again, without a restart.
    org.org().set_api_usage(0);
    let took = arrives(&env, "contact", &id, &name).await;
    println!("resumed: the change arrived {took:?} after the usage fell");
    let status = producer::watch::health::status(&env.pool).await.unwrap();
    assert!(status.iter().all(|s| s.paused.is_none()), "{status:?}");
    watch.stop().await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_object_backs_off_while_the_others_keep_arriving() {
    let env = TestEnv::new().await.unwrap();
    // Salesforce refuses to query ContentDocumentLink without a filter, which this watch does
    // not set: the object fails on every try.
    let org = org(&[("Contact", 200), ("Lead", 100), ("ContentDocumentLink", 10)]).await;
    let worker = env.spawn_worker(4, 2);
    let watch = Watch::start(watch_args(
        &env,
        &org,
        "Contact,ContentDocumentLink,Lead",
        Duration::from_millis(200),
    ));
    env.wait_until("the first import", WAIT, || async {
        Ok(env.count_rows("contact").await.unwrap_or(0) == 200
            && env.count_rows("lead").await.unwrap_or(0) == 100)
    })
    .await
    .unwrap();
    let mut slowest = Duration::ZERO;
    for object in ["Contact", "Lead", "Contact", "Lead"] {
        let (id, name) = change_one(&org, object);
        slowest = slowest.max(arrives(&env, &object.to_lowercase(), &id, &name).await);
    }
    // Long enough for the failing object's pauses to grow.
    watch.wait_passes(&env, 40).await;
    let passes = watch.passes();
    let status = producer::watch::health::status(&env.pool).await.unwrap();
    watch.stop().await;
    let failing = status
        .iter()
        .find(|s| s.object == "ContentDocumentLink")
        .unwrap();
    println!(
        "{passes} passes; ContentDocumentLink failed {} times in a row; changes of the others arrived within {slowest:?}",
        failing.failures
    );
    assert!(slowest < Duration::from_millis(200) + Duration::from_secs(2));
    assert!(failing.failures >= 2, "{failing:?}");
    assert!(
        (failing.failures as usize) < passes / 2,
        "backed off: {} tries in {passes} passes",
        failing.failures
    );
    assert!(failing.retry_at.is_some() && failing.last_success_at.is_none());
    assert!(
        failing
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("[objects.ContentDocumentLink]")),
        "{failing:?}"
    );
    for s in status.iter().filter(|s| s.object != "ContentDocumentLink") {
        assert_eq!(s.failures, 0, "{s:?}");
        assert!(s.last_success_at.is_some(), "{s:?}");
    }
    // producer status says the same.
    let mut command = tokio::process::Command::new(PRODUCER);
    command.arg("status").envs(env.process_env());
    let out = e2e::binary::output(command, WAIT).await;
    assert!(out.success, "{}", out.stderr);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("watch ContentDocumentLink:"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(
        line.contains("last success never")
            && line.contains(&format!("{} failures in a row, next try", failing.failures))
            && line.contains("[objects.ContentDocumentLink]"),
        "{line}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("watch Contact: last success 2")),
        "{}",
        out.stdout
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watch_prunes_runs_older_than_the_retention() {
    let env = TestEnv::new().await.unwrap();
    let org = org(&[("Contact", 50)]).await;
    let worker = env.spawn_worker(4, 2);
    common::db::migrate(&env.pool).await.unwrap();
    // Twenty old runs of Contact with their pages, as weeks of passes leave them.
    sqlx::raw_sql(
        "INSERT INTO sfsync.runs (run_id, object, started_at, finished_at, status)
         SELECT gen_random_uuid(), 'Contact', now() - interval '20 days' - g * interval '1 minute',
                now() - interval '20 days' - g * interval '1 minute', 'published'
           FROM generate_series(1, 20) g;
         INSERT INTO sfsync.page_results (run_id, page, object, records, records_stored)
         SELECT run_id, 1, 'Contact', 10, 10 FROM sfsync.runs;",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let old: Vec<uuid::Uuid> = sqlx::query_scalar("SELECT run_id FROM sfsync.runs")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(old.len(), 20);
    let watch = Watch::start(watch_args(
        &env,
        &org,
        "Contact",
        Duration::from_millis(200),
    ));
    watch.wait_passes(&env, 3).await;
    watch.stop().await;
    let (old_runs, old_pages, runs): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sfsync.runs WHERE run_id = ANY($1)),
                (SELECT count(*) FROM sfsync.page_results WHERE run_id = ANY($1)),
                (SELECT count(*) FROM sfsync.runs)",
    )
    .bind(&old)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(old_runs, 0, "runs older than 14 days pruned");
    assert_eq!(old_pages, 0, "their page results too");
    assert!(runs >= 1, "the watch's own runs stay");
    worker.stop().await;
}
