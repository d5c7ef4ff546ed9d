//! The commands: `sync` (once, or `--watch`), `reconcile` and `dlq`. Each opens what it needs,
//! does its work, closes what it opened, and returns its reports or prints them through
//! [`crate::output`].

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::{
    broker,
    cli::{DlqArgs, DlqCommand, ReconcileArgs, SyncArgs},
    dlq, output,
    reconcile::{self, FormulaOptions, FormulaReport, ReconcileOptions, ReconcileReport},
    session::Session,
    sync::{ApiChoice, Cadence, SyncOptions, SyncReport},
};

/// `producer sync` without `--watch`: one sync of each object; returns their reports. An
/// object that fails does not stop the others.
///
/// # Errors
/// A setting is wrong, a service is unreachable, or a sync failed (see [`Pass::into_result`]).
pub async fn run_sync_all(
    args: &SyncArgs,
    cancel: &CancellationToken,
) -> anyhow::Result<Vec<SyncReport>> {
    sync_once(args, cancel).await?.into_result()
}

/// [`run_sync_all`], printing the report of each object synced, those before and after a
/// failed one included.
///
/// # Errors
/// As for [`run_sync_all`].
pub async fn sync_and_print(args: &SyncArgs, cancel: &CancellationToken) -> anyhow::Result<()> {
    let pass = sync_once(args, cancel).await?;
    pass.reports.iter().for_each(output::print_report);
    pass.into_result().map(drop)
}

