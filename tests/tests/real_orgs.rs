//! Real orgs: the shapes and behaviours of production Salesforce orgs that the classic fake did
//! not have, each synced against the fake org in its real shape (`Shape::Real`) until the table
//! equals the org field by field.

use std::time::Duration;

use e2e::{
    RunningWorker, TestEnv, compare,
    config_dir::{ConfigDir, sf_env},
};
use fake_salesforce::{FakeOrg, Faults, MutateRequest};
use producer::sync::{ApiChoice, SyncReport};
use tokio_util::sync::CancellationToken;

/// Up to this long for the workers to store a run: the full-size import (`scripts/real-org-import`)
/// stores 300,000 Accounts of 250 fields in one.
const WAIT: Duration = Duration::from_secs(600);
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");

/// A fake org in the shape of a real one, with `records` of each object.
async fn real_org(records: &[(&str, u32)], faults: Faults) -> FakeOrg {
    e2e::org::real_org(records, 17, faults).await
}

/// Syncs `object` through `api` and waits until the workers stored every page.
async fn sync(env: &TestEnv, org: &FakeOrg, object: &str, api: ApiChoice) -> SyncReport {
    let mut args = env.sync_args(org, object);
    args.api = api;
    args.bulk_threshold = 1_000;
    run(env, &args).await
}

/// Runs a sync as `args` say and waits until the workers stored every page.
async fn run(env: &TestEnv, args: &producer::cli::SyncArgs) -> SyncReport {
    let report = producer::run_sync(args, &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("sync of {:?} through {:?}: {e:#}", args.objects, args.api));
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    report
}

/// Panics unless `table` holds exactly the org's records of `object`, field by field.
async fn assert_equal(env: &TestEnv, org: &FakeOrg, object: &str, table: &str) {
    compare::assert_table_matches(&env.pool, table, org.org().records(object)).await;
}

fn worker(env: &TestEnv) -> RunningWorker {
    env.spawn_worker(4, 2)
}

/// Every kind of object a real org has, with its table: recorded standard objects, a 735-field
/// custom object, a history object (CreatedDate only), an object with LastModifiedDate only that
/// is not replicateable, one with no stamp at all, and one the Bulk API refuses.
const KINDS: [(&str, &str); 8] = [
    ("Account", "account"),
    ("Contact", "contact"),
    ("Lead", "lead"),
    ("Wide__c", "wide__c"),
    ("AccountHistory", "accounthistory"),
    ("UserLogin", "userlogin"),
    ("LoginHistory", "loginhistory"),
    ("CaseStatus", "casestatus"),
];

