//! Changing the org while it runs, for "stay in sync" tests: update, soft-delete, purge,
//! create and hard-delete ("vanish") records, stamped by the org's clock.
//!
//! # Semantics
//! - Every call picks its records with a seeded shuffle that depends on the org's seed and a
//!   per-org call counter: the same sequence of calls on the same org config picks the same
//!   records. Categories never share a record within one call. When fewer records qualify
//!   than asked for, the call affects as many as there are.
//! - All records a call changes share one SystemModstamp (as one DML transaction does): the
//!   wall clock (UTC, whole seconds), but never before 2024-01-01 (every generated stamp is
//!   earlier) and always at least one second after the previous call's stamp, so stamps
//!   strictly increase from call to call.
//! - `same_modstamp: true` reuses the previous call's stamp instead (a fresh one on the first
//!   call): the call's records tie with the records of the call before, like a transaction
//!   that commits late with an already-used stamp. Such a stamp can lie before a
//!   `latestDateCovered` that getUpdated already reported.
//! - Objects without some stamp fields get the ones they have; objects without IsDeleted
//!   (UserLogin, LoginHistory, CaseStatus) cannot be soft-deleted or purged, only vanish.
//! - `formula: N` recalculates the formula fields of N live records (all of them when N is at
//!   least their number), the way a changed formula or a changed parent does in a real org:
//!   the values change, SystemModstamp and LastModifiedDate do not, so no incremental sync
//!   by SystemModstamp sees it. Objects without formula fields report none.

use std::borrow::Cow;
use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::{Org, wall_clock_millis};
use crate::calendar::write_datetime;
use crate::data::generate::{GENERATED_BEFORE_MS, mix};
use crate::data::schema::is_plain_object;
use crate::data::{ObjectDef, Value};

/// What `POST /__admin/mutate` and [`Org::mutate`] should change. Counts default to 0.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutateRequest {
    /// `Account` or `Contact` (any case).
    pub object: String,
    /// Existing, not deleted records that get new field values.
    #[serde(default)]
    pub update: u32,
    /// Records soft-deleted: `IsDeleted = true`; queryAll and getDeleted still see them.
    #[serde(default)]
    pub delete: u32,
    /// Soft-deleted records emptied from the recycle bin: gone from queryAll, still in
    /// getDeleted. Records are soft-deleted first (in this call) when too few are deleted.
    #[serde(default)]
    pub purge: u32,
    /// New records, Ids continuing the sequence.
    #[serde(default)]
    pub create: u32,
    /// Records removed without a trace: not in query, queryAll or getDeleted.
    #[serde(default)]
    pub vanish: u32,
    /// Reuse the previous call's SystemModstamp (see the module docs).
    #[serde(default)]
    pub same_modstamp: bool,
    /// Records whose formula fields are recalculated, without a new SystemModstamp.
    #[serde(default)]
    pub formula: u32,
}

impl MutateRequest {
    /// A request that changes nothing yet on `object`.
    pub fn new(object: &str) -> Self {
        MutateRequest {
            object: object.to_owned(),
            ..MutateRequest::default()
        }
    }
}

/// The 18-character Ids each category affected, in Id order, and the stamp they got.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MutateResponse {
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub purged: Vec<String>,
    pub created: Vec<String>,
    pub vanished: Vec<String>,
    /// Records whose formula fields were recalculated (their stamps unchanged).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub formula: Vec<String>,
    /// The SystemModstamp of every changed record, REST form (`…T10:20:30.000+0000`).
    #[serde(rename = "systemModstamp")]
    pub system_modstamp: String,
    /// The same stamp in epoch milliseconds.
    #[serde(rename = "systemModstampMillis")]
    pub system_modstamp_millis: i64,
}

/// A small seeded generator for the per-call choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = mix(self.0);
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Takes up to `n` random entries out of `pool` (partial Fisher-Yates), in index order.
    fn take(&mut self, pool: &mut Vec<u32>, n: u32) -> Vec<u32> {
        let n = (n as usize).min(pool.len());
        for k in 0..n {
            let j = k + self.below(pool.len() - k);
            pool.swap(k, j);
        }
        let mut picked: Vec<u32> = pool.drain(..n).collect();
        picked.sort_unstable();
        picked
    }
}

const LAST_NAMES: &[&str] = &[
    "Updated",
    "O'Connor",
    "Nakamura-Smith",
    "\"The\" Boss",
    "Weiß",
    "de la Cruz, Jr.",
    "李",
];
const TITLES: &[&str] = &[
    "Chief Revenue Officer",
    "Head of \"Growth\"",
    "Engineer, Platform",
    "Procurement Lead",
    "Line one\nLine two",
];
const ACCOUNT_WORDS: &[&str] = &["Renamed", "Merged", "Rebranded", "Acquired", "Neue"];

