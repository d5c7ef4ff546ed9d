//! sObject Collections writes: create, update, upsert and delete with Salesforce's statuses
//! and bodies, seen by queries and the replication resources; the external Id field,
//! validation rules, row locks and the commit-then-drop fault.

mod support;

use std::time::Duration;

use fake_salesforce::{Faults, OrgConfig};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, instant, start, strings};

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

/// A call's status, `Sforce-Limit-Info` and JSON body.
async fn call(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, String, Value) {
    let mut request = client
        .http
        .request(method, format!("{}{path}", client.base))
        .bearer_auth(&client.token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    let info = r.headers()["sforce-limit-info"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, info, r.json().await.unwrap())
}

async fn create(client: &Client, all_or_none: bool, records: Value) -> (u16, Value) {
    let body = json!({"allOrNone": all_or_none, "records": records});
    let (status, _, body) = call(client, Method::POST, COLLECTIONS, Some(body)).await;
    (status, body)
}

async fn update(client: &Client, all_or_none: bool, records: Value) -> (u16, Value) {
    let body = json!({"allOrNone": all_or_none, "records": records});
    let (status, _, body) = call(client, Method::PATCH, COLLECTIONS, Some(body)).await;
    (status, body)
}

async fn upsert(client: &Client, object: &str, field: &str, records: Value) -> (u16, Value) {
    let path = format!("{COLLECTIONS}/{object}/{field}");
    let body = json!({"allOrNone": false, "records": records});
    let (status, _, body) = call(client, Method::PATCH, &path, Some(body)).await;
    (status, body)
}

async fn delete(client: &Client, ids: &[&str], all_or_none: bool) -> (u16, Value) {
    let path = format!(
        "{COLLECTIONS}?ids={}&allOrNone={all_or_none}",
        ids.join(",")
    );
    let (status, _, body) = call(client, Method::DELETE, &path, None).await;
    (status, body)
}

fn ok(id: &str) -> Value {
    json!({"id": id, "success": true, "errors": []})
}

fn failed(code: &str, message: &str, fields: &[&str]) -> Value {
    json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": fields}]})
}

fn contact(fields: Value) -> Value {
    let mut record = json!({"attributes": {"type": "Contact"}});
    record
        .as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    record
}

fn id_of(result: &Value) -> String {
    result["id"].as_str().unwrap().to_owned()
}

/// `?start=…&end=…` an hour either side of `ms`.
fn window(ms: i64) -> String {
    let at = |ms: i64| {
        let mut out = String::new();
        fake_salesforce::calendar::write_datetime(&mut out, ms);
        out.replace(".000+0000", "+00:00").replace('+', "%2B")
    };
    format!("?start={}&end={}", at(ms - 3_600_000), at(ms + 3_600_000))
}

#[tokio::test]
async fn create_update_delete_show_in_queries_and_replication() {
    let (fake, client) = start(config()).await;
    let account = fake.org().record_id("Account", 0);
    let newest_generated = fake
        .org()
        .records("Contact")
        .map(|r| instant(r["SystemModstamp"].as_str().unwrap()))
        .max()
        .unwrap();

    let (status, body) = create(
        &client,
        false,
        json!([
            contact(json!({"LastName": "Writer", "Email": "w@example.com", "AccountId": account})),
            {"attributes": {"type": "Account"}, "Name": "Acme"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (c, a) = (id_of(&body[0]), id_of(&body[1]));
    assert_eq!(body, json!([ok(&c), ok(&a)]));
    assert!(c.starts_with("003") && a.starts_with("001"), "{c} {a}");

    let soql = format!(
        "SELECT Id, LastName, Email, Title, AccountId, CreatedDate, SystemModstamp FROM Contact \
         WHERE Id = '{c}'"
    );
    let rows = client.records("query", &soql).await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        (&row["LastName"], &row["Email"], &row["AccountId"]),
        (&json!("Writer"), &json!("w@example.com"), &json!(account))
    );
    assert_eq!(row["Title"], Value::Null, "fields left out start empty");
    let created = instant(row["SystemModstamp"].as_str().unwrap());
    assert!(created > newest_generated);
    assert_eq!(row["CreatedDate"], row["SystemModstamp"]);

    let (status, body) = update(
        &client,
        false,
        json!([contact(json!({"id": c, "Title": "Boss"}))]),
    )
    .await;
    assert_eq!((status, body), (200, json!([ok(&c)])));
    let row = &client.records("query", &soql).await[0];
    assert_eq!(row["Title"], "Boss");
    let updated = instant(row["SystemModstamp"].as_str().unwrap());
    assert!(updated >= created);
    let (_, u) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/Contact/updated/{}",
            window(updated)
        ))
        .await;
    assert!(strings(&u["ids"]).contains(&c), "{u}");

    let (status, body) = delete(&client, &[&c], false).await;
    assert_eq!((status, body), (200, json!([ok(&c)])));
    assert!(client.records("query", &soql).await.is_empty());
    let all = client
        .records(
            "queryAll",
            &format!("SELECT Id, IsDeleted FROM Contact WHERE Id = '{c}'"),
        )
        .await;
    assert_eq!(all[0]["IsDeleted"], true);
    let (_, d) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/Contact/deleted/{}",
            window(updated)
        ))
        .await;
    let deleted: Vec<&str> = d["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(deleted, [c.as_str()], "{d}");

    // A deleted record can be neither deleted nor updated again; unknown Ids are refused.
    let unknown = fake.org().record_id("Contact", 90_000);
    let (status, body) = delete(&client, &[&c, &unknown, "nonsense"], false).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            failed("ENTITY_IS_DELETED", "entity is deleted", &[]),
            failed(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[]
            ),
            failed("MALFORMED_ID", "malformed id nonsense", &[]),
        ])
    );
    let (status, body) = update(
        &client,
        false,
        json!([
            contact(json!({"id": c, "Title": "Ghost"})),
            contact(json!({"id": unknown, "Title": "Nobody"})),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            failed("ENTITY_IS_DELETED", "entity is deleted", &[]),
            failed(
                "INVALID_CROSS_REFERENCE_KEY",
                "invalid cross reference id",
                &[]
            ),
        ])
    );
}

