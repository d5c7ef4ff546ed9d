//! Plain objects (`--plain-objects N`): Plain_01__c … Plain_NN__c, ordinary custom objects
//! added to either shape, served like every other object: describe, query, COUNT(),
//! mutations, getUpdated/getDeleted, Bulk 2.0, Composite and sObject Collections.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use fake_salesforce::{OrgConfig, Shape};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, assert_same, instant, parse_csv, real, rest_value, start, strings};

const FIELDS: [&str; 14] = [
    "Id",
    "OwnerId",
    "IsDeleted",
    "Name",
    "CreatedDate",
    "CreatedById",
    "LastModifiedDate",
    "LastModifiedById",
    "SystemModstamp",
    "Status__c",
    "Amount__c",
    "Active__c",
    "Due__c",
    "Notes__c",
];

fn select_all(object: &str) -> String {
    format!("SELECT {} FROM {object}", FIELDS.join(", "))
}

/// The real shape with `n` plain objects of `each` records (through `Plain=each`).
fn plain(n: u32, each: u32) -> OrgConfig {
    OrgConfig {
        plain_objects: n,
        ..real(1, 1, &[("Plain", each)])
    }
}

/// `?start=…&end=…` from `before_s` before `stamp` to `after_s` after it.
fn window(stamp: &str, before_s: i64, after_s: i64) -> String {
    let at = |ms: i64| {
        let mut out = String::new();
        fake_salesforce::calendar::write_datetime(&mut out, ms);
        out.replace(".000+0000", "+00:00").replace('+', "%2B")
    };
    let t = instant(stamp);
    format!(
        "?start={}&end={}",
        at(t - before_s * 1000),
        at(t + after_s * 1000)
    )
}

async fn replication(client: &Client, object: &str, what: &str, query: &str) -> Value {
    let (status, body) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/{object}/{what}/{query}"
        ))
        .await;
    assert_eq!(status, 200, "{object} {what}: {body}");
    body
}

async fn count(client: &Client, soql: &str) -> u64 {
    let (status, body) = client.query_json(soql).await;
    assert_eq!(status, 200, "{soql}: {body}");
    body["totalSize"].as_u64().unwrap()
}

