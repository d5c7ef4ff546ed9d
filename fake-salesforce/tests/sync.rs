//! Mutating a running org (`POST /__admin/mutate`, `Org::mutate`) and what query, queryAll,
//! getUpdated and getDeleted then return.

mod support;

use std::collections::{HashMap, HashSet};

use fake_salesforce::{MutateRequest, OrgConfig};
use serde_json::{Value, json};
use support::{Client, instant, start, strings};

fn small(contacts: u32) -> OrgConfig {
    OrgConfig {
        accounts: 40,
        contacts,
        ..OrgConfig::default()
    }
}

fn set(ids: &[String]) -> HashSet<String> {
    ids.iter().cloned().collect()
}

/// `?start=…&end=…` around `stamp`, `+00:00` offsets URL-encoded.
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

async fn deleted(client: &Client, object: &str, query: &str) -> Value {
    let (status, body) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/{object}/deleted/{query}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn updated(client: &Client, object: &str, query: &str) -> Value {
    let (status, body) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/{object}/updated/{query}"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn mutations_show_in_query_query_all_and_the_replication_resources() {
    let (fake, client) = start(small(300)).await;
    let soql = "SELECT Id, LastName, Title, Email, Engagement_Score__c, AccountId, CreatedDate, \
                LastModifiedDate, SystemModstamp, IsDeleted FROM Contact";
    let before: HashMap<String, Value> = client
        .records("queryAll", soql)
        .await
        .into_iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), Value::Object(r)))
        .collect();
    let newest_generated = before
        .values()
        .map(|r| instant(r["SystemModstamp"].as_str().unwrap()))
        .max()
        .unwrap();

    let m = client
        .mutate(
            json!({"object": "Contact", "update": 20, "delete": 10, "purge": 5,
                       "create": 7, "vanish": 3}),
        )
        .await;
    let [up, del, purged, created, vanished] =
        ["updated", "deleted", "purged", "created", "vanished"].map(|k| strings(&m[k]));
    assert_eq!(
        [
            up.len(),
            del.len(),
            purged.len(),
            created.len(),
            vanished.len()
        ],
        [20, 10, 5, 7, 3]
    );
    let all: HashSet<&String> = up
        .iter()
        .chain(&del)
        .chain(&purged)
        .chain(&created)
        .chain(&vanished)
        .collect();
    assert_eq!(all.len(), 45, "categories share no record");
    let stamp = m["systemModstamp"].as_str().unwrap().to_owned();
    assert!(stamp.ends_with(".000+0000"), "{stamp}");
    assert!(instant(&stamp) > newest_generated);
    for id in &created {
        assert!(!before.contains_key(id));
        assert!(id.starts_with("003"));
    }

    let query = set(&client.ids("query", "Contact").await);
    let query_all: HashMap<String, Value> = client
        .records("queryAll", soql)
        .await
        .into_iter()
        .map(|r| (r["Id"].as_str().unwrap().to_owned(), Value::Object(r)))
        .collect();
    assert_eq!(query.len(), 300 - 10 - 5 - 3 + 7);
    assert_eq!(query_all.len(), 300 - 5 - 3 + 7);
    assert_eq!(fake.org().count("Contact"), query_all.len());
    for id in &up {
        let (old, new) = (&before[id], &query_all[id]);
        assert!(query.contains(id));
        assert_eq!(new["SystemModstamp"], stamp.as_str());
        assert_eq!(new["LastModifiedDate"], stamp.as_str());
        assert!(
            instant(&stamp) > instant(old["SystemModstamp"].as_str().unwrap()),
            "{id}"
        );
        assert_eq!(new["CreatedDate"], old["CreatedDate"]);
        assert_ne!(
            (&new["LastName"], &new["Title"], &new["Email"]),
            (&old["LastName"], &old["Title"], &old["Email"])
        );
    }
    for id in &del {
        assert!(!query.contains(id));
        assert_eq!(query_all[id]["IsDeleted"], true);
        assert_eq!(query_all[id]["SystemModstamp"], stamp.as_str());
    }
    for id in purged.iter().chain(&vanished) {
        assert!(!query.contains(id) && !query_all.contains_key(id), "{id}");
        assert!(fake.org().record_json_by_id("Contact", id).is_none());
    }
    let accounts = set(&client.ids("query", "Account").await);
    for id in &created {
        let r = &query_all[id];
        assert!(query.contains(id));
        assert_eq!(r["IsDeleted"], false);
        for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            assert_eq!(r[f], stamp.as_str(), "{f}");
        }
        assert!(r["AccountId"].is_null() || accounts.contains(r["AccountId"].as_str().unwrap()));
    }
    // Untouched records keep their values.
    for (id, old) in &before {
        if !all.contains(id) {
            assert_eq!(&query_all[id], old);
        }
    }

    // Org::records is what queryAll returns, value for value.
    let org_records: Vec<_> = fake.org().records("Contact").collect();
    assert_eq!(org_records.len(), query_all.len());
    for r in &org_records {
        let id = r["Id"].as_str().unwrap();
        for (k, v) in query_all[id].as_object().unwrap() {
            assert_eq!(&r[k], v, "{id} {k}");
        }
    }

    // getDeleted lists deleted and purged records, never vanished ones; getUpdated lists
    // updated and created ones.
    let d = deleted(&client, "Contact", &window(&stamp, 3600, 3600)).await;
    let listed: HashSet<String> = d["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["deletedDate"], stamp.as_str());
            r["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(listed, set(&del).union(&set(&purged)).cloned().collect());
    assert!(
        instant(d["earliestDateAvailable"].as_str().unwrap()) < instant(&stamp) - 14 * 86_400_000
    );
    let latest = instant(d["latestDateCovered"].as_str().unwrap());
    assert_eq!(latest % 60_000, 0);
    assert!(latest <= instant(&stamp) + 3600 * 1000);
    let u = updated(&client, "Contact", &window(&stamp, 3600, 3600)).await;
    assert_eq!(
        set(&strings(&u["ids"])),
        set(&up).union(&set(&created)).cloned().collect()
    );
    // A window that ends before the mutation sees none of it.
    let early = deleted(&client, "Contact", &window(&stamp, 7200, -3600)).await;
    assert_eq!(early["deletedRecords"], json!([]));

    // Purging takes already deleted records first; vanishing erases their log entries.
    let p = client
        .mutate(json!({"object": "Contact", "purge": 4}))
        .await;
    let repurged = set(&strings(&p["purged"]));
    assert!(repurged.is_subset(&set(&del)), "{repurged:?}");
    assert!(strings(&p["deleted"]).is_empty());
    let stamp2 = p["systemModstamp"].as_str().unwrap();
    assert!(
        instant(stamp2) > instant(&stamp),
        "stamps increase per call"
    );
    let gone = client
        .mutate(json!({"object": "Contact", "vanish": 1000}))
        .await;
    assert_eq!(strings(&gone["vanished"]).len(), query_all.len() - 4);
    assert!(client.ids("queryAll", "Contact").await.is_empty());
    assert_eq!(fake.org().count("Contact"), 0);
    let d = deleted(&client, "Contact", &window(&stamp, 3600, 3600)).await;
    let still: HashSet<String> = d["deletedRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        still,
        set(&purged).union(&repurged).cloned().collect(),
        "only purged records stay in the delete log"
    );
}

#[tokio::test]
async fn modstamps_are_shared_within_a_call_and_can_be_reused() {
    let (fake, client) = start(small(200)).await;
    let org = fake.org();
    let a = org.mutate(MutateRequest {
        update: 30,
        create: 5,
        ..MutateRequest::new("Contact")
    });
    let b = org.mutate(MutateRequest {
        update: 30,
        ..MutateRequest::new("Account")
    });
    assert!(b.system_modstamp_millis >= a.system_modstamp_millis + 1000);
    let c = org.mutate(MutateRequest {
        update: 50,
        delete: 5,
        same_modstamp: true,
        ..MutateRequest::new("Contact")
    });
    assert_eq!(c.system_modstamp, b.system_modstamp);
    let stamps: HashSet<String> = client
        .records("queryAll", "SELECT Id, SystemModstamp FROM Contact")
        .await
        .into_iter()
        .filter(|r| {
            let id = r["Id"].as_str().unwrap().to_owned();
            c.updated.contains(&id) || c.deleted.contains(&id)
        })
        .map(|r| r["SystemModstamp"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(stamps, HashSet::from([c.system_modstamp.clone()]));
    // Same org config and the same calls choose the same records.
    let again = fake_salesforce::Org::new(small(200));
    let a2 = again.mutate(MutateRequest {
        update: 30,
        create: 5,
        ..MutateRequest::new("Contact")
    });
    assert_eq!((a2.updated, a2.created), (a.updated, a.created));
    // Updated accounts show through the Contact → Account relationship.
    let renamed = &b.updated[0];
    let names: Vec<Value> = client
        .records(
            "query",
            &format!("SELECT Account.Name FROM Contact WHERE AccountId = '{renamed}'"),
        )
        .await
        .into_iter()
        .map(|r| r["Account"]["Name"].clone())
        .collect();
    let want = org.record_json_by_id("Account", renamed).unwrap()["Name"].clone();
    assert!(names.iter().all(|n| *n == want), "{names:?} vs {want}");
}

#[tokio::test]
async fn replication_windows_are_validated() {
    let (_fake, client) = start(small(10)).await;
    let now = client
        .mutate(json!({"object": "Contact", "update": 1}))
        .await["systemModstamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases = [
        ("updated", window(&now, 0, -120), "INVALID_REPLICATION_DATE"),
        ("deleted", window(&now, 0, -120), "INVALID_REPLICATION_DATE"),
        (
            "deleted",
            window(&now, 31 * 86_400, 0),
            "INVALID_REPLICATION_DATE",
        ),
        (
            "updated",
            window(&now, 40 * 86_400, -20 * 86_400),
            "INVALID_REPLICATION_DATE",
        ),
        (
            "updated",
            "?start=yesterday&end=today".to_owned(),
            "INVALID_REPLICATION_DATE",
        ),
        (
            "deleted",
            "?start=2024-01-01T00:00:00Z".to_owned(),
            "MISSING_ARGUMENT",
        ),
    ];
    for (resource, query, code) in cases {
        let (status, body) = client
            .get_json(&format!(
                "/services/data/v62.0/sobjects/Contact/{resource}/{query}"
            ))
            .await;
        assert_eq!(
            (status, body[0]["errorCode"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    // `Z`, `+0000` and unencoded `+00:00` (a space after decoding) all parse.
    let t = instant(&now);
    let mut start = String::new();
    fake_salesforce::calendar::write_datetime(&mut start, t - 60_000);
    let mut end = String::new();
    fake_salesforce::calendar::write_datetime(&mut end, t + 120_000);
    for (s, e) in [
        (start.replace("+0000", "Z"), end.replace("+0000", "Z")),
        (start.replace('+', "%2B"), end.replace('+', "%2B")),
        (
            start.replace(".000+0000", "+00:00"),
            end.replace(".000+0000", "+00:00"),
        ),
    ] {
        let u = updated(&client, "contact", &format!("?start={s}&end={e}")).await;
        assert_eq!(strings(&u["ids"]).len(), 1, "{s}");
    }
    let (status, _) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/Nope/updated/{}",
            window(&now, 60, 60)
        ))
        .await;
    assert_eq!(status, 404);
    let r = client
        .http
        .post(format!("{}/__admin/mutate", client.base))
        .json(&json!({"object": "Nope", "update": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client
        .http
        .post(format!("{}/__admin/mutate", client.base))
        .json(&json!({"object": "Contact", "updates": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "unknown keys are refused");
}
