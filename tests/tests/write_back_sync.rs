//! Pull and push together: a conflict (Salesforce changed a field that also has a local change
//! waiting) follows the object's policy; a record whose create answer was lost is adopted by
//! the pull instead of duplicated; `producer push --watch` sends changes as they are committed;
//! a purged refused change no longer holds its row.

use std::time::Duration;

use e2e::{
    TestEnv,
    binary::Output,
    config_dir::{ConfigDir, sf_env},
    write_back::{LIMIT, client, contacts_by_id, org_of, pushing_workers},
};
use fake_salesforce::FakeOrg;
use serde_json::{Map, Value, json};

const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");

async fn producer(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg, args: &[&str]) -> Output {
    e2e::write_back::producer(PRODUCER, env, dir, org, args).await
}

async fn sync(env: &TestEnv, dir: &ConfigDir, org: &FakeOrg) {
    e2e::write_back::sync(PRODUCER, env, dir, org, "Contact").await;
}

async fn execute(env: &TestEnv, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&env.pool)
        .await
        .unwrap();
}

/// The sfid of the row with local id `id`.
async fn sfid(env: &TestEnv, id: i64) -> String {
    sqlx::query_scalar("SELECT sfid FROM salesforce.contact WHERE id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

/// (row id, state) of the outbox, oldest first.
async fn outbox_states(env: &TestEnv) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT row_id, state FROM sfsync.outbox ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn email(env: &TestEnv, id: i64) -> Option<String> {
    sqlx::query_scalar("SELECT email FROM salesforce.contact WHERE id = $1")
        .bind(id)
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_follows_the_objects_policy() {
    for policy in ["local-wins", "salesforce-wins", "reject"] {
        let env = TestEnv::new().await.unwrap();
        let org = org_of(5, 100).await;
        let worker = env.spawn_worker(4, 2);
        let dir = ConfigDir::new(
            &env,
            &format!(
                "[objects.Contact]\nwrite = [\"Email\", \"Engagement_Score__c\"]\nconflict = \"{policy}\"\n"
            ),
        );
        sync(&env, &dir, &org).await;
        // The application changes the e-mail of rows 1 to 4 ...
        execute(
            &env,
            "UPDATE salesforce.contact SET email = 'local' || id || '@example.com' WHERE id <= 4",
        )
        .await;
        // ... while in Salesforce someone changes the e-mail of rows 1 and 2 (conflicts), sets
        // row 3's to the very value the application chose (no conflict: both agree), and
        // changes only the title of row 4 (no conflict: another field).
        let sf = client(&org).await;
        let mut changes = Vec::new();
        for (id, fields) in [
            (1, json!({"Email": "org1@example.com"})),
            (2, json!({"Email": "org2@example.com"})),
            (3, json!({"Email": "local3@example.com"})),
            (4, json!({"Title": "Changed in Salesforce"})),
        ] {
            let Value::Object(fields) = fields else {
                unreachable!()
            };
            changes.push((sfid(&env, id).await, fields));
        }
        let saved = sf.update_records("Contact", changes).await.unwrap();
        assert!(saved.iter().all(|r| r.success), "{saved:?}");
        sync(&env, &dir, &org).await;

        let title: Option<String> =
            sqlx::query_scalar("SELECT title FROM salesforce.contact WHERE id = 4")
                .fetch_one(&env.pool)
                .await
                .unwrap();
        assert_eq!(title.as_deref(), Some("Changed in Salesforce"), "{policy}");
        assert_eq!(email(&env, 3).await.as_deref(), Some("local3@example.com"));
        assert_eq!(email(&env, 4).await.as_deref(), Some("local4@example.com"));
        let states = outbox_states(&env).await;
        let state_of = |id: i64| {
            states
                .iter()
                .find(|(row, _)| *row == id)
                .map(|(_, s)| s.as_str())
        };
        assert_eq!(state_of(3), Some("pending"), "{policy}: {states:?}");
        assert_eq!(state_of(4), Some("pending"), "{policy}: {states:?}");
        match policy {
            "local-wins" => {
                for id in [1, 2] {
                    assert_eq!(
                        email(&env, id).await,
                        Some(format!("local{id}@example.com"))
                    );
                    assert_eq!(state_of(id), Some("pending"), "{states:?}");
                }
                assert_eq!(
                    env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
                    0
                );
            }
            "salesforce-wins" => {
                for id in [1, 2] {
                    assert_eq!(email(&env, id).await, Some(format!("org{id}@example.com")));
                    assert_eq!(state_of(id), Some("merged"), "{states:?}");
                }
                assert_eq!(
                    env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
                    0
                );
            }
            _ => {
                for id in [1, 2] {
                    assert_eq!(
                        email(&env, id).await,
                        Some(format!("local{id}@example.com")),
                        "the local value stays in the row"
                    );
                    assert_eq!(state_of(id), Some("failed"), "{states:?}");
                }
                let letters = env.dead_letters_when(2).await.unwrap();
                assert_eq!(letters.len(), 2, "{letters:?}");
                for letter in &letters {
                    assert_eq!(
                        letter.info.error_class,
                        Some(common::dead_letter::ErrorClass::Conflict)
                    );
                    let error = letter.info.error.as_deref().unwrap_or_default();
                    assert!(
                        error.contains("Salesforce changed Email since the local change")
                            && error.contains("Salesforce has \"org"),
                        "{error}"
                    );
                }
                // A push sends the changes without conflict; the rejected ones wait ...
                let workers = pushing_workers(&env, &org, 1);
                let out = producer(&env, &dir, &org, &["push"]).await;
                assert!(out.success, "push: {}", out.stderr);
                assert!(out.stdout.contains("Contact: 2 applied"), "{}", out.stdout);
                let org1 = org.org().record_by_id(&sfid(&env, 1).await).unwrap();
                assert_eq!(org1["Email"], "org1@example.com");
                // ... until someone decides for the local value: a replay sends it.
                e2e::write_back::replay_until_applied(PRODUCER, &env, &dir, &org, "conflict").await;
                for id in [1, 2] {
                    let record = org.org().record_by_id(&sfid(&env, id).await).unwrap();
                    assert_eq!(record["Email"], format!("local{id}@example.com"));
                }
                for w in workers {
                    w.stop().await;
                }
            }
        }
        worker.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_whose_answer_was_lost_is_adopted_by_the_pull_not_duplicated() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 50).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"Email\"]\n",
    );
    sync(&env, &dir, &org).await;
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email) VALUES ('Lost Answer', 'lost@example.com')",
    )
    .await;
    // The create reached Salesforce, but its answer never came back (the push that sent it
    // was cut off): the org has the record under the outbox's External ID value.
    let key: String =
        sqlx::query_scalar("SELECT external_key::text FROM sfsync.outbox WHERE op = 'insert'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    let mut record = Map::new();
    record.insert("LastName".into(), json!("Lost Answer"));
    record.insert("Email".into(), json!("lost@example.com"));
    record.insert(producer::write::DEFAULT_EXTERNAL_ID.into(), json!(key));
    let sf = client(&org).await;
    let created = sf
        .upsert_records(
            "Contact",
            producer::write::DEFAULT_EXTERNAL_ID,
            vec![record],
        )
        .await
        .unwrap();
    let id = created[0].id.clone().unwrap();

    // A pull brings the record before the create is sent again: the row takes its Id.
    sync(&env, &dir, &org).await;
    let rows: Vec<(Option<String>,)> =
        sqlx::query_as("SELECT sfid FROM salesforce.contact WHERE lastname = 'Lost Answer'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(rows, [(Some(id.clone()),)], "one row, with the record's Id");
    // The create, sent again, finds the record: still one record, and the change is applied.
    let workers = pushing_workers(&env, &org, 1);
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "push: {}", out.stderr);
    assert!(out.stdout.contains("Contact: 1 applied"), "{}", out.stdout);
    assert_eq!(
        org.org().find_by_external_id("Contact", &key),
        std::slice::from_ref(&id)
    );
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM salesforce.contact WHERE lastname = 'Lost Answer'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(count, 1);
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_watch_sends_each_change_soon_after_its_commit() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 100).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"Email\", \"Engagement_Score__c\"]\n",
    );
    sync(&env, &dir, &org).await;
    let workers = pushing_workers(&env, &org, 2);
    // The poll is far longer than the test: only the notification can wake the push.
    let mut command = dir.command(
        PRODUCER,
        &["push", "--watch", "--poll-interval", "10m"],
        &env,
        &sf_env(&org),
    );
    let watcher = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for round in 1..=3 {
        // Give the watcher time to start listening before the first change.
        tokio::time::sleep(Duration::from_secs(2)).await;
        execute(
            &env,
            &format!("UPDATE salesforce.contact SET engagement_score__c = {round} WHERE id <= 30"),
        )
        .await;
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT sfid FROM salesforce.contact WHERE id <= 30")
                .fetch_all(&env.pool)
                .await
                .unwrap();
        env.wait_until(&format!("round {round} in the org"), LIMIT, || async {
            let records = contacts_by_id(&org);
            Ok(ids
                .iter()
                .all(|id| records[id]["Engagement_Score__c"].as_f64() == Some(f64::from(round))))
        })
        .await
        .unwrap();
    }
    e2e::sigterm(&watcher);
    let out = tokio::time::timeout(LIMIT, watcher.wait_with_output())
        .await
        .expect("the watcher stops after SIGTERM")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "exit 0 after SIGTERM: {stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.matches("Contact: 30 applied, 0 refused").count(),
        3,
        "one push per change: {stdout}"
    );
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_refused_change_is_discarded_and_no_longer_holds_its_row() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 50).await;
    let worker = env.spawn_worker(4, 2);
    let workers = pushing_workers(&env, &org, 1);
    let dir = ConfigDir::new(&env, "[objects.Contact]\nwrite = [\"Email\"]\n");
    sync(&env, &dir, &org).await;
    org.org()
        .add_validation_rule("Contact", "Email", "@", "Email must contain @")
        .unwrap();
    execute(
        &env,
        "UPDATE salesforce.contact SET email = 'nowhere' WHERE id = 7",
    )
    .await;
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(
        out.stdout.contains("0 applied, 1 refused"),
        "{}",
        out.stdout
    );
    // Refused and on the dead-letter queue, the local value is kept from the pull.
    let sf = client(&org).await;
    let id = sfid(&env, 7).await;
    let mut fields = Map::new();
    fields.insert("Title".into(), json!("Moved on"));
    sf.update_records("Contact", vec![(id.clone(), fields)])
        .await
        .unwrap();
    sync(&env, &dir, &org).await;
    assert_eq!(email(&env, 7).await.as_deref(), Some("nowhere"));
    // Purged, the change is given up: the next change in Salesforce reaches the row whole.
    let out = producer(
        &env,
        &dir,
        &org,
        &["dlq", "purge", "--error-class", "salesforce", "--yes"],
    )
    .await;
    assert!(out.success, "purge: {}", out.stderr);
    assert!(
        out.stdout
            .contains("1 write-back changes given up (sfsync.outbox state discarded)"),
        "{}",
        out.stdout
    );
    let mut fields = Map::new();
    fields.insert("Title".into(), json!("Moved on again"));
    sf.update_records("Contact", vec![(id.clone(), fields)])
        .await
        .unwrap();
    sync(&env, &dir, &org).await;
    let org_email = org.org().record_by_id(&id).unwrap()["Email"].clone();
    assert_eq!(email(&env, 7).await.map(Value::from), Some(org_email));
    let status = producer(&env, &dir, &org, &["status"]).await;
    assert!(
        status.stdout.contains(
            "write-back salesforce.contact: 0 pending, 0 in flight, 0 applied, 0 refused"
        ),
        "{}",
        status.stdout
    );
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}

