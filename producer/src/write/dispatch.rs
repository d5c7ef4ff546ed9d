//! Claiming the outbox: a table's pending changes become batches of at most
//! [`BATCH_SIZE`] records of one operation, ready to send. Each record's changes are coalesced
//! into one operation ([`super::coalesce`]) carrying the row's values as they are now; at most
//! one operation per record is in flight, so a record's changes reach Salesforce in order.
//! Within an operation, records are sorted by their parent (`AccountId` for a Contact) so that
//! children of one parent travel together: Salesforce locks the parent while it writes a child,
//! and two calls writing children of one parent at once fail with `UNABLE_TO_LOCK_ROW`.

use std::collections::{BTreeMap, HashMap};

use common::schema::qualified;
use serde_json::{Map, Value};
use sqlx::{AssertSqlSafe, PgPool};
use uuid::Uuid;

use common::push::{PushBatch, PushOp, PushRecord};

use super::coalesce::{Change, Op, Operation, coalesce};
use super::links::ParentLink;

/// Records per sObject Collections call: Salesforce's limit.
pub const BATCH_SIZE: usize = 200;

/// What a batch asks of Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BatchKind {
    Create,
    Update,
    Delete,
}

/// One record of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// The row's local id.
    pub row_id: i64,
    /// Update, delete: the record's Id.
    pub sfid: Option<String>,
    /// Create: the external Id value the record is created under.
    pub external_key: Option<Uuid>,
    /// Create, update: the write columns' values, by column.
    pub values: Map<String, Value>,
}

/// Records of one table and one operation, claimed together.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub id: Uuid,
    pub table: String,
    pub kind: BatchKind,
    pub records: Vec<Outgoing>,
}

impl Batch {
    /// The message a worker applies: this batch of `object`, creates under
    /// `external_id_field`, each column named by its field (`fields`, column to field), the
    /// columns `read_back` read back after the write.
    pub fn message(
        &self,
        object: &str,
        external_id_field: &str,
        fields: &BTreeMap<String, String>,
        read_back: &BTreeMap<String, String>,
    ) -> PushBatch {
        let records: Vec<PushRecord> = self
            .records
            .iter()
            .map(|r| PushRecord {
                row_id: r.row_id,
                sfid: r.sfid.clone(),
                external_key: r.external_key,
                columns: r.values.keys().cloned().collect(),
            })
            .collect();
        let used = |column: &String| records.iter().any(|r| r.columns.contains(column));
        PushBatch {
            batch_id: self.id,
            object: object.to_owned(),
            table: self.table.clone(),
            op: match self.kind {
                BatchKind::Create => PushOp::Create,
                BatchKind::Update => PushOp::Update,
                BatchKind::Delete => PushOp::Delete,
            },
            external_id_field: external_id_field.to_owned(),
            fields: fields
                .iter()
                .filter(|(column, _)| used(column))
                .map(|(c, f)| (c.clone(), f.clone()))
                .collect(),
            records,
            read_back: read_back.clone(),
        }
    }
}

/// Each column of the object's table and the field it holds, from the describe.
pub fn field_names(describe: &crate::salesforce::Describe) -> BTreeMap<String, String> {
    describe
        .fields
        .iter()
        .map(|f| (common::schema::column_name(&f.name), f.name.clone()))
        .collect()
}

/// The columns of `salesforce.<table>`.
///
/// # Errors
/// The database refused the query.
pub async fn table_columns(pool: &PgPool, table: &str) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = 'salesforce' AND table_name = $1",
    )
    .bind(table)
    .fetch_all(pool)
    .await
}

/// The columns of `salesforce.<table>` that hold a field of the object (`fields`, column to
/// field, from the describe): what a worker reads back after applying a batch.
///
/// # Errors
/// The database refused the query.
pub async fn read_back(
    pool: &PgPool,
    table: &str,
    fields: &BTreeMap<String, String>,
) -> sqlx::Result<BTreeMap<String, String>> {
    let columns = table_columns(pool, table).await?;
    Ok(fields
        .iter()
        .filter(|(column, _)| columns.contains(column))
        .map(|(c, f)| (c.clone(), f.clone()))
        .collect())
}

