//! The probes an orchestrator asks, on the metrics address: `/livez` (the process runs its
//! loop) and `/readyz` (connected to the database and the broker, and consuming). A worker whose
//! broker connection is cut says it is not ready, and why, until it has reconnected; then it
//! stores pages again.

use std::{net::SocketAddr, time::Duration};

use e2e::{TestEnv, proxy::TcpProxy};
use serde_json::json;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);

/// Status and body of `GET http://addr/path`.
async fn probe(addr: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits until `path` answers `status`; returns the body.
async fn until(addr: SocketAddr, path: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (now, body) = probe(addr, path).await;
        if now == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {now} ({body:?}), not {status}, after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_broker_connection_is_cut_is_not_ready_until_it_reconnects() {
    let env = TestEnv::new().await.unwrap();
    common::db::migrate(&env.pool).await.unwrap();
    e2e::create_small_table(&env.pool, "Contact", "contact")
        .await
        .unwrap();
    let proxy = TcpProxy::start(env.amqp_addr().await.unwrap())
        .await
        .unwrap();
    let mut args = env.worker_args(4, 2);
    args.services.amqp_url = env.amqp_url_via(proxy.addr()).unwrap().into();
    let (worker, addr) = TestEnv::spawn_worker_serving_metrics(args).await.unwrap();

    assert_eq!(until(addr, "/readyz", 200).await, "ready\n");
    assert_eq!(probe(addr, "/livez").await, (200, "live\n".to_owned()));

    proxy.cut();
    let body = until(addr, "/readyz", 503).await;
    assert!(
        body.starts_with("not ready\n")
            && body.contains("broker: ")
            && body.contains("reconnecting"),
        "{body}"
    );
    assert!(!body.contains("database"), "the database is fine: {body}");
    // Still not ready while the broker stays unreachable, and still live.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(probe(addr, "/readyz").await.0, 503);
    assert_eq!(probe(addr, "/livez").await.0, 200);
    println!("cut: /readyz answered 503 with {body:?}");

    proxy.restore();
    assert_eq!(until(addr, "/readyz", 200).await, "ready\n");
    // Ready means consuming: a page published now is stored.
    let record = json!({"attributes": {"type": "Contact"}, "Id": "003000000000001AAA",
        "LastName": "After", "SystemModstamp": "2024-01-01T00:00:00.000+0000", "IsDeleted": false});
    env.publish_pages("Contact", Uuid::now_v7(), &[vec![record]])
        .await
        .unwrap();
    env.wait_until("the page stored", WAIT, || async {
        Ok(env.count_rows("contact").await? == 1)
    })
    .await
    .unwrap();

    worker.stop().await;
}