#[tokio::test]
async fn more_than_200_records_refuse_the_whole_call() {
    let (fake, client) = start(config()).await;
    let records: Vec<Value> = (0..201)
        .map(|i| contact(json!({"LastName": format!("N{i}")})))
        .collect();
    let (status, body) = create(&client, false, json!(records)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "record limit reached. cannot submit more than 200 records into this call",
                "errorCode": "EXCEEDED_ID_LIMIT"}])
    );
    assert_eq!(fake.org().count("Contact"), 40);
    let (status, body) = create(&client, false, json!(records[..200])).await;
    assert_eq!(status, 200);
    assert!(
        body.as_array()
            .unwrap()
            .iter()
            .all(|r| r["success"] == true)
    );
    assert_eq!(fake.org().count("Contact"), 240);
}

#[tokio::test]
async fn all_or_none_rolls_back_the_valid_records() {
    let (fake, client) = start(config()).await;
    let records = json!([
        contact(json!({"LastName": "Fine"})),
        contact(json!({"FirstName": "NoLast"}))
    ]);
    let missing = failed(
        "REQUIRED_FIELD_MISSING",
        "Required fields are missing: [LastName]",
        &["LastName"],
    );
    let rolled_back = failed(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
        &[],
    );
    let (status, body) = create(&client, true, records.clone()).await;
    assert_eq!((status, &body), (200, &json!([rolled_back, missing])));
    assert_eq!(fake.org().count("Contact"), 40);

    let (status, body) = create(&client, false, records).await;
    assert_eq!(status, 200);
    assert_eq!(body[0], ok(&id_of(&body[0])));
    assert_eq!(body[1], missing);
    assert_eq!(fake.org().count("Contact"), 41);

    // An update rolled back keeps its Id in the result; nothing changes.
    let first = fake.org().record_id("Contact", 0);
    let before = fake.org().record_by_id(&first).unwrap();
    let (status, body) = update(
        &client,
        true,
        json!([
            contact(json!({"id": first, "Title": "Changed"})),
            contact(json!({"id": first, "LastName": null}))
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let mut expected = rolled_back.clone();
    expected["id"] = json!(first);
    assert_eq!(body, json!([expected, missing]));
    assert_eq!(fake.org().record_by_id(&first).unwrap(), before);
}

#[tokio::test]
async fn refused_fields_answer_as_salesforce_does() {
    let (fake, client) = start(config()).await;
    let (status, body) = create(
        &client,
        false,
        json!([contact(json!({"LastName": "X", "Foo__c": 1}))]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "No such column 'Foo__c' on sobject of type Contact", "errorCode": "INVALID_FIELD"}])
    );
    let stamp = "2030-01-01T00:00:00.000+0000";
    let (status, body) = create(
        &client,
        false,
        json!([contact(json!({"LastName": "X", "SystemModstamp": stamp})), {"attributes": {"type": "Account"}}]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            failed(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                "Unable to create/update fields: SystemModstamp. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
                &["SystemModstamp"],
            ),
            failed(
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [Name]",
                &["Name"]
            ),
        ])
    );
    let first = fake.org().record_id("Contact", 0);
    let (status, body) = update(
        &client,
        false,
        json!([contact(json!({"id": first, "CreatedDate": stamp}))]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
    assert_eq!(body[0]["errors"][0]["fields"], json!(["CreatedDate"]));
    assert_eq!(fake.org().count("Contact"), 40);
}

#[tokio::test]
async fn upsert_creates_updates_and_refuses_duplicates() {
    let (fake, client) = start(config()).await;
    let org = fake.org();
    let (status, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(json!({EXT: "u-1", "LastName": "First"}))]),
    )
    .await;
    assert_eq!(status, 200);
    let id = id_of(&body[0]);
    assert_eq!(
        body,
        json!([{"id": id, "success": true, "errors": [], "created": true}])
    );
    // The external Id matches ignoring case; the second upsert updates the same record.
    let (status, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(json!({EXT: "U-1", "LastName": "Second"}))]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"id": id, "success": true, "errors": [], "created": false}])
    );
    assert_eq!(org.find_by_external_id("Contact", "u-1"), vec![id.clone()]);
    let record = org.record_by_id(&id).unwrap();
    assert_eq!(
        (&record["LastName"], &record[EXT]),
        (&json!("Second"), &json!("U-1"))
    );

    // A create that repeats a value another record holds.
    let (status, body) = create(
        &client,
        false,
        json!([contact(json!({EXT: "u-1", "LastName": "Copy"}))]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([failed(
            "DUPLICATE_VALUE",
            &format!("duplicate value found: {EXT} duplicates value on record with id: {id}"),
            &[]
        )])
    );

    // Two records holding one value (loaded before the field was unique): the upsert fails.
    let other = org.record_id("Contact", 3);
    org.force_external_id("Contact", &other, "u-1");
    let (status, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(json!({EXT: "u-1", "LastName": "Third"}))]),
    )
    .await;
    assert_eq!(status, 200);
    let (low, high) = if id < other {
        (&id, &other)
    } else {
        (&other, &id)
    };
    assert_eq!(
        body,
        json!([{"success": false, "created": false, "errors": [{"statusCode": "DUPLICATE_EXTERNAL_ID",
            "message": format!("Sfsync_Id: more than one record found for external id field: [{low}, {high}]"),
            "fields": []}]}])
    );

    let (status, body) = upsert(
        &client,
        "Contact",
        "Title",
        json!([contact(json!({"Title": "x", "LastName": "L"}))]),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!([{"message": "Field name provided, Title is not an External ID or indexed field for Contact",
                "errorCode": "INVALID_FIELD"}])
    );
}

