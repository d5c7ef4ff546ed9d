//! sfsync's producer: pulls Salesforce objects and publishes one message per page.
//!
//! # Layout
//! - [`cli`] — flags and subcommands.
//! - [`salesforce`] — login, describe, paged queries, error classes and retries.
//! - [`soql`], [`tables`] — the query and the target table, both built from describe.
//! - [`publisher`] — confirm-mode publishing with a window of outstanding confirms.
//! - [`sync`] — one run of one object, from describe to the last confirm.
//! - [`runs`] — the run rows and the `status` report.

pub mod cli;
pub mod publisher;
pub mod runs;
pub mod salesforce;
pub mod soql;
pub mod sync;
pub mod tables;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{Command, StatusArgs, SyncArgs},
    salesforce::{Credentials, RetryPolicy, SalesforceClient},
    sync::{SyncOptions, SyncReport},
};

/// Runs one producer command to completion; output for people goes to stdout.
///
/// # Errors
/// Whatever stopped the command; `main` prints it on one line and exits non-zero.
pub async fn run(command: Command, cancel: CancellationToken) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) => {
            let report = run_sync(&args, &cancel).await?;
            println!(
                "run {} {}: {} pages, {} records published",
                report.run_id, report.object, report.pages, report.records
            );
            Ok(())
        }
        Command::Status(args) => print_status(&args).await,
    }
}

/// `producer sync`: connects everything, then pulls and publishes one object.
///
/// # Errors
/// A setting is wrong, a service is unreachable, or the sync failed.
pub async fn run_sync(args: &SyncArgs, cancel: &CancellationToken) -> anyhow::Result<SyncReport> {
    common::schema::check_api_name("object", &args.object)
        .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
    let credentials = Credentials::from_args(&args.salesforce)?;
    let pool = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&pool).await?;
    let connection = common::amqp::connect(&args.services.amqp_url, "sfsync-producer").await?;
    let channel = connection
        .create_channel()
        .await
        .context("opening an AMQP channel")?;
    common::topology::declare(&channel)
        .await
        .context("declaring the sfsync exchanges and queues")?;
    let sf = SalesforceClient::connect(
        credentials,
        &args.salesforce.sf_api_version,
        RetryPolicy::default(),
    )
    .await?;
    let options = SyncOptions {
        object: args.object.clone(),
        page_size: args.page_size,
        confirm_window: args.confirm_window as usize,
        progress: !args.no_progress,
    };
    let result = sync::sync_object(&sf, &pool, channel.clone(), &options, cancel).await;
    // Channel first: closing the connection under an open channel makes lapin log an error.
    let _ = channel.close(200, "producer done".into()).await;
    let _ = connection.close(200, "producer done".into()).await;
    pool.close().await;
    result
}

async fn print_status(args: &StatusArgs) -> anyhow::Result<()> {
    let pool = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&pool).await?;
    let rows = runs::status(&pool, args.limit)
        .await
        .context("reading sfsync.runs")?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
        return Ok(());
    }
    println!(
        "{:<36}  {:<16} {:<9} {:>9} {:>9} {:>10} {:>10} {:>8}  started",
        "run", "object", "status", "pages_pub", "pages_done", "published", "stored", "dead"
    );
    for r in &rows {
        println!(
            "{:<36}  {:<16} {:<9} {:>9} {:>10} {:>10} {:>10} {:>8}  {}",
            r.run_id,
            r.object,
            r.status,
            r.pages_published,
            r.pages_processed,
            r.records_published,
            r.records_stored,
            r.records_dead,
            r.started_at.format("%Y-%m-%d %H:%M:%S")
        );
        if let Some(error) = &r.error {
            println!("    error: {error}");
        }
    }
    Ok(())
}
