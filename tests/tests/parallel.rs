//! Parallel extraction: a big read cut into slices of SystemModstamp read at once, the
//! watermark gap-free across them, and a stopped run resumed with only what no slice confirmed.

use std::time::Duration;

use chrono::{DateTime, Utc};
use e2e::{TestEnv, compare};
use fake_salesforce::OrgConfig;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(180);

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

fn args(env: &TestEnv, org: &fake_salesforce::FakeOrg, parallel: u16) -> producer::cli::SyncArgs {
    let mut args = env.sync_args(org, "Contact");
    args.page_size = 1000;
    args.parallel = parallel;
    args
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

/// Every Contact's SystemModstamp in the org.
fn org_stamps(org: &fake_salesforce::FakeOrg) -> Vec<DateTime<Utc>> {
    org.org()
        .records("Contact")
        .map(|r| common::sftime::parse_datetime(r["SystemModstamp"].as_str().unwrap()).unwrap())
        .collect()
}

async fn watermark(env: &TestEnv) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT watermark FROM sfsync.sync_state WHERE object = 'Contact'")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

async fn ahead(env: &TestEnv) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    producer::sync_state::load_ahead(&env.pool, "Contact")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_read_in_slices_lands_every_record_once_and_a_gap_free_watermark() {
    let env = TestEnv::new().await.unwrap();
    let org = org(30_000, 41).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();

    let one = TestEnv::new().await.unwrap();
    let one_by_one = producer::run_sync(&args(&one, &org, 1), &CancellationToken::new())
        .await
        .expect("sync succeeds");
    drop(one);

    let report = sync(&env, &args(&env, &org, 4)).await;
    // The slices are disjoint: every record read once, none twice.
    assert_eq!(report.records, 30_000);
    let rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    compare::assert_no_differences(org.org().records("Contact"), &rows);
    assert_eq!(
        watermark(&env).await,
        org_stamps(&org).into_iter().max().unwrap(),
        "the watermark reaches the newest record once every slice is confirmed"
    );
    assert!(ahead(&env).await.is_empty(), "nothing left recorded ahead");
    // Each slice ends with a part page; choosing them costs the oldest stamp, one count call,
    // and at most three rounds of at most one call per slice.
    assert!(
        report.api_calls <= one_by_one.api_calls + 4 + 2 + 3 * 4,
        "{} calls in slices against {} one page after the other",
        report.api_calls,
        one_by_one.api_calls
    );
    println!(
        "30,000 records: {} API calls in 4 slices, {} one page after the other",
        report.api_calls, one_by_one.api_calls
    );
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sliced_run_resumes_reading_only_what_no_slice_confirmed() {
    let env = TestEnv::new().await.unwrap();
    let org = org(40_000, 42).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let args = args(&env, &org, 4);

    // Stop the first run once later slices have confirmed pages beyond the first one's.
    let cancel = CancellationToken::new();
    let first = {
        let (args, cancel) = (self::args(&env, &org, 4), cancel.clone());
        tokio::spawn(async move { producer::run_sync(&args, &cancel).await })
    };
    env.wait_until("slices confirmed ahead of the first", WAIT, || async {
        // The table exists once the producer has run its migrations.
        let ranges = producer::sync_state::load_ahead(&env.pool, "Contact").await;
        Ok(ranges.is_ok_and(|r| r.len() >= 2))
    })
    .await
    .unwrap();
    cancel.cancel();
    let stopped = first.await.unwrap();
    assert!(stopped.is_err(), "a stopped run is not a success");

    let (mark, ranges) = (watermark(&env).await, ahead(&env).await);
    assert!(
        !ranges.is_empty(),
        "the stopped run left its slices' ranges"
    );
    // What the resumed run must read: from the watermark less the overlap, all but the ranges
    // the slices confirmed (each less the overlap at its end, for late commits).
    let overlap = chrono::TimeDelta::from_std(args.overlap).unwrap();
    let since =
        common::sftime::parse_datetime(&common::sftime::format_soql(mark - overlap)).unwrap();
    let expected = org_stamps(&org)
        .into_iter()
        .filter(|s| *s >= since)
        .filter(|s| {
            !ranges
                .iter()
                .any(|(from, to)| s >= from && *s < *to - overlap)
        })
        .count() as u64;

    let resumed = sync(&env, &args).await;
    assert_eq!(
        resumed.records, expected,
        "the resumed run reads the gaps between confirmed ranges, nothing else"
    );
    assert!(
        resumed.records < 40_000 * 9 / 10,
        "a resumed run reads less than the whole object: {}",
        resumed.records
    );
    let rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    compare::assert_no_differences(org.org().records("Contact"), &rows);
    assert_eq!(
        watermark(&env).await,
        org_stamps(&org).into_iter().max().unwrap()
    );
    assert!(ahead(&env).await.is_empty());
    println!(
        "stopped with {} ranges ahead; resumed reading {} of 40,000 records",
        ranges.len(),
        resumed.records
    );
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_bulk_read_is_one_job_whose_result_pages_download_at_once() {
    let env = TestEnv::new().await.unwrap();
    // The fake's result pages hold 10,000 records: 110,000 make eleven, over three answers of
    // `resultPages`.
    let org = org(110_000, 43).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    let mut args = args(&env, &org, 4);
    args.page_size = 2000;
    args.api = producer::sync::ApiChoice::Bulk;
    let started = Utc::now();
    let report = sync(&env, &args).await;
    assert_eq!(report.api, producer::sync::Api::Bulk);
    assert_eq!(
        report.records, 110_000,
        "the result pages are disjoint: no record twice"
    );
    let rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    compare::assert_no_differences(org.org().records("Contact"), &rows);
    assert_eq!(org.org().bulk_jobs_created(), 1, "one Bulk job");
    let at_once = org.org().bulk_downloads_at_once();
    assert!(
        (2..=4).contains(&at_once),
        "result pages download at once, at most --parallel of them: {at_once}"
    );
    // The job's creation is where the watermark goes.
    let mark = watermark(&env).await;
    assert!(
        mark >= started - chrono::TimeDelta::seconds(1) && mark <= Utc::now(),
        "watermark {mark} is the job's creation"
    );
    assert!(ahead(&env).await.is_empty());

    // With --parallel 1 the same job is read chunk after chunk.
    let env1 = TestEnv::new().await.unwrap();
    let org1 = self::org(30_000, 43).await;
    let worker = env1.spawn_worker(4, 2);
    let mut args1 = self::args(&env1, &org1, 1);
    args1.api = producer::sync::ApiChoice::Bulk;
    assert_eq!(sync(&env1, &args1).await.records, 30_000);
    assert_eq!(org1.org().bulk_downloads_at_once(), 1);
    worker.stop().await;
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearby_org_is_read_page_after_page_and_a_distant_one_in_slices() {
    let near_env = TestEnv::new().await.unwrap();
    let far_env = TestEnv::new().await.unwrap();
    let near = org(30_000, 44).await;
    let far = fake_salesforce::spawn(OrgConfig {
        accounts: 100,
        contacts: 30_000,
        seed: 44,
        faults: fake_salesforce::Faults {
            latency_ms: 450,
            ..Default::default()
        },
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let workers = [near_env.spawn_worker(4, 2), far_env.spawn_worker(4, 2)];
    let mut near_args = args(&near_env, &near, 4);
    // Well above what a local call takes even in a debug build on a busy host.
    near_args.parallel_min_latency = Duration::from_millis(400);
    let mut far_args = args(&far_env, &far, 4);
    far_args.parallel_min_latency = Duration::from_millis(400);

    let near_report = sync(&near_env, &near_args).await;
    let far_report = sync(&far_env, &far_args).await;
    assert_eq!((near_report.records, far_report.records), (30_000, 30_000));
    assert_eq!(
        near_report.pages, 30,
        "an org answering at once is read one page after the other"
    );
    assert!(
        far_report.pages > 30,
        "an org 450 ms away is read in slices, each ending with a part page: {far_report:?}"
    );
    for w in workers {
        w.stop().await;
    }
}
