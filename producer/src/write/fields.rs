//! The `write` setting: which fields of an object the application may change and sfsync
//! writes back, checked against what the org lets the integration user update.

use serde::{Deserialize, Deserializer, de};

use crate::{salesforce::Describe, tables::FieldSelection};

/// `write = ["Email", "Engagement_Score__c"]` or `write = "all"` in `[objects.<Name>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteFields {
    /// Every synced field the describe marks `updateable` (formula fields never are).
    All,
    /// These fields, each of which must be synced and updateable.
    Fields(Vec<String>),
}

impl<'de> Deserialize<'de> for WriteFields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            List(Vec<String>),
        }
        const EXPECTED: &str =
            "expected \"all\" or a list of field names, e.g. [\"Email\", \"Engagement_Score__c\"]";
        let raw = Raw::deserialize(deserializer)
            .map_err(|_| de::Error::custom(format!("write: {EXPECTED}")))?;
        match raw {
            Raw::Text(text) if text == "all" => Ok(Self::All),
            Raw::Text(text) => Err(de::Error::custom(format!("write = {text:?}: {EXPECTED}"))),
            Raw::List(list) if list.is_empty() => Err(de::Error::custom(format!(
                "write = []: {EXPECTED}; to keep the object read-only, leave `write` out"
            ))),
            Raw::List(list) => {
                for name in &list {
                    common::schema::check_api_name("field", name).map_err(de::Error::custom)?;
                }
                Ok(Self::Fields(list))
            }
        }
    }
}

/// The External ID field write-back creates records under, unless `external_id` in the
/// object's section names another.
pub const DEFAULT_EXTERNAL_ID: &str = "Sfsync_Key__c";

/// A `write` setting the org or the sync's field selection does not allow.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(
        "objects.{object}.write names {field}, which is not a field of {object} for the integration user; check the spelling, or its field-level security"
    )]
    Unknown { object: String, field: String },
    #[error(
        "objects.{object}.write names {field}, which Salesforce does not let the integration user update (describe: updateable false{formula}); remove it from `write`, or give the user edit access to it (Setup → Object Manager → {object} → Fields & Relationships → {field} → Set Field-Level Security)"
    )]
    NotUpdateable {
        object: String,
        field: String,
        formula: &'static str,
    },
    #[error(
        "objects.{object}.write names {field}, which this sync leaves out (include_fields or exclude_fields, or a type sfsync does not store); a field is written back only if it is synced"
    )]
    NotSynced { object: String, field: String },
    #[error(
        "objects.{object}.write = \"all\" finds no field the integration user may update among the synced ones"
    )]
    NothingWritable { object: String },
    #[error(
        "objects.{object}: write-back creates records under an External ID field, and {object} has no field {field} marked External ID that the integration user can update. Create it once in the org (Setup → Object Manager → {object} → Fields & Relationships → New → Text, length 36, Unique, External ID, field name {name}) and give the integration user edit access, or name another External ID field with `external_id` in [objects.{object}]"
    )]
    NoExternalId {
        object: String,
        field: String,
        name: String,
    },
    #[error(
        "objects.{object}.write names {field}, the External ID field sfsync fills itself for the records it creates; remove it from `write`"
    )]
    ExternalIdWritten { object: String, field: String },
}

/// The object's External ID field for creates: `external_id`, else [`DEFAULT_EXTERNAL_ID`],
/// as the describe spells it.
///
/// # Errors
/// The field is not in the describe, not an External ID, or not updateable.
pub fn external_id_field(describe: &Describe, setting: Option<&str>) -> Result<String, WriteError> {
    let wanted = setting.unwrap_or(DEFAULT_EXTERNAL_ID);
    describe
        .fields
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case(wanted) && f.external_id && f.updateable)
        .map(|f| f.name.clone())
        .ok_or_else(|| WriteError::NoExternalId {
            object: describe.name.clone(),
            field: wanted.to_owned(),
            name: wanted.trim_end_matches("__c").to_owned(),
        })
}

