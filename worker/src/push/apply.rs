//! Applying one push batch: the rows' values as they are now go to Salesforce in one sObject
//! Collections call; records refused because another call held their parent's lock are sent
//! again, fewer at a time, after a pause; then, in one transaction marked as sfsync's own (so
//! nothing is captured again), each created record's Id is written into its row and into the
//! record's later outbox changes, and each change of the batch is marked applied or failed.
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
    let mut pause = LOCK_PAUSE;
    for attempt in 0..=LOCK_RETRIES {
        if to_send.is_empty() {
            break;
        }
        let results = send(sf, batch, &to_send, &rows).await?;
        outcome.calls += 1;
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
    record(&mut client, batch, &done, &superseded, &outcome.failed).await?;
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

/// One sObject Collections call for `records`.
async fn send<M: ApiMetrics>(
    sf: &SalesforceClient<M>,
    batch: &PushBatch,
    records: &[&PushRecord],
    rows: &HashMap<i64, Map<String, Value>>,
) -> Result<Vec<SaveResult>, SfError> {
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
    match batch.op {
        PushOp::Create => {
            let records = records
                .iter()
                .map(|r| {
                    let mut values = fields(r);
                    let key = r.external_key.map(|k| k.to_string()).unwrap_or_default();
                    values.insert(batch.external_id_field.clone(), Value::String(key));
                    values
                })
                .collect();
            sf.upsert_records(&batch.object, &batch.external_id_field, records)
                .await
        }
        PushOp::Update => {
            let records = records
                .iter()
                .map(|r| (r.sfid.clone().unwrap_or_default(), fields(r)))
                .collect();
            sf.update_records(&batch.object, records).await
        }
        PushOp::Delete => {
            let ids: Vec<String> = records.iter().filter_map(|r| r.sfid.clone()).collect();
            sf.delete_records(&ids).await
        }
    }
}

/// Records the outcome in one transaction marked as sfsync's own.
async fn record(
    client: &mut deadpool_postgres::Client,
    batch: &PushBatch,
    done: &[(i64, Option<String>)],
    superseded: &[i64],
    failed: &[RecordFailure],
) -> Result<(), ApplyError> {
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
