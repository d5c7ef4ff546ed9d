//! The commands: `sync` (once, or `--watch`), `reconcile` and `dlq`. Each opens what it needs,
//! does its work, closes what it opened, and returns its reports or prints them through
//! [`crate::output`].

use common::metrics::MetricsListener;
use tokio_util::sync::CancellationToken;

use crate::{
    broker,
    cli::{DlqArgs, DlqCommand, ReconcileArgs, SyncArgs},
    dlq, output,
    reconcile::{self, FormulaOptions, FormulaReport, ReconcileOptions, ReconcileReport},
    session::Session,
    sync::{ApiChoice, SyncOptions, SyncReport},
};

/// `producer sync` without `--watch`: one sync of each object; returns their reports.
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a sync failed.
pub async fn run_sync_all(
    args: &SyncArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<SyncReport>> {
    let listener = args.metrics.bind().await?;
    let mut session = Session::open(args.into(), listener).await?;
    let result = sync_pass(&mut session, args, cancel).await;
    session.close().await;
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
    let mut session = Session::open(args.into(), listener).await?;
    let result = async {
        while !cancel.is_cancelled() {
            // Not the signal's token: a window that has started is finished.
            let reports = sync_pass(&mut session, args, &CancellationToken::new()).await?;
            on_pass(&reports);
            if let Some(every) = args.formula_refresh {
                refresh_formulas_due(&session, args, every).await?;
            }
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(args.interval) => {}
            }
        }
        anyhow::Ok(())
    }
    .await;
    session.close().await;
    result
}

/// `--formula-refresh`: re-reads the formula fields of the objects that have them and were
/// last read `every` ago or longer (see [`reconcile::refresh_due`]).
async fn refresh_formulas_due(
    session: &Session,
    args: &SyncArgs,
    every: std::time::Duration,
) -> anyhow::Result<()> {
    let objects: Vec<_> = args
        .objects
        .iter()
        .map(|object| (object.clone(), args.object_config.settings(object)))
        .collect();
    let (sf, pool, connection) = (&session.sf, &session.pool, session.broker.connection());
    reconcile::refresh_due(sf, pool, connection, &objects, args.api, every).await?;
    Ok(())
}

/// Syncs every object once, in order; stops at the first failure.
async fn sync_pass(
    session: &mut Session,
    args: &SyncArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<SyncReport>> {
    let mut reports = Vec::new();
    for object in &args.objects {
        reports.push(session.sync(&sync_options(args, object), cancel).await?);
    }
    Ok(reports)
}

/// The flags, with the object's `sfsync.toml` section, as one object's sync options.
fn sync_options(args: &SyncArgs, object: &str) -> SyncOptions {
    let settings = args.object_config.settings(object);
    SyncOptions {
        object: object.to_owned(),
        page_size: args.page_size,
        confirm_window: args.confirm_window as usize,
        progress: !args.no_progress,
        full: args.full,
        overlap: args.overlap,
        hard_delete: settings.hard_delete.unwrap_or(args.hard_delete),
        api: args.api,
        bulk_threshold: args.bulk_threshold,
        settings,
    }
}

/// `producer reconcile`: each object in turn; see [`reconcile`].
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a reconcile failed.
pub async fn run_reconcile(args: &ReconcileArgs) -> anyhow::Result<Vec<ReconcileReport>> {
    let listener = args.metrics.bind().await?;
    let session = Session::open(args.into(), listener).await?;
    let mut reports = Vec::new();
    let mut result = Ok(());
    for object in &args.objects {
        let settings = args.object_config.settings(object);
        let options = ReconcileOptions {
            object: object.clone(),
            dry_run: args.dry_run,
            hard_delete: settings.hard_delete.unwrap_or(args.hard_delete),
            wait: args.wait,
            // auto: the snapshot is small per record, Bulk pays off at any size above a page.
            bulk: args.api != ApiChoice::Rest,
            settings,
        };
        match reconcile::reconcile_object(
            &session.sf,
            &session.pool,
            session.broker.connection(),
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
    session.close().await;
    result.map(|()| reports)
}

/// `producer reconcile --formulas`: each object's formula fields re-read and applied; see
/// [`reconcile::refresh_formulas`].
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a refresh failed.
pub async fn run_formula_refresh(args: &ReconcileArgs) -> anyhow::Result<Vec<FormulaReport>> {
    let listener = args.metrics.bind().await?;
    let session = Session::open(args.into(), listener).await?;
    let (sf, pool, connection) = (&session.sf, &session.pool, session.broker.connection());
    let refreshed = async {
        let mut reports = Vec::with_capacity(args.objects.len());
        for object in &args.objects {
            let options = FormulaOptions {
                object: object.clone(),
                api: args.api,
                wait: Some(args.wait),
                settings: args.object_config.settings(object),
            };
            reports.push(reconcile::refresh_formulas(sf, pool, connection, &options).await?);
        }
        anyhow::Ok(reports)
    }
    .await;
    session.close().await;
    refreshed
}

/// [`run_reconcile`] (or with `--formulas`, [`run_formula_refresh`]), printing each report; an
/// error when differences remain (exit 1).
///
/// # Errors
/// As for [`run_reconcile`], or differences remain.
pub async fn reconcile_and_print(args: ReconcileArgs) -> anyhow::Result<()> {
    if args.formulas {
        for r in &run_formula_refresh(&args).await? {
            output::print_formula_refresh(r, args.json)?;
        }
        return Ok(());
    }
    let reports = run_reconcile(&args).await?;
    for r in &reports {
        output::print_reconcile(r, args.json)?;
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

/// `producer dlq …`
///
/// # Errors
/// The broker is unreachable, or `purge` was asked without `--yes`.
pub async fn run_dlq(args: &DlqArgs) -> anyhow::Result<()> {
    let connection = broker::connect(&args.services.amqp_url, "sfsync-dlq").await?;
    let result = match &args.command {
        DlqCommand::List { filter, json } => {
            let letters = dlq::list(&connection, filter).await?;
            output::print_letters(&letters, filter.limit, *json)
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
