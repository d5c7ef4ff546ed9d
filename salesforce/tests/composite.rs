//! `SalesforceClient::save_and_query` against the fake org over HTTP: a save and its read-back
//! in one API call, a failed read-back that leaves the save standing, and what is refused.

use fake_salesforce::{FakeOrg, OrgConfig, spawn};
use salesforce::composite::Save;
use salesforce::{Credentials, NoMetrics, RetryPolicy, SalesforceClient, SfError};
use serde_json::{Map, Value, json};

const EXT: &str = "Sfsync_Id__c";

/// A fake org with `contacts` Contacts and a client logged in to it.
async fn connect(contacts: u32) -> (FakeOrg, SalesforceClient<NoMetrics>) {
    let fake = spawn(OrgConfig {
        accounts: 5,
        contacts,
        external_id_field: Some(EXT.to_owned()),
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

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// Epoch millis of a REST datetime.
fn instant(value: &Value) -> i64 {
    fake_salesforce::soql::parse_datetime(value.as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_save_and_its_read_back_are_one_call() {
    let (fake, client) = connect(40).await;
    let org = fake.org();
    let ids = [org.record_id("Contact", 0), org.record_id("Contact", 1)];
    let stamp_before = instant(&org.record_by_id(&ids[0]).unwrap()["SystemModstamp"]);
    let soql = format!(
        "SELECT Id, Title, SystemModstamp FROM Contact WHERE Id IN ('{}', '{}') ORDER BY Id",
        ids[0], ids[1]
    );
    let (calls, usage) = (client.usage().calls(), org.api_usage());

    let (saved, read) = client
        .save_and_query(
            Save::Update {
                object: "Contact".into(),
                records: vec![
                    (ids[0].clone(), fields(json!({"Title": "Boss"}))),
                    (ids[1].clone(), fields(json!({"Title": "Chief"}))),
                ],
            },
            Some(&soql),
        )
        .await
        .unwrap();
    assert_eq!(client.usage().calls(), calls + 1);
    assert_eq!(org.api_usage(), usage + 1);
    assert!(saved.iter().all(|r| r.success), "{saved:?}");
    assert_eq!(saved[0].id.as_deref(), Some(ids[0].as_str()));
    let read = read.unwrap();
    assert_eq!(read.len(), 2);
    assert!(read.iter().all(|r| !r.contains_key("attributes")));
    assert_eq!(
        (&read[0]["Title"], &read[1]["Title"]),
        (&json!("Boss"), &json!("Chief"))
    );
    assert!(instant(&read[0]["SystemModstamp"]) > stamp_before);
    // What the call read back is what the org holds.
    assert_eq!(
        read[0]["SystemModstamp"],
        org.record_by_id(&ids[0]).unwrap()["SystemModstamp"]
    );

    // An upsert read back by its external Ids learns the Ids it created.
    let (saved, read) = client
        .save_and_query(
            Save::Upsert {
                object: "Contact".into(),
                external_id_field: EXT.into(),
                records: vec![fields(json!({EXT: "c-1", "LastName": "New"}))],
            },
            Some(&format!(
                "SELECT Id, {EXT} FROM Contact WHERE {EXT} = 'c-1'"
            )),
        )
        .await
        .unwrap();
    assert_eq!(saved[0].created, Some(true));
    assert_eq!(read.unwrap()[0]["Id"].as_str(), saved[0].id.as_deref());

    // A delete, without a query.
    let (saved, read) = client
        .save_and_query(
            Save::Delete {
                ids: vec![ids[1].clone()],
            },
            None,
        )
        .await
        .unwrap();
    assert!(saved[0].success);
    assert!(read.unwrap().is_empty());
    assert_eq!(org.record_by_id(&ids[1]).unwrap()["IsDeleted"], true);
}

#[tokio::test]
async fn a_failed_read_back_leaves_the_save_standing() {
    let (fake, client) = connect(40).await;
    let id = fake.org().record_id("Contact", 3);
    let (saved, read) = client
        .save_and_query(
            Save::Update {
                object: "Contact".into(),
                records: vec![(id.clone(), fields(json!({"Title": "Kept"})))],
            },
            Some(&format!(
                "SELECT Id, Nope__c FROM Contact WHERE Id = '{id}'"
            )),
        )
        .await
        .unwrap();
    assert!(saved[0].success);
    let e = read.unwrap_err();
    assert_eq!(e.code(), Some("INVALID_FIELD"), "{e}");
    assert_eq!(fake.org().record_by_id(&id).unwrap()["Title"], "Kept");

    // A save refused whole is the error a direct call gives.
    let e = client
        .save_and_query(
            Save::Update {
                object: "Contact".into(),
                records: vec![(id.clone(), fields(json!({"Foo__c": 1})))],
            },
            Some("SELECT Id FROM Contact LIMIT 1"),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("INVALID_FIELD"), "{e}");
    let direct = client
        .update_records("Contact", vec![(id, fields(json!({"Foo__c": 1})))])
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), direct.to_string());
}

#[tokio::test]
async fn too_many_records_or_a_read_back_of_many_pages_are_refused() {
    let (fake, client) = connect(2_100).await;
    let calls = client.usage().calls();
    let records = (0..201)
        .map(|i| fields(json!({EXT: format!("x-{i}"), "LastName": "X"})))
        .collect();
    let e = client
        .save_and_query(
            Save::Upsert {
                object: "Contact".into(),
                external_id_field: EXT.into(),
                records,
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SfError::Config(_)), "{e}");
    assert_eq!(client.usage().calls(), calls, "refused before any call");

    // A read-back longer than one page (2,000 records) is the query's error, not the save's.
    let id = fake.org().record_id("Contact", 4);
    let (saved, read) = client
        .save_and_query(
            Save::Update {
                object: "Contact".into(),
                records: vec![(id.clone(), fields(json!({"Title": "Many"})))],
            },
            Some("SELECT Id FROM Contact"),
        )
        .await
        .unwrap();
    assert!(saved[0].success);
    let e = read.unwrap_err();
    assert!(matches!(e, SfError::Protocol { .. }), "{e}");
    assert!(e.to_string().contains("2100 records"), "{e}");
    assert_eq!(fake.org().record_by_id(&id).unwrap()["Title"], "Many");
}
