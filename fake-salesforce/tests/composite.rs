//! The Composite resource: an sObject Collections write and a query that reads it back in one
//! API call, each subrequest answered as the direct call would be (row locks and
//! commit-then-drop included), and Salesforce's refusals of calls it does not take.

mod support;

use std::time::Duration;

use fake_salesforce::{Faults, OrgConfig};
use serde_json::{Value, json};
use support::{Client, instant, start};

const COMPOSITE: &str = "/services/data/v62.0/composite";
const COLLECTIONS: &str = "/services/data/v62.0/composite/sobjects";
const EXT: &str = "Sfsync_Id__c";

fn config() -> OrgConfig {
    OrgConfig {
        accounts: 5,
        contacts: 40,
        external_id_field: Some(EXT.to_owned()),
        ..OrgConfig::default()
    }
}

/// A composite call's status, `Sforce-Limit-Info` and JSON body.
async fn composite(client: &Client, body: &Value) -> (u16, String, Value) {
    let r = client
        .send_json(reqwest::Method::POST, COMPOSITE, body)
        .await;
    let status = r.status().as_u16();
    let info = r.headers()["sforce-limit-info"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, info, r.json().await.unwrap())
}

/// `/services/data/v62.0/query/?q=…` as a subrequest url.
fn query_url(soql: &str) -> String {
    let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
    format!("/services/data/v62.0/query/?q={encoded}")
}

fn query(reference_id: &str, soql: &str) -> Value {
    json!({"method": "GET", "url": query_url(soql), "referenceId": reference_id})
}

fn contact(fields: Value) -> Value {
    let mut record = json!({"attributes": {"type": "Contact"}});
    record
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    record
}

fn update(reference_id: &str, records: Value) -> Value {
    json!({"method": "PATCH", "url": COLLECTIONS, "referenceId": reference_id,
           "body": {"allOrNone": false, "records": records}})
}

fn ok(id: &str) -> Value {
    json!({"id": id, "success": true, "errors": []})
}

/// The records of a query subresponse body, without `attributes`.
fn records(body: &Value) -> Vec<serde_json::Map<String, Value>> {
    assert_eq!(body["done"], true, "{body}");
    body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let mut r = r.as_object().unwrap().clone();
            r.remove("attributes");
            r
        })
        .collect()
}

#[tokio::test]
async fn an_update_read_back_in_the_same_call_shows_its_values_and_a_newer_stamp() {
    let (fake, client) = start(config()).await;
    let ids = [
        fake.org().record_id("Contact", 0),
        fake.org().record_id("Contact", 1),
    ];
    let soql = format!(
        "SELECT Id, Title, SystemModstamp FROM Contact WHERE Id IN ('{}','{}') ORDER BY Id",
        ids[0], ids[1]
    );
    let before = client.records("query", &soql).await;
    fake.org().set_api_usage(10);

    let body = json!({"allOrNone": false, "compositeRequest": [
        update("save", json!([
            contact(json!({"id": ids[0], "Title": "Boss"})),
            contact(json!({"id": ids[1], "Title": "Chief"})),
        ])),
        query("readBack", &soql),
    ]});
    let (status, info, answer) = composite(&client, &body).await;
    assert_eq!(status, 200, "{answer}");
    // The whole call is one API call, as the org counts them and tells the client.
    assert_eq!(info, "api-usage=11/1000000");
    assert_eq!(fake.org().api_usage(), 11);

    let subs = answer["compositeResponse"].as_array().unwrap();
    assert_eq!(subs.len(), 2);
    assert_eq!(
        subs[0],
        json!({"body": [ok(&ids[0]), ok(&ids[1])], "httpHeaders": {}, "httpStatusCode": 200,
               "referenceId": "save"})
    );
    assert_eq!(
        (
            &subs[1]["httpStatusCode"],
            &subs[1]["referenceId"],
            &subs[1]["httpHeaders"]
        ),
        (&json!(200), &json!("readBack"), &json!({}))
    );
    let after = records(&subs[1]["body"]);
    assert_eq!(after.len(), 2);
    for (was, now) in before.iter().zip(&after) {
        assert_eq!(was["Id"], now["Id"]);
        let (was, now) = (
            instant(was["SystemModstamp"].as_str().unwrap()),
            instant(now["SystemModstamp"].as_str().unwrap()),
        );
        assert!(now > was, "SystemModstamp {now} is not after {was}");
    }
    assert_eq!(
        (&after[0]["Title"], &after[1]["Title"]),
        (&json!("Boss"), &json!("Chief"))
    );
    // What the composite call read is what a later pull reads: nothing left to rewrite.
    assert_eq!(client.records("query", &soql).await, after);
}

