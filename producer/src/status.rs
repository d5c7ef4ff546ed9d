//! `producer status`: what each run published and what the workers did of it, from the
//! database, then the columns no sync fills any more and the write-back outbox per table; with `--watch`, a live view that adds
//! records/s, an ETA and the broker's own queue depths.

use std::{collections::HashMap, io::IsTerminal, time::Instant};

use anyhow::Context as _;
use lapin::{
    Connection,
    options::QueueDeclareOptions,
    types::{FieldTable, ShortString},
};
use uuid::Uuid;

use crate::{cli::StatusArgs, columns, runs};

/// Messages ready and consumers attached, as the broker counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub ready: u32,
    pub consumers: u32,
}

/// The work queue's and the dead-letter queue's depths (passive declares: nothing is created).
///
/// # Errors
/// The broker is unreachable or a queue does not exist yet.
pub async fn queue_depths(connection: &Connection) -> anyhow::Result<(QueueDepth, QueueDepth)> {
    let channel = connection.create_channel().await?;
    let depth = |name: &'static str| {
        let channel = channel.clone();
        async move {
            let q = channel
                .queue_declare(
                    ShortString::from(name),
                    QueueDeclareOptions {
                        passive: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await?;
            anyhow::Ok(QueueDepth {
                ready: q.message_count(),
                consumers: q.consumer_count(),
            })
        }
    };
    let work = depth(common::topology::WORK_QUEUE).await;
    let dead = depth(common::topology::DEAD_QUEUE).await;
    common::amqp::close_channel(&channel, "status").await;
    Ok((work?, dead?))
}

/// Prints the runs once, or keeps refreshing with `--watch`.
///
/// # Errors
/// The database (or, with `--watch`, the broker) is unreachable.
pub async fn print_status(args: &StatusArgs) -> anyhow::Result<()> {
    let pool = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&pool).await?;
    if !args.watch {
        let rows = runs::status(&pool, args.limit)
            .await
            .context("reading sfsync.runs")?;
        if args.json {
            for row in &rows {
                println!("{}", serde_json::to_string(row)?);
            }
        } else {
            print_table(&rows, &HashMap::new());
            print_stale_columns(&pool).await?;
            print_write_back(&pool).await?;
            print_watch(&pool).await?;
        }
        return Ok(());
    }
    let connection = common::amqp::connect(&args.services.amqp_url, "sfsync-status").await?;
    let mut previous: HashMap<Uuid, (Instant, i64)> = HashMap::new();
    let clear = std::io::stdout().is_terminal();
    loop {
        let rows = runs::status(&pool, args.limit)
            .await
            .context("reading sfsync.runs")?;
        let now = Instant::now();
        // records/s per run since the previous refresh
        let rates: HashMap<Uuid, f64> = rows
            .iter()
            .filter_map(|r| {
                let (then, stored) = previous.get(&r.run_id)?;
                let secs = now.duration_since(*then).as_secs_f64();
                (secs > 0.0).then(|| (r.run_id, (r.records_stored - stored) as f64 / secs))
            })
            .collect();
        previous = rows
            .iter()
            .map(|r| (r.run_id, (now, r.records_stored)))
            .collect();
        let depths = queue_depths(&connection).await;
        if clear {
            print!("\x1b[2J\x1b[H");
        }
        println!(
            "sfsync status, every {}s (Ctrl-C to stop)",
            args.interval.as_secs()
        );
        match depths {
            Ok((work, dead)) => println!(
                "queue {}: {} pages waiting, {} consumers   dead letters {}: {}",
                common::topology::WORK_QUEUE,
                work.ready,
                work.consumers,
                common::topology::DEAD_QUEUE,
                dead.ready
            ),
            Err(e) => println!("queues: unavailable ({e:#})"),
        }
        print_table(&rows, &rates);
        print_stale_columns(&pool).await?;
        print_write_back(&pool).await?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            () = tokio::time::sleep(args.interval) => {}
        }
    }
}

