//! `sfsync.columns`: which Salesforce field each column of a synced table holds, and whether
//! syncs still fill it. Fields come and go in real orgs (an admin adds a custom field,
//! field-level security hides one from the integration user); columns are never dropped, so
//! this is where a column that only keeps old values is told apart from a current one, and
//! where a column whose existing rows still lack their values waits for its back-fill.
//!
//! [`crate::tables::ensure_table`] records the columns it adds (in its transaction, so a column
//! never exists without its record); after each sync, [`plan`] compares the records with what
//! describe said, and the sync applies the plan (see `sync::backfill`).

use chrono::{DateTime, Utc};
use common::schema::column_name;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// The columns every table has for the fields every sync needs: never recorded here, since
/// they cannot go stale (a sync without them stops first).
const BASE_COLUMNS: [&str; 3] = ["sfid", "systemmodstamp", "isdeleted"];

/// Why a column whose field describe no longer lists is stale.
pub const NOT_IN_DESCRIBE: &str = "no longer in the describe";

/// Whether `column` is one of the base columns this table does not record.
pub fn is_base_column(column: &str) -> bool {
    BASE_COLUMNS.contains(&column)
}

/// One recorded column.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Recorded {
    pub column_name: String,
    pub field: String,
    /// `synced` or `stale`.
    pub state: String,
    pub formula: bool,
    pub needs_backfill: bool,
}

impl Recorded {
    fn is_stale(&self) -> bool {
        self.state == "stale"
    }
}

/// What a sync read, to compare with the records.
#[derive(Debug, Clone, Copy)]
pub struct Current<'a> {
    /// The fields the sync queried, each with whether it is a formula field.
    pub synced: &'a [(&'a str, bool)],
    /// Fields describe lists that the sync left out, with the reason (their type, or
    /// `sfsync.toml`).
    pub left_out: &'a [(String, &'static str)],
}

/// A column whose field no sync reads any more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewlyStale {
    pub column: String,
    pub field: String,
    pub reason: String,
}

/// What to change after a sync; see [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Fields whose existing rows need the field's values: added since the table was made, or
    /// back after being stale (rows may have changed while it was hidden).
    pub backfill: Vec<String>,
    /// Columns that were synced and are not any more.
    pub newly_stale: Vec<NewlyStale>,
    /// Fields that were stale before this sync and still are.
    pub still_stale: Vec<String>,
    /// Columns whose formula flag is not what describe says: (column, formula).
    pub formula_changed: Vec<(String, bool)>,
}

/// Compares the recorded columns of a table with what a sync read.
pub fn plan(recorded: &[Recorded], current: Current<'_>) -> ColumnPlan {
    let mut plan = ColumnPlan::default();
    for row in recorded {
        let now = current
            .synced
            .iter()
            .find(|(field, _)| column_name(field) == row.column_name);
        match now {
            Some((field, formula)) => {
                if row.is_stale() || row.needs_backfill {
                    plan.backfill.push((*field).to_owned());
                }
                if row.formula != *formula {
                    plan.formula_changed
                        .push((row.column_name.clone(), *formula));
                }
            }
            None if row.is_stale() => plan.still_stale.push(row.field.clone()),
            None => {
                let reason = current
                    .left_out
                    .iter()
                    .find(|(field, _)| column_name(field) == row.column_name)
                    .map_or(NOT_IN_DESCRIBE, |(_, why)| why);
                plan.newly_stale.push(NewlyStale {
                    column: row.column_name.clone(),
                    field: row.field.clone(),
                    reason: reason.to_owned(),
                });
            }
        }
    }
    plan
}

/// Records the columns of `fields` (`(field, added now)`) in `table`; a column added now to a
/// table that already had rows needs a back-fill. Columns already recorded keep their record
/// (and their row is not rewritten: this runs before every sync), except that a column added
/// again (someone dropped it) needs a back-fill again.
///
/// # Errors
/// The database refused the statement.
pub async fn register(
    db: &mut PgConnection,
    table: &str,
    object: &str,
    fields: &[(&str, bool)],
) -> sqlx::Result<()> {
    let fields: Vec<(&str, String, bool)> = fields
        .iter()
        .map(|(field, added)| (*field, column_name(field), *added))
        .filter(|(_, column, _)| !is_base_column(column))
        .collect();
    sqlx::query(
        "INSERT INTO sfsync.columns (table_name, column_name, object, field, needs_backfill)
         SELECT $1, c, $2, f, b FROM unnest($3::text[], $4::text[], $5::boolean[]) AS u(c, f, b)
         ON CONFLICT (table_name, column_name) DO UPDATE SET needs_backfill = true
          WHERE EXCLUDED.needs_backfill AND NOT sfsync.columns.needs_backfill",
    )
    .bind(table)
    .bind(object)
    .bind(fields.iter().map(|f| f.1.clone()).collect::<Vec<_>>())
    .bind(fields.iter().map(|f| f.0).collect::<Vec<_>>())
    .bind(fields.iter().map(|f| f.2).collect::<Vec<_>>())
    .execute(db)
    .await?;
    Ok(())
}

/// The recorded columns of `table`.
///
/// # Errors
/// The query failed.
pub async fn load(pool: &PgPool, table: &str) -> sqlx::Result<Vec<Recorded>> {
    sqlx::query_as(
        "SELECT column_name, field, state, formula, needs_backfill FROM sfsync.columns
          WHERE table_name = $1 ORDER BY column_name",
    )
    .bind(table)
    .fetch_all(pool)
    .await
}