#[tokio::test]
async fn an_upsert_read_back_by_its_external_ids_gives_the_created_ids() {
    let (fake, client) = start(config()).await;
    let body = json!({"allOrNone": false, "compositeRequest": [
        {"method": "PATCH", "url": format!("{COLLECTIONS}/Contact/{EXT}"), "referenceId": "save",
         "body": {"allOrNone": false, "records": [
            contact(json!({EXT: "k-1", "LastName": "One"})),
            contact(json!({EXT: "k-2", "LastName": "Two"})),
         ]}},
        query("created", &format!(
            "SELECT Id, {EXT}, LastName, CreatedDate, SystemModstamp FROM Contact \
             WHERE {EXT} IN ('k-1','k-2') ORDER BY {EXT}"
        )),
    ]});
    let (status, _, answer) = composite(&client, &body).await;
    assert_eq!(status, 200, "{answer}");
    let saved = &answer["compositeResponse"][0]["body"];
    assert_eq!(saved[0]["created"], true, "{saved}");
    assert_eq!(saved[1]["created"], true, "{saved}");
    let read = records(&answer["compositeResponse"][1]["body"]);
    let read_ids: Vec<&str> = read.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(
        read_ids,
        [
            saved[0]["id"].as_str().unwrap(),
            saved[1]["id"].as_str().unwrap()
        ]
    );
    assert_eq!(
        (&read[0][EXT], &read[1]["LastName"]),
        (&json!("k-1"), &json!("Two"))
    );
    assert_eq!(read[0]["CreatedDate"], read[0]["SystemModstamp"]);
    assert_eq!(
        fake.org().find_by_external_id("Contact", "k-2"),
        vec![read_ids[1].to_owned()]
    );
}

#[tokio::test]
async fn a_query_naming_an_unknown_field_fails_alone_and_the_save_applies() {
    let (fake, client) = start(config()).await;
    let id = fake.org().record_id("Contact", 2);
    let soql = format!("SELECT Id, Nope__c FROM Contact WHERE Id = '{id}'");
    let body = json!({"allOrNone": false, "compositeRequest": [
        update("save", json!([contact(json!({"id": id, "Title": "Applied"}))])),
        query("readBack", &soql),
    ]});
    let (status, _, answer) = composite(&client, &body).await;
    assert_eq!(status, 200, "{answer}");
    let subs = &answer["compositeResponse"];
    assert_eq!(subs[0]["body"], json!([ok(&id)]));
    assert_eq!(subs[1]["httpStatusCode"], 400);
    assert_eq!(subs[1]["referenceId"], "readBack");
    // The same error array the query answers on its own.
    let (direct_status, direct) = client.query_json(&soql).await;
    assert_eq!(direct_status, 400);
    assert_eq!(subs[1]["body"], direct);
    assert_eq!(subs[1]["body"][0]["errorCode"], "INVALID_FIELD");
    assert_eq!(fake.org().record_by_id(&id).unwrap()["Title"], "Applied");
}