/// One session, one pass.
async fn sync_once(args: &SyncArgs, cancel: &CancellationToken) -> anyhow::Result<Pass> {
    let listener = args.metrics.bind().await?;
    let mut session = Session::open(args.into(), listener).await?;
    let pass = sync_pass(&mut session, args, None, cancel).await;
    session.close().await;
    Ok(pass)
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

/// What a pass over the objects did.
#[derive(Debug, Default)]
struct Pass {
    /// How many objects the pass was to sync.
    objects: usize,
    /// One per object synced, in order.
    reports: Vec<SyncReport>,
    /// One per object that failed: the object and why.
    failed: Vec<(String, anyhow::Error)>,
}

impl Pass {
    /// The reports when every object synced. Otherwise an error: a single object's own, or one
    /// that says how many of how many failed (and how many a shutdown signal left unstarted),
    /// naming each with its error.
    fn into_result(mut self) -> anyhow::Result<Vec<SyncReport>> {
        if self.failed.is_empty() {
            return Ok(self.reports);
        }
        if self.objects == 1 && self.failed.len() == 1 {
            return Err(self.failed.remove(0).1);
        }
        let each: Vec<String> = self
            .failed
            .iter()
            .map(|(object, error)| format!("{object}: {error:#}"))
            .collect();
        let unstarted = self.objects - self.reports.len() - self.failed.len();
        let unstarted = if unstarted > 0 {
            format!(" ({unstarted} not started: interrupted by a shutdown signal)")
        } else {
            String::new()
        };
        Err(anyhow::anyhow!(
            "{} of {} objects failed{unstarted}; {}",
            self.failed.len(),
            self.objects,
            each.join("; ")
        ))
    }
}

/// Syncs every object once, in order. An object that fails does not stop the others; a
/// cancelled one stops the pass (the objects after it are not started).
async fn sync_pass(
    session: &mut Session,
    args: &SyncArgs,
    cadence: Option<Cadence>,
    cancel: &CancellationToken,
) -> Pass {
    let mut pass = Pass {
        objects: args.objects.len(),
        ..Pass::default()
    };
    for object in &args.objects {
        match session
            .sync(&sync_options(args, object, cadence), cancel)
            .await
        {
            Ok(report) => pass.reports.push(report),
            Err(error) => {
                pass.failed.push((object.clone(), error));
                if cancel.is_cancelled() {
                    break;
                }
            }
        }
    }
    pass
}

/// The flags, with the object's `sfsync.toml` section, as one object's sync options.
pub(crate) fn sync_options(args: &SyncArgs, object: &str, cadence: Option<Cadence>) -> SyncOptions {
    let settings = args.object_config.settings(object);
    SyncOptions {
        object: object.to_owned(),
        page_size: args.page_size,
        confirm_window: args.confirm_window as usize,
        confirm_timeout: args.confirm_timeout,
        progress: !args.no_progress,
        full: args.full,
        overlap: args.overlap,
        hard_delete: settings.hard_delete.unwrap_or(args.hard_delete),
        api: args.api,
        bulk_threshold: args.bulk_threshold,
        parallel: usize::from(args.parallel),
        parallel_above: args.parallel_above,
        parallel_min_latency: args.parallel_min_latency,
        settings,
        cadence,
    }
}

/// What `--watch` leaves out of most passes (see [`Cadence`]).
pub(crate) fn cadence(args: &SyncArgs) -> Cadence {
    Cadence {
        describe: args.describe_interval,
        deletions: args.deleted_interval,
        count_window: COUNT_WINDOW,
    }
}

/// With `--watch`, incremental windows shorter than this are read without a COUNT(): a pass
/// reads about `--interval` plus `--overlap`, and a window this short rarely holds enough
/// records for Bulk to pay.
const COUNT_WINDOW: std::time::Duration = std::time::Duration::from_secs(3600);

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
        match reconcile::reconcile_object(&session.sf, &session.pool, &session.broker, &options)
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
    let (sf, pool, broker) = (&session.sf, &session.pool, &session.broker);
    let refreshed = async {
        let mut reports = Vec::with_capacity(args.objects.len());
        for object in &args.objects {
            let options = FormulaOptions {
                object: object.clone(),
                api: args.api,
                wait: Some(args.wait),
                settings: args.object_config.settings(object),
            };
            reports.push(reconcile::refresh_formulas(sf, pool, broker, &options).await?);
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

/// Marks purged write-back changes discarded in the outbox.
async fn discard(
    services: &common::config::ServiceArgs,
    changes: &[(uuid::Uuid, i64)],
) -> anyhow::Result<()> {
    let pool = common::db::connect_control(&services.database_url)
        .await
        .context("the letters are purged, but their write-back changes are still marked refused in sfsync.outbox: connecting to the database to mark them discarded")?;
    let discarded = dlq::discard_changes(&pool, changes).await;
    pool.close().await;
    let discarded = discarded.context("marking purged write-back changes discarded")?;
    println!("{discarded} write-back changes given up (sfsync.outbox state discarded)");
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
            println!("{}", output::replayed_line(moved));
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
            let purged = dlq::purge(&connection, filter).await?;
            println!("purged {} dead letters", purged.removed);
            if purged.changes.is_empty() {
                Ok(())
            } else {
                discard(&args.services, &purged.changes).await
            }
        }
    };
    common::amqp::close_connection(&connection, "dlq done").await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(object: &str) -> SyncReport {
        SyncReport {
            run_id: uuid::Uuid::nil(),
            object: object.into(),
            mode: crate::sync::SyncMode::Full,
            api: crate::sync::Api::Rest,
            pages: 1,
            records: 1,
            deletions: 0,
            api_calls: 2,
        }
    }

    #[test]
    fn a_failed_pass_says_how_many_objects_failed_and_which() {
        /// (object, error)
        type Failures<'a> = &'a [(&'a str, &'a str)];
        // (objects asked for, synced, failed with their error; the pass's error)
        let cases: [(usize, &[&str], Failures, &str); 3] = [
            (
                3,
                &["Contact", "Lead"],
                &[("Missing__c", "no such object")],
                "1 of 3 objects failed; Missing__c: no such object",
            ),
            (
                1,
                &[],
                &[("Missing__c", "no such object")],
                "no such object",
            ),
            (
                4,
                &["Contact"],
                &[("Lead", "refused"), ("Case", "interrupted")],
                "2 of 4 objects failed (1 not started: interrupted by a shutdown signal); Lead: refused; Case: interrupted",
            ),
        ];
        for (objects, synced, failed, want) in cases {
            let pass = Pass {
                objects,
                reports: synced.iter().map(|o| report(o)).collect(),
                failed: failed
                    .iter()
                    .map(|(o, e)| ((*o).to_owned(), anyhow::anyhow!(*e)))
                    .collect(),
            };
            assert_eq!(pass.into_result().unwrap_err().to_string(), want);
        }
        let fine = Pass {
            objects: 1,
            reports: vec![report("Contact")],
            failed: vec![],
        };
        assert_eq!(fine.into_result().unwrap().len(), 1);
    }
}
