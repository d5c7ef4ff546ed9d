//! The record store: the generated base plus an overlay of changed records.
//!
//! The overlay is copy-on-write behind an `Arc`, so a request takes one snapshot per table
//! ([`TableView`]) and reads it lock-free while it renders thousands of records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use common::sfid::SalesforceId;

use super::generate::Generator;
use super::{ObjectKind, Value};

/// Records that differ from what the generator produces, keyed by record index.
#[derive(Debug, Default)]
struct Overlay {
    records: HashMap<u32, Arc<[Value]>>,
}

#[derive(Debug)]
struct Table {
    /// Records `0..base` exist in the generated base.
    base: u32,
    overlay: Mutex<Arc<Overlay>>,
}

/// Every object's records.
#[derive(Debug)]
pub struct Store {
    generator: Generator,
    tables: [Table; 2],
}

impl Store {
    pub fn new(seed: u64, accounts: u32, contacts: u32) -> Self {
        let table = |base| Table {
            base,
            overlay: Mutex::new(Arc::new(Overlay::default())),
        };
        Store {
            generator: Generator::new(seed, accounts),
            tables: [table(accounts), table(contacts)],
        }
    }

    /// A consistent snapshot of one object's records.
    pub fn view(&self, obj: ObjectKind) -> TableView<'_> {
        let table = &self.tables[obj as usize];
        let overlay = table
            .overlay
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        TableView {
            generator: &self.generator,
            obj,
            base: table.base,
            overlay,
        }
    }

    /// Replaces some fields of an existing record, keeping the rest as they were.
    /// Returns false when the record does not exist.
    pub fn update(&self, obj: ObjectKind, index: u32, changes: &[(usize, Value)]) -> bool {
        let view = self.view(obj);
        if index >= view.len() {
            return false;
        }
        let mut record: Vec<Value> = (0..obj.def().fields.len())
            .map(|f| view.value(index, f))
            .collect();
        for (field, value) in changes {
            record[*field] = value.clone();
        }
        let table = &self.tables[obj as usize];
        let mut guard = table.overlay.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Overlay {
            records: guard.records.clone(),
        };
        next.records.insert(index, record.into());
        *guard = Arc::new(next);
        true
    }
}

/// One object's records as of the moment the view was taken.
#[derive(Debug, Clone)]
pub struct TableView<'a> {
    generator: &'a Generator,
    obj: ObjectKind,
    base: u32,
    overlay: Arc<Overlay>,
}

impl TableView<'_> {
    pub fn object(&self) -> ObjectKind {
        self.obj
    }

    /// Number of records, deleted ones included.
    pub fn len(&self) -> u32 {
        self.base
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
            .filter(|&i| i < self.len())
    }

    pub fn id(&self, index: u32) -> SalesforceId {
        self.generator.id(self.obj, index)
    }
}
