//! sfsync's worker: consumes page messages and upserts their records.
//!
//! # Layout
//! - [`cli`] — flags.
//! - [`consumer`] — the consume loop and the graceful drain.
//! - [`session`] — the broker connection with the consumer on it, and reconnecting.
//! - [`step`] — one delivery in, its outcome out: decode → store → dead-letter → settle.
//! - [`decode`] — message → page, refusing what is not an sfsync page.
//! - [`store`] — one page in one transaction: checks, column plan, a direct COPY for new rows
//!   or COPY into a staging table and one guarded, sorted upsert, splitting around records the
//!   database refuses, and the page's bookkeeping.
//! - [`table`] — the target table's columns, cached.
//! - [`copy_text`] — values in COPY text format.
//! - [`dead_letter`] — failed records and foreign messages onto the dead-letter queue, confirmed.
//! - [`error`] — transient vs permanent.
//! - [`metrics`] — the worker's Prometheus metrics.
//! - [`pool`] — the deadpool-postgres pool.
//! - [`push`] — write-back: applying a push batch to Salesforce and recording each outcome.
//! - [`tls`] — rustls for that pool, following `sslmode`.

pub mod cli;
pub mod consumer;
pub mod copy_text;
pub mod dead_letter;
pub mod decode;
pub mod error;
pub mod metrics;
pub mod pool;
pub mod push;
pub mod session;
pub mod step;
pub mod store;
pub mod table;
pub mod tls;

pub use cli::WorkerArgs;
pub use consumer::{run, run_with_metrics};

/// The `worker` binary: read flags, environment and `sfsync.toml`, log, run until SIGTERM/Ctrl-C, exit 0 after a clean drain.
pub fn main() -> std::process::ExitCode {
    let args = cli::parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    common::process::init_and_run(|cancel| run(args, cancel))
}
