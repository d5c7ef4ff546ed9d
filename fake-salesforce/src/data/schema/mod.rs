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
//! The schema of an org can change while it runs (`POST /__admin/fields`): a field added or
//! hidden by field-level security. It is copy-on-write like the records: every query works
//! with the schema of its store snapshot.
//!
//! Names and picklist values are `&'static str`: the recorded and generated shapes are built
//! once per process and live as long as it; a field added at run time leaks its few bytes.

pub mod classic;
mod generated;
pub mod real;
mod recipe;
pub mod template;

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::generate::Gen;

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

/// A describe `type`. Only values from the partner WSDL's fieldType enum, because clients
/// (airbyte, tap-salesforce) raise on types they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    Textarea,
    Picklist,
    Multipicklist,
    Email,
    Phone,
    Url,
    Currency,
    Int,
    Double,
    Percent,
    Date,
    DateTime,
    Boolean,
    /// A compound address (`BillingAddress`): a nested object in REST, refused by Bulk.
    Address,
    /// A compound geolocation (`Location__c`): `{"latitude","longitude"}` in REST.
    Location,
    /// History `OldValue`/`NewValue`: any scalar.
    AnyType,
}

impl FieldType {
    pub fn api_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Multipicklist => "multipicklist",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Currency => "currency",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Boolean => "boolean",
            FieldType::Address => "address",
            FieldType::Location => "location",
            FieldType::AnyType => "anyType",
        }
    }

    /// The describe `type` back to a [`FieldType`]; `None` for types the fake does not serve.
    pub fn from_api_name(name: &str) -> Option<Self> {
        use FieldType as T;
        [
            T::Id,
            T::Reference,
            T::String,
            T::Textarea,
            T::Picklist,
            T::Multipicklist,
            T::Email,
            T::Phone,
            T::Url,
            T::Currency,
            T::Int,
            T::Double,
            T::Percent,
            T::Date,
            T::DateTime,
            T::Boolean,
            T::Address,
            T::Location,
            T::AnyType,
        ]
        .into_iter()
        .find(|t| t.api_name() == name)
    }

    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Currency | FieldType::Double | FieldType::Percent => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Boolean => "xsd:boolean",
            FieldType::Address => "urn:address",
            FieldType::Location => "urn:location",
            FieldType::AnyType => "xsd:anyType",
            _ => "xsd:string",
        }
    }

    /// Whether values are JSON strings compared as text (and need quoted SOQL literals).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::Textarea
                | FieldType::Picklist
                | FieldType::Multipicklist
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::AnyType
        )
    }

    /// Compound fields: REST renders them from their component fields; Bulk refuses them.
    pub fn is_compound(self) -> bool {
        matches!(self, FieldType::Address | FieldType::Location)
    }
}

/// The keys of a compound value in REST JSON, in the order Salesforce writes them.
pub const COMPOUND_KEYS: [&str; 8] = [
    "city",
    "country",
    "geocodeAccuracy",
    "latitude",
    "longitude",
    "postalCode",
    "state",
    "street",
];

/// The component fields of a compound field, by [`COMPOUND_KEYS`] position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Compound {
    pub parts: [Option<usize>; 8],
}

/// A field added while the org runs (`POST /__admin/fields`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Added {
    /// Records below this index existed before the field: they read null (false for a
    /// checkbox), as Salesforce leaves a new field empty on existing records, unless
    /// `generated`.
    pub below: u32,
    pub generated: bool,
}

/// One field.
#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub label: &'static str,
    pub ty: FieldType,
    /// Max characters for text types (18 for ids), 0 otherwise.
    pub length: u32,
    pub precision: u32,
    pub scale: u32,
    /// Digits for `int` fields.
    pub digits: u32,
    pub nillable: bool,
    pub custom: bool,
    /// System fields (Id, audit stamps, IsDeleted) cannot be created or updated.
    pub system: bool,
    /// Long text areas cannot be filtered or sorted in SOQL; compound fields not sorted.
    pub filterable: bool,
    pub sortable: bool,
    /// A formula field: its value changes without SystemModstamp (see [`crate::Org::mutate`]).
    pub calculated: bool,
    pub reference_to: &'static [&'static str],
    pub relationship_name: Option<&'static str>,
    /// The served object a reference points at, for child-to-parent paths (`Account.Name`).
    pub target: Option<ObjectKind>,
    pub picklist: &'static [&'static str],
    pub name_field: bool,
    /// Set on `address`/`location` fields.
    pub compound: Option<Compound>,
    /// How the generator fills it.
    pub recipe: Gen,
    /// Hidden from the integration user by field-level security: describe omits it and SOQL
    /// naming it fails with `INVALID_FIELD`.
    pub hidden: bool,
    pub added: Option<Added>,
    /// Where NUL characters are injected when that fault is on (Description, Title).
    pub nul_target: bool,
    /// The field's describe JSON as a real org sends it; `None` for the classic shape, whose
    /// describe is built from the fields above.
    pub describe: Option<Arc<Json>>,
}

impl FieldDef {
    /// A nillable, filterable, sortable field with no extras.
    pub fn new(name: &'static str, label: &'static str, ty: FieldType, recipe: Gen) -> Self {
        FieldDef {
            name,
            label,
            ty,
            length: 0,
            precision: 0,
            scale: 0,
            digits: 0,
            nillable: true,
            custom: name.ends_with("__c"),
            system: false,
            filterable: true,
            sortable: true,
            calculated: false,
            reference_to: &[],
            relationship_name: None,
            target: None,
            picklist: &[],
            name_field: false,
            compound: None,
            recipe,
            hidden: false,
            added: None,
            nul_target: matches!(name, "Description" | "Title"),
            describe: None,
        }
    }
}

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
    fn every_type_name_round_trips() {
        for t in [
            "id",
            "percent",
            "multipicklist",
            "address",
            "anyType",
            "datetime",
        ] {
            assert_eq!(FieldType::from_api_name(t).unwrap().api_name(), t);
        }
        assert_eq!(FieldType::from_api_name("base64"), None);
    }
}
