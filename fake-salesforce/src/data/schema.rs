//! Object and field metadata for the two objects the fake org holds (Account, Contact): the
//! single source that describe, the SOQL resolver and the generator all read.

/// A describe `type`. Only values from the partner WSDL's fieldType enum, because clients
/// (airbyte, tap-salesforce) raise on types they do not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldType {
    Id,
    Reference,
    String,
    Textarea,
    Picklist,
    Email,
    Phone,
    Url,
    Currency,
    Int,
    Double,
    Date,
    DateTime,
    Boolean,
}

impl FieldType {
    pub fn api_name(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::Textarea => "textarea",
            FieldType::Picklist => "picklist",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Currency => "currency",
            FieldType::Int => "int",
            FieldType::Double => "double",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Boolean => "boolean",
        }
    }

    pub fn soap_type(self) -> &'static str {
        match self {
            FieldType::Id | FieldType::Reference => "tns:ID",
            FieldType::Currency | FieldType::Double => "xsd:double",
            FieldType::Int => "xsd:int",
            FieldType::Date => "xsd:date",
            FieldType::DateTime => "xsd:dateTime",
            FieldType::Boolean => "xsd:boolean",
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
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }
}

/// One field as describe reports it.
#[derive(Debug)]
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
    /// Long text areas cannot be filtered or sorted in SOQL.
    pub filterable: bool,
    pub reference_to: Option<ObjectKind>,
    pub relationship_name: Option<&'static str>,
    pub picklist: &'static [&'static str],
    pub name_field: bool,
}

impl FieldDef {
    const fn new(name: &'static str, label: &'static str, ty: FieldType) -> Self {
        FieldDef {
            name,
            label,
            ty,
            length: 0,
            precision: 0,
            scale: 0,
            digits: 0,
            nillable: true,
            custom: false,
            system: false,
            filterable: true,
            reference_to: None,
            relationship_name: None,
            picklist: &[],
            name_field: false,
        }
    }
    const fn len(mut self, length: u32) -> Self {
        self.length = length;
        self
    }
    const fn required(mut self) -> Self {
        self.nillable = false;
        self
    }
    const fn system(mut self) -> Self {
        self.system = true;
        self.nillable = false;
        self
    }
    const fn number(mut self, precision: u32, scale: u32) -> Self {
        self.precision = precision;
        self.scale = scale;
        self
    }
    const fn picklist(mut self, values: &'static [&'static str]) -> Self {
        self.picklist = values;
        self.length = 255;
        self
    }

    /// Long text areas (over 255 chars) are neither filterable nor sortable in SOQL.
    pub fn sortable(&self) -> bool {
        self.filterable
    }
}

/// The objects the org holds. The discriminant indexes [`OBJECTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Account = 0,
    Contact = 1,
}

impl ObjectKind {
    pub fn def(self) -> &'static ObjectDef {
        OBJECTS[self as usize]
    }
}

/// A parent-to-child relationship, as describe lists under `childRelationships`.
#[derive(Debug)]
pub struct ChildRelationship {
    pub child: ObjectKind,
    pub field: &'static str,
    pub relationship_name: &'static str,
}

/// One object as describe reports it.
#[derive(Debug)]
pub struct ObjectDef {
    pub kind: ObjectKind,
    pub name: &'static str,
    pub label: &'static str,
    pub label_plural: &'static str,
    pub key_prefix: &'static str,
    pub fields: &'static [FieldDef],
    pub children: &'static [ChildRelationship],
}

impl ObjectDef {
    /// Field index by API name, ignoring case as SOQL does.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The reference field whose relationship name is `name` (`Account` → `AccountId`).
    pub fn relationship(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| {
            f.relationship_name
                .is_some_and(|r| r.eq_ignore_ascii_case(name))
        })
    }

    /// Index of the `IsDeleted` field, which every object has.
    pub fn is_deleted_field(&self) -> usize {
        self.field_index("IsDeleted")
            .expect("every object defines IsDeleted")
    }
}

/// Every object, in global-describe order.
pub static OBJECTS: [&ObjectDef; 2] = [&ACCOUNT, &CONTACT];

