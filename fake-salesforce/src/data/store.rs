//! The record store: the generated base plus an overlay of changed, created and removed
//! records.
//!
//! The overlay is copy-on-write behind an `Arc`: a request takes one [`Snapshot`] and reads it
//! lock-free while it renders thousands of records, and a mutation builds the next overlay
//! and swaps it in. Query cursors and Bulk jobs keep their snapshot, so their results do not
//! change under them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use common::sfid::SalesforceId;

use super::generate::Generator;
use super::{ObjectKind, Value};

/// How one object's records differ from what the generator produces.
#[derive(Debug, Clone, Default)]
struct Overlay {
    /// Records `0..len` exist (minus `gone`): the generated base plus created records.
    len: u32,
    /// Full records that differ from the generator's, keyed by record index.
    records: HashMap<u32, Arc<[Value]>>,
    /// Purged or hard-deleted records: invisible even to queryAll.
    gone: HashSet<u32>,
}

/// Every object's records at one moment. Cheap to clone (one `Arc` per object).
#[derive(Debug, Clone)]
pub struct Snapshot {
    tables: [Arc<Overlay>; 2],
}

/// Every object's records.
#[derive(Debug)]
pub struct Store {
    generator: Generator,
    current: Mutex<Snapshot>,
}

impl Store {
    pub fn new(seed: u64, accounts: u32, contacts: u32) -> Self {
        let table = |len| {
            Arc::new(Overlay {
                len,
                ..Overlay::default()
            })
        };
        Store {
            generator: Generator::new(seed, accounts),
            current: Mutex::new(Snapshot {
                tables: [table(accounts), table(contacts)],
            }),
        }
    }

    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    /// The current state of every object, for reading later with [`Self::view_in`].
    pub fn snapshot(&self) -> Snapshot {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// One object's records as of `snapshot`.
    pub fn view_in(&self, snapshot: &Snapshot, obj: ObjectKind) -> TableView<'_> {
        TableView {
            generator: &self.generator,
            obj,
            overlay: Arc::clone(&snapshot.tables[obj as usize]),
        }
    }

    /// A consistent view of one object's current records.
    pub fn view(&self, obj: ObjectKind) -> TableView<'_> {
        self.view_in(&self.snapshot(), obj)
    }

    /// Applies a batch of changes to one object atomically: readers see all of them or none.
    pub fn edit<R>(&self, obj: ObjectKind, f: impl FnOnce(&mut Edit<'_>) -> R) -> R {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let mut overlay = (*current.tables[obj as usize]).clone();
        let result = f(&mut Edit {
            generator: &self.generator,
            obj,
            overlay: &mut overlay,
        });
        current.tables[obj as usize] = Arc::new(overlay);
        result
    }
}

/// Changes to one object's records, applied by [`Store::edit`].
pub struct Edit<'a> {
    generator: &'a Generator,
    obj: ObjectKind,
    overlay: &'a mut Overlay,
}

impl Edit<'_> {
    fn record(&self, index: u32) -> Vec<Value> {
        match self.overlay.records.get(&index) {
            Some(record) => record.to_vec(),
            None => (0..self.obj.def().fields.len())
                .map(|f| self.generator.value(self.obj, index, f))
                .collect(),
        }
    }

    /// Replaces some fields of an existing record, keeping the rest. False when the record
    /// does not exist (or is gone).
    pub fn update(&mut self, index: u32, changes: &[(usize, Value)]) -> bool {
        if index >= self.overlay.len || self.overlay.gone.contains(&index) {
            return false;
        }
        let mut record = self.record(index);
        for (field, value) in changes {
            record[*field] = value.clone();
        }
        self.overlay.records.insert(index, record.into());
        true
    }

    /// Appends a record whose fields start as the generator would make record `len`, with
    /// `changes` applied; returns its index. The Id always follows the sequence.
    pub fn create(&mut self, changes: &[(usize, Value)]) -> u32 {
        let index = self.overlay.len;
        self.overlay.len += 1;
        let mut record = self.record(index);
        for (field, value) in changes {
            record[*field] = value.clone();
        }
        self.overlay.records.insert(index, record.into());
        index
    }

    /// Removes a record from every query, queryAll included.
    pub fn remove(&mut self, index: u32) {
        if index < self.overlay.len {
            self.overlay.gone.insert(index);
            self.overlay.records.remove(&index);
        }
    }
}

/// One object's records as of the moment the view was taken.
#[derive(Debug, Clone)]
pub struct TableView<'a> {
    generator: &'a Generator,
    obj: ObjectKind,
    overlay: Arc<Overlay>,
}

impl TableView<'_> {
    pub fn object(&self) -> ObjectKind {
        self.obj
    }

    /// Size of the index space: every record ever created, gone ones included. Iterate
    /// `0..len()` and skip indices that are not [`Self::exists`].
    pub fn len(&self) -> u32 {
        self.overlay.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether record `index` is visible to queryAll (created and not purged or hard-deleted).
    pub fn exists(&self, index: u32) -> bool {
        index < self.overlay.len
            && (self.overlay.gone.is_empty() || !self.overlay.gone.contains(&index))
    }

    /// Records queryAll sees: soft-deleted included, gone excluded.
    pub fn count(&self) -> u32 {
        self.overlay.len - self.overlay.gone.len() as u32
    }

    /// Indices of every record that [`Self::exists`], in Id order.
    pub fn indices(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len()).filter(|&i| self.exists(i))
    }

    /// Field `field` of record `index` (which must be below [`Self::len`]).
    pub fn value(&self, index: u32, field: usize) -> Value {
        if !self.overlay.records.is_empty()
            && let Some(record) = self.overlay.records.get(&index)
        {
            return record[field].clone();
        }
        self.generator.value(self.obj, index, field)
    }

    pub fn is_deleted(&self, index: u32) -> bool {
        self.value(index, self.obj.def().is_deleted_field()) == Value::Bool(true)
    }

    /// The record an Id names, if it exists in this table.
    pub fn index_of(&self, id: &SalesforceId) -> Option<u32> {
        self.generator
            .index_of(self.obj, id)
            .filter(|&i| self.exists(i))
    }

    pub fn id(&self, index: u32) -> SalesforceId {
        self.generator.id(self.obj, index)
    }
}