/// Cuts `records` (sorted by parent) into batches of at most [`BATCH_SIZE`] without splitting
/// a parent's children over two batches unless they are more than one batch holds: batches
/// applied at once by different workers then never lock the same parent.
fn pack_by_parent<T>(records: &[T], parent: impl Fn(&T) -> &str) -> Vec<&[T]> {
    let mut batches = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < records.len() {
        let mut end = i + 1;
        while end < records.len() && parent(&records[end]) == parent(&records[i]) {
            end += 1;
        }
        // records[i..end] are one parent's.
        if end - start > BATCH_SIZE {
            if i > start {
                batches.push(&records[start..i]);
                start = i;
            }
            while end - start > BATCH_SIZE {
                batches.push(&records[start..start + BATCH_SIZE]);
                start += BATCH_SIZE;
            }
        }
        i = end;
    }
    if start < records.len() {
        batches.push(&records[start..]);
    }
    batches
}

/// What one claim did.
#[derive(Debug, Default)]
pub struct Claimed {
    pub batches: Vec<Batch>,
    /// Changes folded away: inserted and deleted before either was sent, or no column left.
    pub merged: u64,
    /// Records whose create is in flight, left pending until it brings their Id back.
    pub waiting: u64,
}

/// One record's pending changes as the claim query returns them.
#[derive(sqlx::FromRow)]
struct Pending {
    row_id: i64,
    ids: Vec<i64>,
    ops: Vec<String>,
    sfids: Vec<Option<String>>,
    columns: Vec<String>,
    external_key: Option<Uuid>,
}

/// Claims the pending changes of up to `max_records` records of `salesforce.<table>` (oldest
/// first, skipping records with an operation in flight) and marks them in flight in the
/// batches returned. `parent_column` orders each operation's records.
///
/// # Errors
/// The database refused a statement.
pub async fn claim(
    pool: &PgPool,
    table: &str,
    parent_column: Option<&str>,
    max_records: i64,
) -> sqlx::Result<Claimed> {
    claim_linked(pool, table, parent_column, &[], max_records).await
}

