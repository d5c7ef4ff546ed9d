//! sfsync's producer: pulls Salesforce objects and publishes one message per page.
//!
//! # Layout
//! - [`cli`] — flags and subcommands, layered over `sfsync.toml`.
//! - [`objects`] — per-object settings from `sfsync.toml`: table, fields, hard delete.
//! - [`salesforce`] — login, describe, paged queries, error classes and retries.
//! - [`soql`], [`tables`] — the query and the target table, both built from describe.
//! - [`publisher`] — confirm-mode publishing with a window of outstanding confirms.
//! - [`buffers`] — page-sized byte buffers reused from page to page.
//! - [`sync`] — one run of one object, from describe to the last confirm.
//! - [`sync_state`] — the per-object watermark.
//! - [`runs`] — the run rows and the status query.
//! - [`status`] — the `status` report, once or live.
//! - [`dlq`] — listing, replaying and purging dead letters.
//! - [`reconcile`] — comparing a table with the org and repairing it.

pub mod buffers;
pub mod cli;
pub mod dlq;
pub mod metrics;
pub mod objects;
pub mod publisher;
pub mod reconcile;
pub mod runs;
pub mod salesforce;
pub mod soql;
pub mod status;
pub mod sync;
pub mod sync_state;
pub mod tables;

use std::sync::Arc;

use common::metrics::{MetricsListener, MetricsServer, RetryCause};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::{Command, DlqArgs, DlqCommand, ReconcileArgs, SyncArgs},
    metrics::ProducerMetrics,
    salesforce::{Credentials, RetryPolicy, SalesforceClient},
    sync::{SyncOptions, SyncReport},
};

/// Runs one producer command to completion; output for people goes to stdout.
///
/// # Errors
/// Whatever stopped the command; `main` prints it on one line and exits non-zero.
pub async fn run(command: Command, cancel: CancellationToken) -> anyhow::Result<()> {
    match command {
        Command::Sync(args) if args.watch => {
            watch(&args, &cancel, |reports| {
                reports.iter().for_each(print_report)
            })
            .await
        }
        Command::Sync(args) => {
            run_sync_all(&args, &cancel)
                .await?
                .iter()
                .for_each(print_report);
            Ok(())
        }
        // These do not watch the token themselves: a signal ends them where they are (nothing
        // they do is left half-done: dlq letters are put back, reconcile repairs are pages).
        Command::Status(args) => until_cancelled(&cancel, status::print_status(&args)).await,
        Command::Dlq(args) => until_cancelled(&cancel, run_dlq(&args)).await,
        Command::Reconcile(args) => until_cancelled(&cancel, reconcile_command(args)).await,
    }
}

/// Runs `work` until it ends or a shutdown signal arrives (then an error saying so).
async fn until_cancelled(
    cancel: &CancellationToken,
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::select! {
        result = work => result,
        () = cancel.cancelled() => Err(anyhow::anyhow!("interrupted by a shutdown signal")),
    }
}

/// `producer reconcile`: prints each report; an error when differences remain (exit 1).
async fn reconcile_command(args: ReconcileArgs) -> anyhow::Result<()> {
    let reports = run_reconcile(&args).await?;
    for r in &reports {
        print_reconcile(r, args.json)?;
    }
    let left: i64 = reports
        .iter()
        .map(|r| r.after.unwrap_or(r.before).differences())
        .sum();
    let dry = if args.dry_run {
        " (dry run: nothing was changed)"
    } else {
        ""
    };
    anyhow::ensure!(
        left == 0,
        "{left} differences remain between the org and the table{dry}"
    );
    Ok(())
}

/// What a sync needs, connected once and reused by every object and every `--watch` pass.
struct Connected {
    sf: SalesforceClient,
    pool: sqlx::PgPool,
    connection: lapin::Connection,
    /// For reconnecting after the broker connection is lost.
    amqp_url: secrecy::SecretString,
    metrics: Arc<ProducerMetrics>,
    /// `/metrics`, served while connected.
    _metrics_server: Option<MetricsServer>,
}

/// A sync that lost the broker is started again on a new connection this many times. It
/// resumes from the watermark, which only confirmed pages advanced, so nothing is skipped.
const BROKER_RETRIES: u32 = 5;

