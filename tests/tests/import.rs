//! Full import, end to end: fake org → producer → RabbitMQ → workers → PostgreSQL.

use std::time::Duration;

use e2e::{TestEnv, compare};
use fake_salesforce::OrgConfig;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(180);

async fn org(accounts: u32, contacts: u32, seed: u64) -> fake_salesforce::FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts,
        contacts,
        seed,
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

async fn sync(
    env: &TestEnv,
    org: &fake_salesforce::FakeOrg,
    object: &str,
) -> producer::sync::SyncReport {
    let report = producer::run_sync(&env.sync_args(org, object), &CancellationToken::new())
        .await
        .expect("sync succeeds");
    env.wait_for_run(report.run_id, report.pages, WAIT)
        .await
        .expect("workers process every page");
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_import_matches_the_org_field_by_field_and_a_rerun_rewrites_nothing() {
    let env = TestEnv::new().await.unwrap();
    let org = org(5_000, 20_000, 42).await;
    let workers: Vec<_> = (0..3).map(|_| env.spawn_worker(4, 2)).collect();

    let accounts = sync(&env, &org, "Account").await;
    let contacts = sync(&env, &org, "Contact").await;
    assert_eq!((accounts.records, contacts.records), (5_000, 20_000));
    // 2000-record pages, read in up to 8 slices at once, each ending with a part page.
    assert!((10..=18).contains(&contacts.pages), "{contacts:?}");

    for (object, table) in [("Account", "account"), ("Contact", "contact")] {
        let rows = compare::table_rows(&env.pool, table).await.unwrap();
        let diffs = compare::differences(org.org().records(object), &rows);
        assert!(
            diffs.is_empty(),
            "{object}: {} differences, first: {:?}",
            diffs.len(),
            &diffs[..diffs.len().min(5)]
        );
    }

    // A second run of the same data: every page processed again, no row rewritten.
    let before: Vec<(String, String)> =
        sqlx::query_as("SELECT sfid::text, xmin::text FROM salesforce.contact ORDER BY sfid")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let mut full = env.sync_args(&org, "Contact");
    full.full = true; // every record sent again, not just what changed
    let again = producer::run_sync(&full, &CancellationToken::new())
        .await
        .unwrap();
    env.wait_for_run(again.run_id, again.pages, WAIT)
        .await
        .unwrap();
    assert_ne!(again.run_id, contacts.run_id);
    let after: Vec<(String, String)> =
        sqlx::query_as("SELECT sfid::text, xmin::text FROM salesforce.contact ORDER BY sfid")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(before.len(), 20_000);
    assert!(before == after, "a re-run rewrote rows");

    // The status report agrees with the table.
    let status = producer::runs::status(&env.pool, 10).await.unwrap();
    let latest = status.iter().find(|r| r.run_id == again.run_id).unwrap();
    let pages = again.pages as i64;
    assert_eq!(
        (
            latest.status.as_str(),
            latest.pages_published,
            latest.pages_processed,
            latest.records_stored,
            latest.records_dead
        ),
        ("published", pages, pages, 20_000, 0)
    );

    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0,
        "nothing dead-lettered"
    );
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_before_accounts_join_once_both_are_in() {
    let env = TestEnv::new().await.unwrap();
    let org = org(300, 3_000, 7).await;
    let workers: Vec<_> = (0..2).map(|_| env.spawn_worker(4, 2)).collect();

    sync(&env, &org, "Contact").await;
    let contacts_with_parent = org
        .org()
        .records("Contact")
        .filter(|r| !r["AccountId"].is_null())
        .count() as i64;
    assert!(
        contacts_with_parent > 2_000,
        "the org links most contacts to accounts"
    );
    let orphans: i64 =
        sqlx::query_scalar("SELECT count(*) FROM salesforce.contact WHERE accountid IS NOT NULL")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        orphans, contacts_with_parent,
        "children land before their parents"
    );

    sync(&env, &org, "Account").await;
    let joined: i64 = sqlx::query_scalar("SELECT count(*) FROM salesforce.contact c JOIN salesforce.account a ON c.accountid = a.sfid").fetch_one(&env.pool).await.unwrap();
    assert_eq!(
        joined, contacts_with_parent,
        "every parent found exactly once"
    );
    for w in workers {
        w.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_object_names_and_credentials_are_refused_with_clear_errors() {
    let env = TestEnv::new().await.unwrap();
    let org = org(10, 10, 1).await;

    let err = producer::run_sync(
        &env.sync_args(&org, "Contact; DROP TABLE x"),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(
            r#"--object: object "Contact; DROP TABLE x" is not a valid Salesforce API name"#
        ),
        "{err:#}"
    );

    let err = producer::run_sync(
        &env.sync_args(&org, "NoSuchThing"),
        &CancellationToken::new(),
    )
    .await
    .unwrap_err();
    assert!(
        format!("{err:#}").contains(r#"object "NoSuchThing" does not exist in this org"#),
        "{err:#}"
    );

    let mut args = env.sync_args(&org, "Contact");
    args.salesforce.sf_client_secret = Some("wrong-secret".into());
    let err = producer::run_sync(&args, &CancellationToken::new())
        .await
        .unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("invalid_client") && text.contains("SF_CLIENT_SECRET"),
        "{text}"
    );
    assert!(
        !text.contains("wrong-secret"),
        "the secret leaked into the error: {text}"
    );

    // Nothing was created for the refused runs.
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'salesforce'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(tables, 0);
}