/// [`claim`], filling each reference column of `links` that is empty from the parent row its
/// `<column>_row` names; a record whose parent row has no Id yet waits (see [`super::links`]).
///
/// # Errors
/// The database refused a statement.
pub async fn claim_linked(
    pool: &PgPool,
    table: &str,
    parent_column: Option<&str>,
    links: &[ParentLink],
    max_records: i64,
) -> sqlx::Result<Claimed> {
    let mut tx = pool.begin().await?;
    // One dispatcher per table at a time: two would both see the same record as not in flight.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('sfsync.dispatch.' || $1))")
        .bind(table)
        .execute(&mut *tx)
        .await?;
    let pending: Vec<Pending> = sqlx::query_as(
        "SELECT o.row_id,
                array_agg(o.id ORDER BY o.id) AS ids,
                array_agg(o.op ORDER BY o.id) AS ops,
                array_agg(o.sfid ORDER BY o.id) AS sfids,
                array_agg(array_to_string(o.columns, ' ') ORDER BY o.id) AS columns,
                (array_agg(o.external_key ORDER BY o.id))[1] AS external_key
           FROM sfsync.outbox o
          WHERE o.table_name = $1 AND o.state = 'pending'
            -- NOT IN over a subquery runs as one hashed lookup; a correlated NOT EXISTS let the
            -- planner, with no statistics on a young outbox, scan the open changes once per
            -- pending change (10,000 of each: 10 s instead of 10 ms)
            AND o.row_id NOT IN (SELECT f.row_id FROM sfsync.outbox f
                                  WHERE f.table_name = $1 AND f.state = 'in_flight')
          GROUP BY o.row_id
          ORDER BY min(o.id)
          LIMIT $2",
    )
    .bind(table)
    .bind(max_records)
    .fetch_all(&mut *tx)
    .await?;
    let row_ids: Vec<i64> = pending.iter().map(|p| p.row_id).collect();
    let rows: HashMap<i64, (Option<String>, Map<String, Value>)> = sqlx::query_as::<
        _,
        (i64, Option<String>, sqlx::types::Json<Map<String, Value>>),
    >(AssertSqlSafe(format!(
        "SELECT id, sfid, to_jsonb(t) FROM {} t WHERE id = ANY($1)",
        qualified(table)
    )))
    .bind(&row_ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(id, sfid, row)| (id, (sfid, row.0)))
    .collect();

    let parents = parent_ids(&mut tx, links, rows.values().map(|(_, row)| row)).await?;
    // (row id, reference column, parent's Id) to write into the rows before they are sent.
    let mut parents_filled: Vec<(i64, String, String)> = Vec::new();

    let mut claimed = Claimed::default();
    let mut merged_ids: Vec<i64> = Vec::new();
    let mut by_kind: HashMap<BatchKind, Vec<(Outgoing, Vec<i64>, String)>> = HashMap::new();
    for record in pending {
        let changes: Vec<Change> = record
            .ops
            .iter()
            .zip(&record.sfids)
            .zip(&record.columns)
            .filter_map(|((op, sfid), columns)| {
                Some(Change {
                    op: Op::parse(op)?,
                    sfid: sfid.clone(),
                    columns: columns.split_whitespace().map(str::to_owned).collect(),
                })
            })
            .collect();
        let row = rows.get(&record.row_id);
        let sfid_now = row.and_then(|(sfid, _)| sfid.as_deref());
        let values = |columns: &[String]| -> Map<String, Value> {
            let stored = row.map(|(_, r)| r);
            columns
                .iter()
                .map(|c| {
                    let value = stored.and_then(|r| r.get(c)).cloned();
                    (c.clone(), value.unwrap_or(Value::Null))
                })
                .collect()
        };
        let parent = parent_column
            .and_then(|p| row.and_then(|(_, r)| r.get(p)))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let (kind, mut outgoing) = match coalesce(&changes, sfid_now) {
            Operation::Nothing => {
                merged_ids.extend(&record.ids);
                claimed.merged += record.ids.len() as u64;
                continue;
            }
            Operation::Wait => {
                claimed.waiting += 1;
                continue;
            }
            Operation::Create { columns } => (
                BatchKind::Create,
                Outgoing {
                    row_id: record.row_id,
                    sfid: None,
                    external_key: record.external_key,
                    values: values(&columns),
                },
            ),
            Operation::Update { sfid, columns } => (
                BatchKind::Update,
                Outgoing {
                    row_id: record.row_id,
                    sfid: Some(sfid),
                    external_key: None,
                    values: values(&columns),
                },
            ),
            Operation::Delete { sfid } => (
                BatchKind::Delete,
                Outgoing {
                    row_id: record.row_id,
                    sfid: Some(sfid),
                    external_key: None,
                    values: Map::new(),
                },
            ),
        };
        if let Some(row) = row.map(|(_, r)| r) {
            match fill_parents(&mut outgoing.values, row, links, &parents) {
                Some(filled) => {
                    parents_filled.extend(filled.into_iter().map(|(c, id)| (record.row_id, c, id)));
                }
                None => {
                    claimed.waiting += 1;
                    continue;
                }
            }
        }
        by_kind
            .entry(kind)
            .or_default()
            .push((outgoing, record.ids, parent));
    }

    if !parents_filled.is_empty() {
        // The worker sends the row as it is: the parent's Id goes into it first, as sfsync's
        // own write (not captured).
        sqlx::query("SELECT set_config('sfsync.writer', 'sfsync', true)")
            .execute(&mut *tx)
            .await?;
        for (row_id, column, sfid) in &parents_filled {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {} SET {c} = $1 WHERE id = $2 AND {c} IS NULL",
                qualified(table),
                c = common::schema::quote_ident(column)
            )))
            .bind(sfid)
            .bind(row_id)
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query("UPDATE sfsync.outbox SET state = 'merged' WHERE id = ANY($1)")
        .bind(&merged_ids)
        .execute(&mut *tx)
        .await?;
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(kind, _)| *kind);
    for (kind, mut records) in kinds {
        records.sort_by(|a, b| (&a.2, &a.0.sfid, a.0.row_id).cmp(&(&b.2, &b.0.sfid, b.0.row_id)));
        for chunk in pack_by_parent(&records, |r| r.2.as_str()) {
            let batch = Batch {
                id: Uuid::now_v7(),
                table: table.to_owned(),
                kind,
                records: chunk.iter().map(|(o, _, _)| o.clone()).collect(),
            };
            let ids: Vec<i64> = chunk.iter().flat_map(|(_, ids, _)| ids).copied().collect();
            sqlx::query(
                "UPDATE sfsync.outbox SET state = 'in_flight', batch_id = $2 WHERE id = ANY($1)",
            )
            .bind(&ids)
            .bind(batch.id)
            .execute(&mut *tx)
            .await?;
            claimed.batches.push(batch);
        }
    }
    tx.commit().await?;
    Ok(claimed)
}

