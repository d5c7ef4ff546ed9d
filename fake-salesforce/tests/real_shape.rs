//! The real shape (`--shape real`): the objects, describes and records of a production org,
//! compared with the recordings in `fixtures/` (see fixtures/SOURCES.md).

mod support;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use fake_salesforce::{Org, OrgConfig};
use serde_json::{Map, Value, json};
use support::{Client, real, start};

const OBJECTS: [&str; 9] = [
    "Account",
    "Contact",
    "Lead",
    "Wide__c",
    "AccountHistory",
    "UserLogin",
    "LoginHistory",
    "CaseStatus",
    "ContentDocumentLink",
];

fn fixture(name: &str) -> Value {
    let text = match name {
        "account" => include_str!("../fixtures/Account.personaccounts.describe.json"),
        "contact" => include_str!("../fixtures/Contact.describe.json"),
        "global" => include_str!("../fixtures/sobjects.global-describe.json"),
        "many-fields" => include_str!("../fixtures/query.Account.many-fields.json"),
        "count" => include_str!("../fixtures/query.COUNT.Account.json"),
        "invalid-type" => include_str!("../fixtures/error.400.INVALID_TYPE.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

async fn describe(client: &Client, object: &str) -> Value {
    let (status, body) = client
        .get_json(&format!("/services/data/v62.0/sobjects/{object}/describe"))
        .await;
    assert_eq!(status, 200, "{object}: {body}");
    body
}

#[tokio::test]
async fn the_global_describe_lists_every_served_object_in_the_recorded_shape() {
    let (_fake, client) = start(real(1, 1, &[])).await;
    let (status, global) = client.get_json("/services/data/v62.0/sobjects").await;
    assert_eq!(status, 200);
    let recorded = fixture("global");
    assert_eq!(global["encoding"], recorded["encoding"]);
    assert_eq!(global["maxBatchSize"], recorded["maxBatchSize"]);
    let entries = global["sobjects"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, OBJECTS);
    let shape = keys(&recorded["sobjects"][0]);
    for e in entries {
        assert_eq!(keys(e), shape, "{}", e["name"]);
        assert_eq!(e["queryable"], true);
        let name = e["name"].as_str().unwrap();
        assert_eq!(
            e["urls"]["describe"],
            format!("/services/data/v62.0/sobjects/{name}/describe")
        );
        let replicateable = !matches!(
            name,
            "UserLogin" | "LoginHistory" | "CaseStatus" | "ContentDocumentLink"
        );
        assert_eq!(e["replicateable"], replicateable, "{name}");
    }
    // Recorded entries are served as recorded (key prefixes filled in where trimmed).
    let user_login = recorded["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "UserLogin")
        .unwrap();
    let served = entries.iter().find(|e| e["name"] == "UserLogin").unwrap();
    for key in [
        "label",
        "createable",
        "replicateable",
        "keyPrefix",
        "layoutable",
    ] {
        assert_eq!(served[key], user_login[key], "{key}");
    }
}

#[tokio::test]
async fn describes_come_from_the_recordings_and_generated_ones_share_their_shape() {
    let (_fake, client) = start(real(1, 1, &[])).await;
    let account = describe(&client, "account").await;
    let recorded = fixture("account");
    assert_eq!(account["fields"], recorded["fields"]);
    assert_eq!(account["fields"].as_array().unwrap().len(), 250);
    assert_eq!(
        account["urls"]["describe"],
        "/services/data/v62.0/sobjects/Account/describe"
    );
    // As recorded, but under the version the request used.
    let record_types = |d: &Value| -> Vec<Value> {
        d["recordTypeInfos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["recordTypeId"].clone())
            .collect()
    };
    assert_eq!(record_types(&account), record_types(&recorded));
    assert!(
        account["recordTypeInfos"][0]["urls"]["layout"]
            .as_str()
            .unwrap()
            .starts_with("/services/data/v62.0/")
    );
    let fields = account["fields"].as_array().unwrap();
    assert_eq!(
        fields.iter().filter(|f| f["calculated"] == true).count(),
        16
    );
    assert_eq!(fields.iter().filter(|f| f["type"] == "address").count(), 4);
    assert!(
        fields
            .iter()
            .any(|f| f["name"].as_str().unwrap().ends_with("__pc"))
    );

    let contact = describe(&client, "Contact").await;
    let contact_fields = contact["fields"].as_array().unwrap();
    assert_eq!(contact_fields.len(), 61);
    let recorded_contact = fixture("contact");
    assert_eq!(
        contact_fields[..59],
        recorded_contact["fields"].as_array().unwrap()[..]
    );
    let score = &contact_fields[60];
    assert_eq!(score["name"], "Engagement_Score__c");
    assert_eq!(
        (&score["type"], &score["custom"], &score["scale"]),
        (&json!("double"), &json!(true), &json!(2))
    );

    let field_shape = keys(&recorded["fields"][0]);
    let object_shape = keys(&recorded);
    for object in &OBJECTS[3..] {
        let d = describe(&client, object).await;
        assert_eq!(d["name"], *object);
        let mut top = keys(&d);
        top.insert("fields".to_owned());
        assert_eq!(top, object_shape, "{object}");
        for f in d["fields"].as_array().unwrap() {
            assert_eq!(keys(f), field_shape, "{object}.{}", f["name"]);
        }
    }
    let wide = describe(&client, "Wide__c").await;
    let wide_fields = wide["fields"].as_array().unwrap();
    assert_eq!(wide_fields.len(), 735);
    assert_eq!(wide["custom"], true);
    let types: HashSet<&str> = wide_fields
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    for t in [
        "string",
        "textarea",
        "picklist",
        "multipicklist",
        "email",
        "phone",
        "url",
        "currency",
        "double",
        "percent",
        "date",
        "datetime",
        "boolean",
        "reference",
        "location",
    ] {
        assert!(types.contains(t), "Wide__c has no {t} field");
    }
    let history = describe(&client, "AccountHistory").await;
    let names: Vec<&str> = history["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"CreatedDate"));
    assert!(!names.contains(&"SystemModstamp") && !names.contains(&"LastModifiedDate"));
}

/// Checks a REST value against its describe entry.
fn check_value(object: &str, field: &Value, value: &Value, served: &[&str]) {
    let name = field["name"].as_str().unwrap();
    let what = format!("{object}.{name} = {value}");
    if value.is_null() {
        return;
    }
    let picklist: Vec<&str> = field["picklistValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_str().unwrap())
        .collect();
    match field["type"].as_str().unwrap() {
        "id" => assert_eq!(value.as_str().unwrap().len(), 18, "{what}"),
        "reference" => {
            let id = value.as_str().unwrap();
            assert_eq!(id.len(), 18, "{what}");
            let targets: Vec<&str> = field["referenceTo"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            if let Some(t) = targets.iter().find(|t| served.contains(t)) {
                let prefix = match *t {
                    "Account" => "001",
                    "Contact" => "003",
                    "Lead" => "00Q",
                    other => panic!("unexpected target {other}"),
                };
                assert!(id.starts_with(prefix), "{what}");
            }
        }
        "picklist" => assert!(picklist.contains(&value.as_str().unwrap()), "{what}"),
        "multipicklist" => {
            for part in value.as_str().unwrap().split(';') {
                assert!(picklist.contains(&part), "{what}");
            }
        }
        "email" => assert!(value.as_str().unwrap().contains('@'), "{what}"),
        "string" | "textarea" | "phone" | "url" | "anyType" => {
            let length = field["length"].as_u64().unwrap();
            let s = value.as_str().unwrap();
            assert!(length == 0 || s.chars().count() as u64 <= length, "{what}");
        }
        "currency" | "double" | "percent" => assert!(value.is_number(), "{what}"),
        "int" => assert!(value.is_i64(), "{what}"),
        "boolean" => assert!(value.is_boolean(), "{what}"),
        "date" => assert_eq!(value.as_str().unwrap().len(), 10, "{what}"),
        "datetime" => assert!(value.as_str().unwrap().ends_with(".000+0000"), "{what}"),
        "address" => assert_eq!(
            keys(value),
            [
                "city",
                "country",
                "geocodeAccuracy",
                "latitude",
                "longitude",
                "postalCode",
                "state",
                "street"
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            "{what}"
        ),
        "location" => assert_eq!(
            keys(value),
            ["latitude", "longitude"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            "{what}"
        ),
        other => panic!("{what}: unexpected type {other}"),
    }
}

#[tokio::test]
async fn records_fill_every_field_type_and_references_resolve() {
    let config = real(
        60,
        150,
        &[
            ("Lead", 80),
            ("Wide__c", 40),
            ("AccountHistory", 60),
            ("UserLogin", 10),
            ("LoginHistory", 10),
            ("CaseStatus", 4),
            ("ContentDocumentLink", 30),
        ],
    );
    let (_fake, client) = start(config.clone()).await;
    let org = Org::new(config);
    let accounts: HashSet<String> = org
        .records("Account")
        .map(|r| r["Id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accounts.len(), 60);
    for object in OBJECTS {
        let d = describe(&client, object).await;
        let fields = d["fields"].as_array().unwrap();
        let mut non_null = vec![false; fields.len()];
        let records: Vec<Map<String, Value>> = org.records(object).collect();
        assert!(!records.is_empty(), "{object}");
        for r in &records {
            assert_eq!(
                r.len(),
                fields.len(),
                "{object}: every field, nulls included"
            );
            for (i, f) in fields.iter().enumerate() {
                let v = &r[f["name"].as_str().unwrap()];
                check_value(object, f, v, &["Account", "Contact", "Lead"]);
                non_null[i] |= !v.is_null();
            }
        }
        let filled = non_null.iter().filter(|&&b| b).count();
        assert!(
            filled * 10 >= fields.len() * 6,
            "{object}: only {filled} of {} fields ever hold a value",
            fields.len()
        );
    }
    // Every reference to a served object names a record of it.
    for r in org.records("Contact") {
        if let Some(id) = r["AccountId"].as_str() {
            assert!(accounts.contains(id), "{id}");
        }
    }
    for r in org.records("AccountHistory") {
        assert!(accounts.contains(r["AccountId"].as_str().unwrap()));
    }
    for r in org.records("ContentDocumentLink") {
        assert!(accounts.contains(r["LinkedEntityId"].as_str().unwrap()));
        assert!(r["ContentDocumentId"].as_str().unwrap().starts_with("069"));
    }
}

#[tokio::test]
async fn compound_fields_nest_beside_their_components() {
    let (_fake, client) = start(real(300, 1, &[("Wide__c", 100)])).await;
    let soql = "SELECT Id, BillingAddress, BillingStreet, BillingCity, BillingState, \
                BillingPostalCode, BillingCountry, BillingLatitude, BillingLongitude, \
                BillingGeocodeAccuracy, ShippingAddress, ShippingCity, ShippingStreet FROM Account";
    let (status, page) = client.query_json(soql).await;
    assert_eq!(status, 200);
    let mut null_shipping = 0;
    for r in page["records"].as_array().unwrap() {
        let a = &r["BillingAddress"];
        if a.is_null() {
            for c in [
                "BillingStreet",
                "BillingCity",
                "BillingCountry",
                "BillingLatitude",
            ] {
                assert!(r[c].is_null());
            }
            continue;
        }
        for (key, component) in [
            ("street", "BillingStreet"),
            ("city", "BillingCity"),
            ("state", "BillingState"),
            ("postalCode", "BillingPostalCode"),
            ("country", "BillingCountry"),
            ("latitude", "BillingLatitude"),
            ("longitude", "BillingLongitude"),
            ("geocodeAccuracy", "BillingGeocodeAccuracy"),
        ] {
            assert_eq!(a[key], r[component], "{key} of {}", r["Id"]);
        }
        // Geocoded addresses have both coordinates and an accuracy, or none.
        assert_eq!(a["latitude"].is_null(), a["longitude"].is_null());
        assert_eq!(a["latitude"].is_null(), a["geocodeAccuracy"].is_null());
        if r["ShippingAddress"].is_null() {
            null_shipping += 1;
            assert!(r["ShippingCity"].is_null() && r["ShippingStreet"].is_null());
        }
    }
    assert!(null_shipping > 0, "some address is empty, and then null");
    let (status, page) = client
        .query_json("SELECT Id, Site_Location__c, Site_Location__Latitude__s FROM Wide__c")
        .await;
    assert_eq!(status, 200);
    let located = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["Site_Location__c"].is_null())
        .inspect(|r| {
            assert_eq!(
                r["Site_Location__c"]["latitude"],
                r["Site_Location__Latitude__s"]
            )
        })
        .count();
    assert!(located > 0);
}

#[tokio::test]
async fn same_seed_same_bytes_and_counts_follow_the_configuration() {
    let config = real(20, 30, &[("Wide__c", 25), ("Lead", 7)]);
    let soql = "SELECT Id, Name, Strategic_Revenue_015__c, Annual_Score_016__c, Site_Location__c \
                FROM Wide__c";
    let mut bodies = Vec::new();
    for seed in [1, 1, 2] {
        let (_fake, client) = start(OrgConfig {
            seed,
            ..config.clone()
        })
        .await;
        bodies.push(client.query("query", soql).await.text().await.unwrap());
        let count = |soql: &'static str| {
            let client = &client;
            async move { client.query_json(soql).await.1["totalSize"].clone() }
        };
        assert_eq!(count("SELECT COUNT() FROM Wide__c").await, 25);
        assert_eq!(count("SELECT COUNT() FROM Lead").await, 7);
        assert_eq!(count("SELECT COUNT() FROM Account").await, 20);
        assert_eq!(count("SELECT COUNT() FROM Contact").await, 30);
        assert_eq!(count("SELECT COUNT() FROM CaseStatus").await, 0);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_ne!(bodies[0], bodies[2]);
    let a = Org::new(config.clone());
    let b = Org::new(config);
    assert!(a.records("Account").eq(b.records("Account")));
}

#[tokio::test]
async fn classic_queries_still_run_on_the_real_shape() {
    let (fake, client) = start(real(10, 50, &[])).await;
    let soql = "SELECT Id, AccountId, FirstName, LastName, Email, Phone, Title, Department, \
                MailingStreet, MailingCity, MailingState, MailingPostalCode, MailingCountry, \
                LeadSource, Birthdate, HasOptedOutOfEmail, Description, CreatedDate, \
                LastModifiedDate, SystemModstamp, IsDeleted, Engagement_Score__c, Account.Name \
                FROM Contact WHERE SystemModstamp >= 2023-01-01T00:00:00Z ORDER BY SystemModstamp, Id";
    let (status, page) = client.query_json(soql).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["totalSize"], 50);
    let records = page["records"].as_array().unwrap();
    assert!(records.iter().any(|r| r["Engagement_Score__c"].is_number()));
    assert!(records.iter().any(|r| r["Account"]["Name"].is_string()));
    assert!(records.iter().all(|r| r["HasOptedOutOfEmail"].is_boolean()));
    // Mutations keep working on the recorded objects.
    let m = client
        .mutate(json!({"object": "Contact", "update": 3, "delete": 1, "create": 2}))
        .await;
    assert_eq!(m["updated"].as_array().unwrap().len(), 3);
    assert_eq!(fake.org().count("Contact"), 52);
}

#[tokio::test]
async fn answers_have_the_shape_of_the_recorded_ones() {
    let (_fake, client) = start(real(8, 1, &[])).await;
    // A recorded 42-field page: same keys, same order, same JSON types where both have values.
    let recorded = fixture("many-fields");
    let (status, page) = client.query_json(recorded["_soql"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{page}");
    let want = &recorded["response"]["records"][0];
    let want_keys: Vec<&String> = want.as_object().unwrap().keys().collect();
    let mut typed = BTreeMap::new();
    for r in recorded["response"]["records"].as_array().unwrap() {
        for (k, v) in r.as_object().unwrap() {
            if !v.is_null() {
                typed.insert(k.clone(), json_type(v));
            }
        }
    }
    for r in page["records"].as_array().unwrap() {
        let got: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(got, want_keys);
        for (k, v) in r.as_object().unwrap() {
            if let (false, Some(t)) = (v.is_null(), typed.get(k)) {
                assert_eq!(json_type(v), *t, "{k}");
            }
        }
    }
    // COUNT() and INVALID_TYPE answer as recorded.
    let count = fixture("count");
    let (_, body) = client.query_json(count["_soql"].as_str().unwrap()).await;
    assert_eq!(keys(&body), keys(&count["response"]));
    assert_eq!(body["records"], json!([]));
    let invalid = fixture("invalid-type");
    let (status, body) = client.query_json(invalid["_soql"].as_str().unwrap()).await;
    assert_eq!(status, invalid["_status"]);
    assert_eq!(body, invalid["response"]);
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
