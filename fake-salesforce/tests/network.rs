//! The network in front of the org, over real HTTP: latency on every API call (not on the
//! admin hooks), bandwidth each response body is paced at, gzip when asked (and never with
//! `gzip: false`), and the bytes on the wire counted after compression.
//!
//! Timings are checked as lower bounds only, so a loaded machine cannot fail them.

use std::io::Read as _;
use std::time::{Duration, Instant};

use fake_salesforce::{FakeOrg, Faults, OrgConfig, spawn};
use serde_json::{Value, json};

const VERSION: &str = "/services/data/v62.0";
const QUERY: &str = "SELECT Id, FirstName, LastName, Email, Title, AccountId, SystemModstamp \
                     FROM Contact";

async fn org(config: OrgConfig) -> FakeOrg {
    spawn(OrgConfig {
        accounts: 20,
        // More than a page (2,000 records), so that there is a queryMore.
        contacts: 2500,
        bulk_job_delay: Duration::ZERO,
        ..config
    })
    .await
    .unwrap()
}

/// A client that neither asks for gzip nor inflates: what it reads is what was on the wire.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder().no_gzip().build().unwrap()
}

/// One GET as sent on the wire: status, headers and body bytes as received. `gzip` adds
/// `Accept-Encoding: gzip`.
async fn raw_get(
    fake: &FakeOrg,
    token: &str,
    path: &str,
    gzip: bool,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = raw_client()
        .get(format!("{}{path}", fake.base_url()))
        .bearer_auth(token);
    if gzip {
        request = request.header("Accept-Encoding", "gzip");
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.unwrap().to_vec();
    (status, headers, body)
}

fn query_path(soql: &str) -> String {
    let q: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    format!("{VERSION}/query?q={q}")
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

/// The records of a query page (the rest holds a locator that differs from call to call).
fn records(page: &[u8]) -> Value {
    let page: Value = serde_json::from_slice(page).expect("a JSON page");
    page["records"].clone()
}

fn wire_bytes(fake: &FakeOrg) -> u64 {
    fake.org().fault_stats().wire_bytes
}

#[tokio::test]
async fn latency_delays_every_api_call_but_not_the_admin_hooks() {
    let latency = Duration::from_millis(300);
    let fake = org(OrgConfig {
        faults: Faults {
            latency_ms: 300,
            ..Faults::default()
        },
        ..OrgConfig::default()
    })
    .await;
    let http = reqwest::Client::new();
    let base = fake.base_url();

    let t = Instant::now();
    let r = http
        .post(format!("{base}/services/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "demo"),
            ("client_secret", "demo"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: Value = r.json().await.unwrap();
    assert!(t.elapsed() >= latency, "token call took {:?}", t.elapsed());
    let token = token["access_token"].as_str().unwrap().to_owned();

    let t = Instant::now();
    let (status, _, body) = raw_get(&fake, &token, &query_path(QUERY), true).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= latency, "query call took {:?}", t.elapsed());
    let page: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();

    let t = Instant::now();
    let (status, _, _) = raw_get(&fake, &token, &next, false).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= latency, "queryMore took {:?}", t.elapsed());

    // A Bulk job: its creation, its state and its results, each delayed.
    let t = Instant::now();
    let r = http
        .post(format!("{base}{VERSION}/jobs/query"))
        .bearer_auth(&token)
        .json(&json!({"operation": "query", "query": "SELECT Id FROM Account"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        t.elapsed() >= latency,
        "job creation took {:?}",
        t.elapsed()
    );
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let t = Instant::now();
    let (status, _, _) = raw_get(&fake, &token, &format!("{VERSION}/jobs/query/{id}"), false).await;
    assert_eq!(status, 200);
    assert!(t.elapsed() >= latency, "job state took {:?}", t.elapsed());
    let t = Instant::now();
    let path = format!("{VERSION}/jobs/query/{id}/results");
    let (status, _, csv) = raw_get(&fake, &token, &path, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&csv));
    assert!(t.elapsed() >= latency, "results took {:?}", t.elapsed());

    // A refused call crossed the same network.
    let t = Instant::now();
    let (status, _, _) = raw_get(&fake, "not-a-token", &format!("{VERSION}/limits"), false).await;
    assert_eq!(status, 401);
    assert!(
        t.elapsed() >= latency,
        "a refused call took {:?}",
        t.elapsed()
    );

    // The admin hooks are not API calls: with ten minutes of latency in force they still
    // answer, and so switch it at runtime.
    let admin = format!("{base}/__admin/faults");
    let set = |latency_ms: u64| {
        let http = http.clone();
        let admin = admin.clone();
        async move {
            let r = http
                .post(&admin)
                .json(&json!({"latency_ms": latency_ms}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let report = tokio::time::timeout(Duration::from_secs(60), set(600_000))
        .await
        .expect("the admin hook is not delayed");
    assert_eq!(report["faults"]["latency_ms"], 600_000);
    assert_eq!(fake.org().faults().latency_ms, 600_000);
    let report = tokio::time::timeout(Duration::from_secs(60), set(0))
        .await
        .expect("the admin hook is not delayed");
    assert!(report["faults"].get("latency_ms").is_none(), "{report}");
}

/// A piece within a timer tick of its due time is sent at once (the link stays booked).
const TICK: Duration = Duration::from_millis(1);

#[tokio::test]
async fn bandwidth_paces_response_bodies_after_gzip_over_one_shared_link() {
    // 4 Mbit/s: 500,000 bytes a second.
    let rate = 500_000.0;
    let fake = org(OrgConfig {
        bandwidth_mbps: Some(4.0),
        ..OrgConfig::default()
    })
    .await;
    let token = fake.org().issue_token();
    let path = query_path(QUERY);

    let before = wire_bytes(&fake);
    let t = Instant::now();
    let (status, headers, identity) = raw_get(&fake, &token, &path, false).await;
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    assert!(identity.len() > 300_000, "{} bytes", identity.len());
    let floor = Duration::from_secs_f64(identity.len() as f64 / rate);
    assert!(
        took + TICK >= floor,
        "{} bytes in {took:?}, under {floor:?}",
        identity.len()
    );
    assert_eq!(wire_bytes(&fake) - before, identity.len() as u64);
    let page: Value = serde_json::from_slice(&identity).expect("the whole page, paced");
    assert_eq!(page["records"].as_array().unwrap().len(), 2000);

    // Compressed, the page is paced by its compressed size: far fewer bytes to send.
    let before = wire_bytes(&fake);
    let t = Instant::now();
    let (status, headers, gzipped) = raw_get(&fake, &token, &path, true).await;
    let took = t.elapsed();
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    let floor = Duration::from_secs_f64(gzipped.len() as f64 / rate);
    assert!(
        took + TICK >= floor,
        "{} bytes in {took:?}, under {floor:?}",
        gzipped.len()
    );
    assert_eq!(wire_bytes(&fake) - before, gzipped.len() as u64);
    assert!(gzipped.len() * 3 < identity.len());
    assert_eq!(records(&gunzip(&gzipped)), records(&identity));

    // Two responses at once share the link: together they take their total over the rate.
    let t = Instant::now();
    let (a, b) = tokio::join!(
        raw_get(&fake, &token, &path, false),
        raw_get(&fake, &token, &path, false)
    );
    let took = t.elapsed();
    let both = a.2.len() + b.2.len();
    let floor = Duration::from_secs_f64(both as f64 / rate);
    assert!(
        took + TICK >= floor,
        "{both} bytes at once in {took:?}, under {floor:?}"
    );
}

#[tokio::test]
async fn gzip_when_asked_fewer_bytes_on_the_wire_and_the_same_json() {
    let fake = org(OrgConfig::default()).await;
    let token = fake.org().issue_token();
    let path = query_path(QUERY);

    let before = wire_bytes(&fake);
    let (status, headers, identity) = raw_get(&fake, &token, &path, false).await;
    let identity_wire = wire_bytes(&fake) - before;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(
        headers["content-length"],
        identity.len().to_string().as_str()
    );
    assert_eq!(identity_wire, identity.len() as u64);

    let before = wire_bytes(&fake);
    let (status, headers, gzipped) = raw_get(&fake, &token, &path, true).await;
    let gzip_wire = wire_bytes(&fake) - before;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert!(headers.get("content-length").is_none(), "{headers:?}");
    assert_eq!(headers["content-type"], "application/json;charset=UTF-8");
    assert_eq!(gzip_wire, gzipped.len() as u64);
    assert!(
        gzip_wire * 3 < identity_wire,
        "gzip {gzip_wire} bytes, identity {identity_wire}"
    );
    assert_eq!(records(&gunzip(&gzipped)), records(&identity));

    // Describe has no locator: byte for byte the same once inflated.
    let describe = format!("{VERSION}/sobjects/Contact/describe");
    let (_, _, plain) = raw_get(&fake, &token, &describe, false).await;
    let (_, headers, packed) = raw_get(&fake, &token, &describe, true).await;
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(gunzip(&packed), plain);

    // A client built with reqwest's gzip (as sfsync's is) asks for it and inflates it.
    let before = wire_bytes(&fake);
    let page: Value = reqwest::Client::new()
        .get(format!("{}{path}", fake.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["records"], records(&identity));
    assert!(wire_bytes(&fake) - before < identity_wire);

    // The count is the one GET /__admin/faults reports, and admin calls do not add to it.
    let report: Value = reqwest::Client::new()
        .get(format!("{}/__admin/faults", fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["stats"]["wire_bytes"], wire_bytes(&fake));
}

#[tokio::test]
async fn bulk_results_are_gzipped_when_asked() {
    let fake = org(OrgConfig::default()).await;
    let token = fake.org().issue_token();
    let r = reqwest::Client::new()
        .post(format!("{}{VERSION}/jobs/query", fake.base_url()))
        .bearer_auth(&token)
        .json(&json!({"operation": "query", "query": QUERY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let job: Value = r.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let state = format!("{VERSION}/jobs/query/{id}");
    for _ in 0..500 {
        let (_, _, info) = raw_get(&fake, &token, &state, false).await;
        let info: Value = serde_json::from_slice(&info).unwrap();
        if info["state"] == "JobComplete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let results = format!("{state}/results?maxRecords=1500");
    let (status, plain_headers, plain) = raw_get(&fake, &token, &results, false).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&plain));
    let before = wire_bytes(&fake);
    let (status, headers, packed) = raw_get(&fake, &token, &results, true).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["content-type"], "text/csv");
    assert_eq!(headers["sforce-locator"], plain_headers["sforce-locator"]);
    assert_eq!(headers["sforce-numberofrecords"], "1500");
    assert_eq!(wire_bytes(&fake) - before, packed.len() as u64);
    assert!(packed.len() * 3 < plain.len());
    assert_eq!(gunzip(&packed), plain);
}

#[tokio::test]
async fn without_gzip_accept_encoding_is_ignored() {
    let fake = org(OrgConfig {
        gzip: false,
        ..OrgConfig::default()
    })
    .await;
    let token = fake.org().issue_token();
    let path = query_path(QUERY);
    let before = wire_bytes(&fake);
    let (status, headers, body) = raw_get(&fake, &token, &path, true).await;
    assert_eq!(status, 200);
    assert!(headers.get("content-encoding").is_none(), "{headers:?}");
    assert_eq!(headers["content-length"], body.len().to_string().as_str());
    assert_eq!(wire_bytes(&fake) - before, body.len() as u64);
    let page: Value = serde_json::from_slice(&body).expect("identity JSON");
    assert_eq!(page["records"].as_array().unwrap().len(), 2000);
}
