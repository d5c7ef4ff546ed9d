//! The fake org's state: configuration, records, issued tokens, open cursors and the API
//! usage counter, plus the inspection API that tests use to compare a database against it.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Map, Value as Json};

use crate::OrgConfig;
use crate::auth::Tokens;
use crate::cursor::Cursors;
use crate::data::generate::{base62_into, mix};
use crate::data::schema::object_by_name;
use crate::data::{ObjectDef, Store, Value};
use crate::render::write_record;
use crate::soql::SelectItem;
use crate::soql::eval::Tables;
use common::sfid::SalesforceId;

/// A running org. Shared by every request handler behind an `Arc`.
#[derive(Debug)]
pub struct Org {
    config: OrgConfig,
    store: Store,
    tokens: Tokens,
    cursors: Cursors,
    /// API calls counted so far; reported in `Sforce-Limit-Info` and `/limits`.
    api_used: AtomicU64,
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
        Org {
            store: Store::new(config.seed, config.accounts, config.contacts),
            tokens: Tokens::new(config.seed),
            cursors: Cursors::new(config.locator_ttl, config.seed),
            api_used: AtomicU64::new(0),
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

    fn object(object: &str) -> &'static ObjectDef {
        object_by_name(object).unwrap_or_else(|| panic!("the fake org has no object {object:?}"))
    }

    /// Records of `object`, soft-deleted ones included (queryAll sees them). 0 for an
    /// unknown object.
    pub fn count(&self, object: &str) -> usize {
        object_by_name(object).map_or(0, |o| self.store.view(o.kind).len() as usize)
    }

    /// The 18-character Id of record `index`.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn record_id(&self, object: &str, index: usize) -> String {
        let obj = Self::object(object).kind;
        self.store.view(obj).id(index as u32).to_string()
    }

    /// Every field of record `index` as the REST API renders it, keyed by canonical field
    /// name (no `attributes`).
    ///
    /// # Panics
    /// For an unknown object or an index at or past [`Self::count`].
    pub fn record_json(&self, object: &str, index: usize) -> Map<String, Json> {
        let def = Self::object(object);
        let tables = Tables::new(&self.store, def.kind);
        assert!(
            index < tables.main.len() as usize,
            "{object} has no record {index}"
        );
        Self::render(&tables, def, index as u32)
    }

    fn render(tables: &Tables<'_>, def: &ObjectDef, index: u32) -> Map<String, Json> {
        let select: Vec<SelectItem> = (0..def.fields.len()).map(SelectItem::Field).collect();
        let mut text = String::new();
        write_record(&mut text, tables, &select, index, "v62.0");
        let mut map: Map<String, Json> =
            serde_json::from_str(&text).expect("the renderer writes valid JSON");
        map.remove("attributes");
        map
    }

    /// Every record of `object` in Id order, as [`Self::record_json`] renders it.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn records(&self, object: &str) -> impl Iterator<Item = Map<String, Json>> + '_ {
        let def = Self::object(object);
        let tables = Tables::new(&self.store, def.kind);
        (0..tables.main.len()).map(move |i| Self::render(&tables, def, i))
    }

    /// Marks record `index` deleted (IsDeleted = true, SystemModstamp one second later), so
    /// `query` hides it and `queryAll` returns it. False if there is no such record.
    ///
    /// # Panics
    /// For an unknown object.
    pub fn soft_delete(&self, object: &str, index: usize) -> bool {
        let def = Self::object(object);
        let view = self.store.view(def.kind);
        let Ok(index) = u32::try_from(index) else {
            return false;
        };
        if index >= view.len() {
            return false;
        }
        let stamp = def
            .field_index("SystemModstamp")
            .expect("every object has SystemModstamp");
        let bumped = match view.value(index, stamp) {
            Value::DateTime(ms) => Value::DateTime(ms + 1000),
            other => other,
        };
        self.store.update(
            def.kind,
            index,
            &[(def.is_deleted_field(), Value::Bool(true)), (stamp, bumped)],
        )
    }
}
