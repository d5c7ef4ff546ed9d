//! The worker's command line, layered over `sfsync.toml`'s `[worker]` and `[services]`.

use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use common::{
    config::{ServiceArgs, parse_duration},
    config_file::{ConfigFile, Layer, LoadError, parse_layered},
    metrics::MetricsArgs,
};

const AFTER_HELP: &str = "Settings file: every option above can also be set in sfsync.toml (or the file \
--config names), by its long name with underscores: `prefetch = 8` under [worker]; --amqp-url and \
--database-url under [services] (keep secrets in the environment or .env rather than a file). A \
flag beats the environment, which beats the file, which beats the default.";

/// sfsync worker: consumes Salesforce pages from RabbitMQ and upserts them into PostgreSQL
/// (schema `salesforce`). Run as many as the database absorbs; they never deadlock each other.
#[derive(Debug, Clone, Parser)]
#[command(name = "worker", version, about, long_about = None, after_help = AFTER_HELP)]
pub struct WorkerArgs {
    /// Pages the broker may hand this worker before it acks (per-consumer QoS). At least
    /// --concurrency, so the next page is here when one commits; a page of 2,000 records is
    /// about 2 MB.
    #[arg(long, env = "SFSYNC_PREFETCH", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub prefetch: u16,
    /// Pages stored at once, each on its own database connection.
    #[arg(long, env = "SFSYNC_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// On SIGTERM/Ctrl-C, how long to wait for in-flight pages before closing anyway (they
    /// are then redelivered, which is harmless).
    #[arg(long, env = "SFSYNC_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long the broker may take to confirm a dead letter. A page is acked only after its
    /// dead letters are confirmed; one whose letters are not (after a few tries) is handed back
    /// to the broker, so a stalled connection cannot hold this worker's page slot for ever.
    #[arg(long, env = "SFSYNC_CONFIRM_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub confirm_timeout: Duration,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub services: ServiceArgs,
    /// Salesforce, for write-back: a worker with these settings also applies the push batches
    /// of `producer push` (the `sfsync.push` queue); without them it only stores pages.
    #[command(flatten)]
    pub salesforce: salesforce::CredentialArgs,
    /// Write-back pauses once the org's API usage reaches this percentage of its daily limit:
    /// push batches wait (held, then on the queue) and go on by themselves once the usage,
    /// which every answer reports, falls below it. 100 never pauses.
    #[arg(long, env = "SFSYNC_MAX_API_USAGE", default_value_t = 80.0, value_parser = common::config::parse_percent)]
    pub max_api_usage: f64,
}

/// Worker arguments from `argv`, the environment and the settings file (`[worker]`, then the
/// shared `[services]`), in that precedence.
///
/// # Errors
/// A usage error (or `--help`), or a settings file that is missing, malformed or holds a bad
/// value; the message names the setting.
pub fn parse_from(argv: Vec<std::ffi::OsString>) -> Result<WorkerArgs, LoadError> {
    let file = ConfigFile::find(&argv)?;
    if let Some(file) = &file {
        file.check_sections()?;
        file.check_keys(
            "services",
            &ServiceArgs::augment_args(clap::Command::new("services")),
        )?;
        file.check_keys("worker", &WorkerArgs::command())?;
    }
    let matches = parse_layered(WorkerArgs::command(), argv, file.as_ref(), |_| {
        vec![
            Layer {
                section: "services".into(),
                strict: false,
            },
            Layer {
                section: "worker".into(),
                strict: true,
            },
        ]
    })?;
    Ok(WorkerArgs::from_arg_matches(&matches)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_is_valid_for_the_worker() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../sfsync.example.toml");
        let args = parse_from(vec!["worker".into(), "--config".into(), path.into()]).unwrap();
        assert_eq!((args.prefetch, args.concurrency), (8, 2));
        let args = parse_from(vec![
            "worker".into(),
            "--config".into(),
            path.into(),
            "--prefetch".into(),
            "3".into(),
        ])
        .unwrap();
        assert_eq!(args.prefetch, 3);
    }
}
