//! After a sync has published its records: the table's columns compared with what describe said
//! (see [`crate::columns`]). A field no sync reads any more (field-level security hid it, an
//! admin deleted it) keeps its column, is marked stale and named in the log; a field new to the
//! table, or back after being stale, is back-filled: Id, the stamp and those fields of every
//! record, published as refresh pages in a run of its own (REST for small tables, Bulk for big
//! ones), so that existing rows get the field's values now rather than when they next change.

use anyhow::Context as _;

use super::{SyncMode, Target, run::Run};
use crate::broker::BrokerChannel;
use crate::{
    columns::{self, Current},
    reconcile::{
        self,
        refresh::{self, RefreshRun},
    },
    soql,
};

/// Brings the column records of the run's table up to date, and back-fills the fields that
/// need it. Runs after the records were published, so a failed sync changes no record.
///
/// # Errors
/// The database, Salesforce or the broker failed; the fields then stay due for a back-fill,
/// which the next sync does.
pub(super) async fn after_sync(
    run: &Run<'_>,
    channel: BrokerChannel,
    target: &Target,
) -> anyhow::Result<()> {
    let (pool, object, table) = (run.pool, run.object(), target.table.as_str());
    let recorded = columns::load(pool, table)
        .await
        .context("reading sfsync.columns")?;
    let synced: Vec<(&str, bool)> = target
        .selection
        .columns
        .iter()
        .map(|(name, _)| {
            let formula = target
                .describe
                .fields
                .iter()
                .any(|f| f.calculated && f.name == *name);
            (name.as_str(), formula)
        })
        .collect();
    let plan = columns::plan(
        &recorded,
        Current {
            synced: &synced,
            left_out: &target.selection.skipped,
        },
    );
    for stale in &plan.newly_stale {
        tracing::warn!(object, table, field = %stale.field, column = %stale.column, reason = %stale.reason, "Field no longer synced: its column keeps the values it had and is listed as stale by `producer status`.");
    }
    if !plan.still_stale.is_empty() {
        tracing::info!(object, table, fields = ?plan.still_stale, "Fields still not synced; their columns are stale.");
    }
    columns::mark_stale(pool, table, &plan.newly_stale)
        .await
        .context("recording stale columns in sfsync.columns")?;
    columns::set_formula(pool, table, &plan.formula_changed)
        .await
        .context("recording formula columns in sfsync.columns")?;
    if target.mode == SyncMode::Full && synced.iter().any(|(_, formula)| *formula) {
        // A full sync read every formula: `--formula-refresh` counts from it.
        reconcile::record_refresh(pool, object, run.run_id())
            .await
            .context("recording the formula read in sfsync.formula_refreshes")?;
    }
    if plan.backfill.is_empty() {
        return Ok(());
    }
    let query = soql::Query {
        since: None,
        until: None,
        ..run.query()
    };
    let stamp = match (target.mode, query.stamp) {
        (SyncMode::Incremental { .. }, Some(stamp)) => stamp,
        // This sync read every record with every field: nothing is missing.
        _ => {
            return columns::mark_synced(pool, table, &plan.backfill)
                .await
                .context("recording synced columns in sfsync.columns");
        }
    };
    let fields: Vec<&str> = plan.backfill.iter().map(String::as_str).collect();
    let typed = refresh::fields_to_read(&target.describe, stamp, &fields);
    let api = refresh::choose_api(pool, run.options.api, table, &query, &typed).await?;
    let backfill = RefreshRun {
        sf: run.sf,
        pool,
        query,
        fields: &typed,
        api,
        settings: &run.options.settings,
        cancel: run.cancel,
    };
    let done = refresh::publish(&backfill, channel)
        .await
        .with_context(|| format!("back-filling {} of {object}", fields.join(", ")))?;
    columns::mark_synced(pool, table, &plan.backfill)
        .await
        .context("recording synced columns in sfsync.columns")?;
    tracing::info!(object, table, fields = ?plan.backfill, run_id = %done.run_id, records = done.records, pages = done.pages, ?api, "Fields back-filled: the rows the table had get their values.");
    Ok(())
}
