//! Staying in sync: incremental pulls from the watermark, deletes, ties, late commits, watch
//! mode and the API quota.

use std::{collections::HashSet, time::Duration};

use e2e::{TestEnv, compare};
use fake_salesforce::{MutateRequest, OrgConfig};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);

async fn org(contacts: u32, seed: u64) -> fake_salesforce::FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 100,
        contacts,
        seed,
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

async fn sync(env: &TestEnv, args: &producer::cli::SyncArgs) -> producer::sync::SyncReport {
    let report = producer::run_sync(args, &CancellationToken::new())
        .await
        .expect("sync succeeds");
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .expect("workers process every page");
    report
}

/// Compares the table with the org; rows the org no longer shows (purged) must be marked deleted.
async fn assert_table_matches_org(
    env: &TestEnv,
    org: &fake_salesforce::FakeOrg,
    purged: &[String],
) {
    let mut rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    for id in purged {
        let row = rows
            .remove(id)
            .unwrap_or_else(|| panic!("purged {id} missing from the table"));
        assert_eq!(row["isdeleted"], true, "purged {id} not marked deleted");
    }
    compare::assert_no_differences(org.org().records("Contact"), &rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_sync_brings_updates_creates_and_deletes() {
    let env = TestEnv::new().await.unwrap();
    let org = org(5_000, 21).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let args = env.sync_args(&org, "Contact");
    let full = sync(&env, &args).await;
    assert_eq!(
        (full.mode, full.records),
        (producer::sync::SyncMode::Full, 5_000)
    );

    let changes = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        update: 500,
        delete: 100,
        purge: 20,
        create: 200,
        ..Default::default()
    });
    let incremental = sync(&env, &args).await;
    assert!(
        matches!(
            incremental.mode,
            producer::sync::SyncMode::Incremental { .. }
        ),
        "{:?}",
        incremental.mode
    );
    assert!(
        incremental.records < 1_500,
        "read only what changed (plus the overlap): {}",
        incremental.records
    );
    assert!(
        incremental.records >= 800,
        "500 updated + 100 deleted + 200 created: {}",
        incremental.records
    );
    assert_eq!(
        incremental.deletions, 120,
        "getDeleted reports the deleted and the purged"
    );
    assert_table_matches_org(&env, &org, &changes.purged).await;
    let deleted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM salesforce.contact WHERE isdeleted")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(deleted, 120);

    // Nothing changed: the next sync publishes only the overlap, rewrites nothing.
    let before: Vec<(String, String)> =
        sqlx::query_as("SELECT sfid::text, xmin::text FROM salesforce.contact ORDER BY sfid")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    sync(&env, &args).await;
    let after: Vec<(String, String)> =
        sqlx::query_as("SELECT sfid::text, xmin::text FROM salesforce.contact ORDER BY sfid")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert!(before == after, "an idle incremental sync rewrote rows");
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ties_across_pages_and_late_commits_behind_the_watermark_are_not_missed() {
    let env = TestEnv::new().await.unwrap();
    let org = org(2_000, 22).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let mut args = env.sync_args(&org, "Contact");
    args.page_size = 200;
    sync(&env, &args).await;

    // 1,000 records share one SystemModstamp: five pages of 200 hold the tie.
    let first = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        update: 1_000,
        ..Default::default()
    });
    let report = sync(&env, &args).await;
    assert!(report.pages >= 5, "{report:?}");
    assert_table_matches_org(&env, &org, &[]).await;

    // A late commit: the watermark is now `first`'s stamp; more records are committed with that
    // very stamp after the sync read past it. The overlap re-reads it.
    let late = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        update: 50,
        same_modstamp: true,
        ..Default::default()
    });
    assert_eq!(
        late.system_modstamp, first.system_modstamp,
        "the late records carry a stamp behind the watermark"
    );
    sync(&env, &args).await;
    assert_table_matches_org(&env, &org, &[]).await;
    let ids: HashSet<String> = late.updated.into_iter().collect();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM salesforce.contact WHERE sfid = ANY($1) AND systemmodstamp = $2::timestamptz")
        .bind(ids.into_iter().collect::<Vec<_>>())
        .bind(common::sftime::parse_datetime(&first.system_modstamp).unwrap())
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(stored, 50);
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_mode_brings_a_change_within_the_interval_and_stops_cleanly() {
    let env = TestEnv::new().await.unwrap();
    let org = org(500, 23).await;
    let worker = env.spawn_worker(4, 2);
    let mut args = env.sync_args(&org, "Account,Contact");
    args.objects = vec!["Account".into(), "Contact".into()];
    args.interval = Duration::from_secs(1);
    let cancel = CancellationToken::new();
    let passes = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let (args, cancel, passes) = (args, cancel.clone(), passes.clone());
        tokio::spawn(async move {
            producer::watch(&args, &cancel, |reports| {
                // Objects the probe found unchanged are not synced, and have no report.
                assert!(reports.len() <= 2, "{reports:?}");
                passes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
            .await
        })
    };
    env.wait_until("the first import", WAIT, || async {
        Ok(env.count_rows("contact").await.unwrap_or(0) == 500
            && env.count_rows("account").await.unwrap_or(0) == 100)
    })
    .await
    .unwrap();

    let changed = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        update: 1,
        ..Default::default()
    });
    let id = changed.updated[0].clone();
    let want = org
        .org()
        .records("Contact")
        .find(|r| r["Id"] == id.as_str())
        .unwrap()["LastName"]
        .clone();
    let started = std::time::Instant::now();
    env.wait_until("the change to arrive", Duration::from_secs(6), || async {
        let name: Option<String> =
            sqlx::query_scalar("SELECT lastname FROM salesforce.contact WHERE sfid = $1")
                .bind(&id)
                .fetch_optional(&env.pool)
                .await?;
        Ok(name.as_deref() == want.as_str())
    })
    .await
    .unwrap();
    println!(
        "change visible after {:?} (interval 1 s)",
        started.elapsed()
    );

    cancel.cancel();
    watcher
        .await
        .unwrap()
        .expect("watch ends cleanly on cancel");
    assert!(passes.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_stops_before_the_api_quota_threshold_and_says_so() {
    let env = TestEnv::new().await.unwrap();
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: 3_000,
        seed: 24,
        api_limit: 1_000,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    org.org().set_api_usage(795); // 79.5% of the daily limit used by others
    let mut args = env.sync_args(&org, "Contact");
    args.max_api_usage = 80.0;
    args.page_size = 200; // 15 pages: more calls than the 5 left under the threshold
    let err = producer::run_sync(&args, &CancellationToken::new())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains(
            "API usage is 800/1000 (80% of the org's daily limit), at or past --max-api-usage 80%"
        ),
        "{text}"
    );
    assert!(
        org.org().api_usage() <= 801,
        "stopped at the threshold, not past it: {}",
        org.org().api_usage()
    );
    let status: String = sqlx::query_scalar("SELECT status FROM sfsync.runs")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_bulk_pulls_give_identical_tables() {
    let rest_env = TestEnv::new().await.unwrap();
    let bulk_env = TestEnv::new().await.unwrap();
    let org = org(50_000, 25).await;
    let workers = [rest_env.spawn_worker(4, 2), bulk_env.spawn_worker(4, 2)];

    let rest = sync(&rest_env, &rest_env.sync_args(&org, "Contact")).await;
    let mut args = bulk_env.sync_args(&org, "Contact");
    args.api = producer::sync::ApiChoice::Auto;
    args.bulk_threshold = 10_000; // 50,000 records to read: auto picks Bulk
    let bulk = sync(&bulk_env, &args).await;
    assert_eq!(
        (rest.api, bulk.api),
        (producer::sync::Api::Rest, producer::sync::Api::Bulk)
    );
    assert_eq!((rest.records, bulk.records), (50_000, 50_000));
    println!(
        "API calls for 50,000 records: REST {}, Bulk {} (auto, COUNT() included)",
        rest.api_calls, bulk.api_calls
    );
    assert!(
        bulk.api_calls < rest.api_calls,
        "Bulk should need fewer calls: {} vs {}",
        bulk.api_calls,
        rest.api_calls
    );

    // Same rows, value for value (sfsync's own bookkeeping columns aside).
    let dump = |env: &TestEnv| {
        let pool = env.pool.clone();
        async move {
            let rows: Vec<serde_json::Value> =
                sqlx::query_scalar("SELECT to_jsonb(t) - 'id' - '_sfsync_run_id' - '_sfsync_synced_at' FROM salesforce.contact t ORDER BY sfid").fetch_all(&pool).await.unwrap();
            rows
        }
    };
    let (a, b) = (dump(&rest_env).await, dump(&bulk_env).await);
    assert_eq!(a.len(), 50_000);
    let different: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
    assert!(different.is_empty(), "{different:#?}");
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_delete_removes_the_rows_of_deleted_and_purged_records() {
    let env = TestEnv::new().await.unwrap();
    let org = org(3_000, 26).await;
    let worker = env.spawn_worker(4, 2);
    let mut args = env.sync_args(&org, "Contact");
    args.hard_delete = true;
    sync(&env, &args).await;
    let changes = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        delete: 40,
        purge: 10,
        ..Default::default()
    });
    let report = sync(&env, &args).await;
    assert_eq!(report.deletions, 50);
    let gone: Vec<String> = changes
        .deleted
        .iter()
        .chain(&changes.purged)
        .cloned()
        .collect();
    let left: i64 =
        sqlx::query_scalar("SELECT count(*) FROM salesforce.contact WHERE sfid = ANY($1)")
            .bind(&gone)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(left, 0, "deleted rows removed");
    assert_eq!(env.count_rows("contact").await.unwrap(), 2_950);
    worker.stop().await;
}
