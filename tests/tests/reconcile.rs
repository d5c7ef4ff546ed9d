//! Reconcile: find and repair every difference between the org and a table.

use std::{collections::HashSet, time::Duration};

use e2e::{TestEnv, compare};
use fake_salesforce::{MutateRequest, OrgConfig};
use tokio_util::sync::CancellationToken;

fn reconcile_args(
    env: &TestEnv,
    org: &fake_salesforce::FakeOrg,
    dry_run: bool,
) -> producer::cli::ReconcileArgs {
    let sync = env.sync_args(org, "Contact");
    producer::cli::ReconcileArgs {
        objects: vec!["Contact".into()],
        all: false,
        dry_run,
        formulas: false,
        json: false,
        hard_delete: false,
        wait: Duration::from_secs(120),
        api: producer::sync::ApiChoice::Bulk,
        max_api_usage: 100.0,
        limit_retry: sync.limit_retry,
        metrics: sync.metrics,
        salesforce: sync.salesforce,
        services: sync.services,
        object_config: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_finds_every_difference_repairs_it_and_then_finds_none() {
    let env = TestEnv::new().await.unwrap();
    let org = fake_salesforce::spawn(OrgConfig {
        accounts: 200,
        contacts: 20_000,
        seed: 31,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let worker = env.spawn_worker(4, 2);
    let full = producer::run_sync(&env.sync_args(&org, "Contact"), &CancellationToken::new())
        .await
        .unwrap();
    env.wait_for_run(full.run_id, full.pages, Duration::from_secs(120))
        .await
        .unwrap();

    // The org changes while no sync runs: 40 updated, 30 hard-deleted beyond getDeleted's reach.
    let changes = org.org().mutate(MutateRequest {
        object: "Contact".into(),
        update: 40,
        vanish: 30,
        ..Default::default()
    });
    let touched: HashSet<&String> = changes.updated.iter().chain(&changes.vanished).collect();
    // The table is damaged by hand: 50 rows deleted, 50 rows set back in time with other values.
    let untouched: Vec<String> = org
        .org()
        .records("Contact")
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .filter(|id| !touched.contains(id))
        .collect();
    let (dropped, rewound) = (&untouched[..50], &untouched[50..100]);
    sqlx::query("DELETE FROM salesforce.contact WHERE sfid = ANY($1)")
        .bind(dropped)
        .execute(&env.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE salesforce.contact SET lastname = 'Old', systemmodstamp = systemmodstamp - interval '30 days' WHERE sfid = ANY($1)")
        .bind(rewound)
        .execute(&env.pool)
        .await
        .unwrap();

    let usage_before = org.org().api_usage();
    let dry = producer::run_reconcile(&reconcile_args(&env, &org, true))
        .await
        .unwrap();
    let c = dry[0].before;
    assert_eq!(
        (c.missing, c.stale, c.gone, c.in_step),
        (50, 90, 30, 20_000 - 30 - 50 - 90)
    );
    assert!(dry[0].after.is_none());
    assert_eq!(
        env.count_rows("contact").await.unwrap(),
        19_950,
        "a dry run changes nothing"
    );
    println!(
        "dry run: {} API calls (org counted {})",
        dry[0].api_calls,
        org.org().api_usage() - usage_before
    );

    let fixed = producer::run_reconcile(&reconcile_args(&env, &org, false))
        .await
        .unwrap();
    assert_eq!((fixed[0].republished, fixed[0].deletions), (140, 30));
    let after = fixed[0].after.unwrap();
    assert_eq!(
        (after.missing, after.stale, after.gone, after.in_step),
        (0, 0, 0, 19_970 + 30)
    );
    println!("repair: {} API calls", fixed[0].api_calls);

    let mut rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    for id in &changes.vanished {
        assert_eq!(
            rows.remove(id).expect("vanished row kept, marked")["isdeleted"],
            true
        );
    }
    compare::assert_no_differences(org.org().records("Contact"), &rows);

    let again = producer::run_reconcile(&reconcile_args(&env, &org, false))
        .await
        .unwrap();
    assert_eq!(again[0].before.differences(), 0);
    assert_eq!(
        (again[0].republished, again[0].deletions, again[0].run_id),
        (0, 0, None),
        "nothing published"
    );
    worker.stop().await;
}