fn ids(records: &[serde_json::Map<String, Value>]) -> BTreeSet<String> {
    records
        .iter()
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(ids: &[String]) -> BTreeSet<String> {
    ids.iter().cloned().collect()
}

#[tokio::test]
async fn ten_plain_objects_are_described_queried_and_mutated() {
    let (fake, client) = start(plain(10, 200)).await;

    // The global describe lists the real shape's nine objects, then the ten plain ones.
    let (status, global) = client.get_json("/services/data/v62.0/sobjects").await;
    assert_eq!(status, 200);
    let entries = global["sobjects"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (1..=10).map(|n| format!("Plain_{n:02}__c")).collect();
    assert_eq!(names.len(), 19);
    assert_eq!(names[9..], expected);
    let wide = entries.iter().find(|e| e["name"] == "Wide__c").unwrap();
    let entry_keys: BTreeSet<&String> = wide.as_object().unwrap().keys().collect();
    let mut prefixes = HashSet::new();
    for e in &entries[9..] {
        let name = e["name"].as_str().unwrap();
        assert_eq!(
            e.as_object().unwrap().keys().collect::<BTreeSet<_>>(),
            entry_keys,
            "{name}"
        );
        for flag in [
            "custom",
            "queryable",
            "replicateable",
            "createable",
            "updateable",
            "deletable",
            "retrieveable",
        ] {
            assert_eq!(e[flag], true, "{name}.{flag}");
        }
        assert_eq!(
            e["urls"]["describe"],
            format!("/services/data/v62.0/sobjects/{name}/describe")
        );
        assert!(prefixes.insert(e["keyPrefix"].as_str().unwrap().to_owned()));
    }
    assert_eq!(entries[9]["keyPrefix"], "a0A");
    assert_eq!(entries[18]["keyPrefix"], "a0J");
    assert_eq!(entries[9]["label"], "Plain 01");

    // Each describe has the fields of an ordinary custom object, in the generated shape.
    let (status, describe) = client
        .get_json("/services/data/v62.0/sobjects/Plain_07__c/describe")
        .await;
    assert_eq!(status, 200, "{describe}");
    assert_eq!(describe["name"], "Plain_07__c");
    assert_eq!(describe["custom"], true);
    assert_eq!(describe["keyPrefix"], "a0G");
    let fields = describe["fields"].as_array().unwrap();
    let field_names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(field_names, FIELDS);
    let field = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap();
    let name = field("Name");
    assert_eq!(
        (
            &name["type"],
            &name["length"],
            &name["nameField"],
            &name["custom"]
        ),
        (&json!("string"), &json!(80), &json!(true), &json!(false))
    );
    assert_eq!(
        (&name["createable"], &name["updateable"]),
        (&json!(true), &json!(true))
    );
    for (custom, ty) in [
        ("Status__c", "picklist"),
        ("Amount__c", "double"),
        ("Active__c", "boolean"),
        ("Due__c", "date"),
        ("Notes__c", "textarea"),
    ] {
        let f = field(custom);
        assert_eq!(f["type"], ty, "{custom}");
        assert_eq!(
            (&f["custom"], &f["createable"], &f["updateable"]),
            (&json!(true), &json!(true), &json!(true)),
            "{custom}"
        );
    }
    assert_eq!(field("Status__c")["picklistValues"][0]["value"], "New");
    assert_eq!(field("Notes__c")["length"], 32768);
    assert_eq!(field("Notes__c")["filterable"], false);
    assert_eq!(field("SystemModstamp")["createable"], false);
    assert_eq!(field("OwnerId")["referenceTo"], json!(["Group", "User"]));
    let (_, wide) = client
        .get_json("/services/data/v62.0/sobjects/Wide__c/describe")
        .await;
    let top_keys =
        |d: &Value| -> BTreeSet<String> { d.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(top_keys(&describe), top_keys(&wide));

    // Query one: every record, every field, across pages.
    let one = client.records("query", &select_all("Plain_01__c")).await;
    assert_eq!(one.len(), 200);
    assert_eq!(ids(&one).len(), 200);
    for r in &one {
        assert!(r["Id"].as_str().unwrap().starts_with("a0A"), "{r:?}");
        assert_eq!(r["IsDeleted"], false);
        assert!(r["Name"].as_str().is_some_and(|n| !n.is_empty()));
        assert!(r["Active__c"].is_boolean());
    }
    assert!(one.iter().any(|r| r["Amount__c"].is_number()));
    assert!(one.iter().any(|r| r["Status__c"].is_string()));
    assert!(one.iter().any(|r| r["Due__c"].is_string()));
    assert_eq!(count(&client, "SELECT COUNT() FROM Plain_01__c").await, 200);
    assert_eq!(
        count(
            &client,
            "SELECT COUNT() FROM Plain_01__c WHERE Active__c = true AND Status__c != null"
        )
        .await,
        one.iter()
            .filter(|r| r["Active__c"] == true && !r["Status__c"].is_null())
            .count() as u64
    );

    // Mutate another: update 5, delete 2, create 3.
    let before = client.records("query", &select_all("Plain_02__c")).await;
    let before: BTreeMap<String, serde_json::Map<String, Value>> = before
        .into_iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), r))
        .collect();
    let m = client
        .mutate(json!({"object": "Plain_02__c", "update": 5, "delete": 2, "create": 3}))
        .await;
    let stamp = m["systemModstamp"].as_str().unwrap().to_owned();
    let (updated, deleted, created) = (
        strings(&m["updated"]),
        strings(&m["deleted"]),
        strings(&m["created"]),
    );
    assert_eq!((updated.len(), deleted.len(), created.len()), (5, 2, 3));
    assert!(created.iter().all(|id| id.starts_with("a0B")));
    assert!(instant(&stamp) >= instant("2024-01-01T00:00:00Z"));

    // A query by SystemModstamp sees the updated and created records, with their new values.
    let since = format!(
        "{} WHERE SystemModstamp >= {} ORDER BY SystemModstamp, Id",
        select_all("Plain_02__c"),
        stamp.replace(".000+0000", "Z")
    );
    let changed = client.records("query", &since).await;
    assert_eq!(
        ids(&changed),
        updated.iter().chain(&created).cloned().collect()
    );
    for r in &changed {
        assert_eq!(r["SystemModstamp"], stamp.as_str());
        assert_eq!(r["LastModifiedDate"], stamp.as_str());
        let id = r["Id"].as_str().unwrap();
        if let Some(old) = before.get(id) {
            assert_ne!(r["Name"], old["Name"], "{id}");
            assert_eq!(r["CreatedDate"], old["CreatedDate"], "{id}");
            assert_eq!(r["Notes__c"], old["Notes__c"], "{id}");
        } else {
            assert_eq!(r["CreatedDate"], stamp.as_str());
        }
    }
    // queryAll adds the deleted ones.
    let all = client.records("queryAll", &since).await;
    let gone: Vec<&serde_json::Map<String, Value>> =
        all.iter().filter(|r| r["IsDeleted"] == true).collect();
    assert_eq!(all.len(), 10);
    assert_eq!(
        ids(&gone.into_iter().cloned().collect::<Vec<_>>()),
        set(&deleted)
    );
    // The newest stamp of the object is the mutation's; other objects did not move.
    let (_, newest) = client
        .query_json(
            "SELECT Id, SystemModstamp FROM Plain_02__c ORDER BY SystemModstamp DESC LIMIT 1",
        )
        .await;
    assert_eq!(newest["records"][0]["SystemModstamp"], stamp.as_str());
    let (_, untouched) = client
        .query_json(
            "SELECT Id, SystemModstamp FROM Plain_01__c ORDER BY SystemModstamp DESC LIMIT 1",
        )
        .await;
    let untouched = untouched["records"][0]["SystemModstamp"].as_str().unwrap();
    assert!(instant(untouched) < instant("2024-01-01T00:00:00Z"));
    assert_eq!(count(&client, "SELECT COUNT() FROM Plain_02__c").await, 201);
    // Org::count counts what queryAll sees: the soft-deleted records too.
    assert_eq!(fake.org().count("Plain_02__c"), 203);

    // getDeleted lists the two deletions at the mutation's stamp; getUpdated the other eight.
    let around = window(&stamp, 60, 120);
    let d = replication(&client, "Plain_02__c", "deleted", &around).await;
    let listed: BTreeSet<String> = d["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(instant(r["deletedDate"].as_str().unwrap()), instant(&stamp));
            r["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, set(&deleted));
    let u = replication(&client, "Plain_02__c", "updated", &around).await;
    assert_eq!(
        set(&strings(&u["ids"])),
        updated.iter().chain(&created).cloned().collect()
    );
    let quiet = replication(&client, "Plain_01__c", "deleted", &around).await;
    assert_eq!(quiet["deletedRecords"], json!([]));
}

#[tokio::test]
async fn plain_objects_serve_bulk_composite_and_writes_in_the_classic_shape() {
    let config = OrgConfig {
        shape: Shape::Classic,
        accounts: 5,
        contacts: 5,
        plain_objects: 3,
        records: [("plain".to_owned(), 50), ("Plain_02__c".to_owned(), 7)]
            .into_iter()
            .collect(),
        bulk_job_delay: std::time::Duration::from_millis(20),
        ..OrgConfig::default()
    };
    let (fake, client) = start(config).await;
    // `Plain` counts every plain object that is not named on its own.
    for (object, n) in [("Plain_01__c", 50), ("Plain_02__c", 7), ("Plain_03__c", 50)] {
        assert_eq!(fake.org().count(object), n, "{object}");
    }
    let (_, global) = client.get_json("/services/data/v62.0/sobjects").await;
    let names: Vec<&str> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Account",
            "Contact",
            "Plain_01__c",
            "Plain_02__c",
            "Plain_03__c"
        ]
    );
    let (status, describe) = client
        .get_json("/services/data/v62.0/sobjects/Plain_03__c/describe")
        .await;
    assert_eq!(status, 200);
    assert_eq!(describe["fields"].as_array().unwrap().len(), FIELDS.len());

    // Bulk 2.0: the same values as REST.
    let soql = format!("{} ORDER BY Id", select_all("Plain_03__c"));
    let rest = client.records("query", &soql).await;
    let csv = client.bulk_csv(&soql).await;
    let rows = parse_csv(&csv, ',', "\n");
    let header: Vec<String> = rows[0].iter().map(|c| c.clone().unwrap()).collect();
    assert_eq!(header, FIELDS);
    assert_eq!(rows.len(), 51);
    for (row, record) in rows[1..].iter().zip(&rest) {
        for (column, cell) in header.iter().zip(row) {
            assert_same(column, cell.as_deref(), rest_value(record, column));
        }
    }

    // Composite: a write and a query subrequest on plain objects.
    let target = rest[0]["Id"].as_str().unwrap().to_owned();
    let query_url = {
        let soql =
            format!("SELECT Id, Status__c, Amount__c FROM Plain_03__c WHERE Id = '{target}'");
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        format!("/services/data/v62.0/query/?q={encoded}")
    };
    let body = json!({"allOrNone": false, "compositeRequest": [
        {"method": "PATCH", "url": "/services/data/v62.0/composite/sobjects", "referenceId": "update",
         "body": {"allOrNone": false, "records": [
             {"attributes": {"type": "Plain_03__c"}, "id": target, "Status__c": "Done", "Amount__c": 12.5}
         ]}},
        {"method": "GET", "url": query_url, "referenceId": "read"},
    ]});
    let r = client
        .send_json(Method::POST, "/services/data/v62.0/composite", &body)
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    let subs = answer["compositeResponse"].as_array().unwrap();
    assert_eq!(subs[0]["httpStatusCode"], 200, "{answer}");
    assert_eq!(subs[0]["body"][0]["success"], true, "{answer}");
    assert_eq!(subs[1]["httpStatusCode"], 200, "{answer}");
    let read = &subs[1]["body"]["records"][0];
    assert_eq!(
        (&read["Status__c"], &read["Amount__c"]),
        (&json!("Done"), &json!(12.5))
    );

    // sObject Collections create: a new record with the next Id, then updates by mutation.
    let r = client
        .send_json(
            Method::POST,
            "/services/data/v62.0/composite/sobjects",
            &json!({"allOrNone": false, "records": [{
                "attributes": {"type": "Plain_01__c"}, "Name": "Made here", "Status__c": "New",
                "Amount__c": 3.25, "Active__c": true, "Due__c": "2024-05-01",
                "Notes__c": "line one\nline two"
            }]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let made: Value = r.json().await.unwrap();
    assert_eq!(made[0]["success"], true, "{made}");
    let id = made[0]["id"].as_str().unwrap();
    assert!(id.starts_with("a0A"));
    let got = client
        .records(
            "query",
            &format!("{} WHERE Id = '{id}'", select_all("Plain_01__c")),
        )
        .await;
    assert_eq!(got[0]["Name"], "Made here");
    assert_eq!(got[0]["Due__c"], "2024-05-01");
    assert_eq!(got[0]["Notes__c"], "line one\nline two");
    assert_eq!(fake.org().count("Plain_01__c"), 51);

    // Mutations that purge and vanish work too.
    let m = client
        .mutate(json!({"object": "Plain_02__c", "purge": 2, "vanish": 1}))
        .await;
    assert_eq!(strings(&m["purged"]).len(), 2);
    assert_eq!(strings(&m["vanished"]).len(), 1);
    assert_eq!(client.ids("queryAll", "Plain_02__c").await.len(), 4);
}

#[test]
fn record_counts_name_plain_objects_one_by_one_or_all_at_once() {
    let config = OrgConfig {
        shape: Shape::Real,
        plain_objects: 2,
        records: [
            ("Plain".to_owned(), 10),
            ("Plain_02__c".to_owned(), 3),
            ("Lead".to_owned(), 4),
        ]
        .into_iter()
        .collect(),
        ..OrgConfig::default()
    };
    assert!(config.unknown_objects().is_empty());
    let schema = config.schema();
    let counts = config.record_counts(&schema);
    let of = |name: &str| counts[schema.object(name).unwrap().index()];
    assert_eq!(
        (
            of("Plain_01__c"),
            of("Plain_02__c"),
            of("Lead"),
            of("Wide__c")
        ),
        (10, 3, 4, 0)
    );
    // Without plain objects, `Plain` and the plain names are unknown.
    let none = OrgConfig {
        plain_objects: 0,
        ..config.clone()
    };
    assert_eq!(none.unknown_objects(), ["Plain", "Plain_02__c"]);
    let fewer = OrgConfig {
        plain_objects: 1,
        ..config
    };
    assert_eq!(fewer.unknown_objects(), ["Plain_02__c"]);
}