#[tokio::test]
async fn the_external_id_field_is_described_only_when_configured() {
    for shape in [
        fake_salesforce::Shape::Classic,
        fake_salesforce::Shape::Real,
    ] {
        let (_fake, client) = start(OrgConfig { shape, ..config() }).await;
        for object in ["Account", "Contact"] {
            let (status, d) = client
                .get_json(&format!("/services/data/v62.0/sobjects/{object}/describe"))
                .await;
            assert_eq!(status, 200);
            let field = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["name"] == EXT)
                .unwrap();
            for (k, v) in [
                ("type", json!("string")),
                ("length", json!(36)),
                ("externalId", json!(true)),
                ("unique", json!(true)),
                ("idLookup", json!(true)),
                ("caseSensitive", json!(false)),
                ("createable", json!(true)),
                ("updateable", json!(true)),
                ("nillable", json!(true)),
            ] {
                assert_eq!(field[k], v, "{shape:?} {object} {k}");
            }
            let rows = client
                .records("query", &format!("SELECT {EXT} FROM {object} LIMIT 3"))
                .await;
            assert!(rows.iter().all(|r| r[EXT].is_null()));
        }
    }
    let (_fake, client) = start(OrgConfig::default()).await;
    let (_, d) = client
        .get_json("/services/data/v62.0/sobjects/Contact/describe")
        .await;
    assert!(
        d["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != EXT)
    );
}

