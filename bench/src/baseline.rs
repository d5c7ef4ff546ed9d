//! The two yardsticks, run on the rows the sync just stored, each into a fresh table shaped
//! exactly like `salesforce.contact` (`LIKE … INCLUDING ALL`: same columns, types, defaults,
//! primary key and unique index on `sfid`):
//!
//! - **copy**: one text `COPY … FROM STDIN` of all rows, read into memory beforehand — the
//!   fastest way PostgreSQL takes rows, so the limit for any importer.
//! - **naive**: one `INSERT … ON CONFLICT (sfid) DO UPDATE` per record, each its own
//!   transaction (autocommit), parameters as text — the cron-job way sfsync replaces. It runs on
//!   a share of the rows and is scaled linearly.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::{Bytes, BytesMut};
use futures::{SinkExt as _, TryStreamExt as _};
use tokio_postgres::{Client, types::Type};

/// What the baselines measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baselines {
    /// Seconds for the raw COPY of every row.
    pub copy_seconds: Option<f64>,
    pub naive: Option<Naive>,
}

#[derive(Debug, Clone, Copy)]
pub struct Naive {
    /// Records really upserted one by one.
    pub records: u64,
    pub seconds: f64,
    /// `seconds` scaled to all rows.
    pub scaled_seconds: f64,
}

/// A column of the target table: name and SQL type as `format_type` spells it.
struct Column {
    name: String,
    sql_type: String,
}

async fn columns(client: &Client) -> anyhow::Result<Vec<Column>> {
    // `id` is the local serial: left to its default, as the sync leaves it.
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod)
               FROM pg_attribute
              WHERE attrelid = 'salesforce.contact'::regclass AND attnum > 0
                AND NOT attisdropped AND attname <> 'id'
              ORDER BY attnum",
            &[],
        )
        .await
        .context("reading the columns of salesforce.contact")?;
    Ok(rows
        .iter()
        .map(|r| Column {
            name: r.get(0),
            sql_type: r.get(1),
        })
        .collect())
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Runs both baselines (`naive_records` = 0 skips the naive one).
///
/// # Errors
/// A statement failed.
pub async fn run(client: &Client, naive_records: u64) -> anyhow::Result<Baselines> {
    let columns = columns(client).await?;
    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    let list = names.join(", ");
    client
        .batch_execute(
            "CREATE SCHEMA bench;
             CREATE TABLE bench.copy_target (LIKE salesforce.contact INCLUDING ALL);
             CREATE TABLE bench.naive_target (LIKE salesforce.contact INCLUDING ALL);",
        )
        .await
        .context("creating the baseline tables")?;

    let total: i64 = client
        .query_one("SELECT count(*) FROM salesforce.contact", &[])
        .await?
        .get(0);

    // Not timed: the rows, as COPY text, in memory.
    let data: Vec<Bytes> = client
        .copy_out(&format!("COPY salesforce.contact ({list}) TO STDOUT"))
        .await?
        .try_collect()
        .await
        .context("reading salesforce.contact with COPY TO STDOUT")?;
    let data = rechunk(data, 1 << 20);
    client.batch_execute("CHECKPOINT").await?;
    let started = Instant::now();
    let sink = client
        .copy_in(&format!("COPY bench.copy_target ({list}) FROM STDIN"))
        .await?;
    futures::pin_mut!(sink);
    for chunk in data {
        sink.send(chunk).await?;
    }
    let copied = sink.finish().await.context("COPY into bench.copy_target")?;
    let copy_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        copied == total as u64,
        "COPY stored {copied} rows, expected {total}"
    );

    let naive = if naive_records > 0 && total > 0 {
        let n = naive_records.min(total as u64);
        let seconds = naive_upserts(client, &columns, n).await?.as_secs_f64();
        Some(Naive {
            records: n,
            seconds,
            scaled_seconds: seconds * total as f64 / n as f64,
        })
    } else {
        None
    };
    Ok(Baselines {
        copy_seconds: Some(copy_seconds),
        naive,
    })
}

/// Fewer, larger messages to the server: COPY TO STDOUT yields one chunk per row.
fn rechunk(data: Vec<Bytes>, size: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut buf = BytesMut::with_capacity(size);
    for piece in data {
        buf.extend_from_slice(&piece);
        if buf.len() >= size {
            out.push(buf.split().freeze());
        }
    }
    if !buf.is_empty() {
        out.push(buf.freeze());
    }
    out
}

/// Upserts the first `n` rows (by sfid) one statement and one transaction each; returns the
/// time taken by the upserts alone.
async fn naive_upserts(client: &Client, columns: &[Column], n: u64) -> anyhow::Result<Duration> {
    let select: Vec<String> = columns
        .iter()
        .map(|c| format!("{}::text", quote(&c.name)))
        .collect();
    let rows = client
        .query(
            &format!(
                "SELECT {} FROM salesforce.contact ORDER BY sfid LIMIT {n}",
                select.join(", ")
            ),
            &[],
        )
        .await?;
    let values: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| (0..columns.len()).map(|i| r.get(i)).collect())
        .collect();

    let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
    let params: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.sql_type))
        .collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| n.as_str() != "\"sfid\"")
        .map(|n| format!("{n} = EXCLUDED.{n}"))
        .collect();
    let sql = format!(
        "INSERT INTO bench.naive_target ({}) VALUES ({}) ON CONFLICT (sfid) DO UPDATE SET {}",
        names.join(", "),
        params.join(", "),
        updates.join(", ")
    );
    let statement = client
        .prepare_typed(&sql, &vec![Type::TEXT; columns.len()])
        .await
        .context("preparing the naive upsert")?;
    client.batch_execute("CHECKPOINT").await?;
    let started = Instant::now();
    for row in &values {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = row
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        client
            .execute(&statement, &params)
            .await
            .context("naive upsert")?;
    }
    Ok(started.elapsed())
}