/// Whether an error came from the broker connection (worth reconnecting for).
fn is_broker_error(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|cause| cause.is::<lapin::Error>() || cause.is::<publisher::PublishError>())
}

/// Connects to the broker and declares the topology.
async fn connect_broker(
    amqp_url: &secrecy::SecretString,
    connection_name: &str,
) -> anyhow::Result<lapin::Connection> {
    let connection = common::amqp::connect(amqp_url, connection_name).await?;
    let channel = common::topology::declare_on(&connection).await?;
    common::amqp::close_channel(&channel, "declared").await;
    Ok(connection)
}

impl Connected {
    async fn open(args: &SyncArgs, metrics: Option<MetricsListener>) -> anyhow::Result<Self> {
        Self::open_with(
            &args.objects,
            &args.object_config,
            &args.salesforce,
            &args.services,
            args.max_api_usage,
            args.limit_retry.policy(),
            metrics,
        )
        .await
    }

    /// Checks the objects, starts serving metrics (the callers bind the address first, so a
    /// bad one fails before any connection), then connects to the database, the broker and
    /// Salesforce.
    async fn open_with(
        objects: &[String],
        object_config: &objects::ObjectsConfig,
        salesforce: &salesforce::CredentialArgs,
        services: &common::config::ServiceArgs,
        max_api_usage: f64,
        retry: RetryPolicy,
        listener: Option<MetricsListener>,
    ) -> anyhow::Result<Self> {
        for object in objects {
            common::schema::check_api_name("object", object)
                .map_err(|e| anyhow::anyhow!("--object: {e}"))?;
        }
        let credentials = Credentials::from_args(salesforce)?;
        let metrics = Arc::new(ProducerMetrics::new());
        let metrics_server = common::metrics::serve(listener, metrics.clone());
        let pool = common::db::connect_control(&services.database_url).await?;
        common::db::migrate(&pool).await?;
        let connection = connect_broker(&services.amqp_url, "sfsync-producer").await?;
        let max_usage = (max_api_usage < 100.0).then_some(max_api_usage);
        let sf = SalesforceClient::connect(credentials, &salesforce.sf_api_version, retry)
            .await?
            .with_max_api_usage(max_usage)
            .with_metrics(metrics.clone());
        if object_config.has_field_filters(objects) {
            objects::check_fields_against_org(&sf, object_config, objects).await?;
        }
        Ok(Self {
            sf,
            pool,
            connection,
            amqp_url: services.amqp_url.clone(),
            metrics,
            _metrics_server: metrics_server,
        })
    }

