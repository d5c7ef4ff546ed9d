//! Write-back: the changes the application makes to a writable table are recorded in
//! `sfsync.outbox` in its own transaction (the pull's writes never are, TRUNCATE is refused, a
//! field the org does not let the integration user update is refused at start), a pull keeps
//! them, and `producer push` sends them through the workers to the org.

use e2e::{
    TestEnv,
    binary::Output,
    config_dir::ConfigDir,
    write_back::{assert_each_create_once, client, contacts_by_id, org_of, pushing_workers},
};
use fake_salesforce::{FakeOrg, MutateRequest, OrgConfig};

const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const WRITABLE: &str = "[objects.Contact]\nwrite = [\"Engagement_Score__c\", \"Email\"]\n";

/// A fake org whose objects have the External ID field write-back creates records under.
async fn org(contacts: u32) -> FakeOrg {
    org_of(10, contacts).await
}

async fn producer(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg, args: &[&str]) -> Output {
    e2e::write_back::producer(PRODUCER, env, dir, org, args).await
}

async fn sync(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg) {
    e2e::write_back::sync(PRODUCER, env, dir, org, "Contact").await;
}

/// The outbox as (op, columns), oldest first.
async fn outbox(env: &TestEnv) -> Vec<(String, Vec<String>)> {
    sqlx::query_as("SELECT op, columns FROM sfsync.outbox ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn execute(env: &TestEnv, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&env.pool)
        .await
        .map(|r| r.rows_affected())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_applications_changes_are_captured_and_the_pulls_are_not() {
    let env = TestEnv::new().await.unwrap();
    let org = org(300).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, WRITABLE);
    sync(&env, &dir, &org).await;
    assert_eq!(env.count_rows("contact").await.unwrap(), 300);
    assert!(outbox(&env).await.is_empty(), "the import captured nothing");

    // One statement updates 100 scores: 100 updates of that column alone.
    let updated = execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = coalesce(engagement_score__c, 0) + 1
          WHERE id IN (SELECT id FROM salesforce.contact ORDER BY id LIMIT 100)",
    )
    .await
    .unwrap();
    assert_eq!(updated, 100);
    // Only real changes to write columns count: the same value again, and a column that is
    // not written back, capture nothing.
    execute(
        &env,
        "UPDATE salesforce.contact SET email = email, lastname = lastname || ' Jr'",
    )
    .await
    .unwrap();
    // A new row without sfid is a create; a deleted row is a delete.
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email) VALUES ('Lovelace', 'ada@example.com')",
    )
    .await
    .unwrap();
    execute(
        &env,
        "DELETE FROM salesforce.contact WHERE id = (SELECT max(id) FROM salesforce.contact WHERE sfid IS NOT NULL)",
    )
    .await
    .unwrap();
    // A change rolled back leaves nothing.
    let mut tx = env.pool.begin().await.unwrap();
    sqlx::query("UPDATE salesforce.contact SET email = 'x@example.com'")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();

    let captured = outbox(&env).await;
    assert_eq!(
        captured.len(),
        102,
        "{:?}",
        &captured[..5.min(captured.len())]
    );
    assert!(
        captured[..100]
            .iter()
            .all(|(op, cols)| op == "update" && cols == &["engagement_score__c"]),
        "{:?}",
        &captured[..3]
    );
    assert_eq!(
        captured[100],
        (
            "insert".to_owned(),
            vec!["email".to_owned(), "engagement_score__c".to_owned()]
        )
    );
    assert_eq!(captured[101], ("delete".to_owned(), vec![]));
    let before: Vec<(i64, Option<String>, serde_json::Value)> = sqlx::query_as(
        "SELECT row_id, sfid, old_values FROM sfsync.outbox WHERE op = 'update' ORDER BY id LIMIT 1",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert!(before[0].1.is_some(), "an update names the record's sfid");
    assert!(
        before[0].2.get("engagement_score__c").is_some(),
        "an update keeps the value it replaced: {:?}",
        before[0].2
    );

    // The org changes the same records: the pull rewrites them, and captures nothing.
    org.org().mutate(MutateRequest {
        update: 120,
        ..MutateRequest::new("Contact")
    });
    sync(&env, &dir, &org).await;
    assert_eq!(outbox(&env).await.len(), 102, "the pull captured nothing");
    let pulled: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM salesforce.contact WHERE _sfsync_synced_at > (SELECT max(captured_at) FROM sfsync.outbox)",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert!(pulled > 0, "the pull did write rows");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncating_a_writable_table_is_refused_and_a_read_only_one_is_not_captured() {
    let env = TestEnv::new().await.unwrap();
    let org = org(50).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, WRITABLE);
    sync(&env, &dir, &org).await;
    let refused = execute(&env, "TRUNCATE salesforce.contact")
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("TRUNCATE of salesforce.contact refused"),
        "{message}"
    );
    assert_eq!(env.count_rows("contact").await.unwrap(), 50);

    // `write` removed: the next sync makes the table read-only again.
    let dir = ConfigDir::new(&env, "");
    sync(&env, &dir, &org).await;
    execute(
        &env,
        "UPDATE salesforce.contact SET email = 'a@example.com'",
    )
    .await
    .unwrap();
    assert!(outbox(&env).await.is_empty());
    execute(&env, "TRUNCATE salesforce.contact").await.unwrap();
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_the_integration_user_cannot_update_is_refused_at_start() {
    let env = TestEnv::new().await.unwrap();
    let org = org(20).await;
    for (setting, field) in [
        ("write = [\"SystemModstamp\"]", "SystemModstamp"),
        ("write = [\"Nickname__c\"]", "Nickname__c"),
    ] {
        let dir = ConfigDir::new(&env, &format!("[objects.Contact]\n{setting}\n"));
        let out = producer(
            &env,
            &dir,
            &org,
            &["sync", "--object", "Contact", "--no-progress"],
        )
        .await;
        let (line, _) = e2e::binary::one_line_error(setting, &out);
        assert!(
            line.contains(&format!("objects.Contact.write names {field}")),
            "{line}"
        );
    }
    // An org without the External ID field creates are made under: the setup step is named.
    let bare = fake_salesforce::spawn(OrgConfig {
        contacts: 20,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let dir = ConfigDir::new(&env, WRITABLE);
    let out = producer(
        &env,
        &dir,
        &bare,
        &["sync", "--object", "Contact", "--no-progress"],
    )
    .await;
    let (line, _) = e2e::binary::one_line_error("no external Id field", &out);
    assert!(
        line.contains("no field Sfsync_Key__c marked External ID")
            && line.contains("`external_id` in [objects.Contact]"),
        "{line}"
    );
    let dir = ConfigDir::new(&env, "[objects.Contact]\nwrite = \"some\"\n");
    let out = producer(&env, &dir, &org, &["sync", "--object", "Contact"]).await;
    let (line, _) = e2e::binary::one_line_error("write = \"some\"", &out);
    assert!(line.contains("expected \"all\" or a list"), "{line}");
    assert!(line.contains("objects.Contact"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_keeps_local_changes_that_wait_to_be_written_back() {
    let env = TestEnv::new().await.unwrap();
    let org = org(200).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, WRITABLE);
    sync(&env, &dir, &org).await;

    // Salesforce changes records (names, titles, e-mails, scores) ...
    let changed = org.org().mutate(MutateRequest {
        update: 120,
        ..MutateRequest::new("Contact")
    });
    let (edited, rest) = changed.updated.split_at(20);
    let (deleted, _) = rest.split_at(10);
    // ... while the application changes the e-mail of 20 of them and deletes 10 others.
    for id in edited {
        sqlx::query("UPDATE salesforce.contact SET email = 'local.' || sfid || '@example.com' WHERE sfid = $1")
            .bind(id)
            .execute(&env.pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM salesforce.contact WHERE sfid = ANY($1)")
        .bind(deleted)
        .execute(&env.pool)
        .await
        .unwrap();
    sync(&env, &dir, &org).await;

    let rows: Vec<(String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT sfid, email, lastname FROM salesforce.contact WHERE sfid = ANY($1)")
            .bind(edited)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 20);
    let org_records = contacts_by_id(&org);
    for (sfid, email, lastname) in &rows {
        assert_eq!(
            email.as_deref(),
            Some(format!("local.{sfid}@example.com").as_str()),
            "the pending e-mail of {sfid} is kept"
        );
        assert_eq!(
            lastname.as_deref(),
            org_records[sfid]["LastName"].as_str(),
            "the other columns of {sfid} take Salesforce's values"
        );
    }
    let revived: i64 =
        sqlx::query_scalar("SELECT count(*) FROM salesforce.contact WHERE sfid = ANY($1)")
            .bind(deleted)
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        revived, 0,
        "a record deleted here is not brought back by the pull"
    );
    // Every record without a local change equals the org.
    let untouched = org_records
        .into_iter()
        .filter(|(id, _)| !edited.contains(id) && !deleted.contains(id))
        .map(|(_, r)| r);
    let diffs = e2e::compare::table_differences(
        &env.pool,
        "contact",
        untouched,
        e2e::compare::Others::AreIgnored,
    )
    .await
    .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_claimed_in_batches_of_one_coalesced_operation_per_record() {
    use producer::write::dispatch::{BatchKind, claim};
    let env = TestEnv::new().await.unwrap();
    common::db::migrate(&env.pool).await.unwrap();
    e2e::create_small_table(&env.pool, "Contact", "contact")
        .await
        .unwrap();
    producer::write::capture::install(&env.pool, "contact", &["lastname".into()])
        .await
        .unwrap();
    // 300 records as a pull stores them (not captured).
    let mut tx = env.pool.begin().await.unwrap();
    for sql in [
        "SELECT set_config('sfsync.writer', 'sfsync', true)",
        "INSERT INTO salesforce.contact (sfid, lastname, systemmodstamp)
         SELECT '003' || lpad(g::text, 15, '0'), 'Name ' || g, now() FROM generate_series(1, 300) g",
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    // The application: 250 updates in one statement, 20 rapid updates of one more record,
    // 3 new rows, a row inserted and deleted again, 2 deletes.
    execute(
        &env,
        "UPDATE salesforce.contact SET lastname = lastname || ' Jr' WHERE id <= 250",
    )
    .await
    .unwrap();
    for n in 1..=20 {
        execute(
            &env,
            &format!("UPDATE salesforce.contact SET lastname = 'v{n}' WHERE id = 260"),
        )
        .await
        .unwrap();
    }
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname) VALUES ('New 1'), ('New 2'), ('New 3')",
    )
    .await
    .unwrap();
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname) VALUES ('Gone')",
    )
    .await
    .unwrap();
    execute(
        &env,
        "DELETE FROM salesforce.contact WHERE lastname = 'Gone' OR id IN (299, 300)",
    )
    .await
    .unwrap();

    let claimed = claim(&env.pool, "contact", None, 10_000).await.unwrap();
    let shape: Vec<(BatchKind, usize)> = claimed
        .batches
        .iter()
        .map(|b| (b.kind, b.records.len()))
        .collect();
    assert_eq!(
        shape,
        [
            (BatchKind::Create, 3),
            (BatchKind::Update, 200),
            (BatchKind::Update, 51),
            (BatchKind::Delete, 2)
        ]
    );
    assert_eq!(
        claimed.merged, 2,
        "the inserted-then-deleted row cancels out"
    );
    let updates: Vec<_> = claimed.batches[1..3]
        .iter()
        .flat_map(|b| &b.records)
        .collect();
    let rapid = updates.iter().find(|r| r.row_id == 260).unwrap();
    assert_eq!(
        rapid.values["lastname"], "v20",
        "the last of the rapid updates"
    );
    assert_eq!(rapid.sfid.as_deref(), Some("003000000000000260"));
    let creates = &claimed.batches[0].records;
    let keys: std::collections::HashSet<_> =
        creates.iter().filter_map(|r| r.external_key).collect();
    assert_eq!(keys.len(), 3, "each create has its own external Id value");
    assert!(creates.iter().all(|r| r.sfid.is_none()));
    let deletes: Vec<_> = claimed.batches[3]
        .records
        .iter()
        .filter_map(|r| r.sfid.as_deref())
        .collect();
    assert_eq!(deletes, ["003000000000000299", "003000000000000300"]);
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM sfsync.outbox GROUP BY state ORDER BY state")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [("in_flight".to_owned(), 275), ("merged".to_owned(), 2)]
    );

    // Nothing is claimed twice, and a record with an operation in flight waits.
    execute(
        &env,
        "UPDATE salesforce.contact SET lastname = 'later' WHERE id = 1",
    )
    .await
    .unwrap();
    let again = claim(&env.pool, "contact", None, 10_000).await.unwrap();
    assert!(again.batches.is_empty(), "{:?}", again.batches);
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox WHERE state = 'pending'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(pending, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_changes_reach_the_org_once_each_and_new_rows_get_their_ids() {
    use producer::write::dispatch::{claim, field_names};
    let env = TestEnv::new().await.unwrap();
    let org = org(300).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"Email\", \"Engagement_Score__c\"]\n",
    );
    sync(&env, &dir, &org).await;

    // 250 scores in one statement, 5 e-mails a validation rule refuses, 30 new Contacts,
    // 10 deletes.
    execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = 42.5 WHERE id <= 250",
    )
    .await
    .unwrap();
    org.org()
        .add_validation_rule("Contact", "Email", "@", "Email must contain @")
        .unwrap();
    execute(
        &env,
        "UPDATE salesforce.contact SET email = 'broken-' || id WHERE id BETWEEN 251 AND 255",
    )
    .await
    .unwrap();
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email)
         SELECT 'New ' || g, 'new' || g || '@example.com' FROM generate_series(1, 30) g",
    )
    .await
    .unwrap();
    let deleted: Vec<String> = sqlx::query_scalar(
        "DELETE FROM salesforce.contact WHERE id BETWEEN 281 AND 290 RETURNING sfid",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    // Every second write call commits and then drops the connection before answering.
    org.org().set_faults(fake_salesforce::Faults {
        commit_then_drop_every: 2,
        ..fake_salesforce::Faults::default()
    });

    let sf = client(&org).await;
    let fields = field_names(&sf.describe("Contact").await.unwrap());
    let read_back = producer::write::dispatch::read_back(&env.pool, "contact", &fields)
        .await
        .unwrap();
    let pool =
        worker::pool::build(&secrecy::SecretString::from(env.database_url.clone()), 2).unwrap();
    let claimed = claim(&env.pool, "contact", Some("accountid"), 10_000)
        .await
        .unwrap();
    let (mut applied, mut calls, mut failed) = (0, 0, Vec::new());
    for batch in &claimed.batches {
        let message = batch.message("Contact", "Sfsync_Key__c", &fields, &read_back);
        let outcome = worker::push::apply(&pool, &sf, &message).await.unwrap();
        applied += outcome.applied;
        calls += outcome.calls;
        failed.extend(outcome.failed);
    }
    let stats = org.org().fault_stats();
    assert!(
        stats.dropped >= 2,
        "answers were lost and the calls sent again: {stats:?}"
    );
    assert_eq!(applied, 255 + 30 + 10 - 5);
    assert_eq!(
        calls, 4,
        "two update calls (255 records), one create, one delete"
    );
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        failed.iter().all(
            |f| f.error.status_code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
                && f.error.fields == ["Email"]
        ),
        "{failed:?}"
    );

    // The org holds the rows' values; each new row exists there exactly once, under its Id.
    let by_id = contacts_by_id(&org);
    let rows: Vec<(String, String, Option<String>, Option<f64>)> = sqlx::query_as(
        "SELECT sfid, lastname, email, engagement_score__c::float8 FROM salesforce.contact
          WHERE id <= 250 OR id > 300",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 250 + 30);
    for (sfid, lastname, email, score) in &rows {
        let record = &by_id[sfid];
        assert_eq!(
            record["LastName"].as_str(),
            Some(lastname.as_str()),
            "{sfid}"
        );
        assert_eq!(record["Email"].as_str(), email.as_deref(), "{sfid}");
        assert_eq!(record["Engagement_Score__c"].as_f64(), *score, "{sfid}");
    }
    // Created once, although every second call lost its answer.
    assert_each_create_once(&env, &org, 30).await;
    for sfid in &deleted {
        assert_eq!(by_id[sfid]["IsDeleted"], true, "{sfid} deleted in the org");
    }
    let states: Vec<(String, i64)> =
        sqlx::query_as("SELECT state, count(*) FROM sfsync.outbox GROUP BY state ORDER BY state")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [("applied".to_owned(), 290), ("failed".to_owned(), 5)]
    );

    // The pull that brings the pushed records back captures nothing.
    org.org().set_faults(fake_salesforce::Faults::default());
    sync(&env, &dir, &org).await;
    let captured: i64 = sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(captured, 295);
    worker.stop().await;
}

