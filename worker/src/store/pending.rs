//! A pull never undoes a local change that is still waiting to be written back. When the
//! page's table has open changes in `sfsync.outbox` (pending, or sent and not yet applied), the
//! staged rows are adjusted before the upsert: a record the application deleted is not brought
//! back, and a write column the application changed keeps the application's value, while every
//! other column takes Salesforce's. Without this, a pull between a local change and its push
//! would flip the row back to the old value, and the push would then send that old value.
//!
//! Tables without open changes (every read-only table) pay nothing but the check, which shares
//! its round trip with the transaction's writer mark.

use common::schema::{qualified, quote_ident};

use super::plan::PagePlan;
use crate::error::PageError;

/// Marks the transaction as sfsync's own (the capture trigger of a writable table skips it)
/// and says whether `table` has open outbox changes. Per transaction, not per connection, so
/// that the mark holds through a pooler that hands connections around.
///
/// # Errors
/// The database refused the query.
pub(super) async fn mark_and_check(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
) -> Result<bool, PageError> {
    let statement = tx
        .prepare_cached(
            "SELECT set_config('sfsync.writer', 'sfsync', true) IS NOT NULL
                AND EXISTS (SELECT 1 FROM sfsync.outbox
                             WHERE table_name = $1 AND state IN ('pending', 'in_flight'))",
        )
        .await?;
    Ok(tx.query_one(&statement, &[&table]).await?.get(0))
}

/// Adjusts the staged rows of a table with open changes (see the module docs).
///
/// # Errors
/// The database refused a statement.
pub(super) async fn keep_local_changes(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    plan: &PagePlan<'_>,
) -> Result<(), PageError> {
    let open = "o.table_name = $1 AND o.state IN ('pending', 'in_flight')";
    // IN over subqueries (one hashed lookup each), not joins: the staging table and a young
    // outbox have no statistics, and a join planned on a guess of one row each can scan the
    // outbox once per staged row.
    let deleted = tx
        .prepare_cached(&format!(
            "DELETE FROM _sfsync_stage
              WHERE sfid IN (SELECT o.sfid FROM sfsync.outbox o
                              WHERE {open} AND o.op = 'delete' AND o.sfid IS NOT NULL)"
        ))
        .await?;
    tx.execute(&deleted, &[&table]).await?;
    let changed: Vec<String> = tx
        .query(
            &format!("SELECT DISTINCT unnest(o.columns) FROM sfsync.outbox o WHERE {open}"),
            &[&table],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    for (_, _, column) in &plan.fields {
        if !changed.contains(&column.name) {
            continue;
        }
        let name = quote_ident(&column.name);
        // The stage holds text; the stored value's text form casts back to the same value.
        tx.execute(
            &format!(
                "UPDATE _sfsync_stage s SET {name} = t.{name}::text
                   FROM {table} t
                  WHERE t.sfid = s.sfid
                    AND t.id IN (SELECT o.row_id FROM sfsync.outbox o
                                  WHERE {open} AND $2 = ANY(o.columns))",
                table = qualified(table),
            ),
            &[&table, &column.name],
        )
        .await?;
    }
    Ok(())
}
