//! Pages of new records go into the table with one plain COPY (worker/src/direct.rs); a page
//! that meets stored rows, repeats an Id or holds a refused value goes through the guarded
//! upsert instead. Either way the table must end the same: newest version of every record,
//! the run's id on every row it wrote, nothing lost, only the refused record dead-lettered.

use std::time::Duration;

use e2e::TestEnv;
use serde_json::json;
use uuid::Uuid;

fn id(prefix: &str, i: usize) -> String {
    common::sfid::SalesforceId::from_core(
        format!("{prefix}Dc{i:010}").as_bytes().try_into().unwrap(),
    )
    .to_string()
}

fn record(object: &str, id: &str, name: &str, minute: u32) -> serde_json::Value {
    json!({"attributes": {"type": object}, "Id": id, "LastName": name,
           "SystemModstamp": format!("2024-01-01T00:{minute:02}:00.000+0000"), "IsDeleted": false})
}

/// (sfid, lastname, run id) of every row, by sfid.
async fn rows(env: &TestEnv, table: &str) -> Vec<(String, String, Option<Uuid>)> {
    // `table` is one of the test's own names.
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT sfid::text, lastname, _sfsync_run_id FROM salesforce.{table} ORDER BY sfid"
    )))
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_pages_and_pages_meeting_stored_rows_end_with_the_newest_version_of_each() {
    let env = TestEnv::new().await.unwrap();
    common::db::migrate(&env.pool).await.unwrap();
    for (object, table) in [
        ("Contact", "contact"),
        ("Lead", "lead"),
        ("Account", "account"),
    ] {
        e2e::create_small_table(&env.pool, object, table)
            .await
            .unwrap();
    }
    // Refuses one record of the Account page, which is otherwise all new.
    sqlx::query("ALTER TABLE salesforce.account ADD CONSTRAINT no_bad CHECK (lastname <> 'bad')")
        .execute(&env.pool)
        .await
        .unwrap();
    // One worker taking one page at a time: the pages arrive in the order published.
    let worker = env.spawn_worker(1, 1);

    // Contact: two pages of new records, then a page with 50 records the table has at a newer
    // version (minute 5) and 50 new ones, then the newer versions of 10 of them again.
    let contact = |range: std::ops::Range<usize>, name: &str, minute| {
        range
            .map(|i| record("Contact", &id("003", i), name, minute))
            .collect::<Vec<_>>()
    };
    let contact_run = Uuid::now_v7();
    let contact_pages = vec![
        contact(0..100, "new", 5),
        contact(100..200, "new", 5),
        [contact(150..200, "older", 1), contact(200..250, "new", 5)].concat(),
        contact(0..10, "newer", 9),
    ];
    env.publish_pages("Contact", contact_run, &contact_pages)
        .await
        .unwrap();

    // Lead: a first page (the table is empty) that names one Id three times, newest in the middle.
    let lead_run = Uuid::now_v7();
    let mut lead_page: Vec<_> = (0..20)
        .map(|i| record("Lead", &id("00Q", i), "new", 5))
        .collect();
    lead_page.push(record("Lead", &id("00Q", 7), "newest", 8));
    lead_page.push(record("Lead", &id("00Q", 7), "stale", 2));
    env.publish_pages("Lead", lead_run, &[lead_page])
        .await
        .unwrap();

    // Account: a first page of new records, one of which the CHECK refuses.
    let account_run = Uuid::now_v7();
    let mut account_page: Vec<_> = (0..30)
        .map(|i| record("Account", &id("001", i), "new", 5))
        .collect();
    account_page[17]["LastName"] = json!("bad");
    env.publish_pages("Account", account_run, &[account_page])
        .await
        .unwrap();

    for (run, pages) in [(contact_run, 4), (lead_run, 1), (account_run, 1)] {
        env.wait_for_run(run, pages, Duration::from_secs(60))
            .await
            .unwrap();
    }

    let contacts = rows(&env, "contact").await;
    assert_eq!(contacts.len(), 250, "every Contact stored once");
    for (i, (sfid, name, run)) in contacts.iter().enumerate() {
        assert_eq!(*sfid, id("003", i));
        let want = if i < 10 { "newer" } else { "new" };
        assert_eq!(
            name, want,
            "Contact {i} ({sfid}) must hold its newest version"
        );
        assert_eq!(
            *run,
            Some(contact_run),
            "Contact {i} ({sfid}) names its run"
        );
    }

    let leads = rows(&env, "lead").await;
    assert_eq!(leads.len(), 20, "a repeated Id is one row");
    let names: Vec<&str> = leads.iter().map(|(_, n, _)| n.as_str()).collect();
    assert_eq!(names[7], "newest", "the newest of the three versions wins");
    assert!(
        names.iter().enumerate().all(|(i, n)| i == 7 || *n == "new"),
        "{names:?}"
    );
    assert!(leads.iter().all(|(_, _, r)| *r == Some(lead_run)));

    let accounts = rows(&env, "account").await;
    assert_eq!(accounts.len(), 29, "all but the refused record stored");
    assert!(!accounts.iter().any(|(sfid, _, _)| *sfid == id("001", 17)));
    let letters = env.dead_letters_when(1).await.unwrap();
    assert_eq!(letters.len(), 1, "only the refused record is dead-lettered");
    assert_eq!(
        letters[0].info.sfid.as_deref(),
        Some(id("001", 17).as_str())
    );
    assert_eq!(
        letters[0].info.error_class.map(|c| c.as_str()),
        Some("constraint")
    );

    // The bookkeeping counts what each page stored.
    let stored: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT run_id, page, records_stored, records_dead FROM sfsync.page_results ORDER BY run_id, page",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let of = |run: Uuid| -> Vec<(i64, i64)> {
        stored
            .iter()
            .filter(|(r, ..)| *r == run)
            .map(|(_, _, s, d)| (*s, *d))
            .collect()
    };
    assert_eq!(of(contact_run), [(100, 0), (100, 0), (100, 0), (10, 0)]);
    assert_eq!(of(lead_run), [(22, 0)]);
    assert_eq!(of(account_run), [(29, 1)]);
    worker.stop().await;
}
