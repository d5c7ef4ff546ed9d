//! The fault switches: failing, truncated and slow query calls, expiring tokens and query
//! locators, set from the config, in process, or over `POST /__admin/faults`.

use std::time::{Duration, Instant};

use fake_salesforce::{FailStatus, FakeOrg, Faults, OrgConfig, spawn};
use serde_json::{Value, json};

const QUERY: &str = "/services/data/v62.0/query?q=SELECT+Id+FROM+Contact";

async fn org(faults: Faults) -> FakeOrg {
    spawn(OrgConfig {
        accounts: 10,
        contacts: 500,
        faults,
        ..OrgConfig::default()
    })
    .await
    .unwrap()
}

async fn get(fake: &FakeOrg, token: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(format!("{}{path}", fake.base_url()))
        .bearer_auth(token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_nth_query_call_fails_the_way_salesforce_fails() {
    let fake = org(Faults {
        fail_every: 2,
        ..Faults::default()
    })
    .await;
    let token = fake.org().issue_token();
    // Describe is not a query call: never failed, not counted.
    for _ in 0..3 {
        let r = get(
            &fake,
            &token,
            "/services/data/v62.0/sobjects/Contact/describe",
        )
        .await;
        assert_eq!(r.status(), 200);
    }
    let statuses = [
        (FailStatus::Unavailable, 503),
        (FailStatus::InternalHtml, 500),
        (FailStatus::LimitExceeded, 403),
    ];
    for (status, code) in statuses {
        fake.org().set_faults(Faults {
            fail_every: 2,
            fail_status: status,
            ..Faults::default()
        });
        let first = get(&fake, &token, QUERY).await;
        let second = get(&fake, &token, QUERY).await;
        // The counter keeps running across switches; one of each pair fails.
        let (ok, failed) = if first.status() == 200 {
            (first, second)
        } else {
            (second, first)
        };
        assert_eq!(ok.status(), 200);
        assert_eq!(failed.status().as_u16(), code);
        let content_type = failed.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = failed.text().await.unwrap();
        match status {
            FailStatus::Unavailable => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v[0]["errorCode"], "SERVER_UNAVAILABLE");
            }
            FailStatus::InternalHtml => {
                assert!(content_type.starts_with("text/html"), "{content_type}");
                assert!(body.starts_with("<html>"), "{body}");
            }
            FailStatus::LimitExceeded => {
                let v: Value = serde_json::from_str(&body).unwrap();
                assert_eq!(v[0]["errorCode"], "REQUEST_LIMIT_EXCEEDED");
            }
        }
    }
    let stats = fake.org().fault_stats();
    assert_eq!((stats.data_calls, stats.failed), (6, 3), "{stats:?}");
}

#[tokio::test]
async fn a_truncated_body_breaks_off_mid_page() {
    let fake = org(Faults {
        truncate_every: 1,
        ..Faults::default()
    })
    .await;
    let token = fake.org().issue_token();
    // Without gzip, the Content-Length promises the whole page.
    let r = reqwest::Client::builder()
        .no_gzip()
        .build()
        .unwrap()
        .get(format!("{}{QUERY}", fake.base_url()))
        .bearer_auth(&token)
        .header("Sforce-Query-Options", "batchSize=200")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the status line is fine");
    let promised: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(promised > 1000);
    assert!(r.bytes().await.is_err(), "the body must not arrive whole");
    assert_eq!(fake.org().fault_stats().truncated, 1);
    // Compressed (chunked, no Content-Length), the gzip stream breaks off just the same.
    let r = get(&fake, &token, QUERY).await;
    assert_eq!(r.status(), 200, "the status line is fine");
    assert!(r.bytes().await.is_err(), "the body must not arrive whole");
    assert_eq!(fake.org().fault_stats().truncated, 2);

    fake.org().set_faults(Faults::default());
    let whole: Value = get(&fake, &token, QUERY).await.json().await.unwrap();
    assert_eq!(whole["records"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn a_garbled_body_arrives_whole_but_is_not_json() {
    let fake = org(Faults {
        garble_every: 2,
        ..Faults::default()
    })
    .await;
    let token = fake.org().issue_token();
    let good = get(&fake, &token, QUERY).await.bytes().await.unwrap();
    let r = get(&fake, &token, QUERY).await;
    assert_eq!(r.status(), 200);
    let bad = r.bytes().await.expect("the whole body arrives");
    assert_eq!(bad.len(), good.len(), "full length");
    assert!(serde_json::from_slice::<Value>(&good).is_ok());
    assert!(serde_json::from_slice::<Value>(&bad).is_err(), "not JSON");
    assert_eq!(fake.org().fault_stats().garbled, 1);
}

#[tokio::test]
async fn slow_calls_wait_before_answering() {
    let fake = org(Faults {
        slow_ms: 300,
        ..Faults::default()
    })
    .await;
    let token = fake.org().issue_token();
    let started = Instant::now();
    assert_eq!(get(&fake, &token, QUERY).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn tokens_expire_after_their_ttl_and_a_new_one_works() {
    let fake = org(Faults {
        token_ttl_ms: Some(300),
        ..Faults::default()
    })
    .await;
    let old = fake.org().issue_token();
    assert_eq!(get(&fake, &old, QUERY).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    let refused = get(&fake, &old, QUERY).await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    let fresh = fake.org().issue_token();
    assert_eq!(get(&fake, &fresh, QUERY).await.status(), 200);
    assert_eq!(fake.org().issued_tokens(), [old, fresh]);
    assert_eq!(fake.org().fault_stats().sessions_refused, 1);
}

#[tokio::test]
async fn the_admin_endpoint_switches_faults_and_expires_cursors_and_tokens() {
    let fake = org(Faults::default()).await;
    let token = fake.org().issue_token();
    let page: Value = get(&fake, &token, QUERY).await.json().await.unwrap();
    let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();

    let http = reqwest::Client::new();
    let admin = format!("{}/__admin/faults", fake.base_url());
    let r = http
        .post(&admin)
        .json(&json!({"fail_every": 3, "fail_status": 500, "slow_ms": 1, "expire_cursors": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        report["faults"],
        json!({"fail_every": 3, "fail_status": 500, "truncate_every": 0, "garble_every": 0, "slow_ms": 1, "token_ttl_ms": null})
    );
    assert_eq!(fake.org().faults().fail_status, FailStatus::InternalHtml);

    let r = get(&fake, &token, &next).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_QUERY_LOCATOR");

    let r = http
        .post(&admin)
        .json(&json!({"expire_tokens": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["faults"]["fail_every"], 0);
    assert_eq!(get(&fake, &token, QUERY).await.status(), 401);

    let report: Value = http.get(&admin).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["stats"]["locators_refused"], 1);
    assert_eq!(report["stats"]["sessions_refused"], 1);

    let r = http
        .post(&admin)
        .json(&json!({"fail_status": 404}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
