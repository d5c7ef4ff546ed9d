//! Applying one push batch: the rows' values as they are now go to Salesforce in one API call,
//! a Composite call holding the sObject Collections write and a query that reads the records
//! back after it; records refused because another call held their parent's lock are sent
//! again, fewer at a time, after a pause; then, in one transaction marked as sfsync's own (so
//! nothing is captured again), each created record's Id is written into its row and into the
//! record's later outbox changes, each applied row takes the values read back (its new
//! SystemModstamp, and whatever Salesforce computed: formulas, LastModifiedDate), and each
//! change of the batch is marked applied or failed. Because the row then holds what the org
//! holds, the pull that later brings the same record rewrites nothing.
//!
//! The read-back leaves alone a column with another local change still open (it keeps the
//! local value, as a pull would) and a row a pull has meanwhile brought newer. Should the query
//! fail (a field hidden from the integration user), the write stands and the pull brings the
//! values later.
//!
//! A row gone since the batch was claimed is not sent: its delete, captured after, follows.
//! A batch replayed from the dead-letter queue is applied the same way, and its failed changes
//! become applied.
//! A delete Salesforce answers with `ENTITY_IS_DELETED` or `INVALID_CROSS_REFERENCE_KEY` found
//! the record already gone, which is what the delete asked for.

use std::{collections::HashMap, time::Duration};

use common::{
    push::{PushBatch, PushOp, PushRecord},
    schema::qualified,
};
use salesforce::{
    ApiMetrics, SalesforceClient, SfError,
    collections::{RecordError, SaveResult},
    composite::Save,
};
use serde_json::{Map, Value};

/// Sends of the records a lock refused, before they count as failed.
const LOCK_RETRIES: u32 = 5;
/// The first pause after a lock refusal; doubled each time.
const LOCK_PAUSE: Duration = Duration::from_millis(200);

/// A record Salesforce refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFailure {
    pub row_id: i64,
    pub error: RecordError,
}

