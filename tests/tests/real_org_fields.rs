//! Real orgs, through the binaries as a user runs them: an object that needs a filter, formula
//! fields that change without a new SystemModstamp, and fields that appear or disappear for
//! the integration user.

use std::time::Duration;

use e2e::{
    TestEnv,
    binary::Output,
    compare,
    config_dir::{ConfigDir, sf_env},
};
use fake_salesforce::{FakeOrg, Faults, FieldsRequest, MutateRequest, NewField};

const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const LIMIT: Duration = Duration::from_secs(180);

async fn real_org(records: &[(&str, u32)]) -> FakeOrg {
    e2e::org::real_org(records, 23, Faults::default()).await
}

async fn producer(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg, args: &[&str]) -> Output {
    e2e::binary::output(dir.command(PRODUCER, args, env, &sf_env(org)), LIMIT).await
}

/// Runs `producer sync` and waits until the workers stored what it published.
async fn sync(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg, args: &[&str]) -> Output {
    let mut all = vec!["sync", "--no-progress", "--max-api-usage", "100"];
    all.extend_from_slice(args);
    let out = producer(env, dir, org, &all).await;
    assert!(out.success, "producer {all:?}: {}", out.stderr);
    env.wait_for_all_runs(LIMIT).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_needs_a_filter_says_which_setting_until_it_has_one() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("ContentDocumentLink", 60)]).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "");
    let out = producer(
        &env,
        &dir,
        &org,
        &["sync", "--object", "ContentDocumentLink", "--no-progress"],
    )
    .await;
    let (line, _) = e2e::binary::one_line_error("no filter", &out);
    assert!(
        line.contains("ContentDocumentLink")
            && line.contains("where")
            && line.contains("[objects.ContentDocumentLink]"),
        "the error names the object and the setting: {line}"
    );
    // The run stopped at its COUNT(), after it was recorded: it is recorded as failed, with why.
    let runs: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, error FROM sfsync.runs")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].0, "failed", "{runs:?}");
    assert!(
        runs[0]
            .1
            .as_deref()
            .is_some_and(|e| e.contains("[objects.ContentDocumentLink]")),
        "{runs:?}"
    );

    // The filter: the links of the first 20 documents.
    let documents: Vec<String> = org
        .org()
        .records("ContentDocumentLink")
        .filter_map(|r| r["ContentDocumentId"].as_str().map(str::to_owned))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(20)
        .collect();
    let list = documents
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    let dir = ConfigDir::new(
        &env,
        &format!("[objects.ContentDocumentLink]\nwhere = \"ContentDocumentId IN ({list})\"\n"),
    );
    sync(&env, &dir, &org, &["--object", "ContentDocumentLink"]).await;
    let expected = org.org().records("ContentDocumentLink").filter(|r| {
        documents
            .iter()
            .any(|d| r["ContentDocumentId"] == d.as_str())
    });
    compare::assert_table_matches(&env.pool, "contentdocumentlink", expected).await;
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn formula_fields_are_brought_up_to_date_at_bulk_cost() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Account", 3_000)]).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "");
    sync(&env, &dir, &org, &["--object", "Account"]).await;
    // What the formulas compute from changed: their values move, SystemModstamp does not.
    let changed = org.org().mutate(MutateRequest {
        formula: 500,
        ..MutateRequest::new("Account")
    });
    assert_eq!(changed.formula.len(), 500);
    // An incremental sync cannot see that.
    sync(&env, &dir, &org, &["--object", "Account"]).await;
    let rows = compare::table_rows(&env.pool, "account").await.unwrap();
    assert!(
        !compare::differences(org.org().records("Account"), &rows).is_empty(),
        "an incremental sync does not see formula changes"
    );
    let out = producer(
        &env,
        &dir,
        &org,
        &[
            "reconcile",
            "--object",
            "Account",
            "--formulas",
            "--max-api-usage",
            "100",
        ],
    )
    .await;
    assert!(out.success, "{}\n{}", out.stdout, out.stderr);
    println!("reconcile --formulas: {}", out.stdout);
    let calls: u64 = out
        .stdout
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .find(|w| w[1] == "API" && w[2].starts_with("calls"))
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("API calls printed: {}", out.stdout));
    assert!(
        calls <= 15,
        "a formula refresh costs a Bulk job: {calls} calls"
    );
    compare::assert_table_matches(&env.pool, "account", org.org().records("Account")).await;
    worker.stop().await;
}

