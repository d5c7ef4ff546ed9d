//! End-to-end tests of the fake org over HTTP: auth, paging, SOQL, errors, limits, describe.

use std::collections::HashSet;
use std::time::Duration;

use common::sfid::SalesforceId;
use fake_salesforce::{FakeOrg, MutateRequest, Org, OrgConfig, spawn};
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn query_with(
        &self,
        resource: &str,
        soql: &str,
        batch: Option<u32>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .get(format!("{}/services/data/v62.0/{resource}", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token);
        if let Some(n) = batch {
            req = req.header("Sforce-Query-Options", format!("batchSize={n}"));
        }
        req.send().await.unwrap()
    }

    async fn query(&self, soql: &str) -> Value {
        let r = self.query_with("query", soql, None).await;
        assert_eq!(r.status(), 200, "{soql}");
        r.json().await.unwrap()
    }

    /// Runs a query and follows nextRecordsUrl to the end; returns (pages, records).
    async fn query_all_pages(
        &self,
        resource: &str,
        soql: &str,
        batch: Option<u32>,
    ) -> (Vec<Value>, Vec<Value>) {
        let first = self.query_with(resource, soql, batch).await;
        assert_eq!(first.status(), 200);
        let mut page: Value = first.json().await.unwrap();
        let mut pages = Vec::new();
        let mut records = Vec::new();
        loop {
            records.extend(page["records"].as_array().unwrap().iter().cloned());
            let next = page
                .get("nextRecordsUrl")
                .and_then(Value::as_str)
                .map(str::to_owned);
            pages.push(page);
            let Some(next) = next else { break };
            let r = self.get(&next).await;
            assert_eq!(r.status(), 200, "{next}");
            page = r.json().await.unwrap();
        }
        (pages, records)
    }
}

async fn start(config: OrgConfig) -> (FakeOrg, Client) {
    let fake = spawn(config).await.unwrap();
    let token = fake.org().issue_token();
    let client = Client {
        http: reqwest::Client::new(),
        base: fake.base_url(),
        token,
    };
    (fake, client)
}

fn small(contacts: u32) -> OrgConfig {
    OrgConfig {
        accounts: 40,
        contacts,
        ..OrgConfig::default()
    }
}

