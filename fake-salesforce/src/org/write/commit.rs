//! Applying a prepared call: each record checked against the org as the call's earlier
//! records leave it (unknown or deleted Ids, fields the operation may not set, required
//! fields, validation rules, external Id matches and duplicates), then every accepted write
//! applied at once with one stamp, or none of them when `allOrNone` meets a failure.
//!
//! Writes go through the same store edits, stamps and delete log as `/__admin/mutate`, so
//! queries, queryAll, getUpdated, getDeleted and Bulk jobs see them, while open cursors and
//! running Bulk jobs keep their snapshot.

use std::borrow::Cow;
use std::collections::HashMap;

use super::pending::{Pending, Step};
use super::prepare::{Item, Prepared};
use super::{Operation, RecordError, RecordResult};
use crate::data::generate::GENERATED_BEFORE_MS;
use crate::data::{FieldType, ObjectKind, Value};
use crate::org::{History, Org, wall_clock_millis};

pub(super) fn error(
    code: &'static str,
    message: impl Into<String>,
    fields: Vec<String>,
) -> RecordError {
    RecordError {
        status_code: code,
        message: message.into(),
        fields,
    }
}

pub(super) fn cross_reference() -> RecordError {
    error(
        "INVALID_CROSS_REFERENCE_KEY",
        "invalid cross reference id",
        Vec::new(),
    )
}

/// The message Salesforce gives the records of an `allOrNone` call that had no error of their
/// own.
pub const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

/// The text an item sets field `f` to, if any.
fn given(item: &Item, f: usize) -> Option<&Value> {
    item.values
        .iter()
        .rev()
        .find(|(g, _)| *g == f)
        .map(|(_, v)| v)
}

