//! Per-object settings from `sfsync.toml`: the `[sync] objects` list that `sync --all` syncs,
//! and `[objects.<Name>]` sections (table name, fields to include or exclude, hard delete, and
//! the `where` filter of objects Salesforce queries only with one).
//!
//! Names are checked when the file is read (object and field names against Salesforce's
//! identifier rules, table names as plain PostgreSQL names), and so is the shape of a `where`;
//! field names are checked against the org's describe before the first object is synced.

use common::{
    config_file::{ConfigError, ConfigFile},
    schema::{check_api_name, check_table_name, table_name},
};
use serde::Deserialize;

use crate::{
    salesforce::Describe,
    tables::{FieldSelection, TableError},
};

/// Fields every sync needs whatever the settings say: the upsert key, its guard, and the
/// soft-delete flag.
pub const ALWAYS_KEPT: [&str; 3] = ["Id", "SystemModstamp", "IsDeleted"];

/// One `[objects.<Name>]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSettings {
    /// Table in schema `salesforce` instead of the lower-cased object name.
    pub table: Option<String>,
    /// Sync only these fields (plus [`ALWAYS_KEPT`]).
    pub include_fields: Option<Vec<String>>,
    /// Sync every field but these ([`ALWAYS_KEPT`] cannot be excluded).
    pub exclude_fields: Option<Vec<String>>,
    /// `--hard-delete` for this object (a flag or `SFSYNC_HARD_DELETE` still wins).
    pub hard_delete: Option<bool>,
    /// A SOQL condition every query of the object carries (`where` in the file): objects such
    /// as `ContentDocumentLink` are queried only with a filter on certain fields. The user's own
    /// SOQL, checked for its shape only (see [`check_where`]).
    #[serde(rename = "where")]
    pub filter: Option<String>,
    /// The fields the application may change and sfsync writes back to Salesforce (see
    /// [`crate::write`]); `None` keeps the table read-only.
    pub write: Option<crate::write::WriteFields>,
    /// The External ID field write-back creates records under
    /// ([`crate::write::DEFAULT_EXTERNAL_ID`] if not set).
    pub external_id: Option<String>,
    /// What a pull does when Salesforce changed a field that also has a local change waiting
    /// to be written back (`local-wins` if not set).
    pub conflict: Option<common::push::ConflictPolicy>,
}

impl ObjectSettings {
    /// The table override, if it differs from the default name.
    pub fn table_override(&self, object: &str) -> Option<String> {
        self.table.clone().filter(|t| *t != table_name(object))
    }

    /// The table the object's records go to.
    pub fn table(&self, object: &str) -> String {
        self.table.clone().unwrap_or_else(|| table_name(object))
    }

    fn has_field_filter(&self) -> bool {
        self.include_fields.is_some() || self.exclude_fields.is_some()
    }
}

/// The objects the settings file configures, in file order.
#[derive(Debug, Clone, Default)]
pub struct ObjectsConfig {
    /// `[sync] objects`.
    listed: Vec<String>,
    /// `[objects.<Name>]`, in file order.
    sections: Vec<(String, ObjectSettings)>,
}