async fn column_states(env: &TestEnv, table: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT column_name, state FROM sfsync.columns WHERE table_name = $1 ORDER BY column_name",
    )
    .bind(table)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_field_is_back_filled_and_a_hidden_one_reported_stale() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Contact", 2_500)]).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "");
    sync(&env, &dir, &org, &["--object", "Contact"]).await;

    // An admin adds a custom field (existing records get values, no SystemModstamp moves) and
    // field-level security hides Title from the integration user.
    org.org()
        .change_fields(&FieldsRequest {
            object: "Contact".into(),
            add: Some(NewField {
                name: "Tier__c".into(),
                ty: "picklist".into(),
                label: None,
                values: vec!["Gold".into(), "Silver".into()],
                existing: Some("generated".into()),
            }),
            hide: vec!["Title".into()],
            show: vec![],
        })
        .unwrap();
    let out = sync(&env, &dir, &org, &["--object", "Contact"]).await;
    assert!(
        out.stderr.contains("Title") || out.stdout.contains("Title"),
        "the field no longer synced is named: {}{}",
        out.stdout,
        out.stderr
    );
    // Every existing row has the new field's value: back-filled, not left null.
    let rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    let org_tiers: Vec<(String, serde_json::Value)> = org
        .org()
        .records("Contact")
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), r["Tier__c"].clone()))
        .collect();
    assert_eq!(org_tiers.len(), 2_500);
    // The generated values leave some records without a tier, as a real data load would; the
    // rest must reach the table.
    let with_tier = org_tiers.iter().filter(|(_, t)| !t.is_null()).count();
    assert!(with_tier > 1_000, "{with_tier} records have a tier");
    for (id, tier) in &org_tiers {
        assert_eq!(rows[id].get("tier__c"), Some(tier), "{id}");
    }
    // Title keeps its column and its last values, and is reported stale.
    let titles: i64 = sqlx::query_scalar("SELECT count(title) FROM salesforce.contact")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert!(titles > 0, "the hidden field's column keeps its values");
    let states = column_states(&env, "contact").await;
    assert!(
        states.contains(&("title".to_owned(), "stale".to_owned())),
        "{states:?}"
    );
    assert!(
        states.contains(&("tier__c".to_owned(), "synced".to_owned())),
        "{states:?}"
    );
    let status = producer(&env, &dir, &org, &["status"]).await;
    assert!(status.success, "{}", status.stderr);
    println!("producer status: {}", status.stdout);
    assert!(
        status
            .stdout
            .lines()
            .any(|l| l.contains("stale") && l.contains("contact.title")),
        "producer status shows the stale column: {}",
        status.stdout
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hidden_field_that_comes_back_is_synced_and_back_filled_again() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Contact", 1_500)]).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "");
    sync(&env, &dir, &org, &["--object", "Contact"]).await;
    let hide = |hide: Vec<String>, show: Vec<String>| FieldsRequest {
        object: "Contact".into(),
        add: None,
        hide,
        show,
    };
    org.org()
        .change_fields(&hide(vec!["Title".into()], vec![]))
        .unwrap();
    sync(&env, &dir, &org, &["--object", "Contact"]).await;
    assert!(
        column_states(&env, "contact")
            .await
            .contains(&("title".to_owned(), "stale".to_owned()))
    );

    // While Title is hidden, records change (Title among their fields): the syncs store the
    // new stamps, but not the new titles.
    let updated = org.org().mutate(MutateRequest {
        update: 300,
        ..MutateRequest::new("Contact")
    });
    assert_eq!(updated.updated.len(), 300);
    sync(&env, &dir, &org, &["--object", "Contact"]).await;

    // Title comes back (the org's records show it again): the rows that changed while it was
    // hidden have an old title.
    org.org()
        .change_fields(&hide(vec![], vec!["Title".into()]))
        .unwrap();
    let rows = compare::table_rows(&env.pool, "contact").await.unwrap();
    let wrong_titles = org
        .org()
        .records("Contact")
        .filter(|r| {
            let id = r["Id"].as_str().unwrap();
            !compare::same_value(&r["Title"], &rows[id]["title"])
        })
        .count();
    assert!(
        wrong_titles > 100,
        "{wrong_titles} rows miss a title changed while hidden"
    );
    // The next sync syncs Title again, and gives every row its current value.
    let out = sync(&env, &dir, &org, &["--object", "Contact"]).await;
    assert!(
        out.stdout.contains("incremental"),
        "not a full re-import: {}",
        out.stdout
    );
    assert!(
        column_states(&env, "contact")
            .await
            .contains(&("title".to_owned(), "synced".to_owned())),
        "Title is synced again"
    );
    compare::assert_table_matches(&env.pool, "contact", org.org().records("Contact")).await;
    let status = producer(&env, &dir, &org, &["status"]).await;
    assert!(
        !status.stdout.contains("stale column"),
        "no stale column is left: {}",
        status.stdout
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_mode_refreshes_formulas_at_its_cadence_and_stops_on_sigterm() {
    let env = TestEnv::new().await.unwrap();
    let org = real_org(&[("Account", 400), ("Contact", 300)]).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "[sync]\nformula_refresh = \"2s\"\n");
    let watch = dir
        .command(
            PRODUCER,
            &[
                "sync",
                "--watch",
                "--object",
                "Account,Contact",
                "--interval",
                "500ms",
                "--no-progress",
                "--max-api-usage",
                "100",
            ],
            &env,
            &[sf_env(&org), vec![("RUST_LOG", "info".to_owned())]].concat(),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the producer starts");
    env.wait_until("both objects synced", LIMIT, || async {
        Ok(env.count_rows("account").await.unwrap_or(0) == 400
            && env.count_rows("contact").await.unwrap_or(0) == 300)
    })
    .await
    .unwrap();

    // Formulas change without a new SystemModstamp: only the refresh brings them.
    org.org().mutate(MutateRequest {
        formula: 150,
        ..MutateRequest::new("Account")
    });
    env.wait_until("the formula changes stored", LIMIT, || async {
        let rows = compare::table_rows(&env.pool, "account").await?;
        Ok(compare::differences(org.org().records("Account"), &rows).is_empty())
    })
    .await
    .unwrap();
    // Contact has no formula field: never refreshed.
    let refreshed: Vec<String> =
        sqlx::query_scalar("SELECT object FROM sfsync.formula_refreshes ORDER BY object")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(refreshed, ["Account"]);

    e2e::sigterm(&watch);
    let out = tokio::time::timeout(LIMIT, watch.wait_with_output())
        .await
        .expect("the producer stops")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let refreshes = stderr.matches("Formula fields re-read").count();
    assert!(refreshes >= 1, "{stderr}");
    assert!(
        !stderr
            .lines()
            .any(|l| l.contains("Formula fields re-read") && l.contains("Contact")),
        "{stderr}"
    );
    println!("watch: {refreshes} formula refreshes of Account, none of Contact");
    worker.stop().await;
}
