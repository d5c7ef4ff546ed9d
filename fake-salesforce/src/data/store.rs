//! The record store: the generated base plus an overlay of changed, created and removed
//! records, and the schema those records are read with.
//!
//! The state is copy-on-write behind `Arc`s: a request takes one [`Snapshot`] and reads it
//! lock-free while it renders thousands of records, and a mutation builds the next overlay
//! (or schema) and swaps it in. Query cursors and Bulk jobs keep their snapshot, so their
//! results do not change under them.
//!
//! The overlay is sparse: a changed record keeps only the fields that differ from the
//! generator's, so updating 300,000 records of a 250-field object costs the changed fields,
//! not 250 values each; formula recalculations are a counter per record (or per table).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use common::sfid::SalesforceId;

use super::generate::{Generator, with_nul};
use super::schema::{ObjectDef, ObjectKind, Schema};
use super::{FieldType, Value};

/// How one object's records differ from what the generator produces.
#[derive(Debug, Clone, Default)]
struct Overlay {
    /// Records `0..len` exist (minus `gone`): the generated base plus created records.
    len: u32,
    /// Changed fields per record index, sorted by field.
    changes: HashMap<u32, Arc<[(u16, Value)]>>,
    /// Purged or hard-deleted records: invisible even to queryAll.
    gone: HashSet<u32>,
    /// Formula recalculations of every record.
    formula_epoch: u32,
    /// Formula recalculations of single records since the last table-wide one.
    formula_epochs: HashMap<u32, u32>,
}

/// Every object's records at one moment, with the schema to read them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub schema: Arc<Schema>,
    tables: Vec<Arc<Overlay>>,
    /// Every Nth record's Description/Title carries a NUL (0: none); see
    /// [`crate::Faults::nul_every`].
    nul_every: u64,
}

/// Every object's records.
#[derive(Debug)]
pub struct Store {
    generator: Generator,
    current: Mutex<Snapshot>,
}

impl Store {
    /// `counts` is the number of generated records per object, in schema order.
    pub fn new(schema: Schema, seed: u64, counts: Vec<u32>) -> Self {
        let prefixes = schema
            .kinds()
            .map(|k| {
                let mut p = [b'0'; 3];
                p.copy_from_slice(&schema.def(k).key_prefix.as_bytes()[..3]);
                p
            })
            .collect();
        let tables = counts
            .iter()
            .map(|&len| {
                Arc::new(Overlay {
                    len,
                    ..Overlay::default()
                })
            })
            .collect();
        Store {
            generator: Generator::new(seed, prefixes, counts),
            current: Mutex::new(Snapshot {
                schema: Arc::new(schema),
                tables,
                nul_every: 0,
            }),
        }
    }

    pub fn generator(&self) -> &Generator {
        &self.generator
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current state of every object, for reading later with [`Self::view_in`].
    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }

    /// The current schema.
    pub fn schema(&self) -> Arc<Schema> {
        Arc::clone(&self.lock().schema)
    }

    /// One object's records as of `snapshot`.
    pub fn view_in(&self, snapshot: &Snapshot, obj: ObjectKind) -> TableView<'_> {
        TableView {
            generator: &self.generator,
            obj,
            def: snapshot.schema.def_arc(obj),
            overlay: Arc::clone(&snapshot.tables[obj.index()]),
            nul_every: snapshot.nul_every,
        }
    }

    /// A consistent view of one object's current records.
    pub fn view(&self, obj: ObjectKind) -> TableView<'_> {
        self.view_in(&self.snapshot(), obj)
    }

    /// Applies a batch of changes to one object atomically: readers see all of them or none.
    pub fn edit<R>(&self, obj: ObjectKind, f: impl FnOnce(&mut Edit<'_>) -> R) -> R {
        let mut current = self.lock();
        let mut overlay = (*current.tables[obj.index()]).clone();
        let result = f(&mut Edit {
            overlay: &mut overlay,
        });
        current.tables[obj.index()] = Arc::new(overlay);
        result
    }

    /// Replaces the schema with what `change` makes of it (or leaves it on an error).
    pub fn change_schema<E>(
        &self,
        change: impl FnOnce(&Schema, &[u32]) -> Result<Schema, E>,
    ) -> Result<(), E> {
        let mut current = self.lock();
        let lens: Vec<u32> = current.tables.iter().map(|t| t.len).collect();
        let next = change(&current.schema, &lens)?;
        current.schema = Arc::new(next);
        Ok(())
    }

    /// Puts a NUL into every `every`th record's Description and Title (0: none).
    pub fn set_nul_every(&self, every: u64) {
        self.lock().nul_every = every;
    }
}