/// Runs `producer push`, which must apply `applied` changes and refuse none; prints its time
/// and returns the API calls the org counted.
async fn timed_push(
    env: &TestEnv,
    dir: &ConfigDir,
    org: &FakeOrg,
    applied: u64,
    what: &str,
) -> u64 {
    let calls_before = org.org().api_usage();
    let started = std::time::Instant::now();
    let out = producer(env, dir, org, &["push"]).await;
    let took = started.elapsed();
    assert!(out.success, "producer push: {}", out.stderr);
    let line = format!("Contact: {applied} applied, 0 refused");
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    let calls = org.org().api_usage() - calls_before;
    println!("{what} pushed by 4 workers in {took:?} with {calls} API calls");
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_push_sends_ten_thousand_updates_in_fifty_calls_and_creates_each_record_once() {
    let env = TestEnv::new().await.unwrap();
    // Six Contacts per Account, as in most orgs: the batches of concurrent workers then lock
    // different Accounts.
    let org = org_of(2_000, 12_000).await;
    let workers = pushing_workers(&env, &org, 4);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"Email\", \"Engagement_Score__c\"]\n",
    );
    sync(&env, &dir, &org).await;
    execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = 77.25 WHERE id <= 10000",
    )
    .await
    .unwrap();
    // The 10,000 updates alone: 50 calls of 200 records, and the producer's describe.
    let calls = timed_push(&env, &dir, &org, 10_000, "10,000 updates (one statement)").await;
    assert!(calls <= 55, "{calls} API calls");

    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email)
         SELECT 'Pushed ' || g, 'pushed' || g || '@example.com' FROM generate_series(1, 1000) g",
    )
    .await
    .unwrap();
    let deleted: Vec<String> = sqlx::query_scalar(
        "DELETE FROM salesforce.contact WHERE id BETWEEN 11801 AND 11900 RETURNING sfid",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let calls = timed_push(&env, &dir, &org, 1_100, "1,000 creates and 100 deletes").await;
    // 5 create calls, one delete call, and the producer's describe.
    assert!(calls <= 7, "{calls} API calls");
    let records = contacts_by_id(&org);
    let rows: Vec<(String, Option<f64>, String)> = sqlx::query_as(
        "SELECT sfid, engagement_score__c::float8, lastname FROM salesforce.contact
          WHERE id <= 10000 OR id > 12000",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 11_000);
    for (sfid, score, lastname) in &rows {
        assert_eq!(
            records[sfid]["Engagement_Score__c"].as_f64(),
            *score,
            "{sfid}"
        );
        assert_eq!(records[sfid]["LastName"].as_str(), Some(lastname.as_str()));
    }
    assert_eq!(deleted.len(), 100);
    assert!(deleted.iter().all(|id| records[id]["IsDeleted"] == true));
    assert_each_create_once(&env, &org, 1_000).await;

    // A change the org refuses: exit 1, saying how many and where to look.
    org.org()
        .add_validation_rule("Contact", "Email", "@", "Email must contain @")
        .unwrap();
    execute(
        &env,
        "UPDATE salesforce.contact SET email = 'nowhere' WHERE id IN (5, 6, 7)",
    )
    .await
    .unwrap();
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(
        out.stdout.contains("Contact: 0 applied, 3 refused"),
        "{}",
        out.stdout
    );
    let (line, _) = e2e::binary::one_line_error("refused changes", &out);
    assert!(line.contains("Salesforce refused 3 changes"), "{line}");
    // Each refused change is on the dead-letter queue with Salesforce's answer ...
    let letters = env.dead_letters_when(3).await.unwrap();
    assert_eq!(letters.len(), 3, "{letters:?}");
    assert!(
        letters.iter().all(|l| l.info.sfid.is_some()),
        "updates name their record"
    );
    for letter in &letters {
        assert_eq!(
            letter.info.error_class,
            Some(common::dead_letter::ErrorClass::Salesforce)
        );
        let error = letter.info.error.as_deref().unwrap_or_default();
        assert!(
            error
                .contains("FIELD_CUSTOM_VALIDATION_EXCEPTION: Email must contain @ (fields: Email"),
            "{error}"
        );
    }
    let status = producer(&env, &dir, &org, &["status"]).await;
    assert!(
        status.stdout.contains(
            "write-back salesforce.contact: 0 pending, 0 in flight, 11100 applied, 3 refused"
        ),
        "{}",
        status.stdout
    );
    // A new row the rule refuses, changed again after: its update waits for the create, and
    // push says so instead of waiting for ever.
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email) VALUES ('Refused', 'no-at-sign')",
    )
    .await
    .unwrap();
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(
        out.stdout.contains("0 applied, 1 refused"),
        "{}",
        out.stdout
    );
    execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = 1 WHERE lastname = 'Refused'",
    )
    .await
    .unwrap();
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(
        out.stdout
            .contains("0 applied, 0 refused, 0 merged, 0 batches, 1 waiting for a refused create"),
        "{}",
        out.stdout
    );
    let (line, _) = e2e::binary::one_line_error("waiting for a refused create", &out);
    assert!(
        line.contains("wait for a create Salesforce refused"),
        "{line}"
    );
    // ... and once the rule is lifted, a replay applies them and empties the queue.
    org.org().clear_validation_rules("Contact").unwrap();
    let out = e2e::write_back::replay_until_applied(PRODUCER, &env, &dir, &org, "salesforce").await;
    assert!(
        out.stdout
            .contains("replayed 4 dead letters onto sfsync.push"),
        "{}",
        out.stdout
    );
    assert_eq!(
        env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
        0
    );
    // The update that waited for the create goes with the next push.
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "push after the replay: {}", out.stderr);
    let status = producer(&env, &dir, &org, &["status"]).await;
    assert!(
        status.stdout.contains(
            "write-back salesforce.contact: 0 pending, 0 in flight, 11105 applied, 0 refused"
        ),
        "{}",
        status.stdout
    );
    let emails: Vec<Option<String>> =
        sqlx::query_scalar("SELECT sfid FROM salesforce.contact WHERE id IN (5, 6, 7)")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for sfid in emails.iter().flatten() {
        let record = org.org().record_by_id(sfid).unwrap();
        assert_eq!(record["Email"], "nowhere", "{sfid}");
    }
    for worker in workers {
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_five_accounts_pushed_by_four_workers_all_apply() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 1_000).await;
    let workers = pushing_workers(&env, &org, 4);
    let dir = ConfigDir::new(&env, WRITABLE);
    sync(&env, &dir, &org).await;
    // Each write call holds its Accounts' locks for 100 ms, and a record whose Account another
    // call holds fails at once with UNABLE_TO_LOCK_ROW, as in an org under load.
    org.org().set_faults(fake_salesforce::Faults {
        write_ms: 100,
        ..fake_salesforce::Faults::default()
    });
    execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = 12.5",
    )
    .await
    .unwrap();
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "producer push: {}", out.stderr);
    // Five Accounts, 1,000 Contacts in 200-record batches: some Accounts' Contacts span two
    // batches, which concurrent workers write at once; the refused records are sent again.
    assert!(
        out.stdout.contains("Contact: 1000 applied, 0 refused"),
        "{}",
        out.stdout
    );
    assert!(
        org.org()
            .records("Contact")
            .all(|r| r["Engagement_Score__c"].as_f64() == Some(12.5)),
        "every Contact has the pushed score"
    );
    for worker in workers {
        worker.stop().await;
    }
}
