//! The fake org's state: configuration, records, issued tokens, open cursors and the API
//! usage counter, plus the inspection API that tests use to compare a database against it.
//!
//! [`mutate`] changes the org while it runs, [`write`] applies sObject Collections calls;
//! [`replication`] answers getUpdated/getDeleted.

mod mutate;
mod replication;
mod write;

mod fields;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value as Json};

use crate::OrgConfig;
use crate::auth::Tokens;
use crate::bulk::Jobs;
use crate::cursor::Cursors;
use crate::data::generate::{GENERATED_BEFORE_MS, base62_into, mix};
use crate::data::{ObjectKind, Schema, Store};
use crate::faults::{Counters, FaultStats, Faults};
use crate::render::write_record;
use crate::soql::SelectItem;
use crate::soql::eval::Tables;
use common::sfid::SalesforceId;

pub use fields::{FieldChange, FieldsRequest, FieldsResponse, NewField};
pub use mutate::{MutateRequest, MutateResponse};
pub use write::{
    MAX_RECORDS, Operation, ROLLED_BACK, RecordError, RecordResult, ValidationRequest,
    ValidationResponse, WriteCall,
};

/// What mutations leave behind besides the records themselves.
#[derive(Debug, Default)]
struct History {
    /// Mutation calls so far; varies the seeded choice of records per call.
    serial: u64,
    /// SystemModstamp (epoch millis) of the latest mutation.
    last_stamp: Option<i64>,
    /// The delete log getDeleted reads, per object: record index → deletedDate (millis).
    /// Soft-deleted and purged records stay here; hard-deleted ("vanished") ones do not.
    deletions: Vec<BTreeMap<u32, i64>>,
}

/// A running org. Shared by every request handler behind an `Arc`.
#[derive(Debug)]
pub struct Org {
    config: OrgConfig,
    store: Store,
    tokens: Tokens,
    cursors: Cursors,
    jobs: Jobs,
    /// Serialises mutations and keeps the delete log.
    history: Mutex<History>,
    /// API calls counted so far; reported in `Sforce-Limit-Info` and `/limits`.
    api_used: AtomicU64,
    /// The faults in force; starts as `config.faults`, switchable at runtime.
    faults: Mutex<Faults>,
    /// What the faults did so far.
    fault_counters: Counters,
    /// The network link every response body crosses (`--bandwidth-mbps`).
    link: crate::network::Link,
    /// Validation rules per object (`POST /__admin/validation`).
    rules: Mutex<write::Rules>,
    /// Parents locked by write calls in flight.
    locks: write::RowLocks,
    org_id: String,
    user_id: String,
}

impl Org {
    pub fn new(config: OrgConfig) -> Self {
        let minted = |prefix: &[u8; 3], salt: u64| {
            let mut core = [b'0'; 15];
            core[..3].copy_from_slice(prefix);
            base62_into(&mut core[5..], mix(config.seed ^ salt) % 62u64.pow(8));
            SalesforceId::from_core(core).to_string()
        };
        let schema = config.schema();
        for name in config.unknown_objects() {
            tracing::warn!(object = %name, shape = ?config.shape, "The record counts name an object this shape does not serve; ignored.");
        }
        let counts = config.record_counts(&schema);
        let store = Store::new(schema, config.seed, counts);
        store.set_nul_every(config.faults.nul_every);
        let objects = store.schema().len();
        Org {
            store,
            tokens: Tokens::new(config.seed),
            cursors: Cursors::new(config.locator_ttl, config.seed),
            jobs: Jobs::new(config.bulk_job_delay, config.seed),
            history: Mutex::new(History {
                deletions: vec![BTreeMap::new(); objects],
                ..History::default()
            }),
            api_used: AtomicU64::new(0),
            faults: Mutex::new(config.faults.clone()),
            fault_counters: Counters::default(),
            link: crate::network::Link::default(),
            rules: Mutex::default(),
            locks: write::RowLocks::default(),
            org_id: minted(b"00D", 1),
            user_id: minted(b"005", 2),
            config,
        }
    }

