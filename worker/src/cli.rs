//! The worker's command line.

use std::time::Duration;

use clap::Parser;
use common::{
    config::{ServiceArgs, parse_duration},
    metrics::MetricsArgs,
};

/// sfsync worker: consumes Salesforce pages from RabbitMQ and upserts them into PostgreSQL
/// (schema `salesforce`). Run as many as the database absorbs; they never deadlock each other.
#[derive(Debug, Clone, Parser)]
#[command(name = "worker", version, about, long_about = None)]
pub struct WorkerArgs {
    /// Pages the broker may hand this worker before it acks (per-consumer QoS). At least
    /// --concurrency, so the next page is here when one commits; each page is ~1 MB.
    #[arg(long, env = "SFSYNC_PREFETCH", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Pages stored at once, each on its own database connection.
    #[arg(long, env = "SFSYNC_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// On SIGTERM/Ctrl-C, how long to wait for in-flight pages before closing anyway (they
    /// are then redelivered, which is harmless).
    #[arg(long, env = "SFSYNC_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
}
