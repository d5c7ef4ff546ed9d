//! Query locators: server-side cursors behind `nextRecordsUrl`.
//!
//! A cursor keeps the matching record indices and the select list, never rendered JSON, so
//! a 300k-row result costs 1.2 MB and each page is rendered when it is fetched. Fetching a
//! page does not consume it (clients may retry), and cursors expire `ttl` after creation.
//!
//! A cursor also keeps the store [`Snapshot`] its query ran against, so later pages show the
//! records as they were when the query ran, even if the org was mutated in between (the
//! snapshot is copy-on-write, so this costs nothing until a mutation happens).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use common::sfid::SalesforceId;

use crate::data::generate::{base62_into, mix};
use crate::data::{ObjectKind, Snapshot};
use crate::soql::SelectItem;

/// Beyond this many open cursors the oldest are dropped, so a long-running demo that keeps
/// re-importing cannot grow without bound (Salesforce itself no longer caps open cursors).
const MAX_OPEN: usize = 10_000;

/// One open result set.
#[derive(Debug)]
pub struct Cursor {
    pub object: ObjectKind,
    pub select: Vec<SelectItem>,
    pub indices: Vec<u32>,
    /// Records per page, fixed when the query ran.
    pub batch: usize,
    /// The records as of the moment the query ran.
    pub snapshot: Snapshot,
    created: Instant,
}

impl Cursor {
    pub fn new(
        object: ObjectKind,
        select: Vec<SelectItem>,
        indices: Vec<u32>,
        batch: usize,
        snapshot: Snapshot,
    ) -> Self {
        Cursor {
            object,
            select,
            indices,
            batch,
            snapshot,
            created: Instant::now(),
        }
    }
}

/// All open cursors, keyed by their 18-character id.
#[derive(Debug)]
pub struct Cursors {
    ttl: Duration,
    open: Mutex<HashMap<String, Arc<Cursor>>>,
    serial: AtomicU64,
    salt: u64,
}

impl Cursors {
    pub fn new(ttl: Duration, seed: u64) -> Self {
        Cursors {
            ttl,
            open: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(1),
            salt: mix(seed ^ 0x0167),
        }
    }

    /// Registers a cursor and returns its id (`01g…`, 18 characters).
    pub fn open_shared(&self, cursor: Arc<Cursor>) -> String {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let mut core = [0u8; 15];
        core[..3].copy_from_slice(b"01g");
        base62_into(&mut core[3..7], mix(self.salt ^ serial));
        base62_into(&mut core[7..], serial);
        let id = SalesforceId::from_core(core).to_string();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        // Expired cursors are dropped lazily, whenever a new one opens.
        open.retain(|_, c| c.created.elapsed() < self.ttl);
        while open.len() >= MAX_OPEN {
            let Some(oldest) = open
                .iter()
                .min_by_key(|(_, c)| c.created)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(id.clone(), cursor);
        id
    }

    /// Resolves a locator `<cursor id>-<offset>` to its cursor and row offset. `None` for a
    /// malformed, unknown or expired locator, or an offset past the end.
    pub fn get(&self, locator: &str) -> Option<(String, Arc<Cursor>, usize)> {
        let (id, offset) = locator.rsplit_once('-')?;
        let offset: usize = offset.parse().ok()?;
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let cursor = open.get(id)?.clone();
        if cursor.created.elapsed() >= self.ttl {
            open.remove(id);
            return None;
        }
        (offset < cursor.indices.len()).then(|| (id.to_owned(), cursor, offset))
    }

    /// Forgets every open cursor: their locators answer `INVALID_QUERY_LOCATOR` from now on.
    pub fn expire_all(&self) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Number of cursors currently held (expired ones included until the next sweep).
    pub fn open_count(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}
