//! The capture trigger on a writable table. `sfsync.capture()` (a migration) records each
//! insert, each update that really changes a write column, and each delete in `sfsync.outbox`;
//! `sfsync.refuse_truncate()` refuses TRUNCATE, which fires no row trigger.
//!
//! A writable table also lets the application insert rows Salesforce has not seen yet: `sfid`
//! may be null until the push assigns it, and `systemmodstamp` defaults to -infinity so that the
//! first pull of the record wins the modstamp guard.

use common::{
    push::ConflictPolicy,
    schema::{qualified, quote_ident},
};
use sqlx::{AssertSqlSafe, PgPool};

/// The trigger that records changes.
pub const CAPTURE_TRIGGER: &str = "sfsync_capture";
/// The trigger that refuses TRUNCATE.
pub const TRUNCATE_TRIGGER: &str = "sfsync_no_truncate";

/// Makes `salesforce.<table>` writable on `columns` (its write columns), replacing an earlier
/// capture trigger: the columns may have changed since.
///
/// # Errors
/// The database refused a statement.
pub async fn install(pool: &PgPool, table: &str, columns: &[String]) -> sqlx::Result<()> {
    let qualified = qualified(table);
    // Trigger arguments are string literals; the columns are lower-case API names
    // (checked as such when the settings were read), so quoting them as literals is exact.
    let arguments: Vec<String> = columns
        .iter()
        .map(|c| format!("'{}'", c.replace('\'', "''")))
        .collect();
    let mut tx = pool.begin().await?;
    for statement in [
        format!(
            "ALTER TABLE {qualified} ALTER COLUMN sfid DROP NOT NULL, \
             ALTER COLUMN systemmodstamp SET DEFAULT '-infinity'"
        ),
        format!(
            "DROP TRIGGER IF EXISTS {} ON {qualified}",
            quote_ident(CAPTURE_TRIGGER)
        ),
        format!(
            "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {qualified} \
             FOR EACH ROW EXECUTE FUNCTION sfsync.capture({})",
            quote_ident(CAPTURE_TRIGGER),
            arguments.join(", ")
        ),
        format!(
            "DROP TRIGGER IF EXISTS {} ON {qualified}",
            quote_ident(TRUNCATE_TRIGGER)
        ),
        format!(
            "CREATE TRIGGER {} BEFORE TRUNCATE ON {qualified} \
             FOR EACH STATEMENT EXECUTE FUNCTION sfsync.refuse_truncate()",
            quote_ident(TRUNCATE_TRIGGER)
        ),
    ] {
        sqlx::query(AssertSqlSafe(statement))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// What the workers need to know about a writable table (`sfsync.writable`), and the view of
/// each of its rows' last push operation (`sfsync.<table>_push`).
pub struct Registration<'a> {
    pub table: &'a str,
    pub object: &'a str,
    pub conflict: ConflictPolicy,
    /// The External ID field's API name.
    pub external_id_field: &'a str,
}

/// The view of `table`'s rows' last push operation.
pub fn view_name(table: &str) -> String {
    format!("{table}_push")
}

/// Records `registration` for the workers and makes the table's push view. Called with
/// [`install`], each time a sync starts: the settings may have changed since.
///
/// # Errors
/// The database refused a statement.
pub async fn register(pool: &PgPool, registration: &Registration<'_>) -> sqlx::Result<()> {
    let Registration {
        table,
        object,
        conflict,
        external_id_field,
    } = registration;
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO sfsync.writable (table_name, object, conflict, external_id_field, external_id_column)
         VALUES ($1, $2, $3, $4, lower($4))
         ON CONFLICT (table_name) DO UPDATE
            SET object = EXCLUDED.object, conflict = EXCLUDED.conflict,
                external_id_field = EXCLUDED.external_id_field,
                external_id_column = EXCLUDED.external_id_column, updated_at = now()
          WHERE (sfsync.writable.object, sfsync.writable.conflict, sfsync.writable.external_id_field)
                IS DISTINCT FROM (EXCLUDED.object, EXCLUDED.conflict, EXCLUDED.external_id_field)",
    )
    .bind(table)
    .bind(object)
    .bind(conflict.as_str())
    .bind(external_id_field)
    .execute(&mut *tx)
    .await?;
    // Merged changes were folded into a later one of the same row, which the view shows.
    sqlx::query(AssertSqlSafe(format!(
        "CREATE OR REPLACE VIEW sfsync.{view} AS
         SELECT DISTINCT ON (o.row_id)
                o.row_id AS id, o.sfid, o.op AS last_op, o.state, o.error, o.captured_at, o.batch_id
           FROM sfsync.outbox o
          WHERE o.table_name = '{literal}' AND o.state <> 'merged'
          ORDER BY o.row_id, o.id DESC",
        view = quote_ident(&view_name(table)),
        // A plain lower-case table name (checked when the settings were read).
        literal = table.replace('\'', "''"),
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Makes `salesforce.<table>` read-only again (its object no longer has `write`): changes are
/// no longer captured. What the outbox holds stays there. `sfid` stays nullable, since rows
/// without one may exist.
///
/// # Errors
/// The database refused a statement.
pub async fn remove(pool: &PgPool, table: &str) -> sqlx::Result<()> {
    let qualified = qualified(table);
    let mut tx = pool.begin().await?;
    sqlx::query("DELETE FROM sfsync.writable WHERE table_name = $1")
        .bind(table)
        .execute(&mut *tx)
        .await?;
    sqlx::query(AssertSqlSafe(format!(
        "DROP VIEW IF EXISTS sfsync.{}",
        quote_ident(&view_name(table))
    )))
    .execute(&mut *tx)
    .await?;
    for trigger in [CAPTURE_TRIGGER, TRUNCATE_TRIGGER] {
        sqlx::query(AssertSqlSafe(format!(
            "DROP TRIGGER IF EXISTS {} ON {qualified}",
            quote_ident(trigger)
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Whether `salesforce.<table>` has the capture trigger.
///
/// # Errors
/// The database refused the query.
pub async fn installed(pool: &PgPool, table: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_trigger
                         WHERE tgrelid = to_regclass($1) AND tgname = $2)",
    )
    .bind(qualified(table))
    .bind(CAPTURE_TRIGGER)
    .fetch_one(pool)
    .await
}
