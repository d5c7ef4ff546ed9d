//! Object metadata: one object's flags, fields and relationships, and its lookups of fields by
//! name (ignoring case, as SOQL does; hidden fields only for the org's own bookkeeping).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::FieldDef;

/// A parent-to-child relationship, as the classic describe lists under `childRelationships`.
#[derive(Clone, Debug)]
pub struct ChildRelationship {
    pub child: &'static str,
    pub field: &'static str,
    pub relationship_name: &'static str,
}

/// A query restriction like ContentDocumentLink's: the WHERE clause must pin one of `fields`
/// with `=` or `IN`, or the query fails with `MALFORMED_QUERY` and `message`.
#[derive(Clone, Copy, Debug)]
pub struct Restriction {
    pub fields: &'static [&'static str],
    pub message: &'static str,
}

/// One object.
#[derive(Clone, Debug)]
pub struct ObjectDef {
    pub name: &'static str,
    pub label: &'static str,
    pub label_plural: &'static str,
    pub key_prefix: &'static str,
    pub custom: bool,
    pub queryable: bool,
    /// getUpdated/getDeleted answer for it (describe `replicateable`).
    pub replicateable: bool,
    /// Bulk API query jobs accept it.
    pub bulk: bool,
    pub restriction: Option<Restriction>,
    pub fields: Vec<FieldDef>,
    pub children: Vec<ChildRelationship>,
    /// The object's describe JSON as a real org sends it, without `fields`; `None` for the
    /// classic shape.
    pub describe: Option<Arc<Json>>,
    /// Its entry in the global describe (`GET /sobjects`), same rule.
    pub global: Option<Arc<Json>>,
    lookup: HashMap<String, usize>,
}

impl ObjectDef {
    /// An object with every flag of a plain queryable, replicateable, Bulk-capable object.
    pub fn new(
        name: &'static str,
        label: &'static str,
        label_plural: &'static str,
        key_prefix: &'static str,
        fields: Vec<FieldDef>,
    ) -> Self {
        let mut def = ObjectDef {
            name,
            label,
            label_plural,
            key_prefix,
            custom: name.ends_with("__c"),
            queryable: true,
            replicateable: true,
            bulk: true,
            restriction: None,
            fields,
            children: Vec::new(),
            describe: None,
            global: None,
            lookup: HashMap::new(),
        };
        def.reindex();
        def
    }

    /// Rebuilds the name lookup after `fields` changed.
    pub fn reindex(&mut self) {
        self.lookup = self
            .fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.to_ascii_lowercase(), i))
            .collect();
    }

    /// A visible field's index by API name, ignoring case as SOQL does.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.any_field_index(name)
            .filter(|&i| !self.fields[i].hidden)
    }

    /// A field's index by API name, hidden fields included (the org's own bookkeeping).
    pub fn any_field_index(&self, name: &str) -> Option<usize> {
        self.lookup.get(&name.to_ascii_lowercase()).copied()
    }

    /// Indices of the fields describe lists and `SELECT *`-like renders use.
    pub fn visible(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.fields.len()).filter(|&i| !self.fields[i].hidden)
    }

    /// The visible reference field whose relationship name is `name` (`Account` →
    /// `AccountId`).
    pub fn relationship(&self, name: &str) -> Option<usize> {
        self.visible().find(|&i| {
            self.fields[i]
                .relationship_name
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }

    /// Describe `createable`: the recorded value, else what the classic describe states.
    pub fn createable(&self) -> bool {
        self.describe
            .as_deref()
            .and_then(|d| d["createable"].as_bool())
            .unwrap_or(true)
    }

    pub fn is_deleted_field(&self) -> Option<usize> {
        self.any_field_index("IsDeleted")
    }

    pub fn system_modstamp_field(&self) -> Option<usize> {
        self.any_field_index("SystemModstamp")
    }

    pub fn last_modified_field(&self) -> Option<usize> {
        self.any_field_index("LastModifiedDate")
    }

    pub fn created_field(&self) -> Option<usize> {
        self.any_field_index("CreatedDate")
    }
}