/// Marks columns stale, from now, with their reasons.
///
/// # Errors
/// The update failed.
pub async fn mark_stale(pool: &PgPool, table: &str, stale: &[NewlyStale]) -> sqlx::Result<()> {
    if stale.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE sfsync.columns c SET state = 'stale', since = now(), reason = u.reason
           FROM unnest($2::text[], $3::text[]) AS u(column_name, reason)
          WHERE c.table_name = $1 AND c.column_name = u.column_name",
    )
    .bind(table)
    .bind(stale.iter().map(|s| s.column.as_str()).collect::<Vec<_>>())
    .bind(stale.iter().map(|s| s.reason.as_str()).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// Marks the columns of `fields` synced and given their values (a stale one from now on).
///
/// # Errors
/// The update failed.
pub async fn mark_synced(pool: &PgPool, table: &str, fields: &[String]) -> sqlx::Result<()> {
    if fields.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE sfsync.columns
            SET since = CASE WHEN state = 'stale' THEN now() ELSE since END,
                state = 'synced', reason = NULL, needs_backfill = false
          WHERE table_name = $1 AND column_name = ANY($2::text[])",
    )
    .bind(table)
    .bind(fields.iter().map(|f| column_name(f)).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// Sets the formula flag of columns: `(column, formula)`.
///
/// # Errors
/// The update failed.
pub async fn set_formula(pool: &PgPool, table: &str, flags: &[(String, bool)]) -> sqlx::Result<()> {
    if flags.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE sfsync.columns c SET formula = u.formula
           FROM unnest($2::text[], $3::boolean[]) AS u(column_name, formula)
          WHERE c.table_name = $1 AND c.column_name = u.column_name",
    )
    .bind(table)
    .bind(flags.iter().map(|f| f.0.as_str()).collect::<Vec<_>>())
    .bind(flags.iter().map(|f| f.1).collect::<Vec<_>>())
    .execute(pool)
    .await?;
    Ok(())
}

/// `object` as describe spells it, if its last sync into `table` read formula fields: a
/// database query, so that an object without them costs no API call when refreshes come due.
///
/// # Errors
/// The query failed.
pub async fn with_formulas(
    pool: &PgPool,
    object: &str,
    table: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT object FROM sfsync.columns
          WHERE table_name = $1 AND lower(object) = lower($2) AND formula AND state = 'synced'
          LIMIT 1",
    )
    .bind(table)
    .bind(object)
    .fetch_optional(pool)
    .await
}

/// A column no sync fills any more, as `producer status` shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StaleColumn {
    pub table_name: String,
    pub column_name: String,
    pub object: String,
    pub field: String,
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
}

/// Every stale column, by table and column.
///
/// # Errors
/// The query failed.
pub async fn stale(pool: &PgPool) -> sqlx::Result<Vec<StaleColumn>> {
    sqlx::query_as(
        "SELECT table_name, column_name, object, field, reason, since FROM sfsync.columns
          WHERE state = 'stale' ORDER BY table_name, column_name",
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(field: &str, state: &str, formula: bool, needs_backfill: bool) -> Recorded {
        Recorded {
            column_name: column_name(field),
            field: field.to_owned(),
            state: state.to_owned(),
            formula,
            needs_backfill,
        }
    }

    #[test]
    fn new_and_returning_fields_are_back_filled_and_vanished_ones_go_stale() {
        let recorded = [
            row("LastName", "synced", false, false),
            row("Tier__c", "synced", false, true),
            row("Title", "synced", false, false),
            row("Email", "stale", false, false),
            row("Phone", "stale", false, false),
            row("Department", "synced", false, false),
        ];
        let synced = [("LastName", false), ("Tier__c", false), ("Email", false)];
        let left_out = [("Department".to_owned(), "left out by sfsync.toml")];
        let plan = plan(
            &recorded,
            Current {
                synced: &synced,
                left_out: &left_out,
            },
        );
        assert_eq!(plan.backfill, ["Tier__c", "Email"]);
        assert_eq!(
            plan.newly_stale,
            [
                NewlyStale {
                    column: "title".into(),
                    field: "Title".into(),
                    reason: NOT_IN_DESCRIBE.into(),
                },
                NewlyStale {
                    column: "department".into(),
                    field: "Department".into(),
                    reason: "left out by sfsync.toml".into(),
                },
            ]
        );
        assert_eq!(plan.still_stale, ["Phone"]);
        assert!(plan.formula_changed.is_empty());
    }

    #[test]
    fn formula_flags_follow_describe_and_nothing_changes_when_all_is_in_step() {
        let recorded = [
            row("Score__c", "synced", false, false),
            row("Name", "synced", false, false),
        ];
        let synced = [("Score__c", true), ("Name", false)];
        let plan = plan(
            &recorded,
            Current {
                synced: &synced,
                left_out: &[],
            },
        );
        assert_eq!(plan.formula_changed, [("score__c".to_owned(), true)]);
        assert!(plan.backfill.is_empty() && plan.newly_stale.is_empty());
        assert!(plan.still_stale.is_empty());
    }

    #[test]
    fn base_columns_are_not_recorded() {
        assert!(is_base_column(&column_name("Id")));
        assert!(is_base_column(&column_name("SystemModstamp")));
        assert!(!is_base_column(&column_name("Title")));
    }
}