fn error_of(body: &Value) -> (&str, &str) {
    (
        body[0]["errorCode"].as_str().unwrap(),
        body[0]["message"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let soql = "SELECT Id, AccountId, FirstName, LastName, Email, Description, Engagement_Score__c, \
                SystemModstamp FROM Contact";
    let (_a, ca) = start(small(300)).await;
    let (_b, cb) = start(small(300)).await;
    let (_c, cc) = start(OrgConfig {
        seed: 2,
        ..small(300)
    })
    .await;
    let mut bodies = Vec::new();
    for client in [&ca, &cb, &cc] {
        bodies.push(
            client
                .query_with("query", soql, None)
                .await
                .text()
                .await
                .unwrap(),
        );
    }
    let [a, b, c] = <[String; 3]>::try_from(bodies).unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);

    let (x, y, z) = (
        Org::new(small(300)),
        Org::new(small(300)),
        Org::new(OrgConfig {
            seed: 2,
            ..small(300)
        }),
    );
    assert!(x.records("Contact").eq(y.records("Contact")));
    assert!(x.records("Account").eq(y.records("Account")));
    let differing = x
        .records("Contact")
        .zip(z.records("Contact"))
        .filter(|(p, q)| p["LastName"] != q["LastName"])
        .count();
    assert!(differing > 150, "only {differing} of 300 last names differ");
}

#[tokio::test]
async fn ids_are_valid_and_every_account_id_resolves() {
    let org = Org::new(small(2000));
    let accounts: HashSet<String> = org
        .records("Account")
        .map(|r| {
            let id = r["Id"].as_str().unwrap().to_owned();
            assert_eq!(SalesforceId::parse(&id).unwrap().as_str(), id);
            assert!(id.starts_with("001"));
            id
        })
        .collect();
    assert_eq!(accounts.len(), 40);
    let mut nulls = 0;
    let mut suffixes = HashSet::new();
    for (i, r) in org.records("Contact").enumerate() {
        let id = r["Id"].as_str().unwrap();
        assert_eq!(SalesforceId::parse(id).unwrap().as_str(), id);
        assert!(id.starts_with("003"));
        assert_eq!(org.record_id("Contact", i), id);
        suffixes.insert(id[15..].to_owned());
        match &r["AccountId"] {
            Value::Null => nulls += 1,
            Value::String(a) => assert!(accounts.contains(a), "{a} is not an Account"),
            other => panic!("AccountId {other}"),
        }
        assert!(r["LastName"].is_string());
        assert_eq!(r.len(), 22, "every field present, nulls included");
    }
    assert!(
        (100..=300).contains(&nulls),
        "{nulls} null AccountIds of 2000"
    );
    assert!(
        suffixes.len() > 3,
        "checksum suffixes should vary: {suffixes:?}"
    );

    let orphan = Org::new(OrgConfig {
        accounts: 0,
        contacts: 200,
        ..OrgConfig::default()
    });
    assert!(orphan.records("Contact").all(|r| r["AccountId"].is_null()));
}

#[tokio::test]
async fn values_use_the_rest_json_forms() {
    let org = Org::new(small(3000));
    let mut seen_description = [false; 5];
    for r in org.records("Contact") {
        for f in ["CreatedDate", "LastModifiedDate", "SystemModstamp"] {
            let s = r[f].as_str().unwrap();
            assert_eq!(s.len(), 28, "{s}");
            assert!(s.ends_with(".000+0000"), "{s}");
        }
        let (c, l, m) = (
            r["CreatedDate"].as_str().unwrap(),
            r["LastModifiedDate"].as_str().unwrap(),
            r["SystemModstamp"].as_str().unwrap(),
        );
        assert!(c <= l && l <= m, "{c} {l} {m}");
        assert!(("2023-01-01".."2024-01-02").contains(&m), "{m}");
        assert_eq!(r["IsDeleted"], json!(false));
        if let Some(d) = r["Birthdate"].as_str() {
            assert_eq!(d.len(), 10);
        }
        match r["Description"].as_str() {
            None => seen_description[0] = true,
            Some(d) => {
                seen_description[1] |= d.contains('\n');
                seen_description[2] |= d.contains('"');
                seen_description[3] |= d.contains('\\');
                seen_description[4] |= d.contains("北京") && d.contains("Zürich");
            }
        }
    }
    assert_eq!(seen_description, [true; 5]);
    // Stamps tie sometimes, so windowed sync must page through equal values.
    let stamps: Vec<_> = org
        .records("Contact")
        .map(|r| r["SystemModstamp"].clone())
        .collect();
    let distinct: HashSet<_> = stamps.iter().map(Value::to_string).collect();
    assert!(distinct.len() < stamps.len());

    // Large currency values come out in Java's scientific notation, small ones plain.
    let (_fake, client) = start(small(10)).await;
    let raw = client
        .query_with(
            "query",
            "SELECT AnnualRevenue, NumberOfEmployees FROM Account",
            None,
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(raw.contains("E7,") || raw.contains("E8,"), "{raw}");
    assert!(raw.contains(".0,"), "{raw}");
}

#[tokio::test]
async fn pages_cover_every_record_once_in_order() {
    let (fake, client) = start(small(2500)).await;
    let (pages, records) = client
        .query_all_pages("query", "SELECT Id, Email FROM Contact", Some(1000))
        .await;
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p["records"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1000, 1000, 500]);
    for p in &pages {
        assert_eq!(p["totalSize"], 2500);
    }
    assert_eq!(pages[0]["done"], false);
    let last = pages.last().unwrap();
    assert_eq!(last["done"], true);
    assert!(last.get("nextRecordsUrl").is_none());
    let ids: Vec<&str> = records.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    let want: Vec<String> = (0..2500)
        .map(|i| fake.org().record_id("Contact", i))
        .collect();
    assert_eq!(ids, want);
    let first = &records[0];
    assert_eq!(first["attributes"]["type"], "Contact");
    assert_eq!(
        first["attributes"]["url"],
        format!("/services/data/v62.0/sobjects/Contact/{}", want[0])
    );
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);

    // Locators are re-fetchable and answer under /queryAll/ as well.
    let next = pages[0]["nextRecordsUrl"].as_str().unwrap();
    assert!(next.starts_with("/services/data/v62.0/query/01g"));
    assert!(next.ends_with("-1000"));
    let again: Value = client.get(next).await.json().await.unwrap();
    assert_eq!(again, pages[1]);
    let via_all: Value = client
        .get(&next.replace("/query/", "/queryAll/"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(via_all, pages[1]);
}

#[tokio::test]
async fn batch_size_is_clamped() {
    let (_fake, client) = start(small(1000)).await;
    let r: Value = client
        .query_with("query", "SELECT Id FROM Contact", Some(50))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["records"].as_array().unwrap().len(), 200);
    let r: Value = client
        .query_with("query", "SELECT Id FROM Contact", Some(5000))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["records"].as_array().unwrap().len(), 1000);
    assert_eq!(r["done"], true);
    let r: Value = client
        .query_with("query", "SELECT Id FROM Contact", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["done"], true);
}

