//! The producer's command line: `sync` pulls an object, `status` reports runs.

use clap::{Args, Parser, Subcommand};
use common::config::ServiceArgs;

use crate::{dlq::DlqFilter, salesforce::CredentialArgs};

/// sfsync producer: pulls Salesforce objects page by page onto RabbitMQ, where sfsync workers
/// upsert them into PostgreSQL (schema `salesforce`, one table per object).
#[derive(Debug, Parser)]
#[command(name = "producer", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull every record of an object and publish it; exits 0 only when the broker has
    /// confirmed every page. Creates or extends salesforce.<object> first.
    Sync(SyncArgs),
    /// Show recent runs: pages published, pages processed, records stored and dead-lettered.
    Status(StatusArgs),
    /// Inspect, replay or purge the dead-letter queue (records that could not be stored).
    Dlq(DlqArgs),
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    pub command: DlqCommand,
    #[command(flatten)]
    pub services: ServiceArgs,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Counts by object and error class, then the records (Id, object, class, time, error).
    /// Nothing is removed.
    List {
        #[command(flatten)]
        filter: DlqFilter,
        /// One JSON object per dead letter instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// Move matching dead letters back onto the work queue (after fixing the cause); each is
    /// removed from the DLQ only once the work queue has confirmed it. Prints how many moved.
    Replay {
        #[command(flatten)]
        filter: DlqFilter,
    },
    /// Delete matching dead letters for good. Without --yes, only says how many would go.
    Purge {
        #[command(flatten)]
        filter: DlqFilter,
        /// Really delete them.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Salesforce API name of the object, e.g. Contact, Account or My_Object__c.
    #[arg(long)]
    pub object: String,
    /// Records per page asked of Salesforce (200–2000). One page becomes one message.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(200..=2000))]
    pub page_size: u32,
    /// Pages published but not yet confirmed by the broker, at most. Higher overlaps more
    /// round trips; memory is about this many pages.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub confirm_window: u32,
    /// Never draw a progress bar (it is drawn only on a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub services: ServiceArgs,
}
