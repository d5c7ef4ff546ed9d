//! The run itself, stage by stage: its row in `sfsync.runs`, the records (through Bulk or REST,
//! REST when the Bulk API does not support the object), the deletions, and its end recorded
//! whatever stopped it.

use anyhow::Context;
use chrono::Utc;

use super::{
    Api, SyncReport, Target, bulk, choose_api,
    coverage::{self, Coverage},
    deletions,
    pipeline::{self, Source},
    refusals::{self, BulkRefusals, NeedsFilter},
    run::{Progress, Run},
    slices,
    windows::Window,
};
use crate::{broker::BrokerChannel, publisher::PagePublisher, runs, sync_state};

/// The run itself: records it in `sfsync.runs`, publishes the records and then the deletions,
/// and records how it ended, whatever stopped it. `calls_before` is the client's count of API
/// calls before the sync began, so that the report counts describe too.
pub(super) async fn publish_run(
    run: &Run<'_>,
    channel: BrokerChannel,
    target: &Target,
    refusals: &BulkRefusals,
    calls_before: u64,
) -> anyhow::Result<SyncReport> {
    let (sf, pool, object, run_id) = (run.sf, run.pool, run.object(), run.run_id());
    runs::start(pool, run_id, object)
        .await
        .context("recording the run in sfsync.runs")?;
    tracing::info!(%run_id, object, table = target.table, mode = ?target.mode, fields = target.selection.columns.len(), "Sync started.");
    let mut progress = Progress::default();
    let blocked = tokio::spawn(runs::follow_blocked(
        pool.clone(),
        run_id,
        channel.blocked.clone(),
    ));
    let outcome = publish_pages(run, channel, target, refusals, &mut progress).await;
    blocked.abort();
    let outcome = outcome.map_err(|e| {
        let filter = run.options.settings.filter.as_deref();
        match refusals::needs_filter(object, filter, &e) {
            Some(needs_filter) => anyhow::Error::new(needs_filter),
            None => e,
        }
    });
    let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    runs::finish(
        pool,
        run_id,
        progress.pages,
        progress.records,
        error.as_deref(),
    )
    .await
    .context("recording the end of the run in sfsync.runs")?;
    let Progress { pages, records } = progress;
    match outcome {
        Ok((api, deletions)) => {
            let api_calls = sf.usage().calls() - calls_before;
            sf.metrics().sync_completed(object, Utc::now());
            tracing::info!(%run_id, object, pages, records, deletions, api_calls, "Sync published every page.");
            Ok(SyncReport {
                run_id,
                object: object.to_owned(),
                mode: target.mode,
                api,
                pages,
                records,
                deletions,
                api_calls,
            })
        }
        // A setting to change, not a run to look into.
        Err(e) if e.is::<NeedsFilter>() => Err(e),
        Err(e) => Err(e.context(format!(
            "run {run_id} of {object} stopped after {pages} confirmed pages ({records} records)"
        ))),
    }
}

/// Everything a run publishes: the records, through Bulk or REST (REST when the Bulk API does
/// not support the object), then the deletions. Returns the API used and the deletions.
async fn publish_pages(
    run: &Run<'_>,
    channel: BrokerChannel,
    target: &Target,
    refusals: &BulkRefusals,
    progress: &mut Progress,
) -> anyhow::Result<(Api, u64)> {
    let started = Utc::now();
    let mut publisher = PagePublisher::new(channel, run.options.confirm_window)
        .await
        .context("putting the AMQP channel in confirm mode")?
        .with_confirm_timeout(run.options.confirm_timeout)
        .with_in_flight_gauge(run.sf.metrics().pages_in_flight());
    let typed = bulk::csv_types(&target.describe, run.fields);
    let (api, counted) = choose_api(run).await?;
    let mut api = match api {
        Api::Bulk if refusals.refused(run.object()) => Api::Rest,
        api => api,
    };
    let source = |api| match api {
        Api::Rest => Source::Rest(&typed),
        Api::Bulk => Source::Bulk(&typed),
    };
    let coverage = slices_to_read(run, target, api, counted).await?;
    let mut outcome =
        pipeline::publish_records(run, &mut publisher, source(api), coverage.clone(), progress)
            .await;
    if let Err(e) = &outcome
        && api == Api::Bulk
        && progress.pages == 0
        && refusals::is_bulk_refusal(e)
    {
        // Refused when the job is created, before any page: REST reads the same records.
        refusals.remember(run.object(), e);
        api = Api::Rest;
        outcome =
            pipeline::publish_records(run, &mut publisher, source(api), coverage.clone(), progress)
                .await;
    }
    outcome?;
    let deletions =
        deletions::publish_deletions(run, &mut publisher, target, started, refusals, progress)
            .await?;
    Ok((api, deletions))
}

/// The stamp windows the run reads, each by its own fetcher, all at once, with what
/// `sfsync.confirmed_ahead` holds for the object: what an earlier run of the object that
/// stopped half-way left unread, or else, for REST, the run's window cut into `--parallel`
/// slices when it is big (see `slices`; `counted` is the records to read, when the API choice
/// counted them), or else the whole window.
async fn slices_to_read(
    run: &Run<'_>,
    target: &Target,
    api: Api,
    counted: Option<u64>,
) -> anyhow::Result<Coverage> {
    let window = Window::from(run.since);
    let options = run.options;
    if run.stamp.is_none() {
        // Never cut, so never anything recorded ahead.
        return Ok(Coverage::new(&[window], Some(Vec::new())));
    }
    // Not known for a full read, which ignores it (and replaces it at its first confirm).
    let mut recorded = None;
    if !options.full && !target.created {
        let ahead = sync_state::load_ahead(run.pool, run.object()).await?;
        let overlap = chrono::TimeDelta::from_std(options.overlap).unwrap_or_default();
        let gaps = coverage::uncovered(window, &ahead, overlap);
        if gaps.len() > 1 {
            tracing::info!(
                object = run.object(),
                slices = gaps.len(),
                "Resuming: reading only what the stopped run's slices did not confirm."
            );
            return Ok(Coverage::new(&gaps, Some(ahead)));
        }
        recorded = Some(ahead);
    }
    // A pass of `--watch` over a table it already holds reads what changed since the last
    // pass: not worth the counts a cut costs on every pass.
    if options.cadence.is_some() && run.since.is_some() {
        return Ok(Coverage::new(&[window], recorded));
    }
    // One Bulk job reads the whole window: its result pages are downloaded at once instead
    // (see `bulk`), which costs fewer calls than a job per slice.
    if api == Api::Bulk {
        return Ok(Coverage::new(&[window], recorded));
    }
    let slices = slices::plan(
        run,
        window,
        (
            options.parallel,
            options.parallel_above,
            // A slice of a page or more.
            u64::from(options.page_size),
        ),
        counted,
    )
    .await
    .context("choosing the slices to read at once")?;
    Ok(Coverage::new(&slices, recorded))
}
