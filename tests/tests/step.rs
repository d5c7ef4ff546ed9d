//! The worker's step function driven directly, one delivery at a time, without a consume loop:
//! decode → store → dead-letter → outcome. And the one confirm helper every publisher uses,
//! against a broker connection that stops answering.

use std::{sync::Arc, time::Duration};

use common::{confirm::ConfirmError, dead_letter::ErrorClass};
use e2e::{TestEnv, create_small_table, proxy::TcpProxy};
use lapin::{Connection, options::ConfirmSelectOptions};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;
use worker::{
    dead_letter::DeadLetterPublisher,
    metrics::WorkerMetrics,
    step::{self, Context, Incoming, Outcome},
};

/// sfsync's tables and a small `salesforce.contact` in this test's database.
async fn contact_table(env: &TestEnv) {
    common::db::migrate(&env.pool).await.unwrap();
    create_small_table(&env.pool, "Contact", "contact")
        .await
        .unwrap();
}

/// A step context on this test's database, publishing dead letters on `connection`.
async fn context(env: &TestEnv, connection: Connection, confirm_timeout: Duration) -> Context {
    let declared = common::topology::declare_on(&connection).await.unwrap();
    common::amqp::close_channel(&declared, "declared").await;
    let pool = worker::pool::build(&SecretString::from(env.database_url.clone()), 2).unwrap();
    Context::new(
        pool,
        DeadLetterPublisher::new(
            Arc::new(connection),
            common::amqp::BlockWatch::never(),
            confirm_timeout,
        ),
        Arc::new(WorkerMetrics::new()),
        Arc::new(common::health::Health::new(&[])),
    )
}

fn contact(n: u32, last_name: &str) -> serde_json::Value {
    json!({"attributes": {"type": "Contact"}, "Id": format!("003000000000{n:03}AAA"),
           "LastName": last_name, "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": false})
}

/// A page of three Contacts, the second without a valid Id.
fn page_with_a_bad_record(run_id: Uuid) -> Vec<u8> {
    let bad = json!({"attributes": {"type": "Contact"}, "Id": "not-an-id", "LastName": "Bad",
                     "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": false});
    serde_json::to_vec(
        &json!({"format": 1, "object": "Contact", "run_id": run_id, "page": 1,
        "records": [contact(1, "Ada"), bad, contact(2, "Grace")]}),
    )
    .unwrap()
}

fn incoming<'a>(
    message_id: &'a str,
    message_type: Option<&'a str>,
    body: &'a [u8],
) -> Incoming<'a> {
    Incoming {
        message_id,
        message_type,
        headers: None,
        body,
    }
}

