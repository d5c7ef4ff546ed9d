//! A pull never undoes a local change that is still waiting to be written back. When the
//! page's table has open changes in `sfsync.outbox` (pending; sent and not yet applied; or
//! refused and waiting on the dead-letter queue for a replay or a purge), the staged rows are
//! adjusted before the upsert: a record the application deleted is not brought back, and a
//! write column the application changed keeps the application's value, while every other
//! column takes Salesforce's. Without this, a pull between a local change and its push would
//! flip the row back to the old value, and the push would then send that old value.
//!
//! Two more things happen here, both only on tables with open changes:
//! - **Adoption.** A record whose create Salesforce committed but whose answer was lost can
//!   come in a pull before the create is sent again. It carries the External ID value the
//!   outbox gave it, so its row (still without `sfid`) takes its Id instead of the table
//!   getting a second row for it.
//! - **Conflicts.** Salesforce changed a field that also has a pending local change: the
//!   incoming value differs from the value the field had before the local change (kept in the
//!   outbox), and from the local value. The table's policy (`sfsync.writable.conflict`)
//!   decides: `local-wins` keeps the local value; `salesforce-wins` takes Salesforce's and
//!   drops the field from the local change; `reject` keeps the local value but does not send
//!   it: the change is marked failed and comes back as a [`Conflict`] to dead-letter.
//!
//! Tables without open changes (every read-only table) pay nothing but the check, which shares
//! its round trip with the transaction's writer mark.

use std::collections::{BTreeMap, BTreeSet};

use common::{
    push::{ConflictPolicy, PushBatch, PushOp, PushRecord},
    schema::{qualified, quote_ident},
};
use uuid::Uuid;

use super::plan::PagePlan;
use crate::error::PageError;

/// Outbox states that hold a local value the pull must keep: waiting to be sent, sent and not
/// answered, or refused and waiting for someone to replay or purge its dead letter.
const OPEN: &str = "('pending', 'in_flight', 'failed')";

/// A local change a pull found in conflict with Salesforce under the `reject` policy: already
/// marked failed in the outbox; its dead letter is a push batch of the one record, which a
/// replay sends as the row is then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub batch: PushBatch,
    /// What Salesforce and the application each have, field by field.
    pub message: String,
}

/// What the workers know about a writable table (`sfsync.writable`).
struct Writable {
    object: String,
    conflict: ConflictPolicy,
    external_id_field: String,
    external_id_column: String,
}

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
        .prepare_cached(&format!(
            "SELECT set_config('sfsync.writer', 'sfsync', true) IS NOT NULL
                AND EXISTS (SELECT 1 FROM sfsync.outbox
                             WHERE table_name = $1 AND state IN {OPEN})"
        ))
        .await?;
    Ok(tx.query_one(&statement, &[&table]).await?.get(0))
}

/// Adjusts the staged rows of a table with open changes (see the module docs); returns the
/// conflicts the `reject` policy set aside.
///
/// # Errors
/// The database refused a statement.
pub(super) async fn keep_local_changes(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    plan: &PagePlan<'_>,
) -> Result<Vec<Conflict>, PageError> {
    let writable = writable(tx, table).await?;
    if let Some(w) = &writable
        && plan
            .fields
            .iter()
            .any(|(_, _, c)| c.name == w.external_id_column)
    {
        adopt(tx, table, w).await?;
    }
    let open = format!("o.table_name = $1 AND o.state IN {OPEN}");
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
    let columns: Vec<(&str, &str)> = plan
        .fields
        .iter()
        .filter(|(_, _, column)| changed.contains(&column.name))
        .map(|(field, _, column)| (*field, column.name.as_str()))
        .collect();
    let mut conflicts = Vec::new();
    if let Some(w) = &writable {
        conflicts = settle_conflicts(tx, table, w, &columns).await?;
    }
    for (_, column) in &columns {
        let name = quote_ident(column);
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
            &[&table, column],
        )
        .await?;
    }
    Ok(conflicts)
}

async fn writable(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
) -> Result<Option<Writable>, PageError> {
    let statement = tx
        .prepare_cached(
            "SELECT object, conflict, external_id_field, external_id_column
               FROM sfsync.writable WHERE table_name = $1",
        )
        .await?;
    Ok(tx.query_opt(&statement, &[&table]).await?.map(|row| {
        let conflict: String = row.get(1);
        Writable {
            object: row.get(0),
            conflict: ConflictPolicy::parse(&conflict).unwrap_or_default(),
            external_id_field: row.get(2),
            external_id_column: row.get(3),
        }
    }))
}

