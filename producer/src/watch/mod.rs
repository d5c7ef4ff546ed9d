//! `producer sync --watch`, the daemon that keeps tables current for months:
//!
//! - an idle pass costs little API quota: describes are kept ([`crate::sync::DescribeCache`]),
//!   short incremental windows are read without COUNT(), deletions are asked for every
//!   `--deleted-interval`, and the [`probe`] asks five objects at once whether anything changed
//!   before any of them is synced;
//! - quota is a pause, not an exit ([`quota`]);
//! - one object's trouble stays with that object: it backs off while the others go on
//!   ([`health`]);
//! - its bookkeeping stays bounded ([`retention`]).
//!
//! A signal lets the pass in progress finish (its syncs are not interrupted), then returns
//! `Ok`.

pub mod health;
pub mod probe;
pub mod quota;
pub mod retention;

use std::time::{Duration, Instant};

use common::metrics::MetricsListener;
use tokio_util::sync::CancellationToken;

use self::{health::Health, probe::Decision};
use crate::{
    cli::SyncArgs,
    commands::{cadence, sync_options},
    reconcile,
    session::Session,
    sync::SyncReport,
};

/// How often the daemon prunes old runs (and once at start): hourly, or a quarter of the
/// retention when that is shorter (at least a minute).
fn prune_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(60), Duration::from_secs(3600))
}

/// `producer sync --watch`: a pass over the objects each `--interval` until `cancel`.
///
/// # Errors
/// Connecting failed.
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
    let mut daemon = Daemon {
        health: Health::new(&args.objects, args.interval),
        paused: false,
        last_prune: None,
    };
    while !cancel.is_cancelled() {
        let reports = daemon.pass(&mut session, args).await;
        on_pass(&reports);
        tokio::select! {
            () = cancel.cancelled() => {}
            () = tokio::time::sleep(args.interval) => {}
        }
    }
    session.close().await;
    Ok(())
}

/// What the daemon keeps between passes.
struct Daemon {
    health: Health,
    /// Stopped at `--max-api-usage`: passes only check whether the usage fell.
    paused: bool,
    last_prune: Option<Instant>,
}

impl Daemon {
    /// One pass: (unless paused) probe, sync what needs it, record each object's health,
    /// refresh formulas and prune when due. Returns the reports of the objects synced.
    async fn pass(&mut self, session: &mut Session, args: &SyncArgs) -> Vec<SyncReport> {
        if self.paused && !self.resume(session, args).await {
            return Vec::new();
        }
        let mut reports = Vec::new();
        let now = Instant::now();
        let ready: Vec<String> = args
            .objects
            .iter()
            .filter(|o| self.health.ready(o, now))
            .cloned()
            .collect();
        let decisions = if args.full {
            ready
                .iter()
                .map(|o| (o.clone(), Decision::Sync("--full")))
                .collect()
        } else {
            let decided = probe::decide(
                &session.sf,
                &session.pool,
                &session.describes,
                &args.object_config,
                &ready,
                cadence(args),
            )
            .await;
            match decided {
                Ok(decisions) => decisions,
                Err(e) if quota::is_quota(&e) => {
                    self.pause(session, args, &e).await;
                    return reports;
                }
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "The change probe failed; syncing every object this pass."
                    );
                    ready
                        .iter()
                        .map(|o| (o.clone(), Decision::Sync("probe failed")))
                        .collect()
                }
            }
        };
        for (object, decision) in decisions {
            let Decision::Sync(why) = decision else {
                self.health.succeeded(&object);
                continue;
            };
            tracing::debug!(object, why, "Syncing.");
            let options = sync_options(args, &object, Some(cadence(args)));
            // Not the signal's token: a window that has started is finished.
            match session.sync(&options, &CancellationToken::new()).await {
                Ok(report) => {
                    self.health.succeeded(&object);
                    reports.push(report);
                }
                Err(e) if quota::is_quota(&e) => {
                    self.pause(session, args, &e).await;
                    return reports;
                }
                Err(e) => {
                    let error = format!("{e:#}");
                    let wait = self.health.failed(&object, &error);
                    tracing::error!(object, error, failures = self.health.failures(&object), retry_in = ?wait, "Sync failed; the other objects go on, and this one is tried again after a pause.");
                }
            }
            session
                .sf
                .metrics()
                .object_failures(&object, self.health.failures(&object));
        }
        self.save(session, None).await;
        if let Some(every) = args.formula_refresh
            && let Err(error) = refresh_formulas_due(session, args, every).await
        {
            tracing::error!(
                error = format!("{error:#}"),
                "Formula refresh failed; it is tried again after the next pass."
            );
        }
        self.prune_if_due(session, args).await;
        reports
    }

    /// Stops syncing: logs once, says so in `producer status` and the metric.
    async fn pause(&mut self, session: &Session, args: &SyncArgs, error: &anyhow::Error) {
        self.paused = true;
        tracing::warn!(error = format!("{error:#}"), check_every = ?args.interval, "Paused: API quota. Syncing resumes by itself once the org's usage falls below --max-api-usage.");
        session.sf.metrics().paused(quota::PAUSED, true);
        self.save(session, Some(quota::PAUSED)).await;
    }

    /// Whether the usage fell below the threshold (then the daemon goes on).
    async fn resume(&mut self, session: &Session, _args: &SyncArgs) -> bool {
        match quota::usage_fell(&session.sf).await {
            Ok(true) => {
                self.paused = false;
                tracing::info!("Resumed: the org's API usage is below --max-api-usage again.");
                session.sf.metrics().paused(quota::PAUSED, false);
                self.save(session, None).await;
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the org's API usage; still paused.");
                false
            }
        }
    }

    async fn save(&self, session: &Session, paused: Option<&str>) {
        if let Err(e) = self.health.save(&session.pool, paused).await {
            tracing::warn!(error = %e, "Could not record the objects' state in sfsync.watch_objects.");
        }
    }

    /// Deletes runs older than `--retention`, at start and then every [`prune_every`].
    async fn prune_if_due(&mut self, session: &Session, args: &SyncArgs) {
        if self
            .last_prune
            .is_some_and(|at| at.elapsed() < prune_every(args.retention))
        {
            return;
        }
        self.last_prune = Some(Instant::now());
        match retention::prune(&session.pool, args.retention).await {
            Ok(pruned) if pruned.runs > 0 => {
                tracing::info!(runs = pruned.runs, page_results = pruned.page_results, retention = ?args.retention, "Pruned old runs.");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Pruning old runs failed; tried again in an hour.")
            }
        }
    }
}

/// `--formula-refresh`: re-reads the formula fields of the objects that have them and were
/// last read `every` ago or longer (see [`reconcile::refresh_due`]).
async fn refresh_formulas_due(
    session: &Session,
    args: &SyncArgs,
    every: Duration,
) -> anyhow::Result<()> {
    let objects: Vec<_> = args
        .objects
        .iter()
        .map(|object| (object.clone(), args.object_config.settings(object)))
        .collect();
    let (sf, pool, broker) = (&session.sf, &session.pool, &session.broker);
    reconcile::refresh_due(sf, pool, broker, &objects, args.api, every).await?;
    Ok(())
}
