//! The producer's command line: `sync` pulls an object, `status` reports runs.

use clap::{Args, Parser, Subcommand};
use common::{config::ServiceArgs, metrics::MetricsArgs};

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
    /// Pull an object's records (all of them the first time or with --full, then what changed)
    /// and publish them; exits 0 only when the broker has confirmed every page. Creates or
    /// extends salesforce.<object> first.
    Sync(SyncArgs),
    /// Show recent runs: pages published, pages processed, records stored and dead-lettered.
    Status(StatusArgs),
    /// Inspect, replay or purge the dead-letter queue (records that could not be stored).
    Dlq(DlqArgs),
    /// Compare a table with the org by Id and SystemModstamp and repair every difference:
    /// re-pull missing and stale records, mark (or with --hard-delete remove) rows the org no
    /// longer has. Exit 0 when the table ends in step, 1 when differences remain.
    Reconcile(ReconcileArgs),
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Salesforce API name(s) of the object(s), e.g. Contact or Account,Contact.
    #[arg(long = "object", value_delimiter = ',', required = true)]
    pub objects: Vec<String>,
    /// Only report the differences; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// One JSON object per object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Remove rows the org no longer has instead of marking them isdeleted.
    #[arg(long)]
    pub hard_delete: bool,
    /// How the org's Ids and stamps are read: bulk (Bulk API 2.0, a handful of API calls at any
    /// size) or rest (one call per 2,000 records, as many as a full import).
    #[arg(long, value_enum, default_value = "bulk")]
    pub api: crate::sync::ApiChoice,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long to wait for the workers to apply the repair before the "after" report.
    #[arg(long, default_value = "10m", value_parser = common::config::parse_duration)]
    pub wait: std::time::Duration,
    /// Stop once the org's API usage reaches this percentage of its daily limit.
    #[arg(long, default_value_t = 80.0, value_parser = parse_percent)]
    pub max_api_usage: f64,
    #[command(flatten)]
    pub limit_retry: LimitRetryArgs,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
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
    /// Salesforce API name(s) of the object(s), e.g. Contact or Account,Contact or
    /// My_Object__c. Objects are synced one after the other.
    #[arg(long = "object", value_delimiter = ',', required = true)]
    pub objects: Vec<String>,
    /// Read every record, even when an earlier sync left a watermark. Without it, a sync
    /// reads only what changed since the watermark (minus --overlap).
    #[arg(long)]
    pub full: bool,
    /// How far behind the watermark an incremental sync starts reading, so records sharing a
    /// timestamp or committed late are not missed. Re-reading them is harmless.
    #[arg(long, default_value = "5m", value_parser = common::config::parse_duration)]
    pub overlap: std::time::Duration,
    /// Delete the rows of records deleted in Salesforce instead of setting isdeleted = true.
    /// (A replay of a page older than the deletion can bring such a row back until the next sync.)
    #[arg(long)]
    pub hard_delete: bool,
    /// Keep syncing: an incremental sync of every object each --interval, until SIGTERM or
    /// Ctrl-C (the sync in progress is finished first; exit 0).
    #[arg(long)]
    pub watch: bool,
    /// Pause between syncs in --watch mode.
    #[arg(long, default_value = "30s", value_parser = common::config::parse_duration)]
    pub interval: std::time::Duration,
    /// Stop (with an error) once the org's API usage, as Salesforce reports it, reaches this
    /// percentage of its daily limit, leaving the rest to other integrations. 100 disables it.
    #[arg(long, default_value_t = 80.0, value_parser = parse_percent)]
    pub max_api_usage: f64,
    /// Which Salesforce API reads the records: rest, bulk (Bulk API 2.0) or auto (Bulk above
    /// --bulk-threshold records, counted first with one COUNT() query).
    #[arg(long, value_enum, default_value = "auto")]
    pub api: crate::sync::ApiChoice,
    /// With --api auto, use Bulk when a sync reads more records than this.
    #[arg(long, default_value_t = 100_000)]
    pub bulk_threshold: u64,
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
    pub limit_retry: LimitRetryArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub salesforce: CredentialArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
}

/// How long a call Salesforce refuses with 403 `REQUEST_LIMIT_EXCEEDED` is retried. (Network
/// failures, 5xx, 429 and garbled bodies are retried separately: 6 times from 0.5 s.)
#[derive(Debug, Clone, Args)]
pub struct LimitRetryArgs {
    /// Retries of a call refused with 403 REQUEST_LIMIT_EXCEEDED (the org's API or
    /// concurrent-request limit) before the run fails; 0 fails at once.
    #[arg(long, env = "SF_LIMIT_RETRIES", default_value_t = 3)]
    pub sf_limit_retries: usize,
    /// The first pause before such a retry; each further one doubles (at most 5m), jittered.
    #[arg(long, env = "SF_LIMIT_BACKOFF", default_value = "30s", value_parser = common::config::parse_duration)]
    pub sf_limit_backoff: std::time::Duration,
}

impl Default for LimitRetryArgs {
    fn default() -> Self {
        let policy = crate::salesforce::RetryPolicy::default();
        Self {
            sf_limit_retries: policy.limit_max_retries,
            sf_limit_backoff: policy.limit_min_delay,
        }
    }
}

impl LimitRetryArgs {
    /// The client's retry policy with these limits.
    pub fn policy(&self) -> crate::salesforce::RetryPolicy {
        crate::salesforce::RetryPolicy {
            limit_max_retries: self.sf_limit_retries,
            limit_min_delay: self.sf_limit_backoff,
            ..crate::salesforce::RetryPolicy::default()
        }
    }
}

fn parse_percent(s: &str) -> Result<f64, String> {
    match s.trim_end_matches('%').parse::<f64>() {
        Ok(p) if (1.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage between 1 and 100")),
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep refreshing: records/s and ETA per run, and the broker's queue depths.
    #[arg(long, conflicts_with = "json")]
    pub watch: bool,
    /// Refresh period with --watch.
    #[arg(long, default_value = "2s", value_parser = common::config::parse_duration)]
    pub interval: std::time::Duration,
    #[command(flatten)]
    pub services: ServiceArgs,
}