#[tokio::test]
async fn commit_then_drop_commits_a_composite_write_and_drops_its_answer() {
    let (fake, client) = start(OrgConfig {
        faults: Faults {
            commit_then_drop_every: 1,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    let body = json!({"allOrNone": false, "compositeRequest": [
        {"method": "PATCH", "url": format!("{COLLECTIONS}/Contact/{EXT}"), "referenceId": "save",
         "body": {"allOrNone": false, "records": [contact(json!({EXT: "lost-1", "LastName": "Lost"}))]}},
        query("readBack", &format!("SELECT Id FROM Contact WHERE {EXT} = 'lost-1'")),
    ]});
    let sent = client
        .http
        .post(format!("{}{COMPOSITE}", client.base))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await;
    let error = sent.expect_err("the client got an answer");
    assert!(error.is_request(), "{error:?}");
    assert_eq!(fake.org().find_by_external_id("Contact", "lost-1").len(), 1);
    let stats = fake.org().fault_stats();
    assert_eq!((stats.write_calls, stats.dropped), (1, 1));

    // A query alone is no write call: it is neither counted nor dropped.
    let (status, _) = client.query_json("SELECT Id FROM Contact LIMIT 1").await;
    assert_eq!(status, 200);
    assert_eq!(fake.org().fault_stats().write_calls, 1);
}

#[tokio::test]
async fn composite_writes_take_the_same_row_locks_as_direct_ones() {
    let (fake, client) = start(OrgConfig {
        faults: Faults {
            write_ms: 300,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    let contacts: Vec<(String, String)> = fake
        .org()
        .records("Contact")
        .filter_map(|r| {
            Some((
                r["Id"].as_str()?.to_owned(),
                r["AccountId"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let shared = contacts[0].1.clone();
    let on_shared: Vec<&str> = contacts
        .iter()
        .filter(|(_, a)| *a == shared)
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(on_shared.len() >= 2);
    // A composite call and a direct collections call, each updating a child of one Account.
    let first = {
        let client = Client {
            http: client.http.clone(),
            base: client.base.clone(),
            token: client.token.clone(),
        };
        let body = json!({"allOrNone": false, "compositeRequest": [
            update("save", json!([contact(json!({"id": on_shared[0], "Title": "First"}))])),
        ]});
        tokio::spawn(async move { composite(&client, &body).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = json!({"allOrNone": false, "compositeRequest": [
        update("save", json!([contact(json!({"id": on_shared[1], "Title": "Second"}))])),
    ]});
    let (status, _, second) = composite(&client, &body).await;
    assert_eq!(status, 200);
    let (status, _, first) = first.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        first["compositeResponse"][0]["body"],
        json!([ok(on_shared[0])])
    );
    assert_eq!(
        second["compositeResponse"][0]["body"],
        json!([{"success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW",
            "message": format!("unable to obtain exclusive access to this record or 1 records: {shared}"),
            "fields": []}]}])
    );
}

#[tokio::test]
async fn calls_over_the_limits_run_nothing() {
    let (fake, client) = start(config()).await;
    let id = fake.org().record_id("Contact", 0);
    let title = |t: &str| update("save", json!([contact(json!({"id": id, "Title": t}))]));
    let limit_exceeded = |message: &str| {
        json!({"compositeResponse": [{"body": [{"errorCode": "LIMIT_EXCEEDED", "message": message}],
               "httpHeaders": {}, "httpStatusCode": 400, "referenceId": null}]})
    };

    // 26 subrequests, of which only one writes.
    let mut subrequests = vec![title("Never")];
    subrequests.extend((0..25).map(|i| {
        json!({"method": "GET", "url": format!("/services/data/v62.0/sobjects/Contact/{id}"),
               "referenceId": format!("get{i}")})
    }));
    let (status, _, answer) = composite(&client, &json!({"compositeRequest": subrequests})).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        limit_exceeded("The request can\u{2019}t contain more than 25 operations.")
    );

    // Six collections and query subrequests.
    let mut subrequests = vec![title("Never")];
    subrequests.extend((0..5).map(|i| query(&format!("q{i}"), "SELECT Id FROM Contact LIMIT 1")));
    let (status, _, answer) = composite(
        &client,
        &json!({"allOrNone": false, "compositeRequest": subrequests}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        limit_exceeded(
            "The request can\u{2019}t contain more than 5 sObject Collections or query operations."
        )
    );
    assert_ne!(fake.org().record_by_id(&id).unwrap()["Title"], "Never");

    // Five are fine, with 20 other subrequests.
    let mut subrequests = vec![title("Five")];
    subrequests.extend((0..4).map(|i| query(&format!("q{i}"), "SELECT Id FROM Contact LIMIT 1")));
    subrequests.extend((0..20).map(|i| {
        json!({"method": "GET", "url": format!("/services/data/v62.0/sobjects/Contact/{id}"),
               "referenceId": format!("get{i}")})
    }));
    let (status, _, answer) = composite(&client, &json!({"compositeRequest": subrequests})).await;
    assert_eq!(status, 200);
    let subs = answer["compositeResponse"].as_array().unwrap();
    assert_eq!(subs.len(), 25);
    assert!(subs.iter().all(|s| s["httpStatusCode"] == 200), "{answer}");
    assert_eq!(subs[24]["body"]["Title"], "Five", "the reads see the write");
}

#[tokio::test]
async fn malformed_and_unsupported_calls_are_refused() {
    let (fake, client) = start(config()).await;
    let id = fake.org().record_id("Contact", 0);

    // A url the composite resource does not serve answers its own subrequest; the rest run.
    let body = json!({"compositeRequest": [
        {"method": "GET", "url": "/services/data/v62.0/nowhere", "referenceId": "bad"},
        {"method": "GET", "url": "/services/data/v62.0/limits", "referenceId": "limits"},
        {"method": "GET", "url": "/somewhere/else", "referenceId": "outside"},
        query("fine", &format!("SELECT Id FROM Contact WHERE Id = '{id}'")),
    ]});
    let (status, _, answer) = composite(&client, &body).await;
    assert_eq!(status, 200);
    let not_found =
        json!([{"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}]);
    for (i, reference_id) in ["bad", "limits", "outside"].into_iter().enumerate() {
        assert_eq!(
            answer["compositeResponse"][i],
            json!({"body": not_found, "httpHeaders": {}, "httpStatusCode": 404,
                   "referenceId": reference_id})
        );
    }
    assert_eq!(answer["compositeResponse"][3]["body"]["totalSize"], 1);

    // Salesforce's parse error for a subrequest without its reference Id.
    let r = client
        .send_json(
            reqwest::Method::POST,
            COMPOSITE,
            &json!({"compositeRequest": [{"method": "GET", "url": query_url("SELECT Id FROM Contact")}]}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!([{"message": "'referenceId' is a required field.", "errorCode": "JSON_PARSER_ERROR"}])
    );

    // What the fake does not imitate is refused whole, before anything runs.
    for body in [
        json!({"compositeRequest": [
            update("save", json!([contact(json!({"id": id, "Title": "Ref"}))])),
            {"method": "GET", "url": "/services/data/v62.0/sobjects/Contact/@{save[0].id}",
             "referenceId": "get"},
        ]}),
        json!({"allOrNone": true, "compositeRequest": [
            update("save", json!([contact(json!({"id": id, "Title": "Ref"}))])),
        ]}),
    ] {
        let r = client
            .send_json(reqwest::Method::POST, COMPOSITE, &body)
            .await;
        assert_eq!(r.status(), 400);
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer[0]["errorCode"], "UNSUPPORTED_BY_FAKE", "{answer}");
    }
    assert_ne!(fake.org().record_by_id(&id).unwrap()["Title"], "Ref");

    // Only POST, and a session is needed as for any call.
    let r = client.get(COMPOSITE).await;
    assert_eq!(r.status(), 405);
    fake.org().expire_all_tokens();
    let r = client
        .send_json(
            reqwest::Method::POST,
            COMPOSITE,
            &json!({"compositeRequest": []}),
        )
        .await;
    assert_eq!(r.status(), 401);
}
