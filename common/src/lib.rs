//! Shared by every sfsync binary: Salesforce value types, the message envelope, the AMQP
//! topology, the database schema, configuration and telemetry.
//!
//! # Layout
//! - [`sfid`], [`sftime`] — Salesforce Ids and datetimes, parsed at the edge.
//! - [`message`]: the page message both sides agree on.
//! - [`topology`], [`amqp`] — exchanges and queues, and connecting to the broker's nodes.
//! - [`blocked`] — following the broker's blocking of publishers under a resource alarm.
//! - [`dead_letter`] — what a message on the dead-letter queue says about its failure, and the
//!   error classes.
//! - [`schema`]: names and types where Salesforce meets PostgreSQL.
//! - [`db`]: migrations and the control connection.
//! - [`confirm`] — publishing with a confirm that is waited for, never for ever.
//! - [`config`], [`config_file`] — settings (`sfsync.toml` is layered under flags and
//!   environment in [`config_file`]).
//! - [`process`], [`telemetry`], [`shutdown`] — what every binary's `main` sets up: logging,
//!   the runtime, the shutdown signal.
//! - [`metrics`], [`health`] — the `/metrics`, `/livez` and `/readyz` endpoints and the metric
//!   names both binaries share.
//! - [`allocator`] — glibc's thresholds, set once at start.
//! - [`scan`] — skipping the part of a text that needs no escape.

pub mod allocator;
pub mod amqp;
pub mod blocked;
pub mod config;
pub mod config_file;
pub mod confirm;
pub mod db;
pub mod dead_letter;
pub mod health;
pub mod message;
pub mod metrics;
pub mod process;
pub mod push;
pub mod scan;
pub mod schema;
pub mod sfid;
pub mod sftime;
pub mod shutdown;
pub mod telemetry;
pub mod topology;