#[tokio::test]
async fn commit_then_drop_commits_while_the_client_sees_no_answer() {
    let (fake, client) = start(OrgConfig {
        faults: Faults {
            commit_then_drop_every: 1,
            ..Faults::default()
        },
        ..config()
    })
    .await;
    let body = json!({"allOrNone": false, "records": [contact(json!({EXT: "lost-1", "LastName": "Lost"}))]});
    let sent = client
        .http
        .patch(format!("{}{COLLECTIONS}/Contact/{EXT}", client.base))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await;
    // Not even a status line: the connection closes before any byte of an answer.
    let error = sent.expect_err("the client got an answer");
    assert!(error.is_request(), "{error:?}");
    let found = fake.org().find_by_external_id("Contact", "lost-1");
    assert_eq!(found.len(), 1, "the write committed");
    assert_eq!(fake.org().fault_stats().dropped, 1);

    // The retry, as an upsert, finds the record instead of duplicating it.
    fake.org().set_faults(Faults::default());
    let (status, body) = upsert(&client, "Contact", EXT, body["records"].clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"id": found[0], "success": true, "errors": [], "created": false}])
    );
    assert_eq!(fake.org().find_by_external_id("Contact", "lost-1"), found);
}

#[tokio::test]
async fn one_call_counts_as_one_api_call_and_needs_a_session() {
    let (fake, client) = start(config()).await;
    fake.org().set_api_usage(10);
    let records: Vec<Value> = (0..200)
        .map(|i| contact(json!({"LastName": format!("N{i}")})))
        .collect();
    let body = json!({"allOrNone": false, "records": records});
    let (status, info, _) = call(&client, Method::POST, COLLECTIONS, Some(body.clone())).await;
    assert_eq!((status, info.as_str()), (200, "api-usage=11/1000000"));
    let first = fake.org().record_id("Contact", 0);
    let (_, info, _) = call(
        &client,
        Method::DELETE,
        &format!("{COLLECTIONS}?ids={first}"),
        None,
    )
    .await;
    assert_eq!(info, "api-usage=12/1000000");

    fake.org().expire_all_tokens();
    let r = client
        .http
        .post(format!("{}{COLLECTIONS}", client.base))
        .bearer_auth(&client.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );
    assert_eq!(fake.org().count("Contact"), 240);
}

