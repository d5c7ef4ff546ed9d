//! What the write-back tests share: a fake org with the External ID field, workers that apply
//! push batches, a Salesforce client of that org (another integration changing records), and
//! the org's Contacts by Id.

use std::collections::HashMap;

use fake_salesforce::{FakeOrg, OrgConfig};
use serde_json::{Map, Value};

use crate::{
    RunningWorker, TestEnv,
    binary::Output,
    config_dir::{ConfigDir, sf_env},
};

/// A fake org of `accounts` Accounts and `contacts` Contacts whose objects have the External
/// ID field write-back creates records under.
pub async fn org_of(accounts: u32, contacts: u32) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts,
        contacts,
        seed: 18,
        external_id_field: Some(producer::write::DEFAULT_EXTERNAL_ID.to_owned()),
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

/// The credentials of the fake org's demo connected app.
pub fn credentials(org: &FakeOrg) -> salesforce::CredentialArgs {
    salesforce::CredentialArgs {
        sf_login_url: Some(org.base_url()),
        sf_client_id: Some("demo".to_owned().into()),
        sf_client_secret: Some("demo".to_owned().into()),
        ..salesforce::CredentialArgs::none()
    }
}

/// `n` in-process workers that also apply push batches, with the fake org's credentials.
pub fn pushing_workers(env: &TestEnv, org: &FakeOrg, n: usize) -> Vec<RunningWorker> {
    let mut args = env.worker_args(4, 2);
    args.salesforce = credentials(org);
    (0..n)
        .map(|_| TestEnv::spawn_worker_with(args.clone()))
        .collect()
}

/// A client of the fake org, as another integration (or a person) changing records there.
///
/// # Panics
/// The org refuses the login.
pub async fn client(org: &FakeOrg) -> salesforce::SalesforceClient<salesforce::NoMetrics> {
    salesforce::SalesforceClient::<salesforce::NoMetrics>::connect(
        salesforce::Credentials::ClientCredentials {
            login_url: org.base_url().parse().expect("the fake's URL parses"),
            client_id: "demo".to_owned().into(),
            client_secret: "demo".to_owned().into(),
        },
        "62.0",
        salesforce::RetryPolicy::default(),
    )
    .await
    .expect("the fake org logs in")
}

/// The org's Contacts (soft-deleted ones too) by Id.
pub fn contacts_by_id(org: &FakeOrg) -> HashMap<String, Map<String, Value>> {
    org.org()
        .records("Contact")
        .map(|r| (r["Id"].as_str().unwrap_or_default().to_owned(), r))
        .collect()
}

/// How long a producer command may take in the write-back tests.
pub const LIMIT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs the producer binary `bin` with `args` on the test's services and the fake org.
pub async fn producer(
    bin: &str,
    env: &TestEnv,
    dir: &ConfigDir,
    org: &FakeOrg,
    args: &[&str],
) -> Output {
    crate::binary::output(dir.command(bin, args, env, &sf_env(org)), LIMIT).await
}

/// Syncs `objects` (comma-separated) with the producer binary `bin` and waits until the
/// workers stored every page.
///
/// # Panics
/// The sync failed, or its pages were not stored in time.
pub async fn sync(bin: &str, env: &TestEnv, dir: &ConfigDir, org: &FakeOrg, objects: &str) {
    let args = ["sync", "--object", objects, "--no-progress"];
    let out = producer(bin, env, dir, org, &args).await;
    assert!(out.success, "producer {args:?}: {}", out.stderr);
    env.wait_for_all_runs(LIMIT).await.expect("pages stored");
}

/// Checks that each row the application inserted (`expected` of them) has its record's Id, and
/// that the org has exactly one record under the row's External ID value.
///
/// # Panics
/// A row lacks its Id, or the org has no record or two records for one.
pub async fn assert_each_create_once(env: &TestEnv, org: &FakeOrg, expected: usize) {
    let keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT c.sfid, o.external_key::text FROM sfsync.outbox o
           JOIN salesforce.contact c ON c.id = o.row_id WHERE o.op = 'insert'",
    )
    .fetch_all(&env.pool)
    .await
    .expect("the outbox is read");
    assert_eq!(keys.len(), expected, "each new row has its Id");
    for (sfid, key) in &keys {
        assert_eq!(
            org.org().find_by_external_id("Contact", key),
            std::slice::from_ref(sfid),
            "the record of external key {key} exists once in the org"
        );
    }
}

/// `producer dlq replay --error-class <class>` (which must succeed), then waits until no
/// outbox change is refused any more; returns what the replay printed.
///
/// # Panics
/// The replay failed, or the replayed changes were not applied in time.
pub async fn replay_until_applied(
    bin: &str,
    env: &TestEnv,
    dir: &ConfigDir,
    org: &FakeOrg,
    class: &str,
) -> Output {
    let out = producer(
        bin,
        env,
        dir,
        org,
        &["dlq", "replay", "--error-class", class],
    )
    .await;
    assert!(out.success, "dlq replay: {}", out.stderr);
    env.wait_until("the replayed changes applied", LIMIT, || async {
        let failed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox WHERE state = 'failed'")
                .fetch_one(&env.pool)
                .await?;
        Ok(failed == 0)
    })
    .await
    .expect("the replayed changes are applied");
    out
}
