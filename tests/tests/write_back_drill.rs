//! The write-back drill: a push of 10,000 changes (updates, creates, deletes) while workers are
//! killed with SIGKILL, the broker connections of the workers and the producer are cut, and
//! the org commits every seventh write and then drops the connection before answering. The
//! org ends equal to the table, field by field, with each created record there once.

use std::{process::Stdio, time::Duration};

use e2e::{
    TestEnv,
    config_dir::{ConfigDir, sf_env},
    proxy::TcpProxy,
    write_back::{LIMIT, assert_each_create_once, org_of},
};
use tokio::process::Child;

const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");

/// A worker process that also applies push batches, reaching the broker through `amqp_url`.
fn pushing_worker(env: &TestEnv, org: &fake_salesforce::FakeOrg, amqp_url: &str) -> Child {
    let mut extra = sf_env(org);
    extra.push(("AMQP_URL", amqp_url.to_owned()));
    env.worker_process(
        WORKER,
        &["--prefetch", "4", "--concurrency", "2"],
        &extra,
        Stdio::null(),
    )
    .expect("worker starts")
}

async fn execute(env: &TestEnv, sql: &str) -> u64 {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&env.pool)
        .await
        .unwrap()
        .rows_affected()
}

async fn settled(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox WHERE state IN ('applied', 'merged')")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_through_kills_cuts_and_lost_answers_leaves_the_org_equal_to_the_table() {
    let started = std::time::Instant::now();
    let env = TestEnv::new().await.unwrap();
    let org = org_of(2_000, 10_000).await;
    let puller = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"Email\", \"Engagement_Score__c\"]\n",
    );
    e2e::write_back::sync(PRODUCER, &env, &dir, &org, "Contact").await;

    // 10,000 changes: 8,500 updates, 1,000 creates, 500 deletes.
    let mut changes = execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = id % 97, email = 'drill' || id || '@example.com'
          WHERE id <= 8500",
    )
    .await;
    changes += execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email)
         SELECT 'Drill ' || g, 'drill.new' || g || '@example.com' FROM generate_series(1, 1000) g",
    )
    .await;
    changes += execute(
        &env,
        "DELETE FROM salesforce.contact WHERE id BETWEEN 9001 AND 9500",
    )
    .await;
    assert_eq!(changes, 10_000);
    org.org().set_faults(fake_salesforce::Faults {
        commit_then_drop_every: 7,
        ..fake_salesforce::Faults::default()
    });

    let proxy = TcpProxy::start(env.amqp_addr().await.unwrap())
        .await
        .unwrap();
    let via_proxy = env.amqp_url_via(proxy.addr()).unwrap();
    let mut workers: Vec<Child> = (0..3)
        .map(|_| pushing_worker(&env, &org, &via_proxy))
        .collect();
    let push_env = {
        let mut e = sf_env(&org);
        e.push(("AMQP_URL", via_proxy.clone()));
        e
    };
    let push = |env: &TestEnv| {
        e2e::binary::output(
            dir.command(PRODUCER, &["push", "--wait", "4m"], env, &push_env),
            LIMIT,
        )
    };
    let drill = async {
        let mut kills = 0;
        let mut cuts = 0;
        // Faults at points of progress, so that each lands during the push.
        for (step, at) in [500, 1_500, 3_000, 4_500, 6_000, 7_500]
            .into_iter()
            .enumerate()
        {
            env.wait_until(&format!("{at} changes settled"), LIMIT, || async {
                Ok(settled(&env).await >= at)
            })
            .await
            .unwrap();
            if step % 2 == 0 {
                let victim = step / 2 % workers.len();
                workers[victim].start_kill().unwrap(); // SIGKILL
                workers[victim].wait().await.unwrap();
                workers[victim] = pushing_worker(&env, &org, &via_proxy);
                kills += 1;
            } else {
                proxy.cut();
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxy.restore();
                cuts += 1;
            }
        }
        (kills, cuts)
    };
    let (first, (kills, cuts)) = tokio::join!(push(&env), drill);
    // A push whose broker connection stayed cut through its retries fails; run again, it
    // finishes what is left.
    let mut pushes = 1;
    let mut last = first;
    while !last.success && pushes < 4 {
        println!("push {pushes} ended: {}", last.stderr.trim());
        last = push(&env).await;
        pushes += 1;
    }
    assert!(last.success, "push: {}", last.stderr);
    let took = started.elapsed();

    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sfsync.outbox WHERE state NOT IN ('applied', 'merged')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(open, 0, "every change applied");
    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0
    );
    // Field by field: every live record equals its row, and every row has its record.
    let live: Vec<_> = org
        .org()
        .records("Contact")
        .filter(|r| r["IsDeleted"] != true)
        .collect();
    let diffs = e2e::compare::table_differences(
        &env.pool,
        "contact",
        live.clone(),
        e2e::compare::Others::AreDifferences,
    )
    .await
    .unwrap();
    assert!(
        diffs.is_empty(),
        "{} differences, e.g. {:?}",
        diffs.len(),
        &diffs[..diffs.len().min(5)]
    );
    assert_eq!(live.len(), 10_000 - 500 + 1_000);
    assert_each_create_once(&env, &org, 1_000).await;
    let stats = org.org().fault_stats();
    println!(
        "write-back drill: 10,000 changes, {kills} workers killed, {cuts} broker cuts, {pushes} push runs, {stats:?}; org equal to the table after {took:?}"
    );
    for mut w in workers {
        w.start_kill().unwrap();
        w.wait().await.unwrap();
    }
    puller.stop().await;
}
