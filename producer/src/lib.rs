//! sfsync's producer: pulls Salesforce objects and publishes one message per page.
//!
//! # Layout
//! - this file: [`run`] hands a command to its module; [`main`] is the binary.
//! - [`cli`] — flags and subcommands, layered over `sfsync.toml`.
//! - [`commands`] — `sync`, `reconcile`, `dlq`: each from connecting to its report.
//! - [`watch`] — `sync --watch`, the daemon: probe, cadence, quota pause, backoff, retention.
//! - [`output`] — what the commands print for people, or as JSON.
//! - [`session`] — Salesforce, PostgreSQL, the broker and `/metrics`, connected once per command.
//! - [`broker`] — the broker connection, and syncing again on a new one when it is lost.
//! - [`metrics`] — the producer's Prometheus metrics.
//! - [`objects`] — per-object settings from `sfsync.toml`: table, fields, hard delete.
//! - [`salesforce`] — login, describe, paged queries, getDeleted, Bulk jobs, errors and retries.
//! - [`soql`], [`tables`] — the query and the target table, both built from describe.
//! - [`columns`] — which field each column holds, and whether syncs still fill it.
//! - [`sync`] — one run of one object, from describe to the last confirm.
//! - [`publisher`] — confirm-mode publishing with a window of outstanding confirms.
//! - [`buffers`] — page-sized byte buffers reused from page to page.
//! - [`sync_state`] — the per-object watermark.
//! - [`runs`] — the run rows and the status query.
//! - [`status`] — the `status` report, once or live.
//! - [`dlq`] — listing, replaying and purging dead letters.
//! - [`reconcile`] — comparing a table with the org and repairing it.

pub mod broker;
/// Response and page buffers, shared with the Salesforce client.
pub use ::salesforce::buffers;
pub mod cli;
pub mod columns;
pub mod commands;
pub mod dlq;
pub mod metrics;
pub mod objects;
pub mod output;
pub mod publisher;
pub mod reconcile;
pub mod runs;
pub mod salesforce;
pub mod session;
pub mod soql;
pub mod status;
pub mod sync;
pub mod sync_state;
pub mod tables;
pub mod watch;
pub mod write;

use tokio_util::sync::CancellationToken;

use crate::cli::Command;
pub use crate::commands::{run_dlq, run_reconcile, run_sync, run_sync_all};
pub use crate::watch::{watch, watch_with_metrics};
pub use crate::write::push::run_push;

/// Runs one producer command to completion; output for people goes to stdout.
///
/// # Errors
/// Whatever stopped the command; `main` prints it on one line and exits non-zero.
pub async fn run(command: Command, cancel: CancellationToken) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) if args.watch => {
            watch(&args, &cancel, |reports| {
                reports.iter().for_each(output::print_report)
            })
            .await
        }
        Command::Sync(args) => commands::sync_and_print(&args, &cancel).await,
        // These do not watch the token themselves: a signal ends them where they are (nothing
        // they do is left half-done: dlq letters are put back, reconcile repairs are pages).
        Command::Status(args) => until_cancelled(&cancel, status::print_status(&args)).await,
        Command::Dlq(args) => until_cancelled(&cancel, run_dlq(&args)).await,
        Command::Reconcile(args) => {
            until_cancelled(&cancel, commands::reconcile_and_print(args)).await
        }
        Command::Push(args) if args.watch => write::push::watch_push(&args, &cancel).await,
        Command::Push(args) => until_cancelled(&cancel, write::push::push_and_print(&args)).await,
    }
}

/// Runs `work` until it ends or a shutdown signal arrives (then an error saying so).
async fn until_cancelled(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        result = work => result,
        () = cancel.cancelled() => Err(anyhow::anyhow!("interrupted by a shutdown signal")),
    }
}

/// The `producer` binary: read flags, environment and `sfsync.toml`, log, run the command,
/// one-line error and exit 1 on failure.
pub fn main() -> std::process::ExitCode {
    let cli = cli::parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    common::process::init_and_run(|cancel| run(cli.command, cancel))
}
