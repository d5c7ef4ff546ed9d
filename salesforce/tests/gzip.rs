//! Every Salesforce call asks for gzip and reads the inflated body: REST pages, queryMore and
//! Bulk results cross the wire compressed (the fake org counts the bytes it sent) and arrive
//! whole.

use std::time::Duration;

use fake_salesforce::{FakeOrg, OrgConfig, spawn};
use salesforce::{Credentials, NoMetrics, RetryPolicy, SalesforceClient};
use serde_json::Value;

const SOQL: &str = "SELECT Id, FirstName, LastName, Email, Title, AccountId, SystemModstamp \
                    FROM Contact";

async fn connect(gzip: bool) -> (FakeOrg, SalesforceClient<NoMetrics>) {
    let fake = spawn(OrgConfig {
        accounts: 20,
        contacts: 2500,
        bulk_job_delay: Duration::ZERO,
        gzip,
        ..OrgConfig::default()
    })
    .await
    .unwrap();
    let client = SalesforceClient::<NoMetrics>::connect(
        Credentials::ClientCredentials {
            login_url: fake.base_url().parse().unwrap(),
            client_id: "demo".to_owned().into(),
            client_secret: "demo".to_owned().into(),
        },
        "62.0",
        RetryPolicy::default(),
    )
    .await
    .unwrap();
    (fake, client)
}

fn wire_bytes(fake: &FakeOrg) -> u64 {
    fake.org().fault_stats().wire_bytes
}

#[tokio::test]
async fn every_call_asks_for_gzip_and_reads_the_whole_body() {
    let (fake, client) = connect(true).await;

    let before = wire_bytes(&fake);
    let page = client.query(SOQL, false, 2000).await.unwrap();
    let wire = wire_bytes(&fake) - before;
    assert!(
        wire * 3 < page.len() as u64,
        "{wire} bytes on the wire for {} bytes",
        page.len()
    );
    let page: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 2000);

    let before = wire_bytes(&fake);
    let next = page["nextRecordsUrl"].as_str().unwrap();
    let rest = client.query_more(next, 2000).await.unwrap();
    let wire = wire_bytes(&fake) - before;
    assert!(
        wire * 3 < rest.len() as u64,
        "{wire} bytes on the wire for {} bytes",
        rest.len()
    );
    let rest: Value = serde_json::from_slice(&rest).unwrap();
    assert_eq!(rest["records"].as_array().unwrap().len(), 500);

    let job = client.create_query_job(SOQL).await.unwrap();
    client.wait_for_job(&job.id).await.unwrap();
    let before = wire_bytes(&fake);
    let (csv, next) = client.job_results(&job.id, None, 100_000).await.unwrap();
    let wire = wire_bytes(&fake) - before;
    assert_eq!(next, None);
    assert!(
        wire * 3 < csv.len() as u64,
        "{wire} bytes on the wire for {} bytes",
        csv.len()
    );
    assert_eq!(
        csv.iter().filter(|&&b| b == b'\n').count(),
        2501,
        "header and rows"
    );
}

#[tokio::test]
async fn an_org_that_does_not_compress_is_read_as_well() {
    let (fake, client) = connect(false).await;
    let before = wire_bytes(&fake);
    let page = client.query(SOQL, false, 2000).await.unwrap();
    assert_eq!(wire_bytes(&fake) - before, page.len() as u64);
    let page: Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(page["records"].as_array().unwrap().len(), 2000);
}