async fn dead_letter_rows(env: &TestEnv, run_id: Uuid) -> Vec<(i32, String, i32)> {
    sqlx::query_as(
        "SELECT record_index, error_class, attempts FROM sfsync.dead_letters WHERE run_id = $1 ORDER BY record_index",
    )
    .bind(run_id)
    .fetch_all(&env.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_bad_record_is_stored_and_its_letter_confirmed_before_the_ack() {
    let env = TestEnv::new().await.unwrap();
    contact_table(&env).await;
    let ctx = context(&env, env.amqp().await.unwrap(), Duration::from_secs(30)).await;
    let run_id = Uuid::now_v7();
    let body = page_with_a_bad_record(run_id);

    let outcome = step::process(&ctx, &incoming("m-1", Some("sfsync.page.v1"), &body)).await;

    assert_eq!(
        outcome,
        Outcome::Done {
            stored: 2,
            dead_lettered: 1
        }
    );
    assert_eq!(env.count_rows("contact").await.unwrap(), 2);
    assert_eq!(
        dead_letter_rows(&env, run_id).await,
        [(1, "mapping".to_owned(), 1)]
    );
    let letters = env.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].info.error_class, Some(ErrorClass::Mapping));
    assert_eq!(letters[0].info.record_index, Some(1));
    assert_eq!(
        letters[0].message_id.as_deref(),
        Some(format!("{run_id}/1/1").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_from_somewhere_else_is_dead_lettered_whole() {
    let env = TestEnv::new().await.unwrap();
    common::db::migrate(&env.pool).await.unwrap();
    let ctx = context(&env, env.amqp().await.unwrap(), Duration::from_secs(30)).await;
    let body = br#"{"order": 42}"#;

    let outcome = step::process(&ctx, &incoming("order-42", Some("shop.order"), body)).await;

    assert_eq!(
        outcome,
        Outcome::Done {
            stored: 0,
            dead_lettered: 1
        }
    );
    let letters = env.dead_letters().await.unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].info.error_class, Some(ErrorClass::Decode));
    assert_eq!(
        letters[0].message_id.as_deref(),
        Some("undecodable/order-42")
    );
    assert!(
        letters[0]
            .info
            .error
            .as_deref()
            .unwrap()
            .contains(r#"message type "shop.order" is not "sfsync.page.v1""#),
        "{letters:?}"
    );
}

/// A broker connection through a proxy, without heartbeats: when the proxy stalls, nothing
/// but sfsync's own timeouts can notice.
async fn stallable_connection(env: &TestEnv) -> (TcpProxy, Connection) {
    let proxy = TcpProxy::start(env.amqp_addr().await.unwrap())
        .await
        .unwrap();
    let url = format!("{}?heartbeat=0", env.amqp_url_via(proxy.addr()).unwrap());
    let connection = common::amqp::connect(&SecretString::from(url), "sfsync-test")
        .await
        .unwrap();
    (proxy, connection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirm_that_never_comes_times_out() {
    let env = TestEnv::new().await.unwrap();
    let (proxy, connection) = stallable_connection(&env).await;
    let channel = common::topology::declare_on(&connection).await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    proxy.stall();
    let started = std::time::Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(60),
        common::confirm::publish_confirmed(
            &channel,
            common::topology::DEAD_EXCHANGE,
            "",
            b"{}",
            lapin::BasicProperties::default(),
            Duration::from_secs(2),
        ),
    )
    .await
    .expect("the confirm helper gives up by itself");
    assert!(
        matches!(result, Err(ConfirmError::TimedOut(t)) if t == Duration::from_secs(2)),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_broker_does_not_hold_the_page_for_ever() {
    let env = TestEnv::new().await.unwrap();
    contact_table(&env).await;
    let (proxy, connection) = stallable_connection(&env).await;
    let ctx = context(&env, connection, Duration::from_secs(1)).await;
    // A first page with a bad record opens the dead-letter channel while the broker answers.
    let first = Uuid::now_v7();
    let first_body = page_with_a_bad_record(first);
    let outcome = step::process(&ctx, &incoming("m-0", None, &first_body)).await;
    assert!(matches!(outcome, Outcome::Done { .. }), "{outcome:?}");
    let run_id = Uuid::now_v7();
    let body = page_with_a_bad_record(run_id);
    // Then the connection stops answering: the next page's rows commit, but its dead letter's
    // confirm never comes.
    proxy.stall();

    let outcome = tokio::time::timeout(
        Duration::from_secs(60),
        step::process(&ctx, &incoming("m-1", Some("sfsync.page.v1"), &body)),
    )
    .await
    .expect("the step returns instead of waiting for the confirm for ever");

    let Outcome::Again { reason } = &outcome else {
        panic!("a page whose dead letter is not confirmed must not be acked: {outcome:?}");
    };
    assert!(
        reason.contains("did not confirm the message within 1s"),
        "{reason}"
    );
    // What was committed stays committed, and its redelivery finds it there.
    assert_eq!(env.count_rows("contact").await.unwrap(), 2);
    assert_eq!(
        dead_letter_rows(&env, run_id).await,
        [(1, "mapping".to_owned(), 1)]
    );
    // Once the broker answers again, the same page settles: the letter is confirmed.
    proxy.resume();
    let connection = env.amqp().await.unwrap();
    let ctx = context(&env, connection, Duration::from_secs(30)).await;
    let again = step::process(&ctx, &incoming("m-1", Some("sfsync.page.v1"), &body)).await;
    assert_eq!(
        again,
        Outcome::Done {
            stored: 2,
            dead_lettered: 1
        }
    );
    assert_eq!(env.count_rows("contact").await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_page_updates_the_rows_it_finds_and_creates_none() {
    let env = TestEnv::new().await.unwrap();
    contact_table(&env).await;
    let ctx = context(&env, env.amqp().await.unwrap(), Duration::from_secs(30)).await;
    let run_id = Uuid::now_v7();
    let page = serde_json::to_vec(&json!({"format": 1, "object": "Contact", "run_id": run_id,
        "page": 1, "records": [contact(1, "Ada"), contact(2, "Grace")]}))
    .unwrap();
    let stored = step::process(&ctx, &incoming("m-1", None, &page)).await;
    assert_eq!(
        stored,
        Outcome::Done {
            stored: 2,
            dead_lettered: 0
        }
    );

    // Only Id, SystemModstamp and the re-read field: a formula refresh or a new column's
    // back-fill. Record 3 is not in the table; record 2's refresh is older than its row.
    let refresh = serde_json::to_vec(&json!({"format": 1, "object": "Contact", "run_id": run_id,
        "page": 2, "kind": "refresh", "records": [
            {"Id": "003000000000001AAA", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "LastName": "Lovelace"},
            {"Id": "003000000000002AAA", "SystemModstamp": "2025-12-31T00:00:00.000+0000", "LastName": "Stale"},
            {"Id": "003000000000003AAA", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "LastName": "Partial"}]}))
    .unwrap();
    let outcome = step::process(&ctx, &incoming("m-2", None, &refresh)).await;
    assert_eq!(
        outcome,
        Outcome::Done {
            stored: 3,
            dead_lettered: 0
        }
    );
    let rows: Vec<(String, String, bool)> =
        sqlx::query_as("SELECT sfid, lastname, isdeleted FROM salesforce.contact ORDER BY sfid")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (
                "003000000000001AAA".to_owned(),
                "Lovelace".to_owned(),
                false
            ),
            ("003000000000002AAA".to_owned(), "Grace".to_owned(), false),
        ],
        "the existing row took the new value in its column only; no row was made"
    );
}