/// Looks an object up by API name, ignoring case.
pub fn object_by_name(name: &str) -> Option<&'static ObjectDef> {
    OBJECTS
        .iter()
        .copied()
        .find(|o| o.name.eq_ignore_ascii_case(name))
}

use FieldType as T;

pub const ACCOUNT_TYPES: &[&str] = &[
    "Customer - Direct",
    "Customer - Channel",
    "Prospect",
    "Partner",
    "Other",
];

pub const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
];

pub const LEAD_SOURCES: &[&str] = &[
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Other",
];

/// Field positions on Account; the generator matches on them.
pub mod account {
    pub const ID: usize = 0;
    pub const NAME: usize = 1;
    pub const TYPE: usize = 2;
    pub const INDUSTRY: usize = 3;
    pub const BILLING_CITY: usize = 4;
    pub const BILLING_COUNTRY: usize = 5;
    pub const PHONE: usize = 6;
    pub const WEBSITE: usize = 7;
    pub const ANNUAL_REVENUE: usize = 8;
    pub const NUMBER_OF_EMPLOYEES: usize = 9;
    pub const CREATED_DATE: usize = 10;
    pub const LAST_MODIFIED_DATE: usize = 11;
    pub const SYSTEM_MODSTAMP: usize = 12;
    pub const IS_DELETED: usize = 13;
}

static ACCOUNT: ObjectDef = ObjectDef {
    kind: ObjectKind::Account,
    name: "Account",
    label: "Account",
    label_plural: "Accounts",
    key_prefix: "001",
    fields: &[
        FieldDef::new("Id", "Account ID", T::Id).len(18).system(),
        FieldDef {
            name_field: true,
            ..FieldDef::new("Name", "Account Name", T::String)
                .len(255)
                .required()
        },
        FieldDef::new("Type", "Account Type", T::Picklist).picklist(ACCOUNT_TYPES),
        FieldDef::new("Industry", "Industry", T::Picklist).picklist(INDUSTRIES),
        FieldDef::new("BillingCity", "Billing City", T::String).len(40),
        FieldDef::new("BillingCountry", "Billing Country", T::String).len(80),
        FieldDef::new("Phone", "Account Phone", T::Phone).len(40),
        FieldDef::new("Website", "Website", T::Url).len(255),
        FieldDef::new("AnnualRevenue", "Annual Revenue", T::Currency).number(18, 0),
        FieldDef {
            digits: 8,
            ..FieldDef::new("NumberOfEmployees", "Employees", T::Int)
        },
        FieldDef::new("CreatedDate", "Created Date", T::DateTime).system(),
        FieldDef::new("LastModifiedDate", "Last Modified Date", T::DateTime).system(),
        FieldDef::new("SystemModstamp", "System Modstamp", T::DateTime).system(),
        FieldDef::new("IsDeleted", "Deleted", T::Boolean).system(),
    ],
    children: &[ChildRelationship {
        child: ObjectKind::Contact,
        field: "AccountId",
        relationship_name: "Contacts",
    }],
};

/// Field positions on Contact; the generator matches on them.
pub mod contact {
    pub const ID: usize = 0;
    pub const ACCOUNT_ID: usize = 1;
    pub const FIRST_NAME: usize = 2;
    pub const LAST_NAME: usize = 3;
    pub const EMAIL: usize = 4;
    pub const PHONE: usize = 5;
    pub const TITLE: usize = 6;
    pub const DEPARTMENT: usize = 7;
    pub const MAILING_STREET: usize = 8;
    pub const MAILING_CITY: usize = 9;
    pub const MAILING_STATE: usize = 10;
    pub const MAILING_POSTAL_CODE: usize = 11;
    pub const MAILING_COUNTRY: usize = 12;
    pub const LEAD_SOURCE: usize = 13;
    pub const BIRTHDATE: usize = 14;
    pub const HAS_OPTED_OUT_OF_EMAIL: usize = 15;
    pub const DESCRIPTION: usize = 16;
    pub const CREATED_DATE: usize = 17;
    pub const LAST_MODIFIED_DATE: usize = 18;
    pub const SYSTEM_MODSTAMP: usize = 19;
    pub const IS_DELETED: usize = 20;
    pub const ENGAGEMENT_SCORE: usize = 21;
}