impl ObjectsConfig {
    /// Reads `[sync] objects` and the `[objects.*]` sections, checking every name.
    ///
    /// # Errors
    /// Names the key and what is wrong with it.
    pub fn from_file(file: &ConfigFile) -> Result<Self, ConfigError> {
        let error = |key: String, reason: String| ConfigError::Setting {
            path: file.path.clone(),
            key,
            reason,
        };
        let mut config = Self::default();
        if let Some(list) = file.section("sync").and_then(|s| s.get("objects")) {
            let names: Vec<String> = list.clone().try_into().map_err(|_| {
                error(
                    "sync.objects".into(),
                    "expected a list of object names, e.g. [\"Account\", \"Contact\"]".into(),
                )
            })?;
            for name in names {
                check_api_name("object", &name)
                    .map_err(|e| error("sync.objects".into(), e.to_string()))?;
                if !config.listed.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                    config.listed.push(name);
                }
            }
        }
        for (name, value) in file.section("objects").into_iter().flatten() {
            let key = format!("objects.{name}");
            check_api_name("object", name).map_err(|e| error(key.clone(), e.to_string()))?;
            if config.get(name).is_some() {
                return Err(error(
                    key,
                    "configured twice (object names are not case-sensitive)".into(),
                ));
            }
            let settings: ObjectSettings = value
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| error(key.clone(), e.message().trim().into()))?;
            if let Some(table) = &settings.table {
                check_table_name(table).map_err(|e| error(format!("{key}.table"), e))?;
            }
            if let Some(field) = &settings.external_id {
                check_api_name("field", field)
                    .map_err(|e| error(format!("{key}.external_id"), e.to_string()))?;
            }
            if settings.write.is_none() {
                for (set, what) in [
                    (settings.external_id.is_some(), "external_id"),
                    (settings.conflict.is_some(), "conflict"),
                ] {
                    if set {
                        return Err(error(
                            format!("{key}.{what}"),
                            format!(
                                "{what} is a write-back setting, and the section has no `write`: add `write = [\"Field__c\"]` (or `write = \"all\"`), or remove {what}"
                            ),
                        ));
                    }
                }
            }
            if let Some(filter) = &settings.filter {
                check_where(filter).map_err(|e| error(format!("{key}.where"), e))?;
            }
            if settings.include_fields.is_some() && settings.exclude_fields.is_some() {
                return Err(error(
                    key,
                    "include_fields and exclude_fields cannot both be set".into(),
                ));
            }
            for (list, what) in [
                (&settings.include_fields, "include_fields"),
                (&settings.exclude_fields, "exclude_fields"),
            ] {
                for field in list.iter().flatten() {
                    check_api_name("field", field)
                        .map_err(|e| error(format!("{key}.{what}"), e.to_string()))?;
                }
            }
            for field in settings.exclude_fields.iter().flatten() {
                if ALWAYS_KEPT.iter().any(|k| k.eq_ignore_ascii_case(field)) {
                    return Err(error(
                        format!("{key}.exclude_fields"),
                        format!(
                            "{field} cannot be excluded: sfsync needs Id, SystemModstamp and IsDeleted"
                        ),
                    ));
                }
            }
            config.sections.push((name.clone(), settings));
        }
        config
            .check_tables_distinct()
            .map_err(|(key, reason)| error(key, reason))?;
        Ok(config)
    }

    /// Two objects writing one table would overwrite each other's rows.
    fn check_tables_distinct(&self) -> Result<(), (String, String)> {
        let objects = self.all_objects();
        for (i, a) in objects.iter().enumerate() {
            for b in &objects[..i] {
                let table = self.settings(a).table(a);
                if table == self.settings(b).table(b) {
                    return Err((
                        format!("objects.{a}.table"),
                        format!("{a} and {b} would both be stored in table salesforce.{table}"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The settings of `object` (any casing), if it has a section.
    pub fn get(&self, object: &str) -> Option<&ObjectSettings> {
        self.sections
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(object))
            .map(|(_, s)| s)
    }

    /// The settings of `object`, the defaults if it has no section.
    pub fn settings(&self, object: &str) -> ObjectSettings {
        self.get(object).cloned().unwrap_or_default()
    }

    /// The objects whose section has `write`, in file order: what `push` sends by default.
    pub fn writable_objects(&self) -> Vec<String> {
        self.sections
            .iter()
            .filter(|(_, s)| s.write.is_some())
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// What `sync --all` syncs: `[sync] objects`, then each `[objects.*]` not listed there.
    pub fn all_objects(&self) -> Vec<String> {
        let mut all = self.listed.clone();
        for (name, _) in &self.sections {
            if !all.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                all.push(name.clone());
            }
        }
        all
    }

    /// Forgets the per-object `hard_delete` values: a `--hard-delete` flag or
    /// `SFSYNC_HARD_DELETE` was given, and it beats the file.
    pub fn override_hard_delete(&mut self) {
        for (_, s) in &mut self.sections {
            s.hard_delete = None;
        }
    }

    /// Whether any object has fields to include or exclude (checked against describe first).
    pub fn has_field_filters(&self, objects: &[String]) -> bool {
        objects
            .iter()
            .any(|o| self.get(o).is_some_and(ObjectSettings::has_field_filter))
    }
}

/// Refuses a `where` that cannot be a plain condition: empty, with the WHERE keyword, more than
/// one statement (`;`), clauses sfsync writes itself (ORDER BY, LIMIT, OFFSET, GROUP BY), or
/// unbalanced parentheses or quotes (the condition is put in parentheses, and must stay in
/// them). Text inside quotes is not looked at.
///
/// # Errors
/// What is wrong, for the message naming the setting.
pub fn check_where(filter: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err("is empty: give a SOQL condition, e.g. LinkedEntityId IN ('001…'), or leave the setting out".into());
    }
    // The text outside quoted strings, and whether every quote and parenthesis closes.
    let mut outside = String::with_capacity(filter.len());
    let (mut quoted, mut escaped, mut depth) = (false, false, 0i32);
    for c in filter.chars() {
        match (quoted, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (true, false, '\'') => quoted = false,
            (true, false, _) => {}
            (false, _, '\'') => {
                quoted = true;
                outside.push(' ');
            }
            (false, _, ';') => {
                return Err("holds a `;`: give one SOQL condition, not statements".into());
            }
            (false, _, c) => {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                if depth < 0 {
                    return Err(format!("has a `)` that closes nothing: {filter}"));
                }
                outside.push(c.to_ascii_uppercase());
            }
        }
    }
    if quoted || depth != 0 {
        return Err(format!("has an unclosed quote or parenthesis: {filter}"));
    }
    let words: Vec<&str> = outside
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .collect();
    if words.first() == Some(&"WHERE") {
        return Err(format!(
            "starts with WHERE: give the condition only (sfsync writes the WHERE): {filter}"
        ));
    }
    let clause = words.windows(2).find_map(|w| match w {
        ["ORDER" | "GROUP", "BY"] => Some(format!("{} BY", w[0])),
        _ => None,
    });
    let clause = clause.or_else(|| {
        words
            .iter()
            .find(|w| matches!(**w, "LIMIT" | "OFFSET"))
            .map(|w| (*w).to_owned())
    });
    match clause {
        Some(clause) => Err(format!(
            "holds {clause}: give a condition only; sfsync writes the rest of the query itself"
        )),
        None => Ok(()),
    }
}

/// Applies `include_fields`/`exclude_fields` to the fields chosen from describe. The replication
/// key is always kept, as [`ALWAYS_KEPT`] are.
///
/// # Errors
/// A configured field is not a field of the object, or is one sfsync cannot store, or an
/// excluded field is the object's replication key.
pub fn filter_fields(
    describe: &Describe,
    settings: &ObjectSettings,
    selection: FieldSelection,
) -> Result<FieldSelection, TableError> {
    let configured = [
        ("include_fields", &settings.include_fields),
        ("exclude_fields", &settings.exclude_fields),
    ];
    let configured = configured
        .iter()
        .flat_map(|(key, list)| list.iter().flatten().map(move |f| (*key, f)));
    for (key, field) in configured {
        if !describe
            .fields
            .iter()
            .any(|f| f.name.eq_ignore_ascii_case(field))
        {
            return Err(TableError::UnknownField {
                setting: format!("objects.{}.{key}", describe.name),
                object: describe.name.clone(),
                field: field.clone(),
            });
        }
        let is_stamp = selection
            .stamp
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(field));
        if key == "exclude_fields" && is_stamp {
            return Err(TableError::Unstorable {
                object: describe.name.clone(),
                field: field.clone(),
                reason: "it is the object's replication key (sfsync reads changes by it); \
                         remove it from exclude_fields",
            });
        }
        if let Some((_, why)) = selection
            .skipped
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(field))
            .filter(|_| settings.include_fields.is_some())
        {
            return Err(TableError::Unstorable {
                object: describe.name.clone(),
                field: field.clone(),
                reason: why,
            });
        }
    }
    let listed = |list: &Option<Vec<String>>, name: &str| {
        list.iter().flatten().any(|f| f.eq_ignore_ascii_case(name))
    };
    let stamp = selection.stamp.as_deref();
    let keep = |name: &str| {
        ALWAYS_KEPT.iter().any(|k| k.eq_ignore_ascii_case(name))
            || stamp.is_some_and(|s| s.eq_ignore_ascii_case(name))
            || match (&settings.include_fields, &settings.exclude_fields) {
                (Some(_), _) => listed(&settings.include_fields, name),
                (None, Some(_)) => !listed(&settings.exclude_fields, name),
                (None, None) => true,
            }
    };
    let (columns, left_out): (Vec<_>, Vec<_>) = selection
        .columns
        .into_iter()
        .partition(|(name, _)| keep(name));
    let mut skipped = selection.skipped;
    skipped.extend(
        left_out
            .into_iter()
            .map(|(name, _)| (name, "left out by sfsync.toml")),
    );
    Ok(FieldSelection {
        columns,
        skipped,
        stamp: selection.stamp,
    })
}

/// Checks the field settings of `objects` against the org before any sync starts, so that a
/// typo stops the run at once rather than after the objects before it.
///
/// # Errors
/// Describe failed, or a configured field is unknown or cannot be stored.
pub async fn check_fields_against_org(
    sf: &crate::salesforce::SalesforceClient,
    config: &ObjectsConfig,
    objects: &[String],
) -> anyhow::Result<()> {
    for object in objects {
        let settings = config.settings(object);
        if !settings.has_field_filter() {
            continue;
        }
        let describe = sf.describe(object).await?;
        let selection = crate::tables::select_fields(&describe)?;
        filter_fields(&describe, &settings, selection)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tests::describe_of;

    fn config(toml: &str) -> Result<ObjectsConfig, String> {
        let file = ConfigFile::parse("sfsync.toml", toml).map_err(|e| e.to_string())?;
        ObjectsConfig::from_file(&file).map_err(|e| e.to_string())
    }

    #[test]
    fn all_objects_follow_the_file_order() {
        let c = config(
            "[sync]\nobjects = [\"Contact\", \"Account\"]\n[objects.Lead]\n[objects.contact]\ntable = \"people\"",
        )
        .unwrap();
        assert_eq!(c.all_objects(), ["Contact", "Account", "Lead"]);
        assert_eq!(c.settings("CONTACT").table("Contact"), "people");
        assert_eq!(c.settings("Account").table("Account"), "account");
    }

    #[test]
    fn a_writable_object_names_its_conflict_policy() {
        let c = config("[objects.Contact]\nwrite = [\"Email\"]\nconflict = \"salesforce-wins\"\n[objects.Lead]\nwrite = \"all\"")
            .unwrap();
        assert_eq!(
            c.settings("Contact").conflict,
            Some(common::push::ConflictPolicy::SalesforceWins)
        );
        assert_eq!(c.settings("Lead").conflict, None);
    }

    #[test]
    fn bad_names_are_refused_with_their_key() {
        for (toml, want) in [
            (
                "[sync]\nobjects = [\"Con tact\"]",
                "sfsync.toml: sync.objects: object \"Con tact\" is not a valid Salesforce API name",
            ),
            (
                "[sync]\nobjects = \"Contact\"",
                "sfsync.toml: sync.objects: expected a list of object names",
            ),
            (
                "[objects.\"Bad-Name\"]",
                "sfsync.toml: objects.Bad-Name: object \"Bad-Name\" is not a valid Salesforce API name",
            ),
            (
                "[objects.Contact]\ntable = \"People\"",
                "sfsync.toml: objects.Contact.table: table \"People\" is not a plain PostgreSQL name",
            ),
            (
                "[objects.Contact]\ninclude_fields = [\"Last Name\"]",
                "sfsync.toml: objects.Contact.include_fields: field \"Last Name\" is not a valid Salesforce API name",
            ),
            (
                "[objects.Contact]\ntabel = \"x\"",
                "sfsync.toml: objects.Contact: unknown field `tabel`, expected one of `table`, `include_fields`, `exclude_fields`, `hard_delete`",
            ),
            (
                "[objects.Contact]\ninclude_fields = [\"Id\"]\nexclude_fields = [\"Email\"]",
                "sfsync.toml: objects.Contact: include_fields and exclude_fields cannot both be set",
            ),
            (
                "[objects.Contact]\nconflict = \"reject\"",
                "sfsync.toml: objects.Contact.conflict: conflict is a write-back setting, and the section has no `write`",
            ),
            (
                "[objects.Contact]\nwrite = \"all\"\nconflict = \"remote-wins\"",
                "sfsync.toml: objects.Contact: unknown variant `remote-wins`, expected one of `local-wins`, `salesforce-wins`, `reject`",
            ),
            (
                "[objects.Contact]\nexclude_fields = [\"systemmodstamp\"]",
                "sfsync.toml: objects.Contact.exclude_fields: systemmodstamp cannot be excluded",
            ),
            (
                "[objects.Contact]\n[objects.CONTACT]",
                "sfsync.toml: objects.CONTACT: configured twice",
            ),
            (
                "[objects.Contact]\ntable = \"account\"\n[objects.Account]",
                "sfsync.toml: objects.Account.table: Account and Contact would both be stored in table salesforce.account",
            ),
            (
                "[objects.Contact]\nhard_delete = \"yes\"",
                "sfsync.toml: objects.Contact: invalid type: string \"yes\", expected a boolean",
            ),
            (
                "[objects.ContentDocumentLink]\nwhere = \" \"",
                "sfsync.toml: objects.ContentDocumentLink.where: is empty: give a SOQL condition",
            ),
        ] {
            let e = config(toml).unwrap_err();
            assert!(e.starts_with(want), "{toml}:\n{e}\nwanted {want}");
        }
    }

    #[test]
    fn a_where_must_be_one_plain_condition() {
        for good in [
            "LinkedEntityId IN ('001000000000001AAA', '001000000000002AAA')",
            "ContentDocumentId = '069000000000001AAA' AND (ShareType = 'V' OR Visibility = 'AllUsers')",
            // Keywords and separators inside strings are data, not SOQL.
            "Title = 'order by; limit 5 it\\'s (not'",
            "Limit__c > 5",
        ] {
            assert_eq!(check_where(good), Ok(()), "{good}");
        }
        // (the condition, with `Id = 'x'` for X; the start of the error)
        for (bad, want) in [
            ("", "is empty"),
            ("WHERE X", "starts with WHERE"),
            ("X; DELETE", "holds a `;`"),
            ("X ORDER BY Id", "holds ORDER BY"),
            ("X limit 10", "holds LIMIT"),
            ("Id IN ('x'", "has an unclosed quote or parenthesis"),
            ("Id = 'x) OR (Id != null", "has an unclosed quote"),
            (
                "Id != null) OR (Id != null",
                "has a `)` that closes nothing",
            ),
        ] {
            let bad = bad.replace('X', "Id = 'x'");
            let e = check_where(&bad).unwrap_err();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
        let c = config("[objects.ContentDocumentLink]\nwhere = \"Id = 'x'\"").unwrap();
        assert_eq!(
            c.settings("contentdocumentlink").filter.as_deref(),
            Some("Id = 'x'")
        );
    }

    #[test]
    fn the_replication_key_is_kept_like_system_modstamp() {
        let history = [
            ("Id", "id"),
            ("CreatedDate", "datetime"),
            ("Field", "string"),
        ];
        let d = describe_of("AccountHistory", &history);
        let settings = |toml: &str| config(toml).unwrap().settings("AccountHistory");
        let sel = crate::tables::select_fields(&d).unwrap();
        let include = settings("[objects.AccountHistory]\ninclude_fields = [\"Field\"]");
        let kept = filter_fields(&d, &include, sel.clone()).unwrap();
        assert_eq!(kept.field_names(), ["Id", "CreatedDate", "Field"]);
        assert_eq!(kept.stamp.as_deref(), Some("CreatedDate"));
        let exclude = settings("[objects.AccountHistory]\nexclude_fields = [\"createddate\"]");
        let e = filter_fields(&d, &exclude, sel).unwrap_err();
        assert!(e.to_string().contains("replication key"), "{e}");
    }

    fn describe() -> Describe {
        describe_of(
            "Contact",
            &[
                ("Id", "id"),
                ("SystemModstamp", "datetime"),
                ("IsDeleted", "boolean"),
                ("FirstName", "string"),
                ("LastName", "string"),
                ("Email", "email"),
                ("MailingAddress", "address"),
            ],
        )
    }

    fn filtered(toml: &str) -> Result<Vec<String>, String> {
        let c = config(toml).unwrap();
        let d = describe();
        let sel = crate::tables::select_fields(&d).unwrap();
        filter_fields(&d, &c.settings("Contact"), sel)
            .map(|s| s.field_names().iter().map(|f| f.to_string()).collect())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn include_and_exclude_act_on_describe_and_keep_what_sync_needs() {
        assert_eq!(
            filtered("[objects.Contact]\ninclude_fields = [\"lastname\"]").unwrap(),
            ["Id", "SystemModstamp", "IsDeleted", "LastName"]
        );
        assert_eq!(
            filtered("[objects.Contact]\nexclude_fields = [\"Email\", \"FirstName\"]").unwrap(),
            ["Id", "SystemModstamp", "IsDeleted", "LastName"]
        );
        assert_eq!(
            filtered("[objects.Contact]\ninclude_fields = [\"Nickname\"]").unwrap_err(),
            "objects.Contact.include_fields: object Contact has no field Nickname"
        );
        assert!(
            filtered("[objects.Contact]\ninclude_fields = [\"MailingAddress\"]")
                .unwrap_err()
                .starts_with("field MailingAddress of Contact cannot be synced: compound field")
        );
    }
}