/// Accounts of the all-kinds test: `SFSYNC_REAL_ORG_ACCOUNTS` (1,500 by default; the
/// `scripts/real-org-import` check runs it with 300,000).
fn accounts() -> u32 {
    std::env::var("SFSYNC_REAL_ORG_ACCOUNTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_500)
}

/// Above this many Accounts the all-kinds test reads Account through Bulk only: 300,000 records
/// of 250 fields are a Bulk job's work, and through REST 2.7 GB of JSON.
const REST_ACCOUNTS_AT_MOST: u32 = 20_000;

/// What each kind of object can undergo in the fake org between two syncs.
fn changes(object: &str) -> MutateRequest {
    let base = MutateRequest::new(object);
    match object {
        // History rows are only ever created.
        "AccountHistory" => MutateRequest { create: 30, ..base },
        // No IsDeleted: records vanish.
        "UserLogin" | "LoginHistory" => MutateRequest {
            create: 8,
            vanish: 6,
            ..base
        },
        // No IsDeleted either, and values that change.
        "CaseStatus" => MutateRequest {
            update: 5,
            create: 3,
            vanish: 2,
            ..base
        },
        _ => MutateRequest {
            update: 40,
            delete: 10,
            create: 25,
            ..base
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_object_imports_exactly_through_bulk_and_rest_and_stays_equal() {
    let env = TestEnv::new().await.unwrap();
    let accounts = accounts();
    let org = real_org(
        &[
            ("Account", accounts),
            ("Contact", 2_500),
            ("Lead", 1_200),
            ("Wide__c", 300),
            ("AccountHistory", 800),
            ("UserLogin", 200),
            ("LoginHistory", 300),
            ("CaseStatus", 40),
        ],
        Faults::default(),
    )
    .await;
    let w = worker(&env);
    let full = |api| {
        let env = &env;
        let org = &org;
        move |object: &str| {
            let mut args = env.sync_args(org, object);
            args.api = api;
            args.full = true;
            async move { run(env, &args).await }
        }
    };
    for (object, table) in KINDS {
        let started = std::time::Instant::now();
        let report = full(ApiChoice::Bulk)(object).await;
        assert_equal(&env, &org, object, table).await;
        println!(
            "{object}: full import through {:?}, {} records, {} API calls, table equal to the org after {:?}",
            report.api,
            report.records,
            report.api_calls,
            started.elapsed()
        );
    }
    for (object, table) in KINDS {
        if object == "Account" && accounts > REST_ACCOUNTS_AT_MOST {
            continue;
        }
        let report = full(ApiChoice::Rest)(object).await;
        assert_eq!(report.api, producer::sync::Api::Rest);
        assert_equal(&env, &org, object, table).await;
    }
    // Updates, deletes and creates (or vanished records) reach every table incrementally.
    for (object, _) in KINDS {
        org.org().mutate(changes(object));
    }
    for (object, table) in KINDS {
        sync(&env, &org, object, ApiChoice::Auto).await;
        assert_live_rows_equal(&env, &org, object, table).await;
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_735_field_object_syncs_exactly_through_rest_bulk_and_reconcile() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Wide__c", 450)], Faults::default()).await;
    let w = worker(&env);
    // Its full SELECT is far over the 16,384-byte request line Salesforce accepts.
    sync(&env, &org, "Wide__c", ApiChoice::Rest).await;
    assert_equal(&env, &org, "Wide__c", "wide__c").await;

    org.org().mutate(MutateRequest {
        update: 30,
        create: 12,
        delete: 5,
        ..MutateRequest::new("Wide__c")
    });
    sync(&env, &org, "Wide__c", ApiChoice::Rest).await;
    assert_equal(&env, &org, "Wide__c", "wide__c").await;

    let mut args = env.sync_args(&org, "Wide__c");
    args.api = ApiChoice::Bulk;
    args.full = true;
    run(&env, &args).await;
    assert_equal(&env, &org, "Wide__c", "wide__c").await;

    // Reconcile re-pulls damaged rows by Id, every field of them.
    sqlx::query(
        "UPDATE salesforce.wide__c SET name = 'damaged', systemmodstamp = systemmodstamp - interval '1 day'
          WHERE sfid IN (SELECT sfid FROM salesforce.wide__c ORDER BY sfid LIMIT 7)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    sqlx::query(
        "DELETE FROM salesforce.wide__c WHERE sfid IN (SELECT sfid FROM salesforce.wide__c ORDER BY sfid DESC LIMIT 4)",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    let reports = producer::run_reconcile(&reconcile_args(&env, &org, "Wide__c"))
        .await
        .unwrap();
    assert_eq!(reports[0].before.stale + reports[0].before.missing, 11);
    assert_eq!(reports[0].after.unwrap().differences(), 0);
    assert_equal(&env, &org, "Wide__c", "wide__c").await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_record_changed_between_its_parts_is_read_whole_again() {
    // Slow calls leave time to change the records once the primary query's cursor is open:
    // its next page still shows them as they were (a cursor keeps its snapshot), while the
    // reads by Id of their other fields see the change.
    let slow = Faults {
        slow_ms: 100,
        ..Faults::default()
    };
    let (env, org) = (
        TestEnv::new().await.unwrap(),
        real_org(&[("Wide__c", 250)], slow).await,
    );
    let w = worker(&env);
    let before: Vec<_> = org.org().records("Wide__c").collect();
    let mut args = env.sync_args(&org, "Wide__c");
    args.page_size = 200;
    let change = async {
        while org.org().open_cursors() == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        org.org().mutate(MutateRequest {
            update: 250,
            ..MutateRequest::new("Wide__c")
        });
    };
    tokio::join!(run(&env, &args), change);
    let after: Vec<_> = org.org().records("Wide__c").collect();
    let rows = compare::table_rows(&env.pool, "wide__c").await.unwrap();
    let mut read_again = 0;
    for (old, new) in before.into_iter().zip(after) {
        let id = new["Id"].as_str().unwrap().to_owned();
        let row = [(id.clone(), rows[&id].clone())].into();
        if compare::differences([new], &row).is_empty() {
            read_again += 1;
        } else {
            let diffs = compare::differences([old], &row);
            assert!(diffs.is_empty(), "{id} is neither version: {diffs:?}");
        }
    }
    // The second page's 50 records came from the cursor's snapshot, older than their parts.
    assert!(read_again >= 50, "{read_again} records read again");
    sync(&env, &org, "Wide__c", ApiChoice::Rest).await;
    assert_equal(&env, &org, "Wide__c", "wide__c").await;
    w.stop().await;
}

fn reconcile_args(env: &TestEnv, org: &FakeOrg, object: &str) -> producer::cli::ReconcileArgs {
    let sync = env.sync_args(org, object);
    producer::cli::ReconcileArgs {
        objects: vec![object.into()],
        all: false,
        dry_run: false,
        formulas: false,
        hard_delete: false,
        json: false,
        wait: WAIT,
        api: ApiChoice::Rest,
        max_api_usage: 100.0,
        limit_retry: sync.limit_retry,
        metrics: sync.metrics,
        salesforce: sync.salesforce,
        services: sync.services,
        object_config: sync.object_config,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_jobs_carry_no_order_by_and_the_watermark_misses_nothing() {
    let env = TestEnv::new().await.unwrap();
    // Salesforce times out a Bulk query with ORDER BY once it is big enough to need PK
    // chunking; here, over 500 records.
    let org = real_org(
        &[("Contact", 3_000)],
        Faults {
            bulk_order_by_limit: Some(500),
            ..Faults::default()
        },
    )
    .await;
    let w = worker(&env);
    let full = sync(&env, &org, "Contact", ApiChoice::Bulk).await;
    assert_eq!(full.records, 3_000);
    assert_equal(&env, &org, "Contact", "contact").await;
    // Changes made since reach the table through the next Bulk sync, in whatever order Bulk
    // returns them.
    org.org().mutate(MutateRequest {
        update: 700,
        create: 50,
        ..MutateRequest::new("Contact")
    });
    let incremental = sync(&env, &org, "Contact", ApiChoice::Bulk).await;
    assert!(
        incremental.records >= 750,
        "every change is read: {incremental:?}"
    );
    assert_equal(&env, &org, "Contact", "contact").await;

    // Records changed while a job runs are not in its results (the job read the org as it was
    // when it started): the watermark it leaves is not past the job's creation, so the next
    // sync reads them.
    let (during, created) = tokio::join!(
        sync(&env, &org, "Contact", ApiChoice::Bulk),
        change_while_a_job_runs(&org, 30)
    );
    let watermark: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT watermark FROM sfsync.sync_state WHERE object = 'Contact'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert!(
        watermark <= created,
        "watermark {watermark} is past the job's creation {created} ({during:?})"
    );
    sync(&env, &org, "Contact", ApiChoice::Bulk).await;
    assert_equal(&env, &org, "Contact", "contact").await;
    w.stop().await;
}

/// Waits until the org has a Bulk job, updates `records` Contacts, and returns the job's
/// `createdDate`.
async fn change_while_a_job_runs(org: &FakeOrg, records: u32) -> chrono::DateTime<chrono::Utc> {
    let url = format!("{}/services/data/v62.0/jobs/query", org.base_url());
    let token = org.org().issue_token();
    let client = reqwest::Client::new();
    loop {
        let jobs: serde_json::Value = client
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(created) = jobs["records"][0]["createdDate"].as_str() {
            org.org().mutate(MutateRequest {
                update: records,
                ..MutateRequest::new("Contact")
            });
            return common::sftime::parse_datetime(created).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_timeouts_narrow_the_window_instead_of_failing_the_run() {
    let env = TestEnv::new().await.unwrap();
    // Any REST query or COUNT() matching more than 800 records answers QUERY_TIMEOUT.
    let org = real_org(
        &[("Contact", 3_000)],
        Faults {
            query_timeout_above: Some(800),
            ..Faults::default()
        },
    )
    .await;
    let w = worker(&env);
    let mut args = env.sync_args(&org, "Contact");
    args.api = ApiChoice::Auto; // counts first, and the COUNT() times out too
    args.bulk_threshold = 1_000_000;
    run(&env, &args).await;
    assert_equal(&env, &org, "Contact", "contact").await;
    org.org().mutate(MutateRequest {
        update: 900,
        ..MutateRequest::new("Contact")
    });
    run(&env, &args).await;
    assert_equal(&env, &org, "Contact", "contact").await;
    // Through REST, a second holding more changes than Salesforce can query in time (the 900
    // above share one SystemModstamp) is read through a Bulk job instead.
    org.org().mutate(MutateRequest {
        update: 900,
        ..MutateRequest::new("Contact")
    });
    args.api = ApiChoice::Rest;
    let timeouts_before = org.org().fault_stats().query_timeouts;
    run(&env, &args).await;
    assert!(org.org().fault_stats().query_timeouts > timeouts_before);
    assert_equal(&env, &org, "Contact", "contact").await;
    w.stop().await;
}

/// Panics unless every record of the org equals its row, and every other row of `table` (a
/// record gone from the org without a trace) is marked deleted.
async fn assert_live_rows_equal(env: &TestEnv, org: &FakeOrg, object: &str, table: &str) {
    compare::assert_live_rows_match(&env.pool, table, org.org().records(object)).await;
}

async fn deleted_rows(env: &TestEnv, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM salesforce.{table} WHERE isdeleted"
    )))
    .fetch_one(&env.pool)
    .await
    .unwrap()
}

/// Purges `n` Contacts and syncs through REST, which must report `n` deletions; waits until
/// `marked` rows in all are marked deleted. Returns the purged Ids.
async fn purge_and_sync(env: &TestEnv, org: &FakeOrg, n: u32, marked: i64) -> Vec<String> {
    let purged = org.org().mutate(MutateRequest {
        purge: n,
        ..MutateRequest::new("Contact")
    });
    let report = sync(env, org, "Contact", ApiChoice::Rest).await;
    assert_eq!(report.deletions, u64::from(n), "{report:?}");
    env.wait_until(&format!("{marked} rows marked deleted"), WAIT, || async {
        Ok(deleted_rows(env, "contact").await == marked)
    })
    .await
    .unwrap();
    purged.purged
}

/// The Ids of the rows of `table` marked deleted, in order.
async fn marked_deleted(env: &TestEnv, table: &str) -> Vec<String> {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT sfid FROM salesforce.{table} WHERE isdeleted ORDER BY sfid"
    )))
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_without_system_modstamp_sync_on_the_stamp_they_have() {
    let env = TestEnv::new().await.unwrap();
    // AccountHistory: CreatedDate only. UserLogin: LastModifiedDate only, and not
    // replicateable. LoginHistory: no stamp at all, not replicateable.
    let org = real_org(
        &[
            ("AccountHistory", 1_200),
            ("UserLogin", 300),
            ("LoginHistory", 400),
        ],
        Faults::default(),
    )
    .await;
    let w = worker(&env);
    for (object, table) in [
        ("AccountHistory", "accounthistory"),
        ("UserLogin", "userlogin"),
        ("LoginHistory", "loginhistory"),
    ] {
        sync(&env, &org, object, ApiChoice::Rest).await;
        assert_equal(&env, &org, object, table).await;
    }
    // New history rows arrive by CreatedDate; records gone from the objects that getDeleted
    // refuses are found by comparing Ids.
    org.org().mutate(MutateRequest {
        create: 60,
        ..MutateRequest::new("AccountHistory")
    });
    org.org().mutate(MutateRequest {
        vanish: 9,
        create: 4,
        ..MutateRequest::new("UserLogin")
    });
    org.org().mutate(MutateRequest {
        vanish: 11,
        create: 5,
        ..MutateRequest::new("LoginHistory")
    });
    for (object, table, gone) in [
        ("AccountHistory", "accounthistory", 0),
        ("UserLogin", "userlogin", 9),
        ("LoginHistory", "loginhistory", 11),
    ] {
        sync(&env, &org, object, ApiChoice::Auto).await;
        assert_live_rows_equal(&env, &org, object, table).await;
        env.wait_until(
            &format!("{gone} {object} rows marked deleted"),
            WAIT,
            || async { Ok(deleted_rows(&env, table).await == gone) },
        )
        .await
        .unwrap();
    }
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_bulk_api_refuses_is_read_through_rest() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("CaseStatus", 40)], Faults::default()).await;
    let w = worker(&env);
    let report = sync(&env, &org, "CaseStatus", ApiChoice::Bulk).await;
    assert_eq!(report.api, producer::sync::Api::Rest, "{report:?}");
    assert_equal(&env, &org, "CaseStatus", "casestatus").await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_characters_from_the_org_are_left_out_not_dead_lettered() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(
        &[("Contact", 1_000)],
        Faults {
            nul_every: 25,
            ..Faults::default()
        },
    )
    .await;
    let w = worker(&env);
    sync(&env, &org, "Contact", ApiChoice::Rest).await;
    assert_equal(&env, &org, "Contact", "contact").await;
    let mut args = env.sync_args(&org, "Contact");
    args.api = ApiChoice::Bulk;
    args.full = true;
    let report = producer::run_sync(&args, &CancellationToken::new())
        .await
        .unwrap();
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    assert_equal(&env, &org, "Contact", "contact").await;
    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_deleted_windows_over_the_id_limit_are_split() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(
        &[("Contact", 1_500)],
        Faults {
            replication_id_limit: Some(100),
            ..Faults::default()
        },
    )
    .await;
    let w = worker(&env);
    sync(&env, &org, "Contact", ApiChoice::Rest).await;
    purge_and_sync(&env, &org, 260, 260).await;
    assert_live_rows_equal(&env, &org, "Contact", "contact").await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_log_that_no_longer_covers_the_window_is_repaired_not_trusted() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Contact", 800)], Faults::default()).await;
    let w = worker(&env);
    sync(&env, &org, "Contact", ApiChoice::Rest).await;
    // The org's delete log starts after the deletions to come (a long pause, a busy org):
    // getDeleted cannot report them.
    let after = org.org().now_millis() + 120_000;
    org.org().set_faults(Faults {
        delete_log_start: Some(after),
        ..Faults::default()
    });
    let mut expected = purge_and_sync(&env, &org, 30, 30).await;
    expected.sort();
    assert_eq!(marked_deleted(&env, "contact").await, expected);

    // After a long pause (deletions last checked 40 days ago, beyond the 30 days getDeleted
    // answers for), the same repair.
    org.org().set_faults(Faults::default());
    sqlx::query(
        "UPDATE sfsync.sync_state SET deletions_checked_until = now() - interval '40 days'",
    )
    .execute(&env.pool)
    .await
    .unwrap();
    expected.extend(purge_and_sync(&env, &org, 20, 50).await);
    expected.sort();
    assert_eq!(marked_deleted(&env, "contact").await, expected);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_objects_failure_does_not_stop_the_others() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Contact", 300), ("Lead", 200)], Faults::default()).await;
    let w = worker(&env);
    let mut args = env.sync_args(&org, "Contact");
    args.objects = vec!["Contact".into(), "Missing__c".into(), "Lead".into()];
    let error = producer::run_sync_all(&args, &CancellationToken::new())
        .await
        .expect_err("a failed object fails the command");
    let text = format!("{error:#}");
    assert!(text.contains("Missing__c"), "{text}");
    assert!(
        text.contains("1 of 3 objects failed"),
        "the error says how many: {text}"
    );
    env.wait_until("Contact and Lead stored", WAIT, || async {
        Ok(env.count_rows("contact").await.unwrap_or(0) == 300
            && env.count_rows("lead").await.unwrap_or(0) == 200)
    })
    .await
    .unwrap();
    assert_equal(&env, &org, "Contact", "contact").await;
    assert_equal(&env, &org, "Lead", "lead").await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watching_producer_goes_on_after_one_object_fails() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Contact", 300), ("Lead", 200)], Faults::default()).await;
    let w = worker(&env);
    let dir = ConfigDir::new(&env, "");
    let mut command = dir.command(
        PRODUCER,
        &[
            "sync",
            "--watch",
            "--interval",
            "1s",
            "--object",
            "Contact,Missing__c,Lead",
            "--no-progress",
            "--max-api-usage",
            "100",
        ],
        &env,
        &sf_env(&org),
    );
    let producer = command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both objects are stored; then changes made in the org reach the tables through a later
    // pass: the daemon went on after the failure of the pass before.
    for round in ["stored", "changes stored"] {
        if round == "changes stored" {
            for object in ["Contact", "Lead"] {
                org.org().mutate(MutateRequest {
                    update: 15,
                    create: 5,
                    ..MutateRequest::new(object)
                });
            }
        }
        for (object, table) in [("Contact", "contact"), ("Lead", "lead")] {
            env.wait_until(&format!("{object} {round}"), WAIT, || async {
                // The table may not exist yet.
                let Ok(rows) = compare::table_rows(&env.pool, table).await else {
                    return Ok(false);
                };
                Ok(compare::differences(org.org().records(object), &rows).is_empty())
            })
            .await
            .unwrap();
        }
    }
    e2e::sigterm(&producer);
    let stopped = tokio::time::timeout(WAIT, producer.wait_with_output()).await;
    let out = stopped.expect("the producer stops after SIGTERM").unwrap();
    let (code, stderr) = (out.status.code(), String::from_utf8_lossy(&out.stderr));
    assert_eq!(code, Some(0), "exit 0 after SIGTERM: {stderr}");
    let failures = stderr
        .lines()
        .filter(|l| l.contains("ERROR") && l.contains("Missing__c"))
        .count();
    assert!(
        failures >= 2,
        "each pass logs the failed object at ERROR: {stderr}"
    );
    w.stop().await;
}