/// Changes to one object's records, applied by [`Store::edit`].
pub struct Edit<'a> {
    overlay: &'a mut Overlay,
}

impl Edit<'_> {
    fn merge(&mut self, index: u32, changes: &[(usize, Value)]) {
        let mut fields: Vec<(u16, Value)> = self
            .overlay
            .changes
            .get(&index)
            .map(|c| c.to_vec())
            .unwrap_or_default();
        for (field, value) in changes {
            let field = *field as u16;
            match fields.binary_search_by_key(&field, |(f, _)| *f) {
                Ok(at) => fields[at].1 = value.clone(),
                Err(at) => fields.insert(at, (field, value.clone())),
            }
        }
        self.overlay.changes.insert(index, fields.into());
    }

    fn live(&self, index: u32) -> bool {
        index < self.overlay.len && !self.overlay.gone.contains(&index)
    }

    /// Replaces some fields of an existing record, keeping the rest. False when the record
    /// does not exist (or is gone).
    pub fn update(&mut self, index: u32, changes: &[(usize, Value)]) -> bool {
        if !self.live(index) {
            return false;
        }
        self.merge(index, changes);
        true
    }

    /// Appends a record whose fields start as the generator would make record `len`, with
    /// `changes` applied; returns its index. The Id always follows the sequence.
    pub fn create(&mut self, changes: &[(usize, Value)]) -> u32 {
        let index = self.overlay.len;
        self.overlay.len += 1;
        self.merge(index, changes);
        index
    }

    /// Removes a record from every query, queryAll included.
    pub fn remove(&mut self, index: u32) {
        if index < self.overlay.len {
            self.overlay.gone.insert(index);
            self.overlay.changes.remove(&index);
        }
    }

    /// Recalculates the formula fields of one record (their values change, nothing else).
    pub fn recalculate(&mut self, index: u32) {
        if self.live(index) {
            let base = self.overlay.formula_epoch;
            let epoch = self.overlay.formula_epochs.entry(index).or_insert(base);
            *epoch = (*epoch).max(base) + 1;
        }
    }

    /// Recalculates the formula fields of every record.
    pub fn recalculate_all(&mut self) {
        let highest = self.overlay.formula_epochs.values().copied().max();
        self.overlay.formula_epoch = self.overlay.formula_epoch.max(highest.unwrap_or(0)) + 1;
        self.overlay.formula_epochs.clear();
    }
}

/// One object's records as of the moment the view was taken.
#[derive(Debug, Clone)]
pub struct TableView<'a> {
    generator: &'a Generator,
    obj: ObjectKind,
    def: Arc<ObjectDef>,
    overlay: Arc<Overlay>,
    nul_every: u64,
}

impl TableView<'_> {
    pub fn object(&self) -> ObjectKind {
        self.obj
    }

    /// The object's definition as of this view.
    pub fn def(&self) -> &ObjectDef {
        &self.def
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
        let f = &self.def.fields[field];
        let value = self.stored(index, field).unwrap_or_else(|| match f.added {
            Some(added) if index < added.below && !added.generated => {
                if f.ty == FieldType::Boolean {
                    Value::Bool(false)
                } else {
                    Value::Null
                }
            }
            _ => {
                let epoch = if f.calculated { self.epoch(index) } else { 0 };
                self.generator
                    .value(self.obj, &self.def, index, field, epoch)
            }
        });
        if self.nul_every > 0 && f.nul_target && u64::from(index).is_multiple_of(self.nul_every) {
            return with_nul(value);
        }
        value
    }

    fn stored(&self, index: u32, field: usize) -> Option<Value> {
        if self.overlay.changes.is_empty() {
            return None;
        }
        let changes = self.overlay.changes.get(&index)?;
        let at = changes
            .binary_search_by_key(&(field as u16), |(f, _)| *f)
            .ok()?;
        Some(changes[at].1.clone())
    }

    fn epoch(&self, index: u32) -> u32 {
        let base = self.overlay.formula_epoch;
        match self.overlay.formula_epochs.get(&index) {
            Some(&e) => e.max(base),
            None => base,
        }
    }

    /// Records whose fields differ from the generator's (updated or created), in no order:
    /// the only ones that can hold a value the generator never writes, such as an external Id.
    pub fn changed(&self) -> impl Iterator<Item = u32> + '_ {
        self.overlay
            .changes
            .keys()
            .copied()
            .filter(|&i| self.exists(i))
    }

    pub fn is_deleted(&self, index: u32) -> bool {
        self.def
            .is_deleted_field()
            .is_some_and(|f| self.value(index, f) == Value::Bool(true))
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