/// One line per object `sync --watch` keeps (`sfsync.watch_objects`): paused, or its last
/// success, last error and consecutive failures.
async fn print_watch(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let objects = crate::watch::health::status(pool)
        .await
        .context("reading sfsync.watch_objects")?;
    if !objects.is_empty() {
        println!();
    }
    let at = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "never".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    for o in &objects {
        let mut line = format!("watch {}: ", o.object);
        if let Some(reason) = &o.paused {
            line.push_str(&format!("paused: {reason}; "));
        }
        line.push_str(&format!("last success {}", at(o.last_success_at)));
        if o.failures > 0 {
            line.push_str(&format!(
                ", {} failures in a row, next try {}",
                o.failures,
                at(o.retry_at)
            ));
        }
        if let Some(error) = &o.last_error {
            line.push_str(&format!(
                "; last error {}: {}",
                at(o.last_error_at),
                error.lines().next().unwrap_or_default()
            ));
        }
        println!("{line}");
    }
    Ok(())
}

/// One line per writable table with changes to write back (`sfsync.outbox`), after the runs.
async fn print_write_back(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let tables = crate::write::push::outbox_status(pool)
        .await
        .context("reading sfsync.outbox")?;
    if !tables.is_empty() {
        println!();
    }
    for t in &tables {
        let oldest = t
            .oldest_pending_secs
            .map(|s| format!(" (oldest {s}s ago)"))
            .unwrap_or_default();
        println!(
            "write-back {}.{}: {} pending{oldest}, {} in flight, {} applied, {} refused",
            common::schema::TARGET_SCHEMA,
            t.table_name,
            t.pending,
            t.in_flight,
            t.applied,
            t.failed
        );
    }
    Ok(())
}

/// One line per column no sync fills any more (`sfsync.columns`), after the runs.
async fn print_stale_columns(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let stale = columns::stale(pool)
        .await
        .context("reading sfsync.columns")?;
    if !stale.is_empty() {
        println!();
    }
    for c in &stale {
        println!(
            "stale column {}.{}.{} ({}.{}): {} since {}",
            common::schema::TARGET_SCHEMA,
            c.table_name,
            c.column_name,
            c.object,
            c.field,
            c.reason.as_deref().unwrap_or(columns::NOT_IN_DESCRIBE),
            c.since.format("%Y-%m-%d %H:%M:%S UTC")
        );
    }
    Ok(())
}

fn print_table(rows: &[runs::RunStatus], rates: &HashMap<Uuid, f64>) {
    println!(
        "{:<36}  {:<16} {:<9} {:>9} {:>10} {:>10} {:>10} {:>8} {:>9} {:>7}  started",
        "run",
        "object",
        "status",
        "pages_pub",
        "pages_done",
        "published",
        "stored",
        "dead",
        "rec/s",
        "eta"
    );
    for r in rows {
        let rate = rates.get(&r.run_id).copied().unwrap_or(0.0);
        let left = r.records_published - r.records_stored - r.records_dead;
        let eta = if left > 0 && rate > 0.0 {
            format!("{:.0}s", left as f64 / rate)
        } else {
            "-".into()
        };
        let rate = if rates.contains_key(&r.run_id) {
            format!("{rate:.0}")
        } else {
            "-".into()
        };
        println!(
            "{:<36}  {:<16} {:<9} {:>9} {:>10} {:>10} {:>10} {:>8} {:>9} {:>7}  {}",
            r.run_id,
            r.object,
            r.status,
            r.pages_published,
            r.pages_processed,
            r.records_published,
            r.records_stored,
            r.records_dead,
            rate,
            eta,
            r.started_at.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(since) = r.blocked_since {
            println!(
                "    publishing blocked by RabbitMQ since {} ({}): a node is low on memory or disk; the run waits and goes on when the alarm clears",
                since.format("%Y-%m-%d %H:%M:%S"),
                r.blocked_reason.as_deref().unwrap_or("no reason given")
            );
        }
        if let Some(error) = &r.error {
            println!("    error: {error}");
        }
    }
}