/// Each row's local id and row version (`xmin`: a rewritten row gets a new one).
async fn row_versions(env: &TestEnv) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, xmin::text FROM salesforce.contact ORDER BY id")
        .fetch_all(&env.pool)
        .await
        .unwrap()
}

async fn outbox_len(env: &TestEnv) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox")
        .fetch_one(&env.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_after_a_push_rewrites_no_row_and_rapid_updates_end_with_the_last() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 200).await;
    let worker = env.spawn_worker(4, 2);
    let workers = pushing_workers(&env, &org, 2);
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"Email\", \"Engagement_Score__c\"]\n",
    );
    sync(&env, &dir, &org).await;
    execute(
        &env,
        "UPDATE salesforce.contact SET engagement_score__c = 5 WHERE id <= 100",
    )
    .await;
    execute(
        &env,
        "INSERT INTO salesforce.contact (lastname, email)
         SELECT 'New ' || g, 'new' || g || '@example.com' FROM generate_series(1, 10) g",
    )
    .await;
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "push: {}", out.stderr);
    assert!(
        out.stdout.contains("Contact: 110 applied"),
        "{}",
        out.stdout
    );

    // The pull brings the 110 records Salesforce changed: same values, newer stamps, which the
    // push already stored.
    let (versions, changes) = (row_versions(&env).await, outbox_len(&env).await);
    sync(&env, &dir, &org).await;
    assert_eq!(outbox_len(&env).await, changes, "the pull captured nothing");
    let after = row_versions(&env).await;
    let rewritten: Vec<i64> = versions
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0)
        .collect();
    assert_eq!(after.len(), 210);
    assert!(
        rewritten.is_empty(),
        "rows rewritten by the pull: {rewritten:?}"
    );
    let diffs = e2e::compare::table_differences(
        &env.pool,
        "contact",
        org.org().records("Contact"),
        e2e::compare::Others::AreIgnored,
    )
    .await
    .unwrap();
    assert!(diffs.is_empty(), "{diffs:?}");

    // Twenty quick changes of one field, with pushes and a pull running meanwhile: the org ends
    // with the last value, and keeps it.
    let pushing = async {
        for _ in 0..3 {
            let out = producer(&env, &dir, &org, &["push"]).await;
            assert!(out.success, "push: {}", out.stderr);
        }
    };
    let changing = async {
        for i in 1..=20 {
            execute(
                &env,
                &format!(
                    "UPDATE salesforce.contact SET email = 'rapid{i}@example.com' WHERE id = 1"
                ),
            )
            .await;
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    };
    tokio::join!(pushing, changing);
    sync(&env, &dir, &org).await;
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "push: {}", out.stderr);
    sync(&env, &dir, &org).await;
    let id = sfid(&env, 1).await;
    assert_eq!(
        org.org().record_by_id(&id).unwrap()["Email"],
        "rapid20@example.com"
    );
    assert_eq!(email(&env, 1).await.as_deref(), Some("rapid20@example.com"));
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_wait_in_the_outbox_over_the_api_quota_and_after_a_push_that_stopped() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 100).await;
    let worker = env.spawn_worker(4, 2);
    let dir = ConfigDir::new(&env, "[objects.Contact]\nwrite = [\"Email\"]\n");
    sync(&env, &dir, &org).await;
    execute(
        &env,
        "UPDATE salesforce.contact SET email = 'quota' || id || '@example.com' WHERE id <= 20",
    )
    .await;
    // Over --max-api-usage, push sends nothing and says why.
    let limit = org.org().config().api_limit;
    org.org().set_api_usage(limit * 85 / 100);
    let out = producer(&env, &dir, &org, &["push", "--max-api-usage", "80"]).await;
    let (line, _) = e2e::binary::one_line_error("over the quota", &out);
    assert!(
        line.contains("changes wait in sfsync.outbox until the org's API usage falls")
            && line.contains("at or past --max-api-usage 80%"),
        "{line}"
    );
    let pending: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sfsync.outbox WHERE state = 'pending'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    assert_eq!(pending, 20);
    org.org().set_api_usage(0);

    // A push that claimed the changes and stopped before publishing them (as after a signal
    // or a lost broker): the next push puts them back and sends them.
    let claimed = producer::write::dispatch::claim(&env.pool, "contact", None, 10_000)
        .await
        .unwrap();
    assert_eq!(claimed.batches.len(), 1);
    let workers = pushing_workers(&env, &org, 1);
    let out = producer(&env, &dir, &org, &["push", "--wait", "1m"]).await;
    assert!(out.success, "push: {}", out.stderr);
    assert!(out.stdout.contains("Contact: 20 applied"), "{}", out.stdout);
    let records = contacts_by_id(&org);
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT sfid, email FROM salesforce.contact WHERE id <= 20")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    for (sfid, email) in rows {
        assert_eq!(records[&sfid]["Email"], email.as_str());
    }
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_child_of_a_new_parent_waits_for_the_parents_id() {
    let env = TestEnv::new().await.unwrap();
    let org = org_of(5, 50).await;
    let worker = env.spawn_worker(4, 2);
    // Contact first: its push meets the child before the parent exists in Salesforce.
    let dir = ConfigDir::new(
        &env,
        "[objects.Contact]\nwrite = [\"LastName\", \"AccountId\"]\n[objects.Account]\nwrite = [\"Name\"]\n",
    );
    e2e::write_back::sync(PRODUCER, &env, &dir, &org, "Account,Contact").await;
    // The application creates an Account and a Contact under it, in one transaction: the
    // Contact names its parent by the parent's local row.
    execute(
        &env,
        "WITH parent AS (INSERT INTO salesforce.account (name) VALUES ('New Parent') RETURNING id)
         INSERT INTO salesforce.contact (lastname, accountid_row) SELECT 'New Child', id FROM parent",
    )
    .await;
    let workers = pushing_workers(&env, &org, 1);
    let out = producer(&env, &dir, &org, &["push"]).await;
    assert!(out.success, "push: {}", out.stderr);
    assert!(
        out.stdout.contains("Contact: 1 applied") && out.stdout.contains("Account: 1 applied"),
        "{}",
        out.stdout
    );
    let (account, contact, parent): (String, String, Option<String>) = sqlx::query_as(
        "SELECT a.sfid, c.sfid, c.accountid FROM salesforce.contact c
           JOIN salesforce.account a ON a.id = c.accountid_row
          WHERE c.lastname = 'New Child'",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        parent.as_deref(),
        Some(account.as_str()),
        "the row has its parent's Id"
    );
    let record = org.org().record_by_id(&contact).unwrap();
    assert_eq!(record["AccountId"], account.as_str(), "{record:?}");
    assert_eq!(
        org.org().record_by_id(&account).unwrap()["Name"],
        "New Parent"
    );
    for w in workers {
        w.stop().await;
    }
    worker.stop().await;
}
