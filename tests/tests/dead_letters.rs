//! Dead letters: each bad record is set aside with its reason while the rest of its page is
//! stored; replay after the fix stores it; nothing is lost, even when a worker is killed.

use std::{collections::HashSet, process::Stdio, time::Duration};

use e2e::{TestEnv, compare};
use fake_salesforce::OrgConfig;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(120);

async fn org(contacts: u32, seed: u64) -> fake_salesforce::FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts: 50,
        contacts,
        seed,
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

fn contact_ids(org: &fake_salesforce::FakeOrg) -> Vec<String> {
    org.org()
        .records("Contact")
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect()
}

fn sql_list(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

async fn replay(env: &TestEnv, filter: producer::dlq::DlqFilter) -> usize {
    let conn = env.amqp().await.unwrap();
    let moved = producer::dlq::replay(&conn, &filter).await.unwrap();
    let _ = conn.close(200, "".into()).await;
    assert_eq!(moved.push, 0, "no write-back letters here");
    moved.records
}

async fn status(env: &TestEnv, run_id: Uuid) -> producer::runs::RunStatus {
    producer::runs::status(&env.pool, 50)
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.run_id == run_id)
        .expect("run listed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_records_wait_on_the_dlq_and_replay_stores_them_after_the_fix() {
    let env = TestEnv::new().await.unwrap();
    let org = org(10_000, 3).await;
    // Publish with no worker running: the table exists, the pages wait on the queue.
    let report = producer::run_sync(&env.sync_args(&org, "Contact"), &CancellationToken::new())
        .await
        .unwrap();
    let ids = contact_ids(&org);
    let rejected: Vec<String> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 100 == 7)
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(rejected.len(), 100);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER TABLE salesforce.contact ADD CONSTRAINT reject_for_test CHECK (sfid NOT IN ({}))",
        sql_list(&rejected)
    )))
    .execute(&env.pool)
    .await
    .unwrap();

    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    assert_eq!(env.count_rows("contact").await.unwrap(), 9_900);
    let letters = env.dead_letters_when(100).await.unwrap();
    let dead: HashSet<String> = letters
        .iter()
        .map(|l| l.info.sfid.clone().unwrap())
        .collect();
    assert_eq!(letters.len(), 100, "each rejected record once");
    assert_eq!(dead, rejected.iter().cloned().collect::<HashSet<_>>());
    for l in &letters {
        assert_eq!(l.info.error_class.map(|c| c.as_str()), Some("constraint"));
        assert!(
            l.info.error.as_deref().unwrap().contains("reject_for_test"),
            "{:?}",
            l.info.error
        );
        assert_eq!(
            (l.info.object.as_deref(), l.info.attempts),
            (Some("Contact"), 1)
        );
    }
    let s = status(&env, report.run_id).await;
    assert_eq!((s.records_stored, s.records_dead), (9_900, 100));

    sqlx::query("ALTER TABLE salesforce.contact DROP CONSTRAINT reject_for_test")
        .execute(&env.pool)
        .await
        .unwrap();
    assert_eq!(replay(&env, producer::dlq::DlqFilter::default()).await, 100);
    env.wait_until("all 10,000 rows", WAIT, || async {
        Ok(env.count_rows("contact").await? == 10_000)
    })
    .await
    .unwrap();
    env.wait_until("an empty DLQ and settled counts", WAIT, || async {
        let s = status(&env, report.run_id).await;
        Ok(env.queue_depth(common::topology::DEAD_QUEUE).await? == 0
            && (s.records_stored, s.records_dead) == (10_000, 0))
    })
    .await
    .unwrap();
    compare::assert_table_matches(&env.pool, "contact", org.org().records("Contact")).await;
    for w in workers {
        w.stop().await;
    }
}