impl Org {
    /// Changes the org as `request` says and reports which records changed (see the
    /// module docs of `mutate` for the rules). Visible to every query that starts afterwards;
    /// open query cursors and Bulk jobs keep the records as they were.
    ///
    /// # Panics
    /// For an unknown object, or deletions on an object without IsDeleted (see
    /// [`Self::check_mutation`]).
    pub fn mutate(&self, request: MutateRequest) -> MutateResponse {
        if let Err(why) = self.check_mutation(&request) {
            panic!("{why}");
        }
        let schema = self.store.schema();
        let obj = schema
            .object(&request.object)
            .expect("check_mutation found the object");
        let def = schema.def(obj);
        let mut history = self.history();
        history.serial += 1;
        let stamp = match (request.same_modstamp, history.last_stamp) {
            (true, Some(last)) => last,
            (_, last) => wall_clock_millis()
                .max(GENERATED_BEFORE_MS)
                .max(last.map_or(0, |l| l + 1000)),
        };
        history.last_stamp = Some(stamp);
        let mut rng = Rng(mix(self.config.seed
            ^ 0x4D55_5441_5445
            ^ history.serial << 8));

        let view = self.store.view(obj);
        let (mut deleted_pool, mut live): (Vec<u32>, Vec<u32>) =
            view.indices().partition(|&i| view.is_deleted(i));
        let formula_pool: Vec<u32> = live.clone();
        let updated = rng.take(&mut live, request.update);
        let deleted = rng.take(&mut live, request.delete);
        let mut purged = rng.take(&mut deleted_pool, request.purge);
        let short = request.purge - purged.len() as u32;
        let fresh_purged = rng.take(&mut live, short);
        let mut rest: Vec<u32> = live.into_iter().chain(deleted_pool).collect();
        rest.sort_unstable();
        let vanished = rng.take(&mut rest, request.vanish);
        // New Contacts get a live Account, as the generated ones do.
        let parent = def
            .field_index("AccountId")
            .and_then(|f| def.fields[f].target.map(|t| (f, t)))
            .filter(|_| def.name == "Contact");
        let parents: Vec<u32> = match parent {
            Some((_, target)) => {
                let accounts = self.store.view(target);
                accounts
                    .indices()
                    .filter(|&i| !accounts.is_deleted(i))
                    .collect()
            }
            None => Vec::new(),
        };

        let stamp_field = def.system_modstamp_field();
        let last_mod_field = def.last_modified_field();
        let created_field = def.created_field();
        let deleted_field = def.is_deleted_field();
        let at = Value::DateTime(stamp);
        let stamped = |fields: &[Option<usize>]| -> Vec<(usize, Value)> {
            fields.iter().flatten().map(|&f| (f, at.clone())).collect()
        };
        let generator = self.store.generator();
        let gone: HashSet<u32> = deleted
            .iter()
            .chain(&fresh_purged)
            .chain(&vanished)
            .copied()
            .collect();
        let has_formulas = def.fields.iter().any(|f| f.calculated);
        let (created, formula) = self.store.edit(obj, |edit| {
            for &i in &updated {
                let mut changes = new_values(def, &mut rng, i);
                changes.extend(stamped(&[last_mod_field, stamp_field]));
                edit.update(i, &changes);
            }
            for &i in deleted.iter().chain(&fresh_purged) {
                let mut changes = stamped(&[stamp_field]);
                changes.extend(deleted_field.map(|f| (f, Value::Bool(true))));
                edit.update(i, &changes);
            }
            for &i in purged.iter().chain(&fresh_purged).chain(&vanished) {
                edit.remove(i);
            }
            let created: Vec<u32> = (0..request.create)
                .map(|_| {
                    let mut changes = stamped(&[created_field, last_mod_field, stamp_field]);
                    changes.extend(deleted_field.map(|f| (f, Value::Bool(false))));
                    if let Some((field, target)) = parent {
                        let value = if parents.is_empty() || rng.below(10) == 0 {
                            Value::Null
                        } else {
                            let p = parents[rng.below(parents.len())];
                            Value::Id(generator.id(target, p))
                        };
                        changes.push((field, value));
                    }
                    edit.create(&changes)
                })
                .collect();
            let mut pool: Vec<u32> = formula_pool
                .into_iter()
                .filter(|i| !gone.contains(i))
                .collect();
            let formula = if !has_formulas || request.formula == 0 {
                Vec::new()
            } else if request.formula as usize >= pool.len() {
                edit.recalculate_all();
                pool
            } else {
                let picked = rng.take(&mut pool, request.formula);
                for &i in &picked {
                    edit.recalculate(i);
                }
                picked
            };
            (created, formula)
        });

        let log = &mut history.deletions[obj.index()];
        for &i in deleted.iter().chain(&fresh_purged) {
            log.insert(i, stamp);
        }
        for i in &vanished {
            log.remove(i);
        }
        drop(history);
        purged.extend(fresh_purged);
        purged.sort_unstable();

        let ids = |indices: &[u32]| -> Vec<String> {
            indices
                .iter()
                .map(|&i| generator.id(obj, i).to_string())
                .collect()
        };
        let mut formatted = String::new();
        write_datetime(&mut formatted, stamp);
        tracing::debug!(
            object = def.name,
            updated = updated.len(),
            deleted = deleted.len(),
            purged = purged.len(),
            created = created.len(),
            vanished = vanished.len(),
            formula = formula.len(),
            stamp = %formatted,
            "Mutated the org."
        );
        MutateResponse {
            updated: ids(&updated),
            deleted: ids(&deleted),
            purged: ids(&purged),
            created: ids(&created),
            vanished: ids(&vanished),
            formula: ids(&formula),
            system_modstamp: formatted,
            system_modstamp_millis: stamp,
        }
    }

