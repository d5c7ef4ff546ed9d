//! Fake orgs in the shape of a real one, as the real-org tests start them.

use std::{collections::BTreeMap, time::Duration};

use fake_salesforce::{FakeOrg, Faults, OrgConfig, Shape};

/// A fake org in the shape of a real one (`Shape::Real`), with `records` of each object, data
/// generated from `seed`, and `faults` turned on.
pub async fn real_org(records: &[(&str, u32)], seed: u64, faults: Faults) -> FakeOrg {
    fake_salesforce::spawn(OrgConfig {
        shape: Shape::Real,
        accounts: 0,
        contacts: 0,
        records: records
            .iter()
            .map(|(object, n)| ((*object).to_owned(), *n))
            .collect::<BTreeMap<_, _>>(),
        seed,
        bulk_job_delay: Duration::from_millis(50),
        faults,
        ..OrgConfig::default()
    })
    .await
    .expect("fake org starts")
}