fn contact(n: usize, last_name: &str, title: &str) -> serde_json::Value {
    let id = common::sfid::SalesforceId::from_core(
        format!("003Dl{n:010}").as_bytes().try_into().unwrap(),
    );
    json!({"attributes": {"type": "Contact"}, "Id": id.to_string(), "LastName": last_name, "Title": title, "SystemModstamp": "2025-01-01T00:00:00.000+0000", "IsDeleted": false})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_values_and_foreign_messages_are_dead_lettered_and_nul_is_left_out() {
    let env = TestEnv::new().await.unwrap();
    let org = org(200, 5).await;
    // One worker serving metrics, so the sanitized values can be counted where a user would.
    let (worker, metrics) = env.spawn_worker_with_metrics(4, 2).await.unwrap();
    let first = producer::run_sync(&env.sync_args(&org, "Contact"), &CancellationToken::new())
        .await
        .unwrap();
    env.wait_for_run(first.run_id, first.pages, WAIT)
        .await
        .unwrap();
    sqlx::query(
        "ALTER TABLE salesforce.contact ALTER COLUMN title TYPE varchar(10) USING left(title, 10)",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    // A message from somewhere else, straight onto the work queue.
    env.publish_foreign(b"this is not json").await.unwrap();

    let run_id = Uuid::now_v7();
    let page = vec![
        contact(1, "Good", "CEO"),
        contact(2, "Nul\u{0}Name", "CTO"),
        contact(3, "Long", "Chief Executive Officer of Everything"),
        contact(4, "Also\u{0}Nul", "C\u{0}FO"),
        contact(5, "Longer", "Vice President of Long Titles"),
        contact(6, "Fine", "COO"),
    ];
    env.publish_pages("Contact", run_id, &[page]).await.unwrap();
    env.wait_for_run(run_id, 1, WAIT).await.unwrap();
    let stored = |names: &'static [&'static str]| {
        let pool = env.pool.clone();
        async move {
            let n: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM salesforce.contact WHERE lastname = ANY($1)",
            )
            .bind(names)
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(
        stored(&["Good", "Fine", "NulName", "AlsoNul"]).await,
        4,
        "the good records of the page are stored, and the NUL values without their NUL"
    );
    let title: String =
        sqlx::query_scalar("SELECT title FROM salesforce.contact WHERE lastname = 'AlsoNul'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(title, "CFO");

    let letters = env.dead_letters_when(3).await.unwrap();
    let by_class = |class: &str| {
        letters
            .iter()
            .filter(|l| l.info.error_class.map(|c| c.as_str()) == Some(class))
            .collect::<Vec<_>>()
    };
    let (long, decode) = (by_class("value"), by_class("decode"));
    assert_eq!(
        (long.len(), decode.len(), letters.len()),
        (2, 1, 3),
        "{letters:#?}"
    );
    assert!(
        long.iter().all(|l| l
            .info
            .error
            .as_deref()
            .unwrap()
            .contains("value too long for type character varying(10)")),
        "{long:?}"
    );
    assert!(
        decode[0]
            .info
            .error
            .as_deref()
            .unwrap()
            .contains("body is not an sfsync page"),
        "{decode:?}"
    );
    let text = e2e::scrape::scrape(metrics).await.unwrap();
    let sanitized = |field| {
        e2e::scrape::sample(
            &text,
            "sfsync_values_sanitized_total",
            &[("object", "Contact"), ("field", field)],
        )
    };
    assert_eq!(
        (sanitized("LastName"), sanitized("Title")),
        (Some(2.0), Some(1.0)),
        "{text}"
    );

    // The worker kept consuming: a later page is stored.
    let later = Uuid::now_v7();
    env.publish_pages("Contact", later, &[vec![contact(7, "Later", "CIO")]])
        .await
        .unwrap();
    env.wait_for_run(later, 1, WAIT).await.unwrap();
    assert_eq!(stored(&["Later"]).await, 1);

    // Widen the column and replay the value errors: those are stored, the decode one stays.
    sqlx::query("ALTER TABLE salesforce.contact ALTER COLUMN title TYPE text")
        .execute(&env.pool)
        .await
        .unwrap();
    let moved = replay(
        &env,
        producer::dlq::DlqFilter {
            error_class: Some(common::dead_letter::ErrorClass::Value),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(moved, 2);
    env.wait_until("the replayed records", WAIT, || async {
        Ok(stored(&["Long", "Longer"]).await == 2)
    })
    .await
    .unwrap();
    let left = env.dead_letters().await.unwrap();
    let classes: Vec<_> = left
        .iter()
        .map(|l| l.info.error_class.unwrap().as_str())
        .collect();
    assert_eq!(classes, ["decode"]);
    let s = status(&env, run_id).await;
    assert_eq!(
        (s.records_stored, s.records_dead),
        (6, 0),
        "replayed records count as stored"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_workers_while_they_dead_letter_loses_nothing() {
    let env = TestEnv::new().await.unwrap();
    let org = org(6_000, 11).await;
    let mut args = env.sync_args(&org, "Contact");
    args.page_size = 500; // 12 pages, so there is work left for every round of kills
    let report = producer::run_sync(&args, &CancellationToken::new())
        .await
        .unwrap();
    // Reject about half of the records, so workers spend their time dead-lettering.
    sqlx::query(
        "ALTER TABLE salesforce.contact ADD CONSTRAINT reject_half CHECK (hashtext(sfid) % 2 = 0)",
    )
    .execute(&env.pool)
    .await
    .unwrap();

    let spawn = || {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_e2e-worker"));
        cmd.args(["--prefetch", "2", "--concurrency", "2"])
            .envs(env.process_env())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        cmd.spawn().expect("worker starts")
    };
    for round in 0..3 {
        let mut worker = spawn();
        let before = env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap();
        // Kill once it is dead-lettering (or after a while if the work ran out).
        let _ = env
            .wait_until("dead letters to grow", Duration::from_secs(15), || async {
                Ok(env.queue_depth(common::topology::DEAD_QUEUE).await? > before)
            })
            .await;
        tokio::time::sleep(Duration::from_millis(50 * round)).await;
        worker.start_kill().unwrap(); // SIGKILL
        worker.wait().await.unwrap();
    }
    let mut last = spawn();
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .unwrap();
    env.wait_until("an empty work queue", WAIT, || async {
        Ok(env.queue_depth(common::topology::WORK_QUEUE).await? == 0)
    })
    .await
    .unwrap();
    // Stopped gracefully: the empty queue says nothing of the pages the worker still has in
    // work, and a kill now would leave one unacked with no worker left to take it again.
    e2e::stop_gracefully(&mut last).await;

    let stored: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT sfid::text FROM salesforce.contact")
            .fetch_all(&env.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    let letters = env.dead_letters().await.unwrap();
    let dead: HashSet<String> = letters
        .iter()
        .map(|l| l.info.sfid.clone().unwrap())
        .collect();
    let all: HashSet<String> = contact_ids(&org).into_iter().collect();
    assert!(stored.is_disjoint(&dead), "a record both stored and dead");
    let missing: Vec<_> = all
        .difference(&stored.union(&dead).cloned().collect())
        .take(5)
        .cloned()
        .collect();
    assert!(missing.is_empty(), "records lost: {missing:?}");
    assert_eq!(stored.len() + dead.len(), 6_000);
    // Every dead letter is one the constraint really rejects.
    let wrongly_dead: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[]) AS id WHERE hashtext(id) % 2 = 0",
    )
    .bind(dead.iter().cloned().collect::<Vec<_>>())
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(wrongly_dead, 0);
    println!(
        "dead letters: {} distinct records, {} messages (duplicates come from kills between DLQ confirm and ack)",
        dead.len(),
        letters.len()
    );
}