    /// Why `request` cannot be applied, if it cannot: the object does not exist, or it has
    /// no IsDeleted field and the request deletes or purges.
    ///
    /// # Errors
    /// The reason, worded for a 400 answer.
    pub fn check_mutation(&self, request: &MutateRequest) -> Result<(), String> {
        let schema = self.store.schema();
        let Some(obj) = schema.object(&request.object) else {
            return Err(format!(
                "sObject type '{}' is not supported.",
                request.object
            ));
        };
        let def = schema.def(obj);
        if def.is_deleted_field().is_none() && (request.delete > 0 || request.purge > 0) {
            return Err(format!(
                "{} has no IsDeleted field: its records cannot be soft-deleted or purged, \
                 only vanish",
                def.name
            ));
        }
        Ok(())
    }
}

/// Fresh values for the fields an update changes: names, titles and e-mail addresses that
/// exercise quoting and escaping, and a new score (Contact-like objects); a new name and
/// phone (Account-like ones), plus Status__c and Amount__c on plain objects; else the first
/// editable text field.
fn new_values(def: &ObjectDef, rng: &mut Rng, index: u32) -> Vec<(usize, Value)> {
    let pick = |rng: &mut Rng, list: &'static [&'static str]| list[rng.below(list.len())];
    let field = |name: &str| def.any_field_index(name);
    if let Some(last_name) = field("LastName").filter(|_| def.name != "Account") {
        let last = pick(rng, LAST_NAMES);
        let serial = rng.next() % 100_000;
        let score = (rng.next() % 10_001) as f64 / 100.0;
        let title = pick(rng, TITLES);
        let mut changes = vec![(last_name, Value::Text(Cow::Borrowed(last)))];
        changes.extend(field("Title").map(|f| (f, Value::Text(Cow::Borrowed(title)))));
        changes.extend(field("Email").map(|f| {
            (
                f,
                Value::Text(Cow::Owned(format!("updated.{index}.{serial}@example.com"))),
            )
        }));
        changes.extend(field("Engagement_Score__c").map(|f| (f, Value::Number(score))));
        return changes;
    }
    let word = pick(rng, ACCOUNT_WORDS);
    let n = rng.next() % 10_000;
    let name = field("Name")
        .filter(|&f| def.fields[f].ty.is_text())
        .or_else(|| {
            def.fields
                .iter()
                .position(|f| !f.system && !f.calculated && f.ty == crate::data::FieldType::String)
        });
    let mut changes: Vec<(usize, Value)> = name
        .map(|f| {
            (
                f,
                Value::Text(Cow::Owned(format!("{word} \"Co\" {n}, Ltd."))),
            )
        })
        .into_iter()
        .collect();
    changes
        .extend(field("Phone").map(|f| (f, Value::Text(Cow::Owned(format!("(555) 010-{n:04}"))))));
    if is_plain_object(def.name) {
        let status = field("Status__c").filter(|&f| !def.fields[f].picklist.is_empty());
        changes.extend(status.map(|f| {
            let value = pick(rng, def.fields[f].picklist);
            (f, Value::Text(Cow::Borrowed(value)))
        }));
        let amount = (rng.next() % 10_000_000) as f64 / 100.0;
        changes.extend(field("Amount__c").map(|f| (f, Value::Number(amount))));
    }
    changes
}
