//! `producer status`: the broker's queue depths and the workers' progress, during and after a run.

use std::time::Duration;

use e2e::TestEnv;
use fake_salesforce::OrgConfig;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_waiting_pages_then_the_stored_records() {
    let env = TestEnv::new().await.unwrap();
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 10,
        contacts: 5_000,
        seed: 41,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let report = producer::run_sync(&env.sync_args(&org, "Contact"), &CancellationToken::new())
        .await
        .unwrap();

    // No worker yet: every page waits on the work queue, nothing is stored.
    let conn = env.amqp().await.unwrap();
    let (work, dead) = producer::status::queue_depths(&conn).await.unwrap();
    assert_eq!(
        (work.ready as u64, work.consumers, dead.ready),
        (report.pages, 0, 0)
    );
    let run = producer::runs::status(&env.pool, 5)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            run.status.as_str(),
            run.records_published,
            run.pages_processed,
            run.records_stored
        ),
        ("published", 5_000, 0, 0)
    );

    let worker = env.spawn_worker(4, 2);
    env.wait_for_run(report.run_id, report.pages, Duration::from_secs(60))
        .await
        .unwrap();
    let run = producer::runs::status(&env.pool, 5)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        (
            run.pages_processed as u64,
            run.records_stored,
            run.records_dead
        ),
        (report.pages, 5_000, 0)
    );
    let (work, _) = producer::status::queue_depths(&conn).await.unwrap();
    assert_eq!((work.ready, work.consumers), (0, 1));
    let _ = conn.close(200, "".into()).await;
    worker.stop().await;
}