#[tokio::test]
async fn modstamp_window_returns_exactly_the_matching_records_sorted() {
    let (fake, client) = start(small(3000)).await;
    let (lo, hi) = (
        "2023-03-01T00:00:00.000+0000",
        "2023-05-01T00:00:00.000+0000",
    );
    let mut want: Vec<(String, String)> = fake
        .org()
        .records("Contact")
        .map(|r| {
            (
                r["SystemModstamp"].as_str().unwrap().to_owned(),
                r["Id"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(m, _)| m.as_str() >= lo && m.as_str() < hi)
        .collect();
    want.sort();
    assert!(want.len() > 300);
    for (lo_lit, hi_lit) in [
        ("2023-03-01T00:00:00Z", "2023-05-01T00:00:00Z"),
        ("2023-03-01T00:00:00.000+0000", "2023-05-01T02:00:00+02:00"),
        ("2023-02-28T19:00:00-05:00", "2023-05-01T00:00:00.000Z"),
    ] {
        let soql = format!(
            "select id, systemmodstamp from contact where SystemModstamp >= {lo_lit} and SystemModstamp < {hi_lit} \
             order by SystemModstamp, Id"
        );
        let (pages, records) = client.query_all_pages("queryAll", &soql, Some(200)).await;
        assert_eq!(pages[0]["totalSize"], want.len());
        let got: Vec<(String, String)> = records
            .iter()
            .map(|r| {
                (
                    r["SystemModstamp"].as_str().unwrap().to_owned(),
                    r["Id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(got, want, "{soql}");
        // Canonical casing whatever the query used.
        assert!(records[0].get("SystemModstamp").is_some());
    }

    let desc = client
        .query("SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp DESC, Id LIMIT 5")
        .await;
    let top: Vec<&str> = desc["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["SystemModstamp"].as_str().unwrap())
        .collect();
    let mut all: Vec<String> = fake
        .org()
        .records("Contact")
        .map(|r| r["SystemModstamp"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    all.reverse();
    assert_eq!(top, all[..5].iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(desc["totalSize"], 5);
}

#[tokio::test]
async fn filters_on_ids_strings_and_parents() {
    let (fake, client) = start(small(500)).await;
    let org = fake.org();
    let id = org.record_id("Contact", 123);
    for lit in [id.clone(), id[..15].to_owned()] {
        let r = client
            .query(&format!("SELECT Id FROM Contact WHERE Id = '{lit}'"))
            .await;
        assert_eq!(r["totalSize"], 1);
        assert_eq!(r["records"][0]["Id"], id.as_str());
    }
    let c = org.record_json("Contact", 7);
    let last = c["LastName"].as_str().unwrap().replace('\'', "\\'");
    let r = client
        .query(&format!(
            "SELECT Id, LastName FROM Contact WHERE LastName = '{last}'"
        ))
        .await;
    let want = org
        .records("Contact")
        .filter(|x| x["LastName"] == c["LastName"])
        .count();
    assert_eq!(r["totalSize"], want);

    let account = org.record_id("Account", 3);
    let r = client
        .query(&format!(
            "SELECT Id, Account.Name, AccountId FROM Contact WHERE AccountId = '{account}'"
        ))
        .await;
    let want = org
        .records("Contact")
        .filter(|x| x["AccountId"] == account.as_str())
        .count();
    assert_eq!(r["totalSize"], want);
    let rec = &r["records"][0];
    assert_eq!(
        rec["Account"]["Name"],
        org.record_json("Account", 3)["Name"]
    );
    assert_eq!(rec["Account"]["attributes"]["type"], "Account");

    let r = client
        .query("SELECT Id, Account.Name FROM Contact WHERE AccountId = null LIMIT 3")
        .await;
    assert!(r["records"][0]["Account"].is_null());

    let r = client
        .query("SELECT COUNT() FROM Contact WHERE HasOptedOutOfEmail = true")
        .await;
    let want = org
        .records("Contact")
        .filter(|x| x["HasOptedOutOfEmail"] == true)
        .count();
    assert_eq!(r["totalSize"], want);
    assert_eq!(r["records"], json!([]));
    assert_eq!(
        client.query("SELECT COUNT() FROM Account").await["totalSize"],
        40
    );
}

#[tokio::test]
async fn query_hides_deleted_rows_and_query_all_returns_them() {
    let (fake, client) = start(small(300)).await;
    let deleted = fake.org().mutate(MutateRequest {
        delete: 1,
        ..MutateRequest::new("Contact")
    });
    let [id] = <[String; 1]>::try_from(deleted.deleted).unwrap();
    let q = client.query("SELECT COUNT() FROM Contact").await;
    assert_eq!(q["totalSize"], 299);
    let a: Value = client
        .query_with(
            "queryAll",
            "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true",
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(a["totalSize"], 1);
    assert_eq!(a["records"][0]["Id"], id.as_str());
    let record = fake.org().record_json_by_id("Contact", &id).unwrap();
    assert_eq!(record["IsDeleted"], true);
    assert_eq!(fake.org().count("Contact"), 300);
}

#[tokio::test]
async fn soql_errors_match_salesforce() {
    let (_fake, client) = start(small(10)).await;
    let cases = [
        (
            "SELECT Id, Nme FROM Contact",
            "INVALID_FIELD",
            "\nSELECT Id, Nme FROM Contact\n           ^\nERROR at Row:1:Column:12\nNo such column 'Nme' on entity 'Contact'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
        ),
        (
            "SELECT Id FROM Foo",
            "INVALID_TYPE",
            "\nSELECT Id FROM Foo\n               ^\nERROR at Row:1:Column:16\nsObject type 'Foo' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
        ),
        (
            "SELECT Id FRM Contact",
            "MALFORMED_QUERY",
            "\nSELECT Id FRM Contact\n          ^\nERROR at Row:1:Column:11\nunexpected token: FRM",
        ),
    ];
    for (soql, code, message) in cases {
        let r = client.query_with("query", soql, None).await;
        assert_eq!(r.status(), 400);
        assert!(r.headers().contains_key("sforce-limit-info"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_of(&body), (code, message), "{soql}");
    }
    for soql in [
        "SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01'",
        "SELECT Id FROM Contact WHERE Description = 'x'",
        "SELECT Id FROM Contact WHERE Bogus.Name = 'x'",
    ] {
        let body: Value = client
            .query_with("query", soql, None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(error_of(&body).0, "INVALID_FIELD", "{soql}");
    }
    let body: Value = client
        .query_with("query", "SELECT Id FROM Contact WHERE", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(error_of(&body).0, "MALFORMED_QUERY");
}

#[tokio::test]
async fn locator_errors() {
    let (_fake, client) = start(small(500)).await;
    for locator in ["01gXXXXXXXXXXXXXXX-200", "garbage", "01g-x"] {
        let r = client
            .get(&format!("/services/data/v62.0/query/{locator}"))
            .await;
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            error_of(&body),
            ("INVALID_QUERY_LOCATOR", "invalid query locator")
        );
    }
    let page: Value = client
        .query_with("query", "SELECT Id FROM Contact", Some(200))
        .await
        .json()
        .await
        .unwrap();
    let next = page["nextRecordsUrl"].as_str().unwrap();
    let past_end = format!("{}-500", next.rsplit_once('-').unwrap().0);
    assert_eq!(client.get(&past_end).await.status(), 400);

    let (_fake, client) = start(OrgConfig {
        locator_ttl: Duration::ZERO,
        ..small(500)
    })
    .await;
    let page: Value = client
        .query_with("query", "SELECT Id FROM Contact", Some(200))
        .await
        .json()
        .await
        .unwrap();
    let r = client.get(page["nextRecordsUrl"].as_str().unwrap()).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_of(&body).0, "INVALID_QUERY_LOCATOR");
}

#[tokio::test]
async fn oauth_grants_and_failures() {
    let fake = spawn(OrgConfig::default()).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/services/oauth2/token", fake.base_url());
    let post = |form: Vec<(&'static str, &'static str)>| http.post(&url).form(&form).send();

    let ok = post(vec![
        ("grant_type", "client_credentials"),
        ("client_id", "demo"),
        ("client_secret", "demo"),
    ])
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    assert!(
        token.starts_with("00D") && token.as_bytes()[15] == b'!',
        "{token}"
    );
    assert_eq!(body["instance_url"], fake.base_url());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "api");
    assert!(body["issued_at"].as_str().unwrap().parse::<u64>().unwrap() > 1_600_000_000_000);
    assert!(
        body["id"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/id/00D", fake.base_url()))
    );
    assert!(body.get("refresh_token").is_none());

    let basic = http
        .post(&url)
        .basic_auth("demo", Some("demo"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let other: Value = basic.json().await.unwrap();
    assert_ne!(other["access_token"], body["access_token"]);

    let password = post(vec![
        ("grant_type", "password"),
        ("client_id", "demo"),
        ("client_secret", "demo"),
        ("username", "demo@example.com"),
        ("password", "demo"),
    ])
    .await
    .unwrap();
    assert_eq!(password.status(), 200);
    let refresh = post(vec![
        ("grant_type", "refresh_token"),
        ("client_id", "demo"),
        ("refresh_token", "demo-refresh"),
    ])
    .await
    .unwrap();
    assert_eq!(refresh.status(), 200);

    let cases = [
        (
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "demo"),
                ("client_secret", "wrong"),
            ],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "demo"),
                ("client_secret", "demo"),
                ("username", "demo@example.com"),
                ("password", "nope"),
            ],
            "invalid_grant",
            "authentication failure",
        ),
        (
            vec![
                ("grant_type", "refresh_token"),
                ("client_id", "demo"),
                ("refresh_token", "stale"),
            ],
            "invalid_grant",
            "expired access/refresh token",
        ),
        (
            vec![("grant_type", "authorization_code")],
            "unsupported_grant_type",
            "grant type not supported",
        ),
        (
            vec![
                ("grant_type", "password"),
                ("client_id", "demo"),
                ("client_secret", "demo"),
            ],
            "invalid_request",
            "username required",
        ),
    ];
    for (form, error, description) in cases {
        let r = post(form.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{form:?}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": error, "error_description": description}),
            "{form:?}"
        );
    }
}

#[tokio::test]
async fn bearer_is_required_and_tokens_can_expire() {
    let (fake, client) = start(small(10)).await;
    let url = format!(
        "{}/services/data/v62.0/query?q=SELECT+Id+FROM+Account",
        client.base
    );
    for auth in [None, Some("Bearer nonsense")] {
        let mut req = client.http.get(&url);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        assert!(!r.headers().contains_key("sforce-limit-info"));
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
        );
    }
    let r = client
        .http
        .get(&url)
        .header("Authorization", format!("OAuth {}", client.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fake.org().expire_all_tokens();
    assert_eq!(
        client.get("/services/data/v62.0/limits").await.status(),
        401
    );
}

#[tokio::test]
async fn usage_is_counted_reported_and_enforced() {
    let (fake, client) = start(OrgConfig {
        api_limit: 5,
        ..small(10)
    })
    .await;
    let versions = client
        .http
        .get(format!("{}/services/data/", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(versions.status(), 200);
    assert!(!versions.headers().contains_key("sforce-limit-info"));
    let list: Value = versions.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().last().unwrap()["version"], "62.0");
    for n in 1..=4 {
        let r = client.get("/services/data/v59.0/sobjects").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["sforce-limit-info"], format!("api-usage={n}/5"));
    }
    let limits: Value = client
        .get("/services/data/v62.0/limits/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        limits["DailyApiRequests"],
        json!({"Max": 5, "Remaining": 0})
    );
    let r = client.get("/services/data/v62.0/limits").await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["sforce-limit-info"], "api-usage=5/5");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    );
    fake.org().set_api_usage(0);
    assert_eq!(
        client.get("/services/data/v62.0/limits").await.status(),
        200
    );
}

#[tokio::test]
async fn describe_reports_the_schema() {
    let (_fake, client) = start(small(10)).await;
    let global: Value = client
        .get("/services/data/v62.0/sobjects")
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = global["sobjects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Account", "Contact"]);
    assert_eq!(global["sobjects"][1]["keyPrefix"], "003");
    assert_eq!(global["sobjects"][1]["queryable"], true);

    let contact: Value = client
        .get("/services/data/v62.0/sobjects/contact/describe/")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(contact["name"], "Contact");
    let allowed = [
        "id",
        "reference",
        "string",
        "textarea",
        "picklist",
        "email",
        "phone",
        "url",
        "currency",
        "int",
        "double",
        "date",
        "datetime",
        "boolean",
    ];
    let fields = contact["fields"].as_array().unwrap();
    assert_eq!(fields.len(), 22);
    for f in fields {
        assert!(allowed.contains(&f["type"].as_str().unwrap()), "{f}");
        for key in [
            "name",
            "label",
            "type",
            "soapType",
            "length",
            "byteLength",
            "precision",
            "scale",
            "digits",
            "nillable",
            "createable",
            "updateable",
            "filterable",
            "sortable",
            "calculated",
            "custom",
            "unique",
            "externalId",
            "idLookup",
            "nameField",
            "referenceTo",
            "relationshipName",
            "compoundFieldName",
            "picklistValues",
            "defaultValue",
            "deprecatedAndHidden",
        ] {
            assert!(f.get(key).is_some(), "{} lacks {key}", f["name"]);
        }
    }
    let by = |n: &str| fields.iter().find(|f| f["name"] == n).unwrap().clone();
    assert_eq!(by("AccountId")["referenceTo"], json!(["Account"]));
    assert_eq!(by("AccountId")["relationshipName"], "Account");
    assert_eq!(by("Engagement_Score__c")["custom"], true);
    assert_eq!(by("Engagement_Score__c")["scale"], 2);
    assert_eq!(by("LastName")["nillable"], false);
    assert_eq!(by("LeadSource")["picklistValues"][0]["value"], "Web");

    let account: Value = client
        .get("/services/data/v62.0/sobjects/Account/describe")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(account["childRelationships"][0]["childSObject"], "Contact");
    assert_eq!(
        account["childRelationships"][0]["relationshipName"],
        "Contacts"
    );

    let r = client
        .get("/services/data/v62.0/sobjects/Foo/describe")
        .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );
    assert_eq!(
        client.get("/services/data/v62.0/nothing").await.status(),
        404
    );
}
