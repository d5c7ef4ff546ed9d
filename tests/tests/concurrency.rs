//! Eight workers fed overlapping pages in shuffled order: no deadlock reaches the outcome, and
//! every row ends at its newest version.

use std::time::Duration;

use e2e::TestEnv;
use serde_json::json;
use uuid::Uuid;

const IDS: usize = 3_000;
const COPIES: usize = 4;
const PAGE: usize = 500;

fn id(i: usize) -> String {
    common::sfid::SalesforceId::from_core(format!("003Tx{i:010}").as_bytes().try_into().unwrap())
        .to_string()
}

/// A tiny deterministic shuffle (xorshift), so a failure can be replayed.
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        items.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_workers_on_overlapping_shuffled_pages_keep_the_newest_version() {
    let env = TestEnv::new().await.unwrap();
    let pool = common::db::connect_control(&env.services().database_url)
        .await
        .unwrap();
    common::db::migrate(&pool).await.unwrap();
    e2e::create_small_table(&pool, "Contact", "contact")
        .await
        .unwrap();

    // COPIES versions of every Id, version v stamped v minutes after a base, in shuffled pages.
    let mut records: Vec<serde_json::Value> = (0..IDS)
        .flat_map(|i| {
            (0..COPIES).map(move |v| {
                json!({"attributes": {"type": "Contact"}, "Id": id(i), "LastName": format!("v{v}"), "SystemModstamp": format!("2024-01-01T00:{:02}:00.000+0000", v * 10 + i % 7), "IsDeleted": false})
            })
        })
        .collect();
    shuffle(&mut records, 0x5eed);
    let run_id = Uuid::now_v7();

    let workers: Vec<_> = (0..8).map(|_| env.spawn_worker(2, 1)).collect();
    let pages: Vec<Vec<serde_json::Value>> = records.chunks(PAGE).map(<[_]>::to_vec).collect();
    env.publish_pages("Contact", run_id, &pages).await.unwrap();
    env.wait_for_run(run_id, pages.len() as u64, Duration::from_secs(120))
        .await
        .unwrap();

    let rows: Vec<(String, String, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT sfid::text, lastname, systemmodstamp FROM salesforce.contact ORDER BY sfid",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), IDS);
    let newest = format!("v{}", COPIES - 1);
    let stale: Vec<_> = rows
        .iter()
        .filter(|(_, name, _)| *name != newest)
        .take(5)
        .collect();
    assert!(
        stale.is_empty(),
        "rows not at their newest version: {stale:?}"
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
