//! sfsync's worker: consumes page messages and upserts their records.
//!
//! # Layout
//! - [`cli`] — flags.
//! - [`consumer`] — the consume loop, settling deliveries, graceful shutdown.
//! - [`decode`] — message → page, refusing what is not an sfsync page.
//! - [`table`] — the target table's columns, cached.
//! - [`copy_text`] — values in COPY text format.
//! - [`store`] — COPY into a staging table, then one guarded, sorted upsert per page.
//! - [`error`] — transient vs permanent, and the dead-letter error classes.
//! - [`pool`] — the deadpool-postgres pool.

pub mod cli;
pub mod consumer;
pub mod copy_text;
pub mod decode;
pub mod error;
pub mod pool;
pub mod store;
pub mod table;

pub use cli::WorkerArgs;
pub use consumer::run;