/// What applying a batch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Records Salesforce took (or, for a delete, found already gone).
    pub applied: u64,
    /// Records whose row was gone when the batch was applied, so not sent.
    pub superseded: u64,
    pub failed: Vec<RecordFailure>,
    /// sObject Collections calls made.
    pub calls: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Salesforce failed the whole call after the client's retries: the batch is tried again
    /// later as a whole (every call of it may be repeated safely).
    #[error(transparent)]
    Salesforce(#[from] SfError),
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// Applies `batch` (see the module docs).
///
/// # Errors
/// A whole-call failure from Salesforce, or the database: nothing of the batch is recorded,
/// and applying it again is safe.
pub async fn apply<M: ApiMetrics>(
    pool: &deadpool_postgres::Pool,
    sf: &SalesforceClient<M>,
    batch: &PushBatch,
) -> Result<Applied, ApplyError> {
    let mut client = pool.get().await?;
    let rows = current_rows(&client, batch).await?;
    let mut outcome = Applied::default();
    let mut to_send: Vec<&PushRecord> = Vec::with_capacity(batch.records.len());
    let mut superseded = Vec::new();
    for record in &batch.records {
        if batch.op != PushOp::Delete && !rows.contains_key(&record.row_id) {
            superseded.push(record.row_id);
        } else {
            to_send.push(record);
        }
    }
    outcome.superseded = superseded.len() as u64;
    let mut done: Vec<(i64, Option<String>)> = Vec::new();
    let mut read: HashMap<String, Map<String, Value>> = HashMap::new();
    let mut pause = LOCK_PAUSE;
    for attempt in 0..=LOCK_RETRIES {
        if to_send.is_empty() {
            break;
        }
        let (results, records) = send(sf, batch, &to_send, &rows).await?;
        outcome.calls += 1;
        // A later attempt reads the records later: its answer wins.
        read.extend(records.into_iter().filter_map(|record| {
            let id = record.get("Id")?.as_str()?.to_owned();
            Some((id, record))
        }));
        let mut locked = Vec::new();
        for (record, result) in to_send.iter().zip(results) {
            match verdict(batch.op, &result) {
                Verdict::Applied => done.push((record.row_id, result.id.clone())),
                Verdict::Locked if attempt < LOCK_RETRIES => locked.push(*record),
                Verdict::Locked | Verdict::Failed => outcome.failed.push(RecordFailure {
                    row_id: record.row_id,
                    error: result.errors.into_iter().next().unwrap_or(RecordError {
                        status_code: "UNKNOWN".into(),
                        message: "Salesforce refused the record without saying why".into(),
                        fields: Vec::new(),
                    }),
                }),
            }
        }
        if !locked.is_empty() {
            tracing::info!(object = %batch.object, records = locked.len(), retry_in = ?pause, "Salesforce could not lock these records' parents; sending them again.");
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        to_send = locked;
    }
    outcome.applied = done.len() as u64;
    let outcome_rows = Outcome {
        done: &done,
        superseded: &superseded,
        failed: &outcome.failed,
        read: &read,
    };
    record(&mut client, batch, &outcome_rows).await?;
    Ok(outcome)
}

enum Verdict {
    Applied,
    Locked,
    Failed,
}

fn verdict(op: PushOp, result: &SaveResult) -> Verdict {
    if result.success {
        return Verdict::Applied;
    }
    let code = result.errors.first().map(|e| e.status_code.as_str());
    match code {
        Some("ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY") if op == PushOp::Delete => {
            Verdict::Applied
        }
        _ if result.errors.iter().any(RecordError::is_lock) => Verdict::Locked,
        _ => Verdict::Failed,
    }
}

/// The rows of the batch as they are now, by local id.
async fn current_rows(
    client: &deadpool_postgres::Client,
    batch: &PushBatch,
) -> Result<HashMap<i64, Map<String, Value>>, ApplyError> {
    let ids: Vec<i64> = batch.records.iter().map(|r| r.row_id).collect();
    let rows = client
        .query(
            &format!(
                "SELECT id, to_jsonb(t) FROM {} t WHERE id = ANY($1)",
                qualified(&batch.table)
            ),
            &[&ids],
        )
        .await?;
    Ok(rows
        .iter()
        .filter_map(|row| match row.get::<_, Value>(1) {
            Value::Object(map) => Some((row.get(0), map)),
            _ => None,
        })
        .collect())
}

/// Longest read-back query sfsync sends: a long SOQL URL is refused by some proxies and
/// gateways long before Salesforce's own limit.
const MAX_QUERY_CHARS: usize = 16_000;

/// One Composite call for `records`: the collections write, then (when the batch asks for it)
/// the query that reads them back. Returns the per-record results and the records read back
/// (none when the query failed: logged, and left to the pull).
async fn send<M: ApiMetrics>(
    sf: &SalesforceClient<M>,
    batch: &PushBatch,
    records: &[&PushRecord],
    rows: &HashMap<i64, Map<String, Value>>,
) -> Result<(Vec<SaveResult>, Vec<Map<String, Value>>), SfError> {
    let fields = |record: &PushRecord| -> Map<String, Value> {
        let row = rows.get(&record.row_id);
        record
            .columns
            .iter()
            .filter_map(|column| {
                let field = batch.fields.get(column)?;
                let value = row.and_then(|r| r.get(column)).cloned();
                Some((field.clone(), value.unwrap_or(Value::Null)))
            })
            .collect()
    };
    let save = match batch.op {
        PushOp::Create => Save::Upsert {
            object: batch.object.clone(),
            external_id_field: batch.external_id_field.clone(),
            records: records
                .iter()
                .map(|r| {
                    let mut values = fields(r);
                    let key = r.external_key.map(|k| k.to_string()).unwrap_or_default();
                    values.insert(batch.external_id_field.clone(), Value::String(key));
                    values
                })
                .collect(),
        },
        PushOp::Update => Save::Update {
            object: batch.object.clone(),
            records: records
                .iter()
                .map(|r| (r.sfid.clone().unwrap_or_default(), fields(r)))
                .collect(),
        },
        PushOp::Delete => Save::Delete {
            ids: records.iter().filter_map(|r| r.sfid.clone()).collect(),
        },
    };
    let soql = read_back_query(batch, records);
    let (results, read) = sf.save_and_query(save, soql.as_deref()).await?;
    let read = read.unwrap_or_else(|e| {
        tracing::warn!(object = %batch.object, error = %e, "Reading the records back after the write failed; the write stands, and the next pull brings their values.");
        Vec::new()
    });
    Ok((results, read))
}

/// The SOQL that reads `records` back after their write: every column of the table that holds
/// a field (creates found by their External ID values, updates by Id); `None` for deletes and
/// for batches that ask for nothing. A query too long with every field reads back the stamp
/// and the fields written only.
fn read_back_query(batch: &PushBatch, records: &[&PushRecord]) -> Option<String> {
    if batch.op == PushOp::Delete || batch.read_back.is_empty() {
        return None;
    }
    let (key, values): (&str, Vec<String>) = match batch.op {
        PushOp::Create => (
            batch.external_id_field.as_str(),
            records
                .iter()
                .filter_map(|r| r.external_key.map(|k| format!("'{k}'")))
                .collect(),
        ),
        _ => (
            "Id",
            records
                .iter()
                .filter_map(|r| r.sfid.as_deref())
                // Ids are letters and digits; anything else is not sent into a query.
                .filter(|id| id.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|id| format!("'{id}'"))
                .collect(),
        ),
    };
    let query = |fields: Vec<&str>| {
        format!(
            "SELECT {} FROM {} WHERE {key} IN ({})",
            fields.join(", "),
            batch.object,
            values.join(", ")
        )
    };
    fn with_id(mut fields: Vec<&str>) -> Vec<&str> {
        if !fields.contains(&"Id") {
            fields.insert(0, "Id");
        }
        fields
    }
    let all = query(with_id(
        batch.read_back.values().map(String::as_str).collect(),
    ));
    if all.len() <= MAX_QUERY_CHARS {
        return Some(all);
    }
    let written = records.iter().flat_map(|r| &r.columns);
    let narrow: std::collections::BTreeSet<&str> =
        ["systemmodstamp", "lastmodifieddate", "lastmodifiedbyid"]
            .iter()
            .copied()
            .chain(written.map(String::as_str))
            .filter_map(|column| batch.read_back.get(column).map(String::as_str))
            .collect();
    let narrow = query(with_id(narrow.into_iter().collect()));
    (narrow.len() <= MAX_QUERY_CHARS).then_some(narrow)
}

/// What applying a batch did, by row, for [`record`].
struct Outcome<'a> {
    /// Rows applied, with the Id a create brought back.
    done: &'a [(i64, Option<String>)],
    superseded: &'a [i64],
    failed: &'a [RecordFailure],
    /// The records read back after the write, by Id.
    read: &'a HashMap<String, Map<String, Value>>,
}

/// Records the outcome in one transaction marked as sfsync's own.
async fn record(
    client: &mut deadpool_postgres::Client,
    batch: &PushBatch,
    outcome: &Outcome<'_>,
) -> Result<(), ApplyError> {
    let Outcome {
        done,
        superseded,
        failed,
        read,
    } = *outcome;
    let tx = client.transaction().await?;
    tx.batch_execute("SELECT set_config('sfsync.writer', 'sfsync', true)")
        .await?;
    if batch.op == PushOp::Create {
        // Two statements for the whole batch, not two per record.
        let (rows, ids): (Vec<i64>, Vec<String>) = done
            .iter()
            .filter_map(|(row_id, sfid)| Some((*row_id, sfid.clone()?)))
            .unzip();
        tx.execute(
            &format!(
                "UPDATE {} t SET sfid = n.sfid
                   FROM unnest($1::bigint[], $2::text[]) AS n(row_id, sfid)
                  WHERE t.id = n.row_id AND t.sfid IS NULL",
                qualified(&batch.table)
            ),
            &[&rows, &ids],
        )
        .await?;
        // The record's later changes (an update, a delete) need its Id to be sent.
        tx.execute(
            "UPDATE sfsync.outbox o SET sfid = n.sfid
               FROM unnest($1::bigint[], $2::text[]) AS n(row_id, sfid)
              WHERE o.table_name = $3 AND o.row_id = n.row_id AND o.sfid IS NULL",
            &[&rows, &ids, &batch.table],
        )
        .await?;
    }
    if batch.op != PushOp::Delete {
        take_read_back(&tx, batch, done, read).await?;
    }
    let applied: Vec<i64> = done
        .iter()
        .map(|(row_id, _)| *row_id)
        .chain(superseded.iter().copied())
        .collect();
    tx.execute(
        "UPDATE sfsync.outbox SET state = 'applied', error = NULL
          WHERE batch_id = $1 AND row_id = ANY($2) AND state IN ('in_flight', 'failed')",
        &[&batch.batch_id, &applied],
    )
    .await?;
    for failure in failed {
        let error = serde_json::json!({
            "statusCode": failure.error.status_code,
            "message": failure.error.message,
            "fields": failure.error.fields,
        });
        tx.execute(
            "UPDATE sfsync.outbox SET state = 'failed', error = $3
              WHERE batch_id = $1 AND row_id = $2 AND state IN ('in_flight', 'failed')",
            &[&batch.batch_id, &failure.row_id, &error],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Stores the records read back in the rows applied: each column that holds a field, but not
/// one with another local change still open (its local value stays, as in a pull), and not in a
/// row a pull has meanwhile brought newer.
async fn take_read_back(
    tx: &deadpool_postgres::Transaction<'_>,
    batch: &PushBatch,
    done: &[(i64, Option<String>)],
    read: &HashMap<String, Map<String, Value>>,
) -> Result<(), ApplyError> {
    let mut rows = Vec::with_capacity(done.len());
    let mut values = Vec::with_capacity(done.len());
    for (row_id, created) in done {
        let sfid = created.as_deref().or_else(|| {
            batch
                .records
                .iter()
                .find(|r| r.row_id == *row_id)
                .and_then(|r| r.sfid.as_deref())
        });
        let Some(record) = sfid.and_then(|id| read.get(id)) else {
            continue;
        };
        let columns: Map<String, Value> = batch
            .read_back
            .iter()
            .filter_map(|(column, field)| Some((column.clone(), record.get(field)?.clone())))
            .collect();
        rows.push(*row_id);
        values.push(Value::Object(columns));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let columns: Vec<String> = batch
        .read_back
        .keys()
        .map(|c| common::schema::quote_ident(c))
        .collect();
    let list = columns.join(", ");
    let from_record: Vec<String> = columns.iter().map(|c| format!("r.{c}")).collect();
    let guard = if batch.read_back.contains_key("systemmodstamp") {
        "AND (n.rec ->> 'systemmodstamp') IS NOT NULL
         AND t.systemmodstamp <= (n.rec ->> 'systemmodstamp')::timestamptz"
    } else {
        ""
    };
    tx.execute(
        &format!(
            "UPDATE {table} t SET ({list}) = (
                    SELECT {from_record} FROM jsonb_populate_record(t,
                        n.rec - coalesce((SELECT array_agg(DISTINCT c)
                                            FROM sfsync.outbox o, unnest(o.columns) c
                                           WHERE o.table_name = $3 AND o.row_id = t.id
                                             AND o.state IN ('pending', 'in_flight', 'failed')
                                             AND o.batch_id IS DISTINCT FROM $4), '{{}}')) r)
               FROM unnest($1::bigint[], $2::jsonb[]) AS n(row_id, rec)
              WHERE t.id = n.row_id {guard}",
            table = qualified(&batch.table),
            from_record = from_record.join(", "),
        ),
        &[&rows, &values, &batch.table, &batch.batch_id],
    )
    .await?;
    Ok(())
}
