//! sfsync's worker: consumes page messages and upserts their records.
//!
//! # Layout
//! - [`cli`] — flags.
//! - [`consumer`] — the consume loop, settling deliveries, graceful shutdown, metrics.
//! - [`decode`] — message → page, refusing what is not an sfsync page.
//! - [`table`] — the target table's columns, cached.
//! - [`copy_text`] — values in COPY text format.
//! - [`store`] — COPY into a staging table, then one guarded, sorted upsert per page, bisecting
//!   around records the database refuses.
//! - [`direct`] — when a page tries a plain COPY into the table first (new rows, full imports).
//! - [`dead_letter`] — failed records and foreign messages onto the dead-letter queue, confirmed.
//! - [`error`] — transient vs permanent, and the dead-letter error classes.
//! - [`pool`] — the deadpool-postgres pool.
//! - [`tls`] — rustls for that pool, following `sslmode`.

pub mod cli;
pub mod consumer;
pub mod copy_text;
pub mod dead_letter;
pub mod decode;
pub mod deletes;
pub mod direct;
pub mod error;
pub mod pool;
pub mod store;
pub mod table;
pub mod tls;

pub use cli::WorkerArgs;
pub use consumer::{run, run_with_metrics};

/// The `worker` binary: read flags, environment and `sfsync.toml`, log, run until SIGTERM/Ctrl-C, exit 0 after a clean drain.
pub fn main() -> std::process::ExitCode {
    let args = cli::parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    common::shutdown::run_binary(|cancel| run(args, cancel))
}