#[tokio::test]
async fn a_validation_rule_fails_its_records_until_lifted() {
    let (fake, client) = start(config()).await;
    let rule = json!({"object": "Contact", "field": "Email", "must_contain": "@",
                      "message": "Email must contain @"});
    let (status, body) = client.admin("validation", rule).await;
    assert_eq!(
        (status, body),
        (200, json!({"object": "Contact", "rules": 1}))
    );
    let records = json!([
        contact(json!({"LastName": "Bad", "Email": "no-at-sign"})),
        contact(json!({"LastName": "Good", "Email": "good@example.com"})),
    ]);
    let (status, body) = create(&client, false, records.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(
        body[0],
        failed(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "Email must contain @",
            &["Email"]
        )
    );
    assert_eq!(body[1], ok(&id_of(&body[1])));
    // Updates and upserts are checked on the value they leave.
    let first = fake.org().record_id("Contact", 0);
    let (_, body) = update(
        &client,
        false,
        json!([contact(json!({"id": first, "Email": "still-bad"}))]),
    )
    .await;
    assert_eq!(
        body[0]["errors"][0]["statusCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    let (_, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(json!({EXT: "v-1", "LastName": "U", "Email": "x"}))]),
    )
    .await;
    assert_eq!(body[0]["errors"][0]["fields"], json!(["Email"]));

    let (status, body) = client
        .admin("validation", json!({"object": "Contact", "clear": true}))
        .await;
    assert_eq!(
        (status, body),
        (200, json!({"object": "Contact", "rules": 0}))
    );
    let (_, body) = create(&client, false, json!([records[0].clone()])).await;
    assert_eq!(body[0], ok(&id_of(&body[0])));
    let (status, body) = client
        .admin("validation", json!({"object": "Nope", "clear": true}))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Two calls at once, each updating a Contact of `shared` first and a Contact of another
/// Account second; the second call starts 50 ms after the first.
async fn collide(client: &Client, pairs: [(&str, &str); 2]) -> [Value; 2] {
    let first = {
        let client = Client {
            http: client.http.clone(),
            base: client.base.clone(),
            token: client.token.clone(),
        };
        let records = json!([
            contact(json!({"id": pairs[0].0, "Title": "First"})),
            contact(json!({"id": pairs[0].1, "Title": "First"})),
        ]);
        tokio::spawn(async move { update(&client, false, records).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let records = json!([
        contact(json!({"id": pairs[1].0, "Title": "Second"})),
        contact(json!({"id": pairs[1].1, "Title": "Second"})),
    ]);
    let (status, second) = update(client, false, records).await;
    assert_eq!(status, 200);
    let (status, first) = first.await.unwrap();
    assert_eq!(status, 200);
    [first, second]
}

#[tokio::test]
async fn concurrent_calls_on_one_account_lock_the_loser_records_only() {
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
    let elsewhere: Vec<&str> = contacts
        .iter()
        .filter(|(_, a)| *a != shared)
        .map(|(c, _)| c.as_str())
        .collect();
    assert!(on_shared.len() >= 2 && elsewhere.len() >= 2);
    let pairs = [(on_shared[0], elsewhere[0]), (on_shared[1], elsewhere[1])];
    let results = collide(&client, pairs).await;
    // Whichever call took the Account's lock first wins; the other loses only its record
    // on that Account.
    let lost = results
        .iter()
        .position(|r| r[0]["success"] == false)
        .expect("one call lost the lock");
    let won = 1 - lost;
    assert_eq!(results[won], json!([ok(pairs[won].0), ok(pairs[won].1)]));
    assert_eq!(
        results[lost],
        json!([
            failed(
                "UNABLE_TO_LOCK_ROW",
                &format!("unable to obtain exclusive access to this record or 1 records: {shared}"),
                &[],
            ),
            ok(pairs[lost].1),
        ])
    );
    let title = |id: &str| fake.org().record_by_id(id).unwrap()["Title"].clone();
    let (winner, loser) = (["First", "Second"][won], ["First", "Second"][lost]);
    assert_eq!(title(pairs[won].0), winner);
    assert_ne!(title(pairs[lost].0), loser);
    assert_eq!(title(pairs[lost].1), loser);

    // Waiting longer than the other call holds the lock lets both through.
    fake.org().set_faults(Faults {
        write_ms: 300,
        lock_wait_ms: 2_000,
        ..Faults::default()
    });
    let results = collide(&client, pairs).await;
    for (r, (a, b)) in results.iter().zip(pairs) {
        assert_eq!(r, &json!([ok(a), ok(b)]));
    }
}

#[tokio::test]
async fn the_real_shape_refuses_what_its_describes_refuse_and_bulk_sees_writes() {
    let (fake, client) = start(OrgConfig {
        external_id_field: Some(EXT.to_owned()),
        ..support::real(10, 20, &[("Lead", 5)])
    })
    .await;
    let (status, body) = create(
        &client,
        false,
        json!([
            {"attributes": {"type": "Lead"}, "FirstName": "No", "Email": "no@example.com"},
            {"attributes": {"type": "Account"}, "Name": "Formula", "npsp__Membership_Status__c": "x"},
            {"attributes": {"type": "Lead"}, "LastName": "Lead", "Company": "Acme", EXT: "lead-1"},
        ]),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body[0],
        failed(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LastName, Company]",
            &["LastName", "Company"]
        )
    );
    assert_eq!(
        body[1]["errors"][0]["statusCode"],
        "INVALID_FIELD_FOR_INSERT_UPDATE"
    );
    assert_eq!(
        body[1]["errors"][0]["fields"],
        json!(["npsp__Membership_Status__c"])
    );
    let lead = id_of(&body[2]);
    assert_eq!(body[2], ok(&lead));
    assert_eq!(
        fake.org().find_by_external_id("Lead", "LEAD-1"),
        vec![lead.clone()]
    );

    let (status, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(
            json!({EXT: "c-1", "LastName": "Bulk", "Email": "bulk@example.com"})
        )]),
    )
    .await;
    assert_eq!(status, 200);
    let id = id_of(&body[0]);
    let csv = client
        .bulk_csv(&format!(
            "SELECT Id, LastName, {EXT} FROM Contact WHERE {EXT} != null"
        ))
        .await;
    assert_eq!(
        csv,
        format!("\"Id\",\"LastName\",\"{EXT}\"\n\"{id}\",\"Bulk\",\"c-1\"\n")
    );
}

#[tokio::test]
async fn later_records_of_a_call_see_the_earlier_ones() {
    let (fake, client) = start(config()).await;
    let (status, body) = create(
        &client,
        false,
        json!([
            contact(json!({EXT: "same", "LastName": "One"})),
            contact(json!({EXT: "SAME", "LastName": "Two"})),
        ]),
    )
    .await;
    assert_eq!(status, 200);
    let first = id_of(&body[0]);
    assert_eq!(
        body,
        json!([
            ok(&first),
            failed(
                "DUPLICATE_VALUE",
                &format!(
                    "duplicate value found: {EXT} duplicates value on record with id: {first}"
                ),
                &[]
            ),
        ])
    );
    let (status, body) = delete(&client, &[&first, &first], false).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([
            ok(&first),
            failed("ENTITY_IS_DELETED", "entity is deleted", &[])
        ])
    );
    // A deleted record's external Id is free again.
    let (_, body) = upsert(
        &client,
        "Contact",
        EXT,
        json!([contact(json!({EXT: "same", "LastName": "Three"}))]),
    )
    .await;
    assert_eq!(body[0]["created"], true, "{body}");
    assert_eq!(fake.org().find_by_external_id("Contact", "same").len(), 1);
}