static CONTACT: ObjectDef = ObjectDef {
    kind: ObjectKind::Contact,
    name: "Contact",
    label: "Contact",
    label_plural: "Contacts",
    key_prefix: "003",
    fields: &[
        FieldDef::new("Id", "Contact ID", T::Id).len(18).system(),
        FieldDef {
            reference_to: Some(ObjectKind::Account),
            relationship_name: Some("Account"),
            ..FieldDef::new("AccountId", "Account ID", T::Reference).len(18)
        },
        FieldDef::new("FirstName", "First Name", T::String).len(40),
        FieldDef::new("LastName", "Last Name", T::String)
            .len(80)
            .required(),
        FieldDef::new("Email", "Email", T::Email).len(80),
        FieldDef::new("Phone", "Business Phone", T::Phone).len(40),
        FieldDef::new("Title", "Title", T::String).len(128),
        FieldDef::new("Department", "Department", T::String).len(80),
        FieldDef::new("MailingStreet", "Mailing Street", T::Textarea).len(255),
        FieldDef::new("MailingCity", "Mailing City", T::String).len(40),
        FieldDef::new("MailingState", "Mailing State/Province", T::String).len(80),
        FieldDef::new("MailingPostalCode", "Mailing Zip/Postal Code", T::String).len(20),
        FieldDef::new("MailingCountry", "Mailing Country", T::String).len(80),
        FieldDef::new("LeadSource", "Lead Source", T::Picklist).picklist(LEAD_SOURCES),
        FieldDef::new("Birthdate", "Birthdate", T::Date),
        FieldDef {
            nillable: false,
            ..FieldDef::new("HasOptedOutOfEmail", "Email Opt Out", T::Boolean)
        },
        FieldDef {
            filterable: false,
            ..FieldDef::new("Description", "Contact Description", T::Textarea).len(32000)
        },
        FieldDef::new("CreatedDate", "Created Date", T::DateTime).system(),
        FieldDef::new("LastModifiedDate", "Last Modified Date", T::DateTime).system(),
        FieldDef::new("SystemModstamp", "System Modstamp", T::DateTime).system(),
        FieldDef::new("IsDeleted", "Deleted", T::Boolean).system(),
        FieldDef {
            custom: true,
            ..FieldDef::new("Engagement_Score__c", "Engagement Score", T::Double).number(18, 2)
        },
    ],
    children: &[],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_position_constants_match_the_tables() {
        let a = ObjectKind::Account.def();
        assert_eq!(a.fields[account::ID].name, "Id");
        assert_eq!(
            a.fields[account::NUMBER_OF_EMPLOYEES].name,
            "NumberOfEmployees"
        );
        assert_eq!(a.fields[account::IS_DELETED].name, "IsDeleted");
        assert_eq!(a.fields.len(), account::IS_DELETED + 1);
        let c = ObjectKind::Contact.def();
        assert_eq!(c.fields[contact::ACCOUNT_ID].name, "AccountId");
        assert_eq!(c.fields[contact::DESCRIPTION].name, "Description");
        assert_eq!(c.fields[contact::IS_DELETED].name, "IsDeleted");
        assert_eq!(
            c.fields[contact::ENGAGEMENT_SCORE].name,
            "Engagement_Score__c"
        );
        assert_eq!(c.fields.len(), contact::ENGAGEMENT_SCORE + 1);
        for o in OBJECTS {
            assert_eq!(OBJECTS[o.kind as usize].name, o.name);
        }
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(object_by_name("contact").map(|o| o.name), Some("Contact"));
        let c = ObjectKind::Contact.def();
        assert_eq!(
            c.field_index("systemmodstamp"),
            Some(contact::SYSTEM_MODSTAMP)
        );
        assert_eq!(c.relationship("ACCOUNT"), Some(contact::ACCOUNT_ID));
        assert_eq!(c.field_index("Nope"), None);
    }
}