    pub fn config(&self) -> &OrgConfig {
        &self.config
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    pub(crate) fn cursors(&self) -> &Cursors {
        &self.cursors
    }

    pub(crate) fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    pub(crate) fn link(&self) -> &crate::network::Link {
        &self.link
    }

    /// Bulk API 2.0 query jobs created so far (what the daily job allocation counts).
    pub fn bulk_jobs_created(&self) -> u64 {
        self.jobs.created()
    }

    /// The most Bulk result chunks that were ever being sent at once.
    pub fn bulk_downloads_at_once(&self) -> u64 {
        self.jobs.most_downloads_at_once()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The org's clock in epoch millis, whole seconds: the wall clock, but never before the
    /// latest mutation's SystemModstamp nor before any generated timestamp.
    pub fn now_millis(&self) -> i64 {
        let last = self.history().last_stamp.unwrap_or(0);
        wall_clock_millis().max(last).max(GENERATED_BEFORE_MS)
    }

    /// The 18-character organization Id (`00D…`).
    pub fn org_id(&self) -> &str {
        &self.org_id
    }

    /// The 18-character Id of the integration user every token belongs to (`005…`).
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// Issues an access token without the OAuth round trip (for tests).
    pub fn issue_token(&self) -> String {
        self.tokens.issue(&self.org_id)
    }

    /// Invalidates every access token, as a session timeout would; clients must re-authenticate.
    pub fn expire_all_tokens(&self) {
        self.tokens.expire_all();
    }

    /// Every access token issued so far (expired ones too), oldest first.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.tokens.ever_issued()
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the faults in force; the next data call sees them. The data call counter that
    /// `fail_every` and `truncate_every` count with keeps running.
    pub fn set_faults(&self, faults: Faults) {
        tracing::info!(?faults, "Faults switched.");
        self.store.set_nul_every(faults.nul_every);
        *self.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// What the faults did so far.
    pub fn fault_stats(&self) -> FaultStats {
        self.fault_counters.snapshot()
    }

    pub(crate) fn fault_counters(&self) -> &Counters {
        &self.fault_counters
    }

    /// Forgets every open query cursor, as Salesforce does after a locator's inactivity
    /// timeout: following `nextRecordsUrl` then answers 400 `INVALID_QUERY_LOCATOR`.
    pub fn expire_all_cursors(&self) {
        self.cursors.expire_all();
    }

    /// API calls counted so far.
    pub fn api_usage(&self) -> u64 {
        self.api_used.load(Ordering::Relaxed)
    }

    /// Sets the usage counter, e.g. to just below the limit in a back-pressure test.
    pub fn set_api_usage(&self, used: u64) {
        self.api_used.store(used, Ordering::Relaxed);
    }

    /// Counts one API call. `Err(usage)` once the daily limit is used up; refused calls do
    /// not count.
    pub(crate) fn count_call(&self) -> Result<u64, u64> {
        let max = self.config.api_limit;
        self.api_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used < max).then_some(used + 1)
            })
            .map(|prev| prev + 1)
    }

    /// Number of open query cursors.
    pub fn open_cursors(&self) -> usize {
        self.cursors.open_count()
    }

    /// The current schema: every object and field the org serves.
    pub fn schema(&self) -> std::sync::Arc<Schema> {
        self.store.schema()
    }

    /// An object by API name, ignoring case.
    pub fn kind_of(&self, object: &str) -> Option<ObjectKind> {
        self.store.schema().object(object)
    }

    fn object(&self, object: &str) -> ObjectKind {
        self.kind_of(object)
            .unwrap_or_else(|| panic!("the fake org has no object {object:?}"))
    }

    /// Records of `object` that queryAll returns: soft-deleted ones included, purged and
    /// hard-deleted ones not. 0 for an unknown object.
    pub fn count(&self, object: &str) -> usize {
        self.kind_of(object)
            .map_or(0, |k| self.store.view(k).count() as usize)
    }

    /// The 18-character Id of record `index`. Indices number records in Id order from 0,
    /// created records continuing after the generated ones; purged or hard-deleted records
    /// keep their index (so after such mutations, indices run past [`Self::count`]).
    ///
    /// # Panics
    /// For an unknown object.
    pub fn record_id(&self, object: &str, index: usize) -> String {
        let obj = self.object(object);
        self.store.view(obj).id(index as u32).to_string()
    }

    /// Every visible field of record `index` as the REST API renders it (compound fields
    /// nested), keyed by canonical field name (no `attributes`).
    ///
    /// # Panics
    /// For an unknown object or a record that does not exist (never created, purged or
    /// hard-deleted).
    pub fn record_json(&self, object: &str, index: usize) -> Map<String, Json> {
        let tables = Tables::new(&self.store, self.object(object));
        let index = u32::try_from(index)
            .ok()
            .filter(|&i| tables.main.exists(i))
            .unwrap_or_else(|| panic!("{object} has no record {index}"));
        Self::render(&tables, index)
    }

    /// Like [`Self::record_json`], by 15- or 18-character Id; `None` when queryAll would not
    /// return it.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn record_json_by_id(&self, object: &str, id: &str) -> Option<Map<String, Json>> {
        let tables = Tables::new(&self.store, self.object(object));
        let index = tables.main.index_of(&SalesforceId::parse(id).ok()?)?;
        Some(Self::render(&tables, index))
    }

    fn render(tables: &Tables<'_>, index: u32) -> Map<String, Json> {
        let select: Vec<SelectItem> = tables.main.def().visible().map(SelectItem::Field).collect();
        let mut text = String::new();
        write_record(&mut text, tables, &select, index, "v62.0");
        let mut map: Map<String, Json> =
            serde_json::from_str(&text).expect("the renderer writes valid JSON");
        map.remove("attributes");
        map
    }

    /// Every record of `object` that queryAll returns (soft-deleted included, purged and
    /// hard-deleted not), in Id order, as [`Self::record_json`] renders it. The org's state
    /// is taken once, when this is called.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn records(&self, object: &str) -> impl Iterator<Item = Map<String, Json>> + '_ {
        let tables = Tables::new(&self.store, self.object(object));
        let indices: Vec<u32> = tables.main.indices().collect();
        indices.into_iter().map(move |i| Self::render(&tables, i))
    }
}

/// The wall clock in epoch millis, truncated to whole seconds as Salesforce stores them.
fn wall_clock_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64 * 1000)
}

/// Floors epoch millis to the minute, as getUpdated/getDeleted treat their dates.
fn floor_minute(ms: i64) -> i64 {
    ms - ms.rem_euclid(60_000)
}
