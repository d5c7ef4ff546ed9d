//! What real orgs do to integrations, each with the exact status and body Salesforce sends
//! (the sources are named in the code that answers: `routes/`, `bulk/`,
//! `org/replication.rs`, `soql/parser/`).

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_salesforce::{Faults, Org, OrgConfig};
use serde_json::{Map, Value, json};
use support::{JOBS, assert_same, instant, parse_csv, real, rest_value, start, strings};

fn classic(contacts: u32) -> OrgConfig {
    OrgConfig {
        accounts: 20,
        contacts,
        bulk_job_delay: Duration::from_millis(20),
        ..OrgConfig::default()
    }
}

/// A SOQL error in Salesforce's layout: the line, a caret under byte `pos`, the position,
/// the reason.
fn caret(soql: &str, pos: usize, reason: &str) -> String {
    format!(
        "\n{soql}\n{caret:>width$}\nERROR at Row:1:Column:{col}\n{reason}",
        caret = "^",
        width = pos + 1,
        col = pos + 1
    )
}

fn no_such_column(column: &str, entity: &str) -> String {
    format!(
        "No such column '{column}' on entity '{entity}'. If you are attempting to use a custom \
         field, be sure to append the '__c' after the custom field name. Please reference \
         your WSDL or the describe call for the appropriate names."
    )
}

fn error(code: &str, message: &str) -> Value {
    json!([{"errorCode": code, "message": message}])
}