impl Org {
    /// Checks and applies `prepared` (see the module docs); `locked[i]` fails record i.
    pub(super) fn commit(
        &self,
        prepared: &Prepared,
        locked: Vec<Option<RecordError>>,
        all_or_none: bool,
    ) -> Vec<RecordResult> {
        let mut history = self.history();
        // The org's clock, never before the latest stamp. Unlike `/__admin/mutate`, a write
        // does not move it a second past the previous call: a push makes many calls a second,
        // which would run the org's clock ahead of the wall clock, and real orgs give
        // transactions of the same second the same SystemModstamp.
        let stamp = wall_clock_millis()
            .max(GENERATED_BEFORE_MS)
            .max(history.last_stamp.unwrap_or(0));
        let mut pending = Pending::new(self.store.snapshot());
        let upsert = matches!(prepared.op, Operation::Upsert { .. });
        let mut results = Vec::with_capacity(prepared.items.len());
        for (item, lock) in prepared.items.iter().zip(locked) {
            let outcome = match item.error.clone().or(lock) {
                Some(e) => Err(e),
                None if prepared.op == Operation::Delete => self.delete(&mut pending, item, stamp),
                None => self.save(&mut pending, prepared, item, stamp),
            };
            results.push(match outcome {
                Ok((id, created)) => RecordResult {
                    id: Some(id),
                    created: upsert.then_some(created),
                    errors: Vec::new(),
                    new: created,
                },
                Err(e) => RecordResult {
                    id: None,
                    created: upsert.then_some(false),
                    errors: vec![e],
                    new: false,
                },
            });
        }
        if all_or_none && results.iter().any(|r| !r.errors.is_empty()) {
            for r in results.iter_mut().filter(|r| r.errors.is_empty()) {
                if r.new {
                    r.id = None;
                }
                r.created = r.created.map(|_| false);
                r.errors = vec![error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    ROLLED_BACK,
                    Vec::new(),
                )];
            }
            return results;
        }
        if !pending.steps.is_empty() {
            history.last_stamp = Some(stamp);
            self.apply(&pending.steps, &mut history, stamp);
        }
        results
    }

    fn apply(&self, steps: &[Step], history: &mut History, stamp: i64) {
        let mut objects: Vec<ObjectKind> = steps.iter().map(|s| s.obj).collect();
        objects.sort_unstable();
        objects.dedup();
        for obj in objects {
            self.store.edit(obj, |edit| {
                for step in steps.iter().filter(|s| s.obj == obj) {
                    if step.create {
                        let index = edit.create(&step.changes);
                        debug_assert_eq!(index, step.index, "creates follow the planned indices");
                    } else {
                        edit.update(step.index, &step.changes);
                    }
                }
            });
            let log = &mut history.deletions[obj.index()];
            for step in steps.iter().filter(|s| s.obj == obj && s.delete) {
                log.insert(step.index, stamp);
            }
        }
    }

    fn delete<'a>(
        &'a self,
        pending: &mut Pending<'a>,
        item: &Item,
        stamp: i64,
    ) -> Result<(String, bool), RecordError> {
        let (Some(obj), Some(id)) = (item.obj, &item.id) else {
            return Err(cross_reference());
        };
        let index = pending.existing(self, obj, id)?;
        let def = pending.def(obj);
        let Some(is_deleted) = def.is_deleted_field() else {
            return Err(cross_reference());
        };
        let mut changes = vec![(is_deleted, Value::Bool(true))];
        changes.extend(
            def.system_modstamp_field()
                .map(|f| (f, Value::DateTime(stamp))),
        );
        pending.rehome(self, obj, index, None);
        pending.push(Step {
            obj,
            index,
            changes,
            create: false,
            delete: true,
        });
        Ok((pending.id(self, obj, index), false))
    }

    fn save<'a>(
        &'a self,
        pending: &mut Pending<'a>,
        prepared: &Prepared,
        item: &Item,
        stamp: i64,
    ) -> Result<(String, bool), RecordError> {
        let obj = item.obj.expect("records to save name their object");
        let def = pending.def(obj);
        let target = match (&prepared.op, &item.id, prepared.key) {
            (Operation::Update, Some(id), _) => Some(pending.existing(self, obj, id)?),
            (Operation::Upsert { .. }, _, Some(key)) => {
                let value = match given(item, key) {
                    Some(Value::Text(v)) => v.clone(),
                    _ => Cow::Borrowed(""),
                };
                match pending.holders(self, obj, &value)[..] {
                    [] => None,
                    [one] => Some(one),
                    ref many => {
                        let ids: Vec<String> =
                            many.iter().map(|&i| pending.id(self, obj, i)).collect();
                        return Err(error(
                            "DUPLICATE_EXTERNAL_ID",
                            format!(
                                "{}: more than one record found for external id field: [{}]",
                                def.fields[key].label,
                                ids.join(", ")
                            ),
                            Vec::new(),
                        ));
                    }
                }
            }
            _ => None,
        };
        let creating = target.is_none();
        if creating && !def.createable() {
            return Err(error(
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type cannot be inserted: {}", def.name),
                Vec::new(),
            ));
        }
        let names = |fields: Vec<usize>| -> Vec<String> {
            fields
                .into_iter()
                .map(|f| def.fields[f].name.to_owned())
                .collect()
        };
        let forbidden: Vec<usize> = item
            .values
            .iter()
            .map(|(f, _)| *f)
            .filter(|&f| {
                let field = &def.fields[f];
                if creating {
                    !field.createable()
                } else {
                    !field.updateable()
                }
            })
            .collect();
        if !forbidden.is_empty() {
            let fields = names(forbidden);
            return Err(error(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!(
                    "Unable to create/update fields: {}. Please check the security settings of \
                     this field and verify that it is read/write for your profile or permission \
                     set.",
                    fields.join(", ")
                ),
                fields,
            ));
        }
        let missing: Vec<usize> = if creating {
            def.visible()
                .filter(|&f| def.fields[f].required_on_create())
                .filter(|&f| given(item, f).is_none_or(Value::is_null))
                .collect()
        } else {
            item.values
                .iter()
                .filter(|(f, v)| v.is_null() && !def.fields[*f].is_nillable())
                .map(|(f, _)| *f)
                .collect()
        };
        if !missing.is_empty() {
            let fields = names(missing);
            return Err(error(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", fields.join(", ")),
                fields,
            ));
        }
        let mut current: HashMap<usize, Value> = HashMap::new();
        if let Some(index) = target {
            for f in def.visible() {
                if given(item, f).is_none() {
                    current.insert(f, pending.read(self, obj, index, f));
                }
            }
        }
        let resulting = |f: usize| {
            given(item, f)
                .cloned()
                .or_else(|| current.get(&f).cloned())
                .unwrap_or(Value::Null)
        };
        if let Some(e) = self.broken_rule(obj, resulting) {
            return Err(e);
        }
        let external = def.fields.iter().position(|f| f.external_id);
        let external_value = external.and_then(|f| match given(item, f) {
            Some(Value::Text(v)) if !v.is_empty() => Some((f, v.clone())),
            _ => None,
        });
        if let Some((f, value)) = &external_value
            && let Some(&other) = pending
                .holders(self, obj, value)
                .iter()
                .find(|&&i| Some(i) != target)
        {
            return Err(error(
                "DUPLICATE_VALUE",
                format!(
                    "duplicate value found: {} duplicates value on record with id: {}",
                    def.fields[*f].name,
                    pending.id(self, obj, other)
                ),
                Vec::new(),
            ));
        }
        let at = Value::DateTime(stamp);
        let index = match target {
            Some(index) => index,
            None => {
                let len = pending.view(self, obj).len();
                let next = pending.next.entry(obj).or_insert(len);
                *next += 1;
                *next - 1
            }
        };
        let mut changes: Vec<(usize, Value)> = Vec::new();
        if creating {
            // Fields the create leaves out start empty, not as the generator would fill them.
            for (f, field) in def.fields.iter().enumerate() {
                if field.createable() && !field.defaulted_on_create() {
                    changes.push((f, Value::Null));
                } else if field.createable() && field.ty == FieldType::Boolean {
                    changes.push((f, Value::Bool(false)));
                }
            }
            changes.extend(def.created_field().map(|f| (f, at.clone())));
            changes.extend(def.is_deleted_field().map(|f| (f, Value::Bool(false))));
        }
        changes.extend(item.values.iter().cloned());
        changes.extend(def.last_modified_field().map(|f| (f, at.clone())));
        changes.extend(def.system_modstamp_field().map(|f| (f, at.clone())));
        if let Some(f) = external
            && given(item, f).is_some()
        {
            let value = external_value.as_ref().map(|(_, v)| v.as_ref());
            pending.rehome(self, obj, index, value);
        }
        pending.push(Step {
            obj,
            index,
            changes,
            create: creating,
            delete: false,
        });
        Ok((pending.id(self, obj, index), creating))
    }
}
