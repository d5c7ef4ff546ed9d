//! Shared by every sfsync binary: Salesforce value types, the message envelope, the AMQP
//! topology, the database schema, configuration and telemetry.
//!
//! # Layout
//! - [`sfid`], [`sftime`] — Salesforce Ids and datetimes, parsed at the edge.
//! - [`message`]: the page message both sides agree on.
//! - [`topology`], [`amqp`] — exchanges and queues, and connecting to the broker.
//! - [`dead_letter`] — what a message on the dead-letter queue says about its failure.
//! - [`schema`]: names and types where Salesforce meets PostgreSQL.
//! - [`db`]: migrations and the control connection.
//! - [`config`], [`config_file`], [`telemetry`], [`shutdown`] — process plumbing (`sfsync.toml`
//!   is layered under flags and environment in [`config_file`]).
//! - [`metrics`] — Prometheus metrics and the `/metrics` endpoint.
//! - [`allocator`] — glibc's thresholds, set once at start.
//! - [`scan`] — skipping the part of a text that needs no escape.

pub mod allocator;
pub mod amqp;
pub mod config;
pub mod config_file;
pub mod db;
pub mod dead_letter;
pub mod message;
pub mod metrics;
pub mod scan;
pub mod schema;
pub mod sfid;
pub mod sftime;
pub mod shutdown;
pub mod telemetry;
pub mod topology;