fn datetime(ms: i64) -> String {
    let mut out = String::new();
    fake_salesforce::calendar::write_datetime(&mut out, ms);
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// `?start=…&end=…` for `[from, to)` in epoch millis.
fn window(from: i64, to: i64) -> String {
    let at = |ms| datetime(ms).replace('+', "%2B");
    format!("?start={}&end={}", at(from), at(to))
}

fn floor_minute(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}

async fn body_of(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Behaviour 1.
#[tokio::test]
async fn a_request_line_over_16384_bytes_gets_414() {
    let (fake, client) = start(real(5, 5, &[("Wide__c", 3)])).await;
    let page = "/services/data/v62.0/query?q=";
    let encode =
        |soql: &str| url::form_urlencoded::byte_serialize(soql.as_bytes()).collect::<String>();
    let soql = |padding: usize| {
        format!(
            "SELECT Id FROM Account WHERE Name = '{}'",
            "a".repeat(padding)
        )
    };
    let line = |target: &str| "GET ".len() + target.len() + " HTTP/1.1".len();
    let base = line(&format!("{page}{}", encode(&soql(0))));
    let get = |target: String| {
        let client = &client;
        async move {
            client
                .http
                .get(format!("{}{target}", client.base))
                .bearer_auth(&client.token)
                .send()
                .await
                .unwrap()
        }
    };
    // Exactly 16,384 bytes pass; one more byte does not.
    let fits = format!("{page}{}", encode(&soql(16_384 - base)));
    assert_eq!(line(&fits), 16_384);
    let r = get(fits).await;
    assert_eq!(r.status(), 200);
    let used = fake.org().api_usage();
    let over = format!("{page}{}", encode(&soql(16_385 - base)));
    assert_eq!(line(&over), 16_385);
    let r = get(over).await;
    assert_eq!(r.status(), 414);
    assert_eq!(r.headers()["content-type"], "text/html;charset=iso-8859-1");
    assert!(!r.headers().contains_key("sforce-limit-info"));
    assert_eq!(
        r.text().await.unwrap(),
        "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"
    );
    assert_eq!(
        fake.org().api_usage(),
        used,
        "a refused request line is not counted"
    );

    // The 735-field object's full SELECT does not fit, whatever the client encodes.
    let (_, describe) = client
        .get_json("/services/data/v62.0/sobjects/Wide__c/describe")
        .await;
    let names: Vec<&str> = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let all = format!("SELECT {} FROM Wide__c", names.join(", "));
    assert!(line(&format!("{page}{}", encode(&all))) > 16_384);
    let r = client.query("queryAll", &all).await;
    assert_eq!(r.status(), 414);
    // The Bulk 2.0 job carries the same SOQL in its JSON body: no request-line limit there.
    let csv = client
        .bulk_csv(&all.replace(", Site_Location__c", ""))
        .await;
    assert_eq!(parse_csv(&csv, ',', "\n").len(), 4);

    // --max-request-line 0 lifts the limit.
    let (_open, unlimited) = start(OrgConfig {
        max_request_line: 0,
        ..real(1, 1, &[("Wide__c", 3)])
    })
    .await;
    let r = unlimited.query("queryAll", &all).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["totalSize"], 3);
}

/// Behaviour 2.
#[tokio::test]
async fn bulk_order_by_over_the_limit_fails_like_a_timed_out_job() {
    let (fake, client) = start(classic(300)).await;
    let (status, report) = client
        .admin("faults", json!({"bulk_order_by_limit": 100}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["faults"]["bulk_order_by_limit"], 100);
    let (status, job) = client
        .create_job(json!({"operation": "queryAll", "query": "SELECT Id, LastName FROM Contact ORDER BY SystemModstamp"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(job["state"], "UploadComplete");
    let id = job["id"].as_str().unwrap();
    let info = client.finished_job(id).await;
    assert_eq!(info["state"], "Failed");
    assert_eq!(info["errorMessage"], "Retried more than 15 times");
    assert_eq!(info["retries"], 15);
    assert_eq!(info["numberRecordsProcessed"], 0);
    let (status, body) = body_of(client.get(&format!("{JOBS}/{id}/results")).await).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        error(
            "INVALIDJOBSTATE",
            "Results are available once the job is JobComplete; it is Failed"
        )
    );
    // Without ORDER BY (PK chunking works), or over few enough records, it completes.
    let csv = client.bulk_csv("SELECT Id FROM Contact").await;
    assert_eq!(parse_csv(&csv, ',', "\n").len(), 301);
    let ids: Vec<String> = (0..50)
        .map(|i| fake.org().record_id("Contact", i))
        .collect();
    let few = format!(
        "SELECT Id FROM Contact WHERE Id IN ('{}') ORDER BY LastName",
        ids.join("','")
    );
    let csv = client.bulk_csv(&few).await;
    assert_eq!(parse_csv(&csv, ',', "\n").len(), 51);
    assert_eq!(fake.org().fault_stats().bulk_timeouts, 1);
}

/// Behaviour 3.
#[tokio::test]
async fn query_timeout_until_the_modstamp_window_is_small_enough() {
    let (fake, client) = start(OrgConfig {
        faults: Faults {
            query_timeout_above: Some(700),
            ..Faults::default()
        },
        ..classic(3000)
    })
    .await;
    let timeout = error(
        "QUERY_TIMEOUT",
        "Your query request was running for too long.",
    );
    for soql in [
        "SELECT Id FROM Contact",
        "SELECT COUNT() FROM Contact",
        "SELECT Id FROM Contact WHERE SystemModstamp >= 2023-01-01T00:00:00Z LIMIT 10",
    ] {
        let (status, body) = body_of(client.query("queryAll", soql).await).await;
        assert_eq!((status, &body), (400, &timeout), "{soql}");
    }
    // A client halving its SystemModstamp window gets every record.
    let start_ms = instant("2023-01-01T00:00:00.000+0000");
    let end_ms = instant("2024-01-01T00:00:00.000+0000");
    let mut got = Vec::new();
    let (mut lo, mut span, mut windows) = (start_ms, end_ms - start_ms, 0);
    while lo < end_ms {
        let hi = (lo + span).min(end_ms);
        let soql = format!(
            "SELECT Id, SystemModstamp FROM Contact WHERE SystemModstamp >= {} AND SystemModstamp < {} ORDER BY SystemModstamp, Id",
            datetime(lo).replace(".000+0000", "Z"),
            datetime(hi).replace(".000+0000", "Z")
        );
        let r = client.query("queryAll", &soql).await;
        if r.status() == 400 {
            assert_eq!(r.json::<Value>().await.unwrap(), timeout);
            span /= 2;
            continue;
        }
        assert_eq!(r.status(), 200);
        let page: Value = r.json().await.unwrap();
        assert!(
            page["done"] == true,
            "a window under the limit fits one page"
        );
        got.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["Id"].as_str().unwrap().to_owned()),
        );
        windows += 1;
        lo = hi;
    }
    let mut want: Vec<String> = (0..3000)
        .map(|i| fake.org().record_id("Contact", i))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert!(windows >= 5, "{windows} windows");
    assert!(fake.org().fault_stats().query_timeouts >= 3);
    // Switched off, the whole object comes back at once.
    client.admin("faults", json!({})).await;
    let (status, _) = body_of(
        client
            .query("queryAll", "SELECT COUNT() FROM Contact")
            .await,
    )
    .await;
    assert_eq!(status, 200);
}

/// Behaviour 4.
#[tokio::test]
async fn objects_without_system_modstamp_refuse_it_and_sort_on_their_own_stamps() {
    let config = real(
        50,
        1,
        &[
            ("AccountHistory", 400),
            ("UserLogin", 60),
            ("LoginHistory", 60),
        ],
    );
    let (fake, client) = start(config).await;
    let refused = [
        (
            "SELECT Id, SystemModstamp FROM AccountHistory",
            11,
            "SystemModstamp",
            "AccountHistory",
        ),
        (
            "SELECT Id FROM AccountHistory WHERE SystemModstamp > 2023-06-01T00:00:00Z",
            36,
            "SystemModstamp",
            "AccountHistory",
        ),
        (
            "SELECT Id FROM AccountHistory ORDER BY LastModifiedDate",
            39,
            "LastModifiedDate",
            "AccountHistory",
        ),
        (
            "SELECT Id, SystemModstamp FROM UserLogin",
            11,
            "SystemModstamp",
            "UserLogin",
        ),
        (
            "SELECT Id, CreatedDate FROM LoginHistory",
            11,
            "CreatedDate",
            "LoginHistory",
        ),
    ];
    for (soql, pos, column, entity) in refused {
        let (status, body) = client.query_json(soql).await;
        assert_eq!(status, 400, "{soql}");
        assert_eq!(
            body,
            error(
                "INVALID_FIELD",
                &caret(soql, pos, &no_such_column(column, entity))
            ),
            "{soql}"
        );
    }
    let (lo, hi) = ("2023-03-01T00:00:00Z", "2023-09-01T00:00:00Z");
    for (object, stamp) in [
        ("AccountHistory", "CreatedDate"),
        ("UserLogin", "LastModifiedDate"),
        ("LoginHistory", "LoginTime"),
    ] {
        let soql = format!(
            "SELECT Id, {stamp} FROM {object} WHERE {stamp} >= {lo} AND {stamp} < {hi} ORDER BY {stamp} DESC, Id"
        );
        let (status, page) = client.query_json(&soql).await;
        assert_eq!(status, 200, "{soql}: {page}");
        let got: Vec<&str> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[stamp].as_str().unwrap())
            .collect();
        let mut want: Vec<String> = fake
            .org()
            .records(object)
            .map(|r| r[stamp].as_str().unwrap().to_owned())
            .filter(|s| instant(s) >= instant(lo) && instant(s) < instant(hi))
            .collect();
        want.sort();
        want.reverse();
        assert!(want.len() > 5, "{object}");
        assert_eq!(got, want, "{object}");
    }
}

/// Behaviour 5.
#[tokio::test]
async fn the_bulk_api_refuses_case_status_and_compound_fields() {
    let (_fake, client) = start(real(20, 1, &[("CaseStatus", 4), ("Wide__c", 5)])).await;
    let (status, body) = client
        .create_job(
            json!({"operation": "query", "query": "SELECT Id, MasterLabel FROM CaseStatus"}),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        error(
            "INVALIDENTITY",
            "Entity 'CaseStatus' is not supported by the Bulk API."
        )
    );
    let (status, page) = client
        .query_json("SELECT Id, MasterLabel FROM CaseStatus")
        .await;
    assert_eq!((status, &page["totalSize"]), (200, &json!(4)));

    for soql in [
        "SELECT Id, BillingAddress FROM Account",
        "SELECT Id, Name, ShippingAddress, ShippingCity FROM Account",
        "SELECT Id, Site_Location__c FROM Wide__c",
    ] {
        let (status, body) = client
            .create_job(json!({"operation": "queryAll", "query": soql}))
            .await;
        assert_eq!(status, 400, "{soql}");
        assert_eq!(
            body,
            error(
                "API_ERROR",
                "Selecting compound data not supported in Bulk Query"
            ),
            "{soql}"
        );
    }
    // The components are fine, and match REST.
    let soql = "SELECT Id, BillingStreet, BillingCity, BillingLatitude FROM Account";
    let rows = parse_csv(&client.bulk_csv(soql).await, ',', "\n");
    let rest = client.records("queryAll", soql).await;
    assert_eq!(rows.len(), rest.len() + 1);
    for (row, record) in rows[1..].iter().zip(&rest) {
        for (cell, column) in row.iter().zip(&rows[0]) {
            let column = column.as_deref().unwrap();
            assert_same(column, cell.as_deref(), rest_value(record, column));
        }
    }
}

/// Behaviour 6.
#[tokio::test]
async fn replication_refuses_objects_that_are_not_replicateable() {
    let (_fake, client) = start(real(
        20,
        1,
        &[
            ("UserLogin", 5),
            ("CaseStatus", 4),
            ("AccountHistory", 30),
            ("LoginHistory", 3),
        ],
    ))
    .await;
    let now = now_ms();
    let query = window(now - 86_400_000, now);
    for object in [
        "UserLogin",
        "LoginHistory",
        "CaseStatus",
        "ContentDocumentLink",
    ] {
        for resource in ["updated", "deleted"] {
            let (status, body) = client
                .get_json(&format!(
                    "/services/data/v62.0/sobjects/{object}/{resource}/{query}"
                ))
                .await;
            assert_eq!(status, 400, "{object} {resource}");
            assert_eq!(
                body,
                error(
                    "INVALID_TYPE",
                    &format!("sObject type {object} is not replicable")
                )
            );
        }
    }
    for object in ["Account", "AccountHistory"] {
        for resource in ["updated", "deleted"] {
            let (status, body) = client
                .get_json(&format!(
                    "/services/data/v62.0/sobjects/{object}/{resource}/{query}"
                ))
                .await;
            assert_eq!(status, 200, "{object} {resource}: {body}");
        }
    }
}

/// Behaviour 7.
#[tokio::test]
async fn content_document_link_needs_a_filter_on_its_ids() {
    let (fake, client) = start(real(5, 1, &[("ContentDocumentLink", 60)])).await;
    let restriction = error(
        "MALFORMED_QUERY",
        "Implementation restriction: ContentDocumentLink requires a filter by a single Id on \
         ContentDocumentId or LinkedEntityId using the equals operator or multiple Id's using \
         the IN operator.",
    );
    for soql in [
        "SELECT Id FROM ContentDocumentLink",
        "SELECT Id FROM ContentDocumentLink WHERE ShareType = 'V'",
        "SELECT Id FROM ContentDocumentLink WHERE LinkedEntityId != null",
        "SELECT COUNT() FROM ContentDocumentLink",
    ] {
        let (status, body) = client.query_json(soql).await;
        assert_eq!((status, &body), (400, &restriction), "{soql}");
    }
    let (status, body) = client
        .create_job(json!({"operation": "query", "query": "SELECT Id FROM ContentDocumentLink"}))
        .await;
    assert_eq!((status, &body), (400, &restriction));

    let links: Vec<Map<String, Value>> = fake.org().records("ContentDocumentLink").collect();
    let account = links[0]["LinkedEntityId"].as_str().unwrap();
    let soql = format!(
        "SELECT Id, LinkedEntityId, ContentDocumentId FROM ContentDocumentLink WHERE LinkedEntityId = '{account}'"
    );
    let (status, page) = client.query_json(&soql).await;
    assert_eq!(status, 200, "{page}");
    let want = links
        .iter()
        .filter(|l| l["LinkedEntityId"] == account)
        .count();
    assert_eq!(page["totalSize"], want);
    let documents: Vec<&str> = links[..3]
        .iter()
        .map(|l| l["ContentDocumentId"].as_str().unwrap())
        .collect();
    let soql = format!(
        "SELECT Id FROM ContentDocumentLink WHERE ShareType != null AND ContentDocumentId IN ('{}')",
        documents.join("','")
    );
    let (status, page) = client.query_json(&soql).await;
    assert_eq!(status, 200, "{page}");
    assert!(page["totalSize"].as_u64().unwrap() >= 3);
}

/// Behaviour 8.
#[tokio::test]
async fn nul_characters_sit_in_every_nth_records_text() {
    let config = OrgConfig {
        faults: Faults {
            nul_every: 4,
            ..Faults::default()
        },
        ..classic(40)
    };
    let (fake, client) = start(config.clone()).await;
    let soql = "SELECT Id, Title, Description FROM Contact";
    let raw = client.query("query", soql).await.text().await.unwrap();
    assert!(raw.contains("\\u0000"));
    let page: Value = serde_json::from_str(&raw).unwrap();
    for (i, r) in page["records"].as_array().unwrap().iter().enumerate() {
        for field in ["Title", "Description"] {
            let nul = r[field].as_str().is_some_and(|s| s.contains('\0'));
            assert_eq!(nul, i % 4 == 0, "record {i} {field}: {}", r[field]);
        }
    }
    // Bulk CSV carries the raw byte.
    let csv = client.bulk_csv(soql).await;
    let rows = parse_csv(&csv, ',', "\n");
    let with_nul = rows[1..]
        .iter()
        .filter(|row| row.iter().flatten().any(|c| c.contains('\0')))
        .count();
    assert_eq!(with_nul, 10);
    // Same seed, same NULs; switched off, none.
    let (_twin, twin) = start(config).await;
    assert_eq!(twin.query("query", soql).await.text().await.unwrap(), raw);
    let (_, report) = client.admin("faults", json!({})).await;
    assert!(report["faults"].get("nul_every").is_none());
    let clean = client.query("query", soql).await.text().await.unwrap();
    assert!(!clean.contains("\\u0000"));
    assert!(
        fake.org()
            .records("Contact")
            .all(|r| !r["Title"].to_string().contains("\\u0000"))
    );
}

/// Behaviour 9.
#[tokio::test]
async fn get_deleted_honours_the_id_limit_and_the_delete_log_start() {
    let (_fake, client) = start(classic(200)).await;
    let m = client
        .mutate(json!({"object": "Contact", "delete": 5, "update": 4}))
        .await;
    let stamp = m["systemModstampMillis"].as_i64().unwrap();
    let deleted_path = format!(
        "/services/data/v62.0/sobjects/Contact/deleted/{}",
        window(stamp - 60_000, stamp + 120_000)
    );
    let updated_path = deleted_path.replace("/deleted/", "/updated/");
    let (status, body) = client.get_json(&deleted_path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deletedRecords"].as_array().unwrap().len(), 5);
    // The delete log keeps 15 days: earliestDateAvailable is 15 days ago, to the minute.
    let earliest = instant(body["earliestDateAvailable"].as_str().unwrap());
    assert_eq!(earliest % 60_000, 0);
    assert!((now_ms() - 15 * 86_400_000 - earliest).abs() < 120_000);

    client
        .admin("faults", json!({"replication_id_limit": 3}))
        .await;
    let (status, body) = client.get_json(&deleted_path).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        error(
            "EXCEEDED_ID_LIMIT",
            "5 records match; the limit is 3: use a smaller time window"
        )
    );
    let (status, body) = client.get_json(&updated_path).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        error(
            "EXCEEDED_ID_LIMIT",
            "4 records match; the limit is 3: use a smaller time window"
        )
    );

    // The delete log was trimmed after the deletions: the window starts before what it still
    // holds, and they are gone from the answer.
    let trimmed = stamp + 60_000;
    let (status, report) = client
        .admin("faults", json!({"delete_log_start": datetime(trimmed)}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(report["faults"]["delete_log_start"], datetime(trimmed));
    let (status, body) = client.get_json(&deleted_path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["deletedRecords"], json!([]));
    assert_eq!(
        body["earliestDateAvailable"],
        datetime(floor_minute(trimmed))
    );
    assert!(floor_minute(trimmed) > stamp - 60_000);
    // Trimmed before them: they are back.
    client
        .admin(
            "faults",
            json!({"delete_log_start": datetime(stamp - 3_600_000)}),
        )
        .await;
    let (_, body) = client.get_json(&deleted_path).await;
    assert_eq!(body["deletedRecords"].as_array().unwrap().len(), 5);
    assert_eq!(
        body["earliestDateAvailable"],
        datetime(floor_minute(stamp - 3_600_000))
    );
    let (status, body) = client
        .admin("faults", json!({"delete_log_start": "yesterday"}))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// Behaviour 10.
#[tokio::test]
async fn formula_fields_change_without_a_new_system_modstamp() {
    let (_fake, client) = start(real(200, 1, &[])).await;
    let (_, describe) = client
        .get_json("/services/data/v62.0/sobjects/Account/describe")
        .await;
    let formulas: Vec<String> = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["calculated"] == true)
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(formulas.len(), 16);
    let soql = format!(
        "SELECT Id, SystemModstamp, LastModifiedDate, {} FROM Account",
        formulas.join(", ")
    );
    let by_id = |records: Vec<Map<String, Value>>| -> HashMap<String, Map<String, Value>> {
        records
            .into_iter()
            .map(|r| (r["Id"].as_str().unwrap().to_owned(), r))
            .collect()
    };
    let before = by_id(client.records("queryAll", &soql).await);
    let m = client
        .mutate(json!({"object": "Account", "formula": 10}))
        .await;
    let changed: HashSet<String> = strings(&m["formula"]).into_iter().collect();
    assert_eq!(changed.len(), 10);
    assert_eq!(m["updated"], json!([]));
    let after = by_id(client.records("queryAll", &soql).await);
    for (id, record) in &after {
        let old = &before[id];
        for stamp in ["SystemModstamp", "LastModifiedDate"] {
            assert_eq!(record[stamp], old[stamp], "{id} {stamp}");
        }
        for f in &formulas {
            if changed.contains(id) {
                assert_ne!(record[f], old[f], "{id} {f} did not change");
            } else {
                assert_eq!(record[f], old[f], "{id} {f} changed");
            }
        }
    }
    // Bulk returns the new values too.
    let rows = parse_csv(&client.bulk_csv(&soql).await, ',', "\n");
    let header: Vec<String> = rows[0].iter().map(|c| c.clone().unwrap()).collect();
    for row in &rows[1..] {
        let id = row[0].as_deref().unwrap();
        for (cell, column) in row.iter().zip(&header) {
            assert_same(column, cell.as_deref(), rest_value(&after[id], column));
        }
    }
    // getUpdated does not see them: SystemModstamp did not move.
    let stamp = m["systemModstampMillis"].as_i64().unwrap();
    let (status, body) = client
        .get_json(&format!(
            "/services/data/v62.0/sobjects/Account/updated/{}",
            window(stamp - 60_000, stamp + 120_000)
        ))
        .await;
    assert_eq!((status, &body["ids"]), (200, &json!([])));
    // Far more than there are: every record.
    let m = client
        .mutate(json!({"object": "Account", "formula": 1_000_000}))
        .await;
    assert_eq!(m["formula"].as_array().unwrap().len(), 200);
    let again = by_id(client.records("queryAll", &soql).await);
    assert!(
        again
            .iter()
            .all(|(id, r)| r[&formulas[0]] != after[id][&formulas[0]])
    );
    // Objects without formula fields report none.
    let m = client
        .mutate(json!({"object": "Contact", "formula": 5}))
        .await;
    assert!(m.get("formula").is_none(), "{m}");
}

/// Behaviour 11.
#[tokio::test]
async fn fields_appear_and_disappear_for_the_integration_user() {
    let (fake, client) = start(real(5, 80, &[])).await;
    let stamps = |org: &Org| -> Vec<Value> {
        org.records("Contact")
            .map(|r| r["SystemModstamp"].clone())
            .collect()
    };
    let before = stamps(fake.org());
    let (status, body) = client
        .admin(
            "fields",
            json!({"object": "contact", "add": {"name": "Loyalty_Tier__c", "type": "picklist", "values": ["Gold", "Silver"]}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"object": "Contact", "fields": 62, "hidden": []})
    );
    let (_, describe) = client
        .get_json("/services/data/v62.0/sobjects/Contact/describe")
        .await;
    let tier = describe["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Loyalty_Tier__c")
        .unwrap()
        .clone();
    assert_eq!(
        (
            &tier["type"],
            &tier["custom"],
            &tier["picklistValues"][1]["value"]
        ),
        (&json!("picklist"), &json!(true), &json!("Silver"))
    );
    // Existing records hold null; no SystemModstamp moved.
    let page = client
        .records("queryAll", "SELECT Id, Loyalty_Tier__c FROM Contact")
        .await;
    assert!(page.iter().all(|r| r["Loyalty_Tier__c"].is_null()));
    assert_eq!(stamps(fake.org()), before);
    // New records get values.
    let created = client
        .mutate(json!({"object": "Contact", "create": 30}))
        .await;
    let tiers: Vec<Value> = strings(&created["created"])
        .iter()
        .map(|id| fake.org().record_json_by_id("Contact", id).unwrap()["Loyalty_Tier__c"].clone())
        .collect();
    assert!(
        tiers.iter().any(|t| t == "Gold" || t == "Silver"),
        "{tiers:?}"
    );
    // A backfilled field has values on existing records too.
    let (status, _) = client
        .admin(
            "fields",
            json!({"object": "Contact", "add": {"name": "Backfilled__c", "type": "double", "existing": "generated"}}),
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        fake.org()
            .records("Contact")
            .any(|r| r["Backfilled__c"].is_number())
    );

    // Hidden by field-level security: gone from describe, refused by SOQL and Bulk.
    let (status, body) = client
        .admin("fields", json!({"object": "Contact", "hide": ["Email"]}))
        .await;
    assert_eq!((status, &body["hidden"]), (200, &json!(["Email"])));
    let (_, describe) = client
        .get_json("/services/data/v62.0/sobjects/Contact/describe")
        .await;
    assert!(
        describe["fields"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["name"] != "Email")
    );
    let soql = "SELECT Id, Email FROM Contact";
    let refused = error(
        "INVALID_FIELD",
        &caret(soql, 11, &no_such_column("Email", "Contact")),
    );
    let (status, body) = client.query_json(soql).await;
    assert_eq!((status, &body), (400, &refused));
    let (status, body) = client
        .create_job(json!({"operation": "query", "query": soql}))
        .await;
    assert_eq!((status, &body), (400, &refused));
    assert!(
        fake.org()
            .records("Contact")
            .all(|r| !r.contains_key("Email"))
    );
    // Required fields cannot be hidden; shown again, Email answers.
    let (status, body) = client
        .admin("fields", json!({"object": "Contact", "hide": ["LastName"]}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = client
        .admin("fields", json!({"object": "Contact", "show": ["Email"]}))
        .await;
    assert_eq!((status, &body["hidden"]), (200, &json!([])));
    let (status, _) = client.query_json(soql).await;
    assert_eq!(status, 200);
    assert_eq!(stamps(fake.org())[..80], before[..]);
}

/// Fields come and go in the classic shape too, and a Bulk job opened before keeps them.
#[tokio::test]
async fn classic_objects_take_field_changes_and_open_cursors_keep_theirs() {
    let (_fake, client) = start(classic(500)).await;
    let r = client
        .http
        .get(format!("{}/services/data/v62.0/query", client.base))
        .query(&[("q", "SELECT Id, Email FROM Contact")])
        .header("Sforce-Query-Options", "batchSize=200")
        .bearer_auth(&client.token)
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    let next = page["nextRecordsUrl"].as_str().unwrap().to_owned();
    let (status, _) = client
        .admin("fields", json!({"object": "Contact", "hide": ["Email"]}))
        .await;
    assert_eq!(status, 200);
    let (_, more) = client.get_json(&next).await;
    assert!(
        more["records"][0].get("Email").is_some(),
        "the cursor resolved Email before"
    );
    let (_, describe) = client
        .get_json("/services/data/v62.0/sobjects/Contact/describe")
        .await;
    assert_eq!(describe["fields"].as_array().unwrap().len(), 21);
    let (status, body) = client
        .admin("fields", json!({"object": "Nope", "hide": ["Email"]}))
        .await;
    assert_eq!(status, 400, "{body}");
}

/// The mutate hook refuses what the object cannot do.
#[tokio::test]
async fn objects_without_is_deleted_can_only_vanish() {
    let (_fake, client) = start(real(1, 1, &[("UserLogin", 10)])).await;
    let (status, body) = client
        .admin("mutate", json!({"object": "UserLogin", "delete": 1}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body[0]["errorCode"], "INVALID_OPERATION");
    let (status, body) = client
        .admin(
            "mutate",
            json!({"object": "UserLogin", "vanish": 2, "update": 1}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, page) = client.query_json("SELECT COUNT() FROM UserLogin").await;
    assert_eq!(page["totalSize"], 8);
}
