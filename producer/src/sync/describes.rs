//! Describes kept between the passes of `sync --watch`: an object's fields rarely change, and
//! reading them on every pass would cost an API call per object per pass. A describe is reused
//! while it is younger than the `--describe-interval`; a pass that fails forgets it, so that a
//! query naming a field the org no longer has is followed by a fresh describe.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::salesforce::{Describe, SalesforceClient, SfError};

/// The describes of a session, by object (lower-cased).
#[derive(Debug, Default)]
pub struct DescribeCache(Mutex<HashMap<String, (Describe, Instant)>>);

impl DescribeCache {
    /// The object's describe: the kept one if younger than `max_age`, else a new one (kept only
    /// when `max_age` is given).
    ///
    /// # Errors
    /// The describe call failed.
    pub async fn describe(
        &self,
        sf: &SalesforceClient,
        object: &str,
        max_age: Option<Duration>,
    ) -> Result<Describe, SfError> {
        let key = object.to_ascii_lowercase();
        if let Some(max_age) = max_age
            && let Some((describe, at)) = self.lock().get(&key)
            && at.elapsed() < max_age
        {
            return Ok(describe.clone());
        }
        let describe = sf.describe(object).await?;
        if max_age.is_some() {
            self.lock().insert(key, (describe.clone(), Instant::now()));
        }
        Ok(describe)
    }

    /// The kept describe of `object`, if younger than `max_age`; never calls Salesforce.
    pub fn cached(&self, object: &str, max_age: Duration) -> Option<Describe> {
        self.lock()
            .get(&object.to_ascii_lowercase())
            .filter(|(_, at)| at.elapsed() < max_age)
            .map(|(describe, _)| describe.clone())
    }

    /// Forgets the object's describe: the next sync reads it again.
    pub fn forget(&self, object: &str) {
        self.lock().remove(&object.to_ascii_lowercase());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Describe, Instant)>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
