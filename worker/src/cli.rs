//! The worker's command line.

use std::time::Duration;

use clap::Parser;
use common::config::ServiceArgs;

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
    pub services: ServiceArgs,
}

/// Parses `30s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 30s, 500ms or 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?} is not a duration such as 30s, 500ms or 2m")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("soon").unwrap_err().contains("\"soon\""));
    }
}
