//! Object and field metadata: what describe reports, what SOQL resolves against and how the
//! generator fills each field. One [`Schema`] per org, in one of two [`Shape`]s:
//!
//! - [`Shape::Classic`] (the default): the two hand-written objects the fake always served,
//!   Account (14 fields) and Contact (22), see [`classic`].
//! - [`Shape::Real`]: the shape of a real org, see [`real`]: Account, Contact and Lead from
//!   recorded describes (`fixtures/`), plus generated objects that reproduce what real orgs
//!   do to integrations (a 700+ field custom object, objects without SystemModstamp, objects
//!   that are not replicateable, not supported by the Bulk API, or that need a WHERE).
//!
//! Either shape can add plain custom objects on top ([`Schema::with_plain_objects`],
//! [`crate::OrgConfig::plain_objects`]): Plain_01__c … Plain_NN__c, ordinary replicateable
//! custom objects with a handful of common custom fields, for benchmarks and soaks that want
//! many objects changing at once.
//!
//! The schema of an org can change while it runs (`POST /__admin/fields`): a field added or
//! hidden by field-level security. It is copy-on-write like the records: every query works
//! with the schema of its store snapshot.
//!
//! Names and picklist values are `&'static str`: the recorded and generated shapes are built
//! once per process and live as long as it; a field added at run time leaks its few bytes.
//!
//! Field metadata is in `field`, object metadata and its field lookups in `object`; this
//! module holds the [`Schema`] of an org: building it for a [`Shape`] and finding its objects
//! by name or key prefix.

pub mod classic;
pub mod external;
mod field;
mod generated;
mod object;
pub mod real;
mod recipe;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

pub use field::{Added, COMPOUND_KEYS, Compound, FieldDef, FieldType};
pub use generated::{MAX_PLAIN_OBJECTS, PLAIN_GROUP, is_plain_object};
pub use object::{ChildRelationship, ObjectDef, Restriction};

/// Which objects an org serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Account and Contact as the fake always served them (14 and 22 fields).
    #[default]
    Classic,
    /// Recorded Account (250 fields), Contact and Lead, plus the generated objects of a real
    /// org (see [`real`]).
    Real,
}

/// Index of an object in its org's [`Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKind(pub u16);

impl ObjectKind {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Every object of one org.
#[derive(Clone, Debug)]
pub struct Schema {
    pub shape: Shape,
    objects: Vec<Arc<ObjectDef>>,
    by_name: HashMap<String, ObjectKind>,
    by_prefix: HashMap<&'static str, ObjectKind>,
}

impl Schema {
    /// The schema an org of `shape` starts with.
    pub fn new(shape: Shape) -> Self {
        let objects = match shape {
            Shape::Classic => classic::objects(),
            Shape::Real => real::objects(),
        };
        Self::from_objects(shape, objects)
    }

    fn from_objects(shape: Shape, objects: Vec<Arc<ObjectDef>>) -> Self {
        let by_name = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.name.to_ascii_lowercase(), ObjectKind(i as u16)))
            .collect();
        let by_prefix = objects
            .iter()
            .enumerate()
            .map(|(i, o)| (o.key_prefix, ObjectKind(i as u16)))
            .collect();
        Schema {
            shape,
            objects,
            by_name,
            by_prefix,
        }
    }

    pub fn def(&self, kind: ObjectKind) -> &ObjectDef {
        &self.objects[kind.index()]
    }

    /// The shared definition, for views that outlive a borrow of the schema.
    pub fn def_arc(&self, kind: ObjectKind) -> Arc<ObjectDef> {
        Arc::clone(&self.objects[kind.index()])
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// Every object in global-describe order.
    pub fn kinds(&self) -> impl Iterator<Item = ObjectKind> + '_ {
        (0..self.objects.len()).map(|i| ObjectKind(i as u16))
    }

    /// An object by API name, ignoring case.
    pub fn object(&self, name: &str) -> Option<ObjectKind> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// The object whose Ids start with `prefix`.
    pub fn by_prefix(&self, prefix: &str) -> Option<ObjectKind> {
        self.by_prefix.get(prefix).copied()
    }

    /// This schema with Plain_01__c … Plain_`n`__c appended (after the shape's objects, in
    /// global-describe order); `n == 0` changes nothing. See `generated::plain` for their
    /// fields and key prefixes.
    ///
    /// # Panics
    /// When `n` is above [`MAX_PLAIN_OBJECTS`], or the schema already serves an object of the
    /// same name or key prefix.
    pub fn with_plain_objects(&self, n: u32) -> Schema {
        if n == 0 {
            return self.clone();
        }
        let mut objects = self.objects.clone();
        for def in generated::plain_objects(n) {
            assert!(
                self.object(def.name).is_none() && self.by_prefix(def.key_prefix).is_none(),
                "{} (key prefix {}) clashes with an object of the {:?} shape",
                def.name,
                def.key_prefix,
                self.shape
            );
            objects.push(def);
        }
        Self::from_objects(self.shape, objects)
    }

    /// This schema with one object replaced (a field added, hidden or shown).
    pub fn with_object(&self, kind: ObjectKind, def: ObjectDef) -> Schema {
        let mut next = self.clone();
        next.objects[kind.index()] = Arc::new(def);
        next
    }
}

/// Resolves every reference field's [`FieldDef::target`] against the served objects.
fn link_targets(objects: &mut [ObjectDef]) {
    let kinds: HashMap<String, ObjectKind> = objects
        .iter()
        .enumerate()
        .map(|(i, o)| (o.name.to_ascii_lowercase(), ObjectKind(i as u16)))
        .collect();
    for object in objects {
        for field in &mut object.fields {
            field.target = field
                .reference_to
                .iter()
                .find_map(|t| kinds.get(&t.to_ascii_lowercase()).copied());
        }
    }
}

/// Leaks `s`: the catalog lives as long as the process (see the module docs).
pub fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_skip_hidden_fields() {
        let schema = Schema::new(Shape::Classic);
        let contact = schema.object("contact").unwrap();
        let def = schema.def(contact);
        assert_eq!(def.name, "Contact");
        assert_eq!(def.field_index("systemmodstamp"), Some(19));
        assert_eq!(def.relationship("ACCOUNT"), Some(1));
        assert_eq!(def.field_index("Nope"), None);
        let mut hidden = def.clone();
        hidden.fields[4].hidden = true;
        assert_eq!(hidden.field_index("Email"), None);
        assert_eq!(hidden.any_field_index("Email"), Some(4));
        assert_eq!(schema.by_prefix("001"), schema.object("Account"));
    }

    #[test]
    fn plain_objects_come_after_either_shape() {
        for shape in [Shape::Classic, Shape::Real] {
            let base = Schema::new(shape);
            let schema = base.with_plain_objects(10);
            assert_eq!(schema.len(), base.len() + 10);
            let first = schema.object("plain_01__c").unwrap();
            assert_eq!(first.index(), base.len());
            assert_eq!(schema.def(first).key_prefix, "a0A");
            assert_eq!(schema.by_prefix("a0J"), schema.object("Plain_10__c"));
            assert!(schema.object("Plain_11__c").is_none());
            assert_eq!(base.with_plain_objects(0).len(), base.len());
        }
        let real = Schema::new(Shape::Real).with_plain_objects(MAX_PLAIN_OBJECTS);
        assert_eq!(real.by_prefix("a0W"), real.object("Wide__c"));
    }
}
