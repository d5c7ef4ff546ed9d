//! The org's Bulk query jobs: what one job holds (its result as indices into a snapshot, and
//! its metadata), and the store that hands out job Ids, keeps at most a thousand jobs and
//! finds them by Id.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::sfid::SalesforceId;

use super::csv::Layout;
use crate::data::generate::{base62_into, mix};
use crate::data::{ObjectKind, Snapshot};
use crate::soql::FieldRef;

/// Beyond this many jobs the oldest are dropped.
const MAX_JOBS: usize = 1_000;

/// One query job: the query's result (indices into a snapshot) and the job's metadata.
#[derive(Debug)]
pub struct Job {
    pub(super) id: String,
    pub(super) all: bool,
    pub(super) object: ObjectKind,
    /// `62.0` for a job created under `/services/data/v62.0/`.
    pub(super) api_version: String,
    pub(super) layout: Layout,
    pub(super) created: Instant,
    pub(super) created_millis: i64,
    /// The selected fields in SELECT order: the CSV columns.
    pub(super) columns: Vec<FieldRef>,
    pub(super) indices: Vec<u32>,
    pub(super) snapshot: Snapshot,
    /// Why the job will end `Failed`, if it will.
    pub(super) failure: Option<String>,
    /// Internal retries reported for a failed job.
    pub(super) retries: u32,
    /// Millis when the job was aborted.
    pub(super) aborted: Mutex<Option<i64>>,
}

/// All jobs of the org.
#[derive(Debug)]
pub struct Jobs {
    /// How long a job takes from creation to `JobComplete` (see `lifecycle`).
    pub(super) delay: Duration,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
    serial: AtomicU64,
    salt: u64,
    /// Result chunks being sent now, and the most ever sent at once.
    downloading: AtomicU64,
    most_downloading: AtomicU64,
}

/// Counts a result chunk as being sent until dropped.
pub(super) struct Downloading<'a>(&'a Jobs);

impl Drop for Downloading<'_> {
    fn drop(&mut self) {
        self.0.downloading.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Jobs {
    pub fn new(delay: Duration, seed: u64) -> Self {
        Jobs {
            delay,
            jobs: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(1),
            salt: mix(seed ^ 0x0750),
            downloading: AtomicU64::new(0),
            most_downloading: AtomicU64::new(0),
        }
    }

    /// The most result chunks that were ever being sent at once: how a client downloads.
    pub fn most_downloads_at_once(&self) -> u64 {
        self.most_downloading.load(Ordering::Relaxed)
    }

    /// Counts a result chunk from now until the guard is dropped.
    pub(super) fn downloading(&self) -> Downloading<'_> {
        let now = self.downloading.fetch_add(1, Ordering::Relaxed) + 1;
        self.most_downloading.fetch_max(now, Ordering::Relaxed);
        Downloading(self)
    }

    /// Query jobs created so far (for `/limits`).
    pub fn created(&self) -> u64 {
        self.serial.load(Ordering::Relaxed) - 1
    }

    pub(super) fn next_id(&self) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut core = [0u8; 15];
        core[..3].copy_from_slice(b"750");
        base62_into(&mut core[3..7], mix(self.salt ^ serial));
        base62_into(&mut core[7..], serial);
        SalesforceId::from_core(core).to_string()
    }

    pub(super) fn get(&self, id: &str) -> Option<Arc<Job>> {
        let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        jobs.get(id).cloned().or_else(|| {
            // Accept the 15-character form too.
            let full = SalesforceId::parse(id).ok()?;
            jobs.get(full.as_str()).cloned()
        })
    }

    pub(super) fn insert(&self, job: Arc<Job>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        if jobs.len() >= MAX_JOBS
            && let Some(oldest) = jobs
                .values()
                .min_by_key(|j| j.created)
                .map(|j| j.id.clone())
        {
            jobs.remove(&oldest);
        }
        jobs.insert(job.id.clone(), job);
    }

    /// Every job, oldest first (`GET /jobs/query`).
    pub(super) fn list(&self) -> Vec<Arc<Job>> {
        let all = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Arc<Job>> = all.values().cloned().collect();
        list.sort_by_key(|j| j.created);
        list
    }

    /// Forgets a job, named by its 18- or 15-character Id (`DELETE /jobs/query/{id}`).
    pub(super) fn remove(&self, id: &str) -> Option<Arc<Job>> {
        let key = self.get(id).map_or_else(|| id.to_owned(), |j| j.id.clone());
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key)
    }
}