/// Each link's parents that the rows name in `<column>_row` while their reference column is
/// empty: (link, parent row id) to the parent's Id (`None`: the parent has none yet).
type ParentIds = HashMap<(usize, i64), Option<String>>;

async fn parent_ids<'a>(
    tx: &mut sqlx::PgConnection,
    links: &[ParentLink],
    rows: impl Iterator<Item = &'a Map<String, Value>> + Clone,
) -> sqlx::Result<ParentIds> {
    let mut found = ParentIds::new();
    for (i, link) in links.iter().enumerate() {
        let wanted: Vec<i64> = rows
            .clone()
            .filter(|row| row.get(&link.column).is_none_or(Value::is_null))
            .filter_map(|row| row.get(&link.row_column)?.as_i64())
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let parents: Vec<(i64, Option<String>)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT id, sfid FROM {} WHERE id = ANY($1)",
            qualified(&link.parent_table)
        )))
        .bind(&wanted)
        .fetch_all(&mut *tx)
        .await?;
        found.extend(parents.into_iter().map(|(id, sfid)| ((i, id), sfid)));
    }
    Ok(found)
}

/// Fills the empty reference columns among `values` from the parents `row` names, and returns
/// them (column, parent's Id); `None` when a parent has no Id yet (the record waits for it).
fn fill_parents(
    values: &mut Map<String, Value>,
    row: &Map<String, Value>,
    links: &[ParentLink],
    parents: &ParentIds,
) -> Option<Vec<(String, String)>> {
    let mut filled = Vec::new();
    for (i, link) in links.iter().enumerate() {
        if !values.get(&link.column).is_some_and(Value::is_null) {
            continue;
        }
        let Some(parent_row) = row.get(&link.row_column).and_then(Value::as_i64) else {
            continue;
        };
        match parents.get(&(i, parent_row)) {
            Some(Some(sfid)) => {
                values.insert(link.column.clone(), Value::String(sfid.clone()));
                filled.push((link.column.clone(), sfid.clone()));
            }
            Some(None) => return None,
            None => tracing::warn!(
                column = link.row_column,
                parent_row,
                parent_table = link.parent_table,
                "The parent row a new record names is gone; the record is sent without a parent."
            ),
        }
    }
    Some(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(parents: &[(&str, usize)]) -> Vec<usize> {
        let records: Vec<&str> = parents
            .iter()
            .flat_map(|(p, n)| std::iter::repeat_n(*p, *n))
            .collect();
        pack_by_parent(&records, |r| r)
            .iter()
            .map(|b| b.len())
            .collect()
    }

    #[test]
    fn a_parents_children_stay_in_one_batch_when_they_fit() {
        assert_eq!(sizes(&[("a", 150), ("b", 100)]), [150, 100]);
        assert_eq!(sizes(&[("a", 50), ("b", 60), ("c", 90)]), [200]);
        assert_eq!(sizes(&[("a", 50), ("b", 60), ("c", 91)]), [110, 91]);
        assert_eq!(sizes(&[("a", 450), ("b", 10)]), [200, 200, 60]);
        assert_eq!(sizes(&[("a", 20), ("b", 450)]), [20, 200, 200, 50]);
        assert_eq!(sizes(&[("", 401)]), [200, 200, 1]);
        assert!(sizes(&[]).is_empty());
    }
}
