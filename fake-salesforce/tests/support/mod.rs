//! Helpers shared by the sync and bulk test binaries: an HTTP client for the fake org and
//! value comparisons between REST JSON and Bulk CSV.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use fake_salesforce::{FakeOrg, OrgConfig, spawn};
use serde_json::{Map, Value};

pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Client {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST /__admin/mutate` (no token); panics unless it answers 200.
    pub async fn mutate(&self, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}/__admin/mutate", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{body}");
        r.json().await.unwrap()
    }

    /// Every record of a REST query (`query` or `queryAll`), following nextRecordsUrl.
    pub async fn records(&self, resource: &str, soql: &str) -> Vec<Map<String, Value>> {
        let r = self
            .http
            .get(format!("{}/services/data/v62.0/{resource}", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{soql}");
        let mut page: Value = r.json().await.unwrap();
        let mut out = Vec::new();
        loop {
            for r in page["records"].as_array().unwrap() {
                let mut r = r.as_object().unwrap().clone();
                r.remove("attributes");
                out.push(r);
            }
            let Some(next) = page.get("nextRecordsUrl").and_then(Value::as_str) else {
                break;
            };
            let next = next.to_owned();
            page = self.get(&next).await.json().await.unwrap();
        }
        out
    }

    pub async fn ids(&self, resource: &str, object: &str) -> Vec<String> {
        self.records(resource, &format!("SELECT Id FROM {object}"))
            .await
            .iter()
            .map(|r| r["Id"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Bulk API 2.0 query jobs under the version every test uses.
pub const JOBS: &str = "/services/data/v62.0/jobs/query";

impl Client {
    /// `GET /services/data/v62.0/{resource}?q=soql`, whatever the answer.
    pub async fn query(&self, resource: &str, soql: &str) -> reqwest::Response {
        self.http
            .get(format!("{}/services/data/v62.0/{resource}", self.base))
            .query(&[("q", soql)])
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    /// A query's status and JSON body.
    pub async fn query_json(&self, soql: &str) -> (u16, Value) {
        let r = self.query("query", soql).await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `POST /__admin/{what}` (no token): status and JSON body.
    pub async fn admin(&self, what: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/__admin/{what}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// `POST /jobs/query`: status and JSON body.
    pub async fn create_job(&self, body: Value) -> (u16, Value) {
        let r = self.send_json(reqwest::Method::POST, JOBS, &body).await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Polls a job until it leaves UploadComplete/InProgress; its final info.
    pub async fn finished_job(&self, id: &str) -> Value {
        for _ in 0..500 {
            let (status, info) = self.get_json(&format!("{JOBS}/{id}")).await;
            assert_eq!(status, 200, "{info}");
            if !matches!(
                info["state"].as_str(),
                Some("UploadComplete" | "InProgress")
            ) {
                return info;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("job {id} never finished");
    }

    /// Runs a Bulk query job to the end and returns its whole CSV (one chunk).
    pub async fn bulk_csv(&self, soql: &str) -> String {
        let (status, job) = self
            .create_job(serde_json::json!({"operation": "queryAll", "query": soql}))
            .await;
        assert_eq!(status, 200, "{job}");
        let id = job["id"].as_str().unwrap();
        let info = self.finished_job(id).await;
        assert_eq!(info["state"], "JobComplete", "{info}");
        let r = self
            .get(&format!("{JOBS}/{id}/results?maxRecords=1000000"))
            .await;
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    }
}

/// An org in the real shape with `accounts` and `contacts`, and `records` of other objects.
pub fn real(accounts: u32, contacts: u32, records: &[(&str, u32)]) -> OrgConfig {
    OrgConfig {
        shape: fake_salesforce::Shape::Real,
        accounts,
        contacts,
        records: records.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect(),
        bulk_job_delay: std::time::Duration::from_millis(20),
        ..OrgConfig::default()
    }
}

pub async fn start(config: OrgConfig) -> (FakeOrg, Client) {
    let fake = spawn(config).await.unwrap();
    let token = fake.org().issue_token();
    let client = Client {
        http: reqwest::Client::new(),
        base: fake.base_url(),
        token,
    };
    (fake, client)
}

pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Epoch millis of a REST (`+0000`) or CSV (`Z`) datetime.
pub fn instant(s: &str) -> i64 {
    fake_salesforce::soql::parse_datetime(s).unwrap_or_else(|| panic!("not a datetime: {s}"))
}

/// Parses RFC 4180 CSV: quoted fields may hold delimiters, doubled quotes and line breaks.
/// An unquoted empty field is `None` (null); a quoted one is `Some("")`.
pub fn parse_csv(text: &str, delimiter: char, eol: &str) -> Vec<Vec<Option<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (field, after) = if let Some(body) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut it = body.char_indices();
            let end = loop {
                let (i, c) = it.next().expect("unterminated quoted field");
                if c == '"' {
                    if body[i + 1..].starts_with('"') {
                        value.push('"');
                        it.next();
                    } else {
                        break i + 1;
                    }
                } else {
                    value.push(c);
                }
            };
            (Some(value), &body[end..])
        } else {
            let end = rest
                .find(|c: char| c == delimiter || eol.starts_with(c))
                .unwrap_or(rest.len());
            assert_eq!(end, 0, "unquoted non-empty field in {rest:.40}");
            (None, rest)
        };
        row.push(field);
        if let Some(next) = after.strip_prefix(delimiter) {
            rest = next;
        } else if let Some(next) = after.strip_prefix(eol) {
            rows.push(std::mem::take(&mut row));
            rest = next;
        } else {
            panic!("bad CSV after a field: {after:.40}");
        }
    }
    assert!(row.is_empty(), "the last row lacks its line ending");
    rows
}

/// Asserts that a CSV cell holds the same value as a REST JSON value.
pub fn assert_same(column: &str, csv: Option<&str>, rest: &Value) {
    match (csv, rest) {
        (None, Value::Null) => {}
        (Some(c), Value::String(s)) if s.len() >= 20 && s.ends_with("+0000") => {
            assert!(c.ends_with('Z'), "{column}: {c}");
            assert_eq!(instant(c), instant(s), "{column}");
        }
        (Some(c), Value::String(s)) => assert_eq!(c, s, "{column}"),
        (Some(c), Value::Bool(b)) => assert_eq!(c, b.to_string(), "{column}"),
        (Some(c), Value::Number(n)) => {
            assert_eq!(c.parse::<f64>().unwrap(), n.as_f64().unwrap(), "{column}");
        }
        (c, r) => panic!("{column}: CSV {c:?} vs REST {r}"),
    }
}

/// The REST value for a CSV column, following `Account.Name` into the nested parent.
pub fn rest_value<'a>(record: &'a Map<String, Value>, column: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    match column.split_once('.') {
        None => &record[column],
        Some((rel, field)) => match &record[rel] {
            Value::Null => &NULL,
            parent => &parent[field],
        },
    }
}