/// The columns (lower-case, as the table names them) of the fields `setting` makes writable,
/// in describe order; `Id` and the replication key are never among them.
///
/// # Errors
/// The first field the org does not let the integration user update, or that is not synced.
pub fn write_columns(
    describe: &Describe,
    selection: &FieldSelection,
    setting: &WriteFields,
    external_id: &str,
) -> Result<Vec<String>, WriteError> {
    let object = || describe.name.clone();
    let synced = |name: &str| {
        selection
            .columns
            .iter()
            .any(|(f, _)| f.eq_ignore_ascii_case(name))
    };
    let chosen: Vec<&crate::salesforce::DescribeField> = match setting {
        WriteFields::All => describe
            .fields
            .iter()
            .filter(|f| f.updateable && !f.calculated && synced(&f.name))
            .filter(|f| !f.name.eq_ignore_ascii_case(external_id))
            .collect(),
        WriteFields::Fields(names) => {
            let mut chosen = Vec::with_capacity(names.len());
            for name in names {
                let field = describe
                    .fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(name))
                    .ok_or_else(|| WriteError::Unknown {
                        object: object(),
                        field: name.clone(),
                    })?;
                if field.name.eq_ignore_ascii_case(external_id) {
                    return Err(WriteError::ExternalIdWritten {
                        object: object(),
                        field: field.name.clone(),
                    });
                }
                if !field.updateable {
                    return Err(WriteError::NotUpdateable {
                        object: object(),
                        field: field.name.clone(),
                        formula: if field.calculated {
                            ", a formula field"
                        } else {
                            ""
                        },
                    });
                }
                if !synced(&field.name) {
                    return Err(WriteError::NotSynced {
                        object: object(),
                        field: field.name.clone(),
                    });
                }
                chosen.push(field);
            }
            chosen
        }
    };
    let stamp = selection.stamp.as_deref().unwrap_or_default();
    let columns: Vec<String> = describe
        .fields
        .iter()
        .filter(|f| chosen.iter().any(|c| c.name == f.name))
        .filter(|f| f.name != "Id" && f.name != stamp)
        .map(|f| common::schema::column_name(&f.name))
        .collect();
    if columns.is_empty() {
        return Err(WriteError::NothingWritable { object: object() });
    }
    Ok(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::DescribeField;

    fn field(name: &str, updateable: bool, calculated: bool) -> DescribeField {
        DescribeField {
            name: name.into(),
            sf_type: "string".into(),
            calculated,
            updateable,
            external_id: name == "Key__c",
            reference_to: Vec::new(),
        }
    }

    fn contact() -> (Describe, FieldSelection) {
        let describe = Describe {
            name: "Contact".into(),
            queryable: true,
            replicateable: true,
            fields: vec![
                field("Id", false, false),
                field("Email", true, false),
                field("Name", false, false),
                field("Score__c", true, false),
                field("Grade__c", false, true),
                field("SystemModstamp", false, false),
                field("Hidden__c", true, false),
                field("Key__c", true, false),
            ],
        };
        let selection = FieldSelection {
            columns: [
                "Id",
                "Email",
                "Name",
                "Score__c",
                "Grade__c",
                "SystemModstamp",
            ]
            .iter()
            .map(|n| ((*n).to_owned(), "text"))
            .collect(),
            skipped: vec![],
            stamp: Some("SystemModstamp".into()),
        };
        (describe, selection)
    }

    fn parse(toml: &str) -> Result<WriteFields, String> {
        #[derive(Deserialize)]
        struct Section {
            write: WriteFields,
        }
        toml::from_str::<Section>(toml)
            .map(|s| s.write)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_setting_is_all_or_a_list_of_field_names() {
        assert_eq!(parse("write = \"all\""), Ok(WriteFields::All));
        assert_eq!(
            parse("write = [\"Email\", \"Score__c\"]"),
            Ok(WriteFields::Fields(vec!["Email".into(), "Score__c".into()]))
        );
        let some = parse("write = \"some\"").unwrap_err();
        assert!(
            some.contains("write = \"some\": expected \"all\" or a list"),
            "{some}"
        );
        let empty = parse("write = []").unwrap_err();
        assert!(empty.contains("leave `write` out"), "{empty}");
        let number = parse("write = 3").unwrap_err();
        assert!(number.contains("expected \"all\" or a list"), "{number}");
        let injected = parse("write = [\"Email; DROP\"]").unwrap_err();
        assert!(injected.contains("Email; DROP"), "{injected}");
    }

    #[test]
    fn listed_fields_must_be_known_updateable_and_synced() {
        let (describe, selection) = contact();
        let ok = write_columns(
            &describe,
            &selection,
            &WriteFields::Fields(vec!["score__c".into(), "Email".into()]),
            "Key__c",
        );
        assert_eq!(ok.unwrap(), ["email", "score__c"], "describe order");
        let check = |name: &str| {
            write_columns(
                &describe,
                &selection,
                &WriteFields::Fields(vec![name.into()]),
                "Key__c",
            )
            .unwrap_err()
            .to_string()
        };
        assert!(check("Nope__c").contains("names Nope__c, which is not a field"));
        let name = check("Name");
        assert!(
            name.contains("names Name, which Salesforce does not let"),
            "{name}"
        );
        assert!(name.contains("Set Field-Level Security"), "{name}");
        let formula = check("Grade__c");
        assert!(formula.contains("a formula field"), "{formula}");
        let hidden = check("Hidden__c");
        assert!(hidden.contains("which this sync leaves out"), "{hidden}");
        let key = check("Key__c");
        assert!(key.contains("the External ID field sfsync fills"), "{key}");
    }

    #[test]
    fn creates_need_an_external_id_field_the_user_can_update() {
        let (describe, _) = contact();
        assert_eq!(
            external_id_field(&describe, Some("key__c")).unwrap(),
            "Key__c"
        );
        let missing = external_id_field(&describe, None).unwrap_err().to_string();
        assert!(
            missing.contains("no field Sfsync_Key__c marked External ID"),
            "{missing}"
        );
        assert!(missing.contains("field name Sfsync_Key)"), "{missing}");
        let not_external = external_id_field(&describe, Some("Email"))
            .unwrap_err()
            .to_string();
        assert!(
            not_external.contains("no field Email marked"),
            "{not_external}"
        );
    }

    #[test]
    fn all_means_every_synced_updateable_field() {
        let (describe, selection) = contact();
        assert_eq!(
            write_columns(&describe, &selection, &WriteFields::All, "Key__c").unwrap(),
            ["email", "score__c"]
        );
        let (mut describe, selection) = contact();
        for f in &mut describe.fields {
            f.updateable = false;
        }
        let none = write_columns(&describe, &selection, &WriteFields::All, "Key__c").unwrap_err();
        assert!(none.to_string().contains("finds no field"), "{none}");
    }
}
