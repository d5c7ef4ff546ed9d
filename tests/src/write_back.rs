//! What the write-back tests share: a fake org with the External ID field, workers that apply
//! push batches, a Salesforce client of that org (another integration changing records), and
//! the org's Contacts by Id.

use std::collections::HashMap;

use fake_salesforce::{FakeOrg, OrgConfig};
use serde_json::{Map, Value};

use crate::{RunningWorker, TestEnv};

/// A fake org of `accounts` Accounts and `contacts` Contacts whose objects have the External
/// ID field write-back creates records under.
pub async fn org_of(accounts: u32, contacts: u32) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        accounts,
        contacts,
        seed: 18,
        external_id_field: Some(producer::write::DEFAULT_EXTERNAL_ID.to_owned()),
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}

/// The credentials of the fake org's demo connected app.
pub fn credentials(org: &FakeOrg) -> salesforce::CredentialArgs {
    salesforce::CredentialArgs {
        sf_login_url: Some(org.base_url()),
        sf_client_id: Some("demo".to_owned().into()),
        sf_client_secret: Some("demo".to_owned().into()),
        ..salesforce::CredentialArgs::none()
    }
}

/// `n` in-process workers that also apply push batches, with the fake org's credentials.
pub fn pushing_workers(env: &TestEnv, org: &FakeOrg, n: usize) -> Vec<RunningWorker> {
    let mut args = env.worker_args(4, 2);
    args.salesforce = credentials(org);
    (0..n)
        .map(|_| TestEnv::spawn_worker_with(args.clone()))
        .collect()
}

/// A client of the fake org, as another integration (or a person) changing records there.
///
/// # Panics
/// The org refuses the login.
pub async fn client(org: &FakeOrg) -> salesforce::SalesforceClient<salesforce::NoMetrics> {
    salesforce::SalesforceClient::<salesforce::NoMetrics>::connect(
        salesforce::Credentials::ClientCredentials {
            login_url: org.base_url().parse().expect("the fake's URL parses"),
            client_id: "demo".to_owned().into(),
            client_secret: "demo".to_owned().into(),
        },
        "62.0",
        salesforce::RetryPolicy::default(),
    )
    .await
    .expect("the fake org logs in")
}

/// The org's Contacts (soft-deleted ones too) by Id.
pub fn contacts_by_id(org: &FakeOrg) -> HashMap<String, Map<String, Value>> {
    org.org()
        .records("Contact")
        .map(|r| (r["Id"].as_str().unwrap_or_default().to_owned(), r))
        .collect()
}
