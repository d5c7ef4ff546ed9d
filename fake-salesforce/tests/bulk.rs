//! Bulk API 2.0 query jobs: lifecycle, CSV results that match REST value for value,
//! locator paging, and the errors clients special-case.

mod support;

use std::time::Duration;

use fake_salesforce::{MutateRequest, OrgConfig};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Client, assert_same, parse_csv, rest_value, start};

const JOBS: &str = "/services/data/v62.0/jobs/query";

fn config(contacts: u32, delay_ms: u64) -> OrgConfig {
    OrgConfig {
        accounts: 40,
        contacts,
        bulk_job_delay: Duration::from_millis(delay_ms),
        ..OrgConfig::default()
    }
}

async fn create(client: &Client, body: Value) -> (u16, Value) {
    let r = client.send_json(Method::POST, JOBS, &body).await;
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Polls until the job leaves UploadComplete/InProgress; returns the states seen.
async fn wait(client: &Client, id: &str) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..200 {
        let (status, info) = client.get_json(&format!("{JOBS}/{id}")).await;
        assert_eq!(status, 200, "{info}");
        let state = info["state"].as_str().unwrap().to_owned();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if !matches!(state.as_str(), "UploadComplete" | "InProgress") {
            return (seen, info);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("job {id} never finished: {seen:?}");
}

/// Downloads every chunk, following Sforce-Locator; returns (header, rows, chunk sizes).
async fn download(
    client: &Client,
    id: &str,
    max: usize,
    delimiter: char,
    eol: &str,
) -> (Vec<String>, Vec<Vec<Option<String>>>, Vec<usize>) {
    let mut locator: Option<String> = None;
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut sizes = Vec::new();
    loop {
        let mut path = format!("{JOBS}/{id}/results?maxRecords={max}");
        if let Some(l) = &locator {
            path.push_str(&format!("&locator={l}"));
        }
        let r = client.get(&path).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "text/csv");
        let next = r.headers()["sforce-locator"].to_str().unwrap().to_owned();
        let count: usize = r.headers()["sforce-numberofrecords"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let text = r.text().await.unwrap();
        // The same chunk again, twice at once: locators are repeatable.
        let (a, b) = tokio::join!(client.get(&path), client.get(&path));
        assert_eq!(a.text().await.unwrap(), text);
        assert_eq!(b.text().await.unwrap(), text);
        let mut parsed = parse_csv(&text, delimiter, eol);
        let head: Vec<String> = parsed
            .remove(0)
            .into_iter()
            .map(|h| h.expect("header names are quoted"))
            .collect();
        assert_eq!(*header.get_or_insert_with(|| head.clone()), head);
        assert_eq!(parsed.len(), count);
        sizes.push(count);
        rows.extend(parsed);
        if next == "null" {
            return (header.unwrap(), rows, sizes);
        }
        locator = Some(next);
    }
}

#[tokio::test]
async fn query_all_job_matches_rest_value_for_value() {
    let (fake, client) = start(config(2_345, 400)).await;
    fake.org().mutate(MutateRequest {
        update: 100,
        delete: 40,
        purge: 10,
        create: 25,
        vanish: 5,
        ..MutateRequest::new("Contact")
    });
    fake.org().mutate(MutateRequest {
        update: 5,
        delete: 3,
        ..MutateRequest::new("Account")
    });
    let soql = "SELECT Id, AccountId, Account.Name, FirstName, LastName, Email, Phone, Title, \
                MailingStreet, MailingCity, Birthdate, HasOptedOutOfEmail, Description, \
                Engagement_Score__c, Account.AnnualRevenue, CreatedDate, SystemModstamp, \
                IsDeleted FROM Contact";
    let rest = client.records("queryAll", soql).await;
    let (status, info) = create(&client, json!({"operation": "queryAll", "query": soql})).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["state"], "UploadComplete");
    assert_eq!(info["operation"], "queryAll");
    assert_eq!(info["object"], "Contact");
    assert_eq!(info["apiVersion"], json!(62.0));
    assert_eq!(info["contentType"], "CSV");
    assert_eq!(info["columnDelimiter"], "COMMA");
    assert_eq!(info["lineEnding"], "LF");
    assert_eq!(info["concurrencyMode"], "Parallel");
    assert_eq!(info["createdById"], fake.org().user_id());
    let id = info["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("750") && id.len() == 18, "{id}");

    // Results before completion are refused; a later mutation does not change them.
    let early = client.get(&format!("{JOBS}/{id}/results")).await;
    assert_eq!(early.status(), 400);
    fake.org().mutate(MutateRequest {
        update: 50,
        delete: 50,
        ..MutateRequest::new("Contact")
    });
    let (states, done) = wait(&client, &id).await;
    assert_eq!(states.last().unwrap(), "JobComplete", "{states:?}");
    assert!(states.len() >= 2, "{states:?}");
    assert_eq!(done["jobType"], "V2Query");
    assert_eq!(done["numberRecordsProcessed"], rest.len());
    assert_eq!(rest.len(), 2_345 + 25 - 10 - 5);

    let (header, rows, sizes) = download(&client, &id, 700, ',', "\n").await;
    assert_eq!(sizes, vec![700, 700, 700, 255]);
    let want: Vec<&str> = soql["SELECT ".len()..soql.find(" FROM").unwrap()]
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(header, want, "columns in SELECT order");
    assert_eq!(rows.len(), rest.len());
    let mut deleted = 0;
    for (row, record) in rows.iter().zip(&rest) {
        for (column, cell) in header.iter().zip(row) {
            assert_same(column, cell.as_deref(), rest_value(record, column));
        }
        deleted += usize::from(record["IsDeleted"] == true);
    }
    assert_eq!(deleted, 40);
    assert!(
        rows.iter()
            .any(|r| r.iter().flatten().any(|v| v.contains('\n'))),
        "some values span lines"
    );
    assert!(
        rows.iter()
            .any(|r| r.iter().flatten().any(|v| v.contains('"'))),
        "some values hold quotes"
    );

    // Default chunk size covers everything at once.
    let r = client.get(&format!("{JOBS}/{id}/results")).await;
    assert_eq!(r.headers()["sforce-locator"], "null");
    assert_eq!(r.headers()["sforce-numberofrecords"], "2355");

    // Another API version in the path: 409.
    let r = client
        .get(&format!("/services/data/v61.0/jobs/query/{id}/results"))
        .await;
    assert_eq!(r.status(), 409);
    let bad = client
        .get(&format!("{JOBS}/{id}/results?locator=bm9wZQ"))
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn query_job_honours_delimiters_line_endings_and_query_semantics() {
    let (fake, client) = start(config(300, 0)).await;
    let m = fake.org().mutate(MutateRequest {
        delete: 30,
        ..MutateRequest::new("Contact")
    });
    let soql = "SELECT Id, LastName, Description FROM Contact WHERE IsDeleted = false OR \
                LastName != null";
    let (status, info) = create(
        &client,
        json!({"operation": "query", "query": soql, "columnDelimiter": "TAB",
               "lineEnding": "CRLF", "contentType": "CSV"}),
    )
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (
            info["columnDelimiter"].as_str(),
            info["lineEnding"].as_str()
        ),
        (Some("TAB"), Some("CRLF"))
    );
    let id = info["id"].as_str().unwrap();
    let (_, done) = wait(&client, id).await;
    assert_eq!(done["state"], "JobComplete");
    let (header, rows, sizes) = download(&client, id, 1000, '\t', "\r\n").await;
    assert_eq!(header, ["Id", "LastName", "Description"]);
    assert_eq!(sizes, vec![270]);
    let rest = client.records("query", soql).await;
    assert_eq!(rows.len(), rest.len());
    for (row, record) in rows.iter().zip(&rest) {
        for (column, cell) in header.iter().zip(row) {
            assert_same(column, cell.as_deref(), rest_value(record, column));
        }
        assert!(!m.deleted.contains(row[0].as_ref().unwrap()));
    }

    // An empty result: header only, locator null.
    let (_, info) = create(
        &client,
        json!({"operation": "query", "query": "SELECT Id FROM Contact WHERE LastName = 'nobody'"}),
    )
    .await;
    let id = info["id"].as_str().unwrap();
    wait(&client, id).await;
    let r = client.get(&format!("{JOBS}/{id}/results")).await;
    assert_eq!(r.headers()["sforce-locator"], "null");
    assert_eq!(r.headers()["sforce-numberofrecords"], "0");
    assert_eq!(r.text().await.unwrap(), "\"Id\"\n");
}

#[tokio::test]
async fn bad_queries_fail_like_salesforce_and_jobs_can_be_aborted_and_deleted() {
    let (fake, client) = start(config(50, 0)).await;
    // SOQL REST refuses is refused at creation with the REST body.
    for soql in [
        "SELECT Id, Nme FROM Contact",
        "SELECT Id, (SELECT Id FROM Contacts) FROM Account",
        "SELECT Id FROM Nope",
    ] {
        let (status, body) = create(&client, json!({"operation": "query", "query": soql})).await;
        let rest = client
            .http
            .get(format!("{}/services/data/v62.0/query", client.base))
            .query(&[("q", soql)])
            .bearer_auth(&client.token)
            .send()
            .await
            .unwrap();
        assert_eq!(status, 400, "{soql}");
        assert_eq!(rest.json::<Value>().await.unwrap(), body, "{soql}");
    }
    let (status, body) = create(
        &client,
        json!({"operation": "upsert", "query": "SELECT Id FROM Contact"}),
    )
    .await;
    assert_eq!(
        (status, body[0]["errorCode"].as_str()),
        (400, Some("INVALIDJOB"))
    );
    let (status, _) = create(&client, json!({"operation": "query", "query": "SELECT Id FROM Contact", "columnDelimiter": "SPACE"})).await;
    assert_eq!(status, 400);

    // Constructs Bulk 2.0 does not support make the job fail.
    for soql in [
        "SELECT COUNT() FROM Contact",
        "SELECT Id FROM Contact OFFSET 5",
    ] {
        let (status, info) = create(&client, json!({"operation": "query", "query": soql})).await;
        assert_eq!(status, 200);
        let (_, done) = wait(&client, info["id"].as_str().unwrap()).await;
        assert_eq!(done["state"], "Failed", "{soql}");
        assert!(
            done["errorMessage"]
                .as_str()
                .unwrap()
                .contains("not supported")
        );
    }

    // Listing, deleting and usage counting.
    let used = fake.org().api_usage();
    let (status, list) = client.get_json(JOBS).await;
    assert_eq!(status, 200);
    assert_eq!(list["done"], true);
    assert_eq!(list["records"].as_array().unwrap().len(), 2);
    let id = list["records"][0]["id"].as_str().unwrap().to_owned();
    let r = client
        .send_json(Method::DELETE, &format!("{JOBS}/{id}"), &json!({}))
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(client.get(&format!("{JOBS}/{id}")).await.status(), 404);
    assert_eq!(fake.org().api_usage(), used + 3, "bulk calls count");

    // A slow org: jobs can be aborted while they run, not after.
    let (_slow, slow) = start(config(50, 60_000)).await;
    let (_, info) = create(
        &slow,
        json!({"operation": "query", "query": "SELECT Id FROM Contact"}),
    )
    .await;
    let id = info["id"].as_str().unwrap();
    let (_, polled) = slow.get_json(&format!("{JOBS}/{id}")).await;
    assert_eq!(polled["state"], "UploadComplete");
    assert_eq!(polled["numberRecordsProcessed"], 0);
    let r = slow
        .send_json(
            Method::PATCH,
            &format!("{JOBS}/{id}"),
            &json!({"state": "Aborted"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "Aborted");
    let r = slow
        .send_json(
            Method::PATCH,
            &format!("{JOBS}/{id}"),
            &json!({"state": "Aborted"}),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        slow.get(&format!("{JOBS}/{id}/results")).await.status(),
        400
    );
}

/// The parallel download: `resultPages` answers five result URLs at a time that, fetched all
/// at once, hold every row of the job exactly once, in the order the locator chain gives.
#[tokio::test]
async fn result_pages_list_urls_that_hold_every_row_once() {
    let rows = fake_salesforce::bulk::RESULT_PAGE_RECORDS * 6 + 123;
    let (_fake, client) = start(config(rows as u32, 300)).await;
    let soql = "SELECT Id, LastName, SystemModstamp FROM Contact";
    let (status, info) = create(&client, json!({"operation": "queryAll", "query": soql})).await;
    assert_eq!(status, 200, "{info}");
    let id = info["id"].as_str().unwrap().to_owned();
    let early = client.get(&format!("{JOBS}/{id}/resultPages")).await;
    assert_eq!(early.status(), 400, "refused before JobComplete");
    let (_, done) = wait(&client, &id).await;
    assert_eq!(done["state"], "JobComplete");

    // Older API versions do not have the resource.
    let old = client
        .get(&format!("/services/data/v57.0/jobs/query/{id}/resultPages"))
        .await;
    assert_eq!(old.status(), 404);
    let body: Value = old.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "NOT_FOUND");

    let mut urls = Vec::new();
    let mut next = Some(format!("{JOBS}/{id}/resultPages"));
    let mut answers = Vec::new();
    while let Some(path) = next.take() {
        let (status, answer) = client.get_json(&path).await;
        assert_eq!(status, 200, "{answer}");
        let pages = answer["resultPages"].as_array().unwrap();
        assert!(!pages.is_empty() && pages.len() <= 5, "{answer}");
        urls.extend(
            pages
                .iter()
                .map(|p| p["resultUrl"].as_str().unwrap().to_owned()),
        );
        answers.push(answer["done"].as_bool().unwrap());
        next = answer["nextRecordsUrl"].as_str().map(str::to_owned);
        assert_eq!(next.is_none(), answer["done"] == true, "{answer}");
    }
    assert_eq!(answers, vec![false, true]);
    assert_eq!(urls.len(), 7);

    // Every URL at once.
    let client = &client;
    let texts = futures::future::join_all(urls.iter().map(|u| async move {
        let r = client.get(u).await;
        assert_eq!(r.status(), 200, "{u}");
        r.text().await.unwrap()
    }))
    .await;
    let mut ids: Vec<String> = Vec::new();
    for text in &texts {
        let mut parsed = parse_csv(text, ',', "\n");
        parsed.remove(0);
        ids.extend(parsed.into_iter().map(|r| r[0].clone().unwrap()));
    }
    let (_, sequential, _) = download(client, &id, 4_000, ',', "\n").await;
    let sequential: Vec<String> = sequential
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .collect();
    assert_eq!(ids.len(), rows);
    assert_eq!(
        ids, sequential,
        "the pages in order are the locator chain's rows"
    );
}