/// Gives rows still without `sfid` the Id of the staged record that carries their create's
/// External ID value (see the module docs).
async fn adopt(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    writable: &Writable,
) -> Result<(), PageError> {
    let key = quote_ident(&writable.external_id_column);
    // Nearly always nothing matches: one hashed lookup of the staged keys finds out.
    let found = tx
        .query(
            &format!(
                "SELECT s.{key}, s.sfid FROM _sfsync_stage s
                  WHERE s.{key} IN (SELECT o.external_key::text FROM sfsync.outbox o
                                     WHERE o.table_name = $1 AND o.op = 'insert'
                                       AND o.state IN {OPEN})"
            ),
            &[&table],
        )
        .await?;
    if found.is_empty() {
        return Ok(());
    }
    let (keys, ids): (Vec<String>, Vec<String>) =
        found.iter().map(|row| (row.get(0), row.get(1))).unzip();
    let adopted = tx
        .query(
            &format!(
                "UPDATE {t} t SET sfid = n.sfid
                   FROM unnest($2::text[], $3::text[]) AS n(key, sfid), sfsync.outbox o
                  WHERE o.table_name = $1 AND o.op = 'insert' AND o.external_key::text = n.key
                    AND t.id = o.row_id AND t.sfid IS NULL
                    AND NOT EXISTS (SELECT 1 FROM {t} d WHERE d.sfid = n.sfid)
              RETURNING t.id, t.sfid",
                t = qualified(table)
            ),
            &[&table, &keys, &ids],
        )
        .await?;
    let (rows, sfids): (Vec<i64>, Vec<String>) = adopted
        .iter()
        .map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1)))
        .unzip();
    tx.execute(
        "UPDATE sfsync.outbox o SET sfid = n.sfid
           FROM unnest($2::bigint[], $3::text[]) AS n(row_id, sfid)
          WHERE o.table_name = $1 AND o.row_id = n.row_id AND o.sfid IS NULL",
        &[&table, &rows, &sfids],
    )
    .await?;
    tracing::info!(
        object = %writable.object, rows = ?rows, sfids = ?sfids,
        "A pull brought records whose create was not answered yet; their rows take their Ids."
    );
    Ok(())
}

/// One row's conflicting fields: (field, Salesforce's value, the local value).
type RowConflicts = BTreeMap<String, (String, String)>;

