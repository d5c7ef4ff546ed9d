//! Creates and extends the target table of an object from its describe result. Additive only:
//! a column is added when Salesforce has a new field, never dropped or retyped, so a user's
//! own changes to the table (indexes, wider types) survive.

use common::schema::{
    FieldPlan, NameError, TARGET_SCHEMA, check_api_name, column_name, plan_for_type, qualified,
    quote_ident,
};
// Names in these statements passed check_api_name and are quoted; types come from a fixed list.
use sqlx::{AssertSqlSafe, PgPool};

use crate::salesforce::Describe;

/// The fields to query and store, in describe order, those left out with the reason, and the
/// replication key.
#[derive(Debug, Clone)]
pub struct FieldSelection {
    /// (Salesforce field name, PostgreSQL column type)
    pub columns: Vec<(String, &'static str)>,
    pub skipped: Vec<(String, &'static str)>,
    /// The field that says when a record last changed, which incremental syncs read from and
    /// the `systemmodstamp` column holds: see [`STAMP_FIELDS`]. `None` for an object that has
    /// none of them, which is read whole every time.
    pub stamp: Option<String>,
}

/// The replication key, in order of preference: SystemModstamp changes with every change,
/// system ones included; LastModifiedDate with every change a user makes (`UserLogin` has only
/// it); CreatedDate on objects whose records never change (history objects such as
/// `AccountHistory`).
pub const STAMP_FIELDS: [&str; 3] = ["SystemModstamp", "LastModifiedDate", "CreatedDate"];

impl FieldSelection {
    pub fn field_names(&self) -> Vec<&str> {
        self.columns.iter().map(|(name, _)| name.as_str()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("object {object} has no {field} field; sfsync needs it to upsert by Id")]
    MissingField { object: String, field: &'static str },
    /// A field named in `sfsync.toml` (`setting` is its key) that describe does not list.
    #[error("{setting}: object {object} has no field {field}")]
    UnknownField {
        setting: String,
        object: String,
        field: String,
    },
    #[error("field {field} of {object} cannot be synced: {reason}")]
    Unstorable {
        object: String,
        field: String,
        reason: &'static str,
    },
    #[error(
        "table salesforce.{table} already holds {owner} records; give {object} a table of its own \
         (`table` under [objects.{object}] in sfsync.toml)"
    )]
    Claimed {
        table: String,
        object: String,
        owner: String,
    },
    #[error("object {0} is not queryable in this org")]
    NotQueryable(String),
    #[error("cannot create or extend table {table}: {source}")]
    Database { table: String, source: sqlx::Error },
}

/// Chooses the fields to sync from a describe result, and the replication key among them.
///
/// # Errors
/// A name breaks Salesforce's rules, or the object lacks Id.
pub fn select_fields(describe: &Describe) -> Result<FieldSelection, TableError> {
    check_api_name("object", &describe.name)?;
    if !describe.queryable {
        return Err(TableError::NotQueryable(describe.name.clone()));
    }
    let mut columns = Vec::new();
    let mut skipped = Vec::new();
    for field in &describe.fields {
        check_api_name("field", &field.name)?;
        match plan_for_type(&field.sf_type) {
            FieldPlan::Column(pg_type) => columns.push((field.name.clone(), pg_type)),
            FieldPlan::Skip(why) => skipped.push((field.name.clone(), why)),
        }
    }
    let field = |wanted: &str| {
        columns
            .iter()
            .find(|(n, pg_type)| {
                n.eq_ignore_ascii_case(wanted) && (wanted == "Id" || *pg_type == "timestamptz")
            })
            .map(|(n, _)| n.clone())
    };
    if field("Id").is_none() {
        return Err(TableError::MissingField {
            object: describe.name.clone(),
            field: "Id",
        });
    }
    let stamp = STAMP_FIELDS.iter().find_map(|f| field(f));
    Ok(FieldSelection {
        columns,
        skipped,
        stamp,
    })
}

/// What [`ensure_table`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableChange {
    /// The table is new (e.g. after a table override changed): it needs every record,
    /// whatever the watermark says.
    pub created: bool,
    /// Columns added to a table that existed: their rows need the new fields' values (a
    /// back-fill, see [`crate::columns`]).
    pub added: Vec<String>,
}

/// Creates `salesforce.<table>` for `object` if needed and adds any missing column; `table` is
/// the object's lower-cased name or a checked override. The table is claimed for the object in
/// `sfsync.table_owners`: a table another object holds is refused. Every column is recorded in
/// `sfsync.columns` in the same transaction, those added to an existing table as needing a
/// back-fill, so that no column is ever added without the note that its rows lack values.
///
/// Runs under a transaction-scoped advisory lock, so producers starting at once do not race on
/// `CREATE SCHEMA`/`CREATE TABLE`.
///
/// # Errors
/// The database refused a statement.
pub async fn ensure_table(
    pool: &PgPool,
    object: &str,
    table_name: &str,
    selection: &FieldSelection,
) -> Result<TableChange, TableError> {
    let table = qualified(table_name);
    let db_err = |source| TableError::Database {
        table: table.clone(),
        source,
    };
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sfsync.schema'))")
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    sqlx::query(AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {}",
        quote_ident(TARGET_SCHEMA)
    )))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let owner: String = sqlx::query_scalar(
        "INSERT INTO sfsync.table_owners (table_name, object) VALUES ($1, $2)
         ON CONFLICT (table_name) DO UPDATE SET table_name = EXCLUDED.table_name
         RETURNING object",
    )
    .bind(table_name)
    .bind(object)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if !owner.eq_ignore_ascii_case(object) {
        return Err(TableError::Claimed {
            table: table_name.to_owned(),
            object: object.to_owned(),
            owner,
        });
    }
    let existed: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
    // Heroku Connect's layout: a local serial id, the 18-char sfid (unique, the upsert key),
    // the two columns every upsert relies on, and sfsync's own bookkeeping columns.
    let create = format!(
        "CREATE TABLE IF NOT EXISTS {table} (
            id bigserial PRIMARY KEY,
            sfid varchar(18) NOT NULL UNIQUE,
            systemmodstamp timestamptz NOT NULL,
            isdeleted boolean NOT NULL DEFAULT false,
            _sfsync_run_id uuid,
            _sfsync_synced_at timestamptz NOT NULL DEFAULT now()
        )"
    );
    sqlx::query(AssertSqlSafe(create))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let present: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute
          WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
    )
    .bind(&table)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let mut added = Vec::new();
    let mut recorded = Vec::with_capacity(selection.columns.len());
    for (field, pg_type) in &selection.columns {
        let column = column_name(field);
        if crate::columns::is_base_column(&column) {
            continue;
        }
        let new = !present.contains(&column);
        recorded.push((field.as_str(), new && existed));
        if !new {
            continue;
        }
        sqlx::query(AssertSqlSafe(format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {} {pg_type}",
            quote_ident(&column)
        )))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if existed {
            added.push(column);
        }
    }
    crate::columns::register(&mut tx, table_name, object, &recorded)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    if !added.is_empty() {
        tracing::info!(object, table = table_name, columns = ?added, "Columns added for new fields; a sync back-fills their existing rows.");
    }
    Ok(TableChange {
        created: !existed,
        added,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::salesforce::DescribeField;

    fn describe(fields: &[(&str, &str)]) -> Describe {
        describe_of("Contact", fields)
    }

    /// A describe of `name` with these (field, type) pairs.
    pub(crate) fn describe_of(name: &str, fields: &[(&str, &str)]) -> Describe {
        Describe {
            name: name.into(),
            queryable: true,
            replicateable: true,
            fields: fields
                .iter()
                .map(|(n, t)| DescribeField {
                    name: (*n).into(),
                    sf_type: (*t).into(),
                    calculated: false,
                    updateable: false,
                    external_id: false,
                    reference_to: Vec::new(),
                })
                .collect(),
        }
    }

    #[test]
    fn selects_storable_fields_and_says_why_others_are_skipped() {
        let sel = select_fields(&describe(&[
            ("Id", "id"),
            ("SystemModstamp", "datetime"),
            ("MailingAddress", "address"),
            ("LastName", "string"),
        ]))
        .unwrap();
        assert_eq!(sel.field_names(), ["Id", "SystemModstamp", "LastName"]);
        assert_eq!(sel.skipped[0].0, "MailingAddress");
    }

    #[test]
    fn the_stamp_is_system_modstamp_else_last_modified_else_created_else_none() {
        let all = [
            ("Id", "id"),
            ("CreatedDate", "datetime"),
            ("LastModifiedDate", "datetime"),
            ("SystemModstamp", "datetime"),
        ];
        for (fields, stamp) in [
            (&all[..], Some("SystemModstamp")),
            (&all[..3], Some("LastModifiedDate")),
            (&all[..2], Some("CreatedDate")),
            (&all[..1], None),
            // A custom field of another type by that name is no stamp.
            (&[("Id", "id"), ("CreatedDate", "string")][..], None),
        ] {
            let sel = select_fields(&describe(fields)).unwrap();
            assert_eq!(sel.stamp.as_deref(), stamp, "{fields:?}");
        }
    }

    #[test]
    fn refuses_objects_without_id_or_with_bad_names() {
        let err = select_fields(&describe(&[("SystemModstamp", "datetime")])).unwrap_err();
        assert!(matches!(err, TableError::MissingField { field: "Id", .. }));
        assert_eq!(
            err.to_string(),
            "object Contact has no Id field; sfsync needs it to upsert by Id"
        );
        assert!(matches!(
            select_fields(&describe(&[
                ("Id", "id"),
                ("SystemModstamp", "datetime"),
                ("x; drop", "string")
            ])),
            Err(TableError::Name(_))
        ));
    }
}
