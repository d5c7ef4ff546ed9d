//! The org as a call's accepted records so far leave it: reads through the call's own
//! planned writes, so that a later record of the call sees an earlier one (a record deleted,
//! an external Id taken), and the external Id index the call matches upserts on.

use std::collections::HashMap;
use std::sync::Arc;

use super::RecordError;
use super::commit::{cross_reference, error};
use crate::data::{ObjectDef, ObjectKind, Snapshot, TableView, Value};
use crate::org::Org;
use common::sfid::SalesforceId;

/// One accepted write, in request order.
pub(super) struct Step {
    pub(super) obj: ObjectKind,
    pub(super) index: u32,
    pub(super) changes: Vec<(usize, Value)>,
    pub(super) create: bool,
    pub(super) delete: bool,
}

/// The org as the call's accepted records so far leave it.
pub(super) struct Pending<'a> {
    pub(super) snapshot: Snapshot,
    pub(super) views: HashMap<ObjectKind, TableView<'a>>,
    pub(super) steps: Vec<Step>,
    /// Positions in `steps` per record, so that reads through them cost the record's own
    /// steps, not the whole call's (an index build reads every changed record).
    by_record: HashMap<(ObjectKind, u32), Vec<usize>>,
    /// Per object: next create's index.
    pub(super) next: HashMap<ObjectKind, u32>,
    /// Per object: external Id value (lowercase) → live records holding it.
    pub(super) external: HashMap<ObjectKind, HashMap<String, Vec<u32>>>,
}

impl<'a> Pending<'a> {
    pub(super) fn new(snapshot: Snapshot) -> Self {
        Pending {
            snapshot,
            views: HashMap::new(),
            steps: Vec::new(),
            by_record: HashMap::new(),
            next: HashMap::new(),
            external: HashMap::new(),
        }
    }

    pub(super) fn view(&mut self, org: &'a Org, obj: ObjectKind) -> &TableView<'a> {
        let snapshot = &self.snapshot;
        self.views
            .entry(obj)
            .or_insert_with(|| org.store.view_in(snapshot, obj))
    }

    pub(super) fn def(&self, obj: ObjectKind) -> Arc<ObjectDef> {
        self.snapshot.schema.def_arc(obj)
    }

    /// Accepts one write.
    pub(super) fn push(&mut self, step: Step) {
        self.by_record
            .entry((step.obj, step.index))
            .or_default()
            .push(self.steps.len());
        self.steps.push(step);
    }

    /// The call's steps on one record, oldest first.
    fn steps_of(&self, obj: ObjectKind, index: u32) -> impl DoubleEndedIterator<Item = &Step> {
        self.by_record
            .get(&(obj, index))
            .into_iter()
            .flatten()
            .map(|&at| &self.steps[at])
    }

    pub(super) fn deleted(&mut self, org: &'a Org, obj: ObjectKind, index: u32) -> bool {
        let planned = self.steps_of(obj, index).any(|s| s.delete);
        planned || self.view(org, obj).is_deleted(index)
    }

    /// Field `f` of an existing record as the call leaves it so far.
    pub(super) fn read(&mut self, org: &'a Org, obj: ObjectKind, index: u32, f: usize) -> Value {
        let planned = self.steps_of(obj, index).rev().find_map(|s| {
            s.changes
                .iter()
                .find(|(g, _)| *g == f)
                .map(|(_, v)| v.clone())
        });
        planned.unwrap_or_else(|| self.view(org, obj).value(index, f))
    }

    /// The live record an update or delete names.
    pub(super) fn existing(
        &mut self,
        org: &'a Org,
        obj: ObjectKind,
        id: &SalesforceId,
    ) -> Result<u32, RecordError> {
        let index = self
            .view(org, obj)
            .index_of(id)
            .ok_or_else(cross_reference)?;
        if self.deleted(org, obj, index) {
            return Err(error("ENTITY_IS_DELETED", "entity is deleted", Vec::new()));
        }
        Ok(index)
    }

    /// Builds the external Id index of `obj` once per call, from the records the generator
    /// did not write alone (the only ones that can hold a value).
    pub(super) fn index_external(&mut self, org: &'a Org, obj: ObjectKind) {
        if self.external.contains_key(&obj) {
            return;
        }
        let mut index: HashMap<String, Vec<u32>> = HashMap::new();
        if let Some(f) = self.def(obj).fields.iter().position(|f| f.external_id) {
            let view = self.view(org, obj).clone();
            for i in view.changed() {
                if self.deleted(org, obj, i) {
                    continue;
                }
                if let Value::Text(text) = self.read(org, obj, i, f) {
                    index.entry(text.to_lowercase()).or_default().push(i);
                }
            }
        }
        for list in index.values_mut() {
            list.sort_unstable();
        }
        self.external.insert(obj, index);
    }

    /// Live records of `obj` whose external Id holds `value`, ignoring case.
    pub(super) fn holders(&mut self, org: &'a Org, obj: ObjectKind, value: &str) -> Vec<u32> {
        self.index_external(org, obj);
        self.external[&obj]
            .get(&value.to_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    /// Moves record `index` from its old external Id value to `value` (`None`: no value).
    pub(super) fn rehome(
        &mut self,
        org: &'a Org,
        obj: ObjectKind,
        index: u32,
        value: Option<&str>,
    ) {
        self.index_external(org, obj);
        if let Some(map) = self.external.get_mut(&obj) {
            for list in map.values_mut() {
                list.retain(|&i| i != index);
            }
            if let Some(v) = value {
                map.entry(v.to_lowercase()).or_default().push(index);
            }
        }
    }

    pub(super) fn id(&mut self, org: &'a Org, obj: ObjectKind, index: u32) -> String {
        self.view(org, obj).id(index).to_string()
    }
}
