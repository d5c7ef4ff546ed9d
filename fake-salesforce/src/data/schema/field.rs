//! Field metadata: the describe types the fake serves and, per field, everything describe
//! reports, SOQL checks and the generator needs.

use std::sync::Arc;

use serde_json::Value as Json;

use super::ObjectKind;
use crate::data::generate::Gen;

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
    /// An external Id (`externalId`, `unique`, `idLookup` in describe): upserts match on it
    /// and no two records may hold the same value, ignoring case.
    pub external_id: bool,
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
            external_id: false,
            describe: None,
        }
    }

    /// A describe flag: from the recorded describe JSON when the field has one, else what the
    /// classic describe states (`classic`), so writes agree with describe in both shapes.
    fn flag(&self, key: &str, classic: bool) -> bool {
        self.describe
            .as_deref()
            .and_then(|d| d[key].as_bool())
            .unwrap_or(classic)
    }

    /// Describe `createable`: a create may set it.
    pub fn createable(&self) -> bool {
        self.flag("createable", !self.system && !self.calculated)
    }

    /// Describe `updateable`: an update may set it.
    pub fn updateable(&self) -> bool {
        self.flag("updateable", !self.system && !self.calculated)
    }

    /// Describe `nillable`.
    pub fn is_nillable(&self) -> bool {
        self.flag("nillable", self.nillable)
    }

    /// Describe `defaultedOnCreate`: the org fills it when a create leaves it out.
    pub fn defaulted_on_create(&self) -> bool {
        self.flag(
            "defaultedOnCreate",
            self.system || self.ty == FieldType::Boolean,
        )
    }

    /// A create must give it a value: createable, not nillable and not defaulted
    /// (Contact.LastName, Account.Name, Lead.Company).
    pub fn required_on_create(&self) -> bool {
        self.createable() && !self.is_nillable() && !self.defaulted_on_create()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