    /// Syncs every object once, in order; stops at the first failure.
    /// Syncs every object once, in order; stops at the first failure. A sync that lost the
    /// broker is run again on a new connection (up to [`BROKER_RETRIES`] times, with backoff).
    async fn pass(
        &mut self,
        args: &SyncArgs,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Vec<SyncReport>> {
        let mut reports = Vec::new();
        for object in &args.objects {
            let settings = args.object_config.settings(object);
            let options = SyncOptions {
                object: object.clone(),
                page_size: args.page_size,
                confirm_window: args.confirm_window as usize,
                progress: !args.no_progress,
                full: args.full,
                overlap: args.overlap,
                hard_delete: settings.hard_delete.unwrap_or(args.hard_delete),
                api: args.api,
                bulk_threshold: args.bulk_threshold,
                settings,
            };
            let mut attempt = 0;
            let report = loop {
                let result = match self.connection.create_channel().await {
                    Ok(channel) => {
                        let result = sync::sync_object(
                            &self.sf,
                            &self.pool,
                            channel.clone(),
                            &options,
                            cancel,
                        )
                        .await;
                        common::amqp::close_channel(&channel, "sync done").await;
                        result
                    }
                    Err(e) => Err(anyhow::Error::new(e).context("opening an AMQP channel")),
                };
                match result {
                    Err(e)
                        if is_broker_error(&e)
                            && attempt < BROKER_RETRIES
                            && !cancel.is_cancelled() =>
                    {
                        attempt += 1;
                        self.metrics.retry(RetryCause::BrokerReconnect);
                        let pause = std::time::Duration::from_secs(1 << attempt.min(5));
                        tracing::warn!(object, attempt, error = format!("{e:#}"), retry_in = ?pause, "Lost the broker; reconnecting and syncing again from the watermark.");
                        tokio::time::sleep(pause).await;
                        match connect_broker(&self.amqp_url, "sfsync-producer").await {
                            Ok(connection) => self.connection = connection,
                            Err(e) => tracing::warn!(
                                error = format!("{e:#}"),
                                "Reconnecting to RabbitMQ failed."
                            ),
                        }
                    }
                    other => break other?,
                }
            };
            reports.push(report);
        }
        Ok(reports)
    }

    async fn close(self) {
        common::amqp::close_connection(&self.connection, "producer done").await;
        self.pool.close().await;
    }
}

/// `producer reconcile`: each object in turn; see [`reconcile`].
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a reconcile failed.
pub async fn run_reconcile(
    args: &ReconcileArgs,
) -> anyhow::Result<Vec<reconcile::ReconcileReport>> {
    let listener = args.metrics.bind().await?;
    let connected = Connected::open_with(
        &args.objects,
        &args.object_config,
        &args.salesforce,
        &args.services,
        args.max_api_usage,
        args.limit_retry.policy(),
        listener,
    )
    .await?;
    let mut reports = Vec::new();
    let mut result = Ok(());
    for object in &args.objects {
        let settings = args.object_config.settings(object);
        let options = reconcile::ReconcileOptions {
            object: object.clone(),
            dry_run: args.dry_run,
            hard_delete: settings.hard_delete.unwrap_or(args.hard_delete),
            wait: args.wait,
            // auto: the snapshot is small per record, Bulk pays off at any size above a page.
            bulk: args.api != sync::ApiChoice::Rest,
            settings,
        };
        match reconcile::reconcile_object(
            &connected.sf,
            &connected.pool,
            &connected.connection,
            &options,
        )
        .await
        {
            Ok(report) => reports.push(report),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    connected.close().await;
    result.map(|()| reports)
}

fn print_reconcile(r: &reconcile::ReconcileReport, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    let line = |label: &str, c: &reconcile::Census| {
        println!(
            "  {label:<7} in step {:>9}  missing {:>7}  stale {:>7}  gone {:>7}",
            c.in_step, c.missing, c.stale, c.gone
        )
    };
    println!("{}:", r.object);
    line("before", &r.before);
    match &r.after {
        Some(after) => {
            line("after", after);
            println!(
                "  re-pulled {} records, published {} deletions; {} API calls",
                r.republished, r.deletions, r.api_calls
            );
        }
        None => println!("  dry run: nothing changed; {} API calls", r.api_calls),
    }
    Ok(())
}

/// `producer sync` without `--watch`: one sync of each object; returns their reports.
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a sync failed.
pub async fn run_sync_all(
    args: &SyncArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<SyncReport>> {
    let listener = args.metrics.bind().await?;
    let mut connected = Connected::open(args, listener).await?;
    let result = connected.pass(args, cancel).await;
    connected.close().await;
    result
}

/// One sync of the first `--object` (what tests and single-object callers want).
///
/// # Errors
/// As for [`run_sync_all`].
pub async fn run_sync(args: &SyncArgs, cancel: &CancellationToken) -> anyhow::Result<SyncReport> {
    run_sync_all(args, cancel)
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("--object names no object"))
}

/// `producer sync --watch`: a pass over every object each `--interval` until `cancel`. A signal
/// lets the pass in progress finish (its syncs are not interrupted), then returns `Ok`.
///
/// # Errors
/// Connecting failed, or a pass failed.
pub async fn watch(
    args: &SyncArgs,
    cancel: &CancellationToken,
    on_pass: impl FnMut(&[SyncReport]),
) -> anyhow::Result<()> {
    let listener = args.metrics.bind().await?;
    watch_with_metrics(args, listener, cancel, on_pass).await
}

/// [`watch`] with the metrics address already bound (`None`: no metrics endpoint), so that a
/// caller binding port 0 knows where to scrape.
///
/// # Errors
/// As for [`watch`].
pub async fn watch_with_metrics(
    args: &SyncArgs,
    listener: Option<MetricsListener>,
    cancel: &CancellationToken,
    mut on_pass: impl FnMut(&[SyncReport]),
) -> anyhow::Result<()> {
    let mut connected = Connected::open(args, listener).await?;
    let result = async {
        while !cancel.is_cancelled() {
            // Not the signal's token: a window that has started is finished.
            let reports = connected.pass(args, &CancellationToken::new()).await?;
            on_pass(&reports);
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(args.interval) => {}
            }
        }
        anyhow::Ok(())
    }
    .await;
    connected.close().await;
    result
}

fn print_report(r: &SyncReport) {
    let mode = match r.mode {
        sync::SyncMode::Full => "full".to_owned(),
        sync::SyncMode::Incremental { since } => {
            format!("incremental since {}", common::sftime::format_soql(since))
        }
    };
    let api = match r.api {
        sync::Api::Rest => "REST",
        sync::Api::Bulk => "Bulk API 2.0",
    };
    println!(
        "run {} {} ({mode}, {api}): {} pages, {} records, {} deletions published; {} API calls",
        r.run_id, r.object, r.pages, r.records, r.deletions, r.api_calls
    );
}

/// `producer dlq …`
///
/// # Errors
/// The broker is unreachable, or `purge` was asked without `--yes`.
pub async fn run_dlq(args: &DlqArgs) -> anyhow::Result<()> {
    let connection = connect_broker(&args.services.amqp_url, "sfsync-dlq").await?;
    let result = match &args.command {
        DlqCommand::List { filter, json } => {
            let letters = dlq::list(&connection, filter).await?;
            if *json {
                for l in letters.iter().take(filter.limit.unwrap_or(usize::MAX)) {
                    println!("{}", serde_json::to_string(l)?);
                }
            } else {
                print_letters(&letters, filter.limit.unwrap_or(50));
            }
            Ok(())
        }
        DlqCommand::Replay { filter } => {
            let moved = dlq::replay(&connection, filter).await?;
            println!(
                "replayed {moved} dead letters onto {}",
                common::topology::WORK_QUEUE
            );
            Ok(())
        }
        DlqCommand::Purge { filter, yes: false } => {
            let matching = dlq::list(&connection, filter)
                .await?
                .len()
                .min(filter.limit.unwrap_or(usize::MAX));
            Err(anyhow::anyhow!(
                "{matching} dead letters match; nothing was deleted. Run again with --yes to delete them for good"
            ))
        }
        DlqCommand::Purge { filter, yes: true } => {
            let removed = dlq::purge(&connection, filter).await?;
            println!("purged {removed} dead letters");
            Ok(())
        }
    };
    common::amqp::close_connection(&connection, "dlq done").await;
    result
}

/// The text on one line, cut to `max` characters (the table view; `--json` has it whole).
fn one_line(text: &str, max: usize) -> String {
    let flat = text.replace(['\n', '\r'], " ");
    if flat.chars().count() <= max {
        flat
    } else {
        format!("{}…", flat.chars().take(max).collect::<String>())
    }
}

fn print_letters(letters: &[dlq::Letter], shown: usize) {
    println!("{} dead letters", letters.len());
    for ((object, class), n) in dlq::summarize(letters) {
        println!("  {n:>8}  {object:<20} {class}");
    }
    if letters.is_empty() {
        return;
    }
    println!();
    println!(
        "{:<18}  {:<16} {:<10} {:<24} {:>3}  error",
        "sfid", "object", "class", "failed_at", "try"
    );
    for l in letters.iter().take(shown) {
        let i = &l.info;
        println!(
            "{:<18}  {:<16} {:<10} {:<24} {:>3}  {}",
            i.sfid.as_deref().unwrap_or("-"),
            i.object.as_deref().unwrap_or("-"),
            i.error_class.map_or("-", |c| c.as_str()),
            i.failed_at.as_deref().unwrap_or("-"),
            i.attempts,
            one_line(i.error.as_deref().unwrap_or("-"), 140)
        );
    }
    if letters.len() > shown {
        println!(
            "… and {} more (--limit N shows more, --json gives all)",
            letters.len() - shown
        );
    }
}

/// The `producer` binary: read flags, environment and `sfsync.toml`, log, run the command,
/// one-line error and exit 1 on failure.
pub fn main() -> std::process::ExitCode {
    let cli = cli::parse_from(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    common::process::init_and_run(|cancel| run(cli.command, cancel))
}