/// Finds the staged records in conflict with a pending local change on `columns` (field,
/// column) and applies the table's policy (see the module docs).
async fn settle_conflicts(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    writable: &Writable,
    columns: &[(&str, &str)],
) -> Result<Vec<Conflict>, PageError> {
    // row id -> (sfid, conflicting fields)
    let mut found: BTreeMap<i64, (String, RowConflicts)> = BTreeMap::new();
    for (field, column) in columns {
        let name = quote_ident(column);
        let t = qualified(table);
        // Values compared typed: the staged text and the outbox's JSON each go through the
        // table's row type. Driven from the stage (one page) through the unique sfid index and
        // the outbox's open-changes index: a few index lookups per staged record.
        let rows = tx
            .query(
                &format!(
                    "SELECT t.id, t.sfid, to_jsonb(x.theirs)::text, to_jsonb(t.{name})::text
                       FROM _sfsync_stage s
                       JOIN {t} t ON t.sfid = s.sfid
                      CROSS JOIN LATERAL (
                            SELECT o.old_values FROM sfsync.outbox o
                             WHERE o.table_name = $1 AND o.row_id = t.id AND o.state = 'pending'
                               AND o.op = 'update' AND $2 = ANY(o.columns)
                             ORDER BY o.id LIMIT 1) f
                      CROSS JOIN LATERAL (
                            SELECT (jsonb_populate_record(NULL::{t}, jsonb_build_object($2::text, s.{name}))).{name} AS theirs,
                                   (jsonb_populate_record(NULL::{t}, f.old_values)).{name} AS before) x
                      WHERE x.theirs IS DISTINCT FROM x.before
                        AND x.theirs IS DISTINCT FROM t.{name}"
                ),
                &[&table, column],
            )
            .await?;
        for row in rows {
            let entry = found
                .entry(row.get(0))
                .or_insert_with(|| (row.get(1), BTreeMap::new()));
            entry.1.insert(
                (*field).to_owned(),
                (
                    row.get::<_, Option<String>>(2).unwrap_or_default(),
                    row.get::<_, Option<String>>(3).unwrap_or_default(),
                ),
            );
        }
    }
    if found.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = found.keys().copied().collect();
    let fields: BTreeSet<&String> = found.values().flat_map(|(_, f)| f.keys()).collect();
    tracing::warn!(
        object = %writable.object, policy = writable.conflict.as_str(), rows = ?ids, fields = ?fields,
        "Salesforce changed fields that also have local changes waiting to be written back."
    );
    match writable.conflict {
        ConflictPolicy::LocalWins => Ok(Vec::new()),
        ConflictPolicy::SalesforceWins => {
            for (field, column) in columns {
                let rows: Vec<i64> = found
                    .iter()
                    .filter(|(_, (_, f))| f.contains_key(*field))
                    .map(|(id, _)| *id)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                // The field leaves the local change; a change left with no field is dropped.
                tx.execute(
                    "UPDATE sfsync.outbox
                        SET columns = array_remove(columns, $2), old_values = old_values - $2,
                            state = CASE WHEN cardinality(array_remove(columns, $2)) = 0
                                         THEN 'merged' ELSE state END
                      WHERE table_name = $1 AND row_id = ANY($3) AND state = 'pending'
                        AND op = 'update' AND $2 = ANY(columns)",
                    &[&table, column, &rows],
                )
                .await?;
            }
            Ok(Vec::new())
        }
        ConflictPolicy::Reject => reject(tx, table, writable, columns, found).await,
    }
}

/// Marks the conflicting rows' pending changes failed, each row under a batch of its own, and
/// returns their dead letters' batches.
async fn reject(
    tx: &deadpool_postgres::Transaction<'_>,
    table: &str,
    writable: &Writable,
    columns: &[(&str, &str)],
    found: BTreeMap<i64, (String, RowConflicts)>,
) -> Result<Vec<Conflict>, PageError> {
    let field_of: BTreeMap<&str, &str> = columns.iter().map(|(f, c)| (*c, *f)).collect();
    let mut conflicts = Vec::with_capacity(found.len());
    for (row_id, (sfid, fields)) in found {
        let batch_id = Uuid::new_v4();
        let described: Vec<String> = fields
            .iter()
            .map(|(field, (theirs, ours))| {
                format!(
                    "{field}: Salesforce has {}, the local value is {}",
                    clip(theirs),
                    clip(ours)
                )
            })
            .collect();
        let message = format!(
            "Salesforce changed {} since the local change, which was not sent (conflict = \"reject\"). {}",
            fields.keys().cloned().collect::<Vec<_>>().join(", "),
            described.join("; ")
        );
        let error = serde_json::json!({
            "statusCode": "CONFLICT",
            "message": message,
            "fields": fields.keys().collect::<Vec<_>>(),
        });
        let marked = tx
            .query(
                "UPDATE sfsync.outbox SET state = 'failed', batch_id = $3, error = $4
                  WHERE table_name = $1 AND row_id = $2 AND state = 'pending' AND op = 'update'
              RETURNING columns",
                &[&table, &row_id, &batch_id, &error],
            )
            .await?;
        let record_columns: BTreeSet<String> = marked
            .iter()
            .flat_map(|row| row.get::<_, Vec<String>>(0))
            .collect();
        let batch = PushBatch {
            batch_id,
            object: writable.object.clone(),
            table: table.to_owned(),
            op: PushOp::Update,
            external_id_field: writable.external_id_field.clone(),
            fields: record_columns
                .iter()
                .filter_map(|c| Some((c.clone(), (*field_of.get(c.as_str())?).to_owned())))
                .collect(),
            records: vec![PushRecord {
                row_id,
                sfid: Some(sfid),
                external_key: None,
                columns: record_columns.into_iter().collect(),
            }],
            read_back: BTreeMap::new(),
        };
        conflicts.push(Conflict { batch, message });
    }
    Ok(conflicts)
}

/// A value as a conflict's message shows it: long ones cut.
fn clip(value: &str) -> String {
    const MAX: usize = 200;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}
