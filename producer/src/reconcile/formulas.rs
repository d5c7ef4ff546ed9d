//! Formula fields brought up to date: `reconcile --formulas`, and `sync --watch
//! --formula-refresh`'s cadence.
//!
//! Salesforce computes a formula field (describe's `calculated`) when it is read, from the
//! record's other fields, related records (cross-object formulas) or the date (`TODAY()`), so
//! its value changes without the record's SystemModstamp moving: incremental syncs never see
//! it, and neither does reconcile's stamp comparison. A refresh reads Id, SystemModstamp and
//! every formula field of every record (one Bulk job: a dozen calls whatever the size) and
//! publishes them as refresh pages, which update only those columns of the rows the table has.

use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::refresh::{self, RefreshRun};
use crate::broker::Broker;
use crate::{
    columns,
    objects::ObjectSettings,
    salesforce::{Describe, SalesforceClient},
    soql,
    sync::ApiChoice,
    tables::FieldSelection,
};

/// What a formula refresh is asked to do.
#[derive(Debug, Clone)]
pub struct FormulaOptions {
    pub object: String,
    /// REST, Bulk, or chosen by the table's size.
    pub api: ApiChoice,
    /// How long to wait for the workers to apply the refresh; `None` does not wait (watch
    /// mode, whose next pass does not depend on it).
    pub wait: Option<Duration>,
    /// The object's `sfsync.toml` section: table name and fields.
    pub settings: ObjectSettings,
}

/// What a formula refresh did.
#[derive(Debug, Clone, Serialize)]
pub struct FormulaReport {
    pub object: String,
    /// The formula fields re-read (none: the object has none, and nothing was read).
    pub fields: Vec<String>,
    pub records: u64,
    pub pages: u64,
    pub run_id: Option<Uuid>,
    /// Salesforce API calls this refresh made, describe included.
    pub api_calls: u64,
}

/// The synced fields that are formulas, in describe order.
pub(crate) fn formula_fields<'a>(
    describe: &Describe,
    selection: &'a FieldSelection,
) -> Vec<&'a str> {
    selection
        .field_names()
        .into_iter()
        .filter(|name| {
            describe
                .fields
                .iter()
                .any(|f| f.calculated && f.name == *name)
        })
        .collect()
}

/// Re-reads every formula field of one object and publishes them as refresh pages; waits for
/// the workers when asked to.
///
/// # Errors
/// Salesforce, the broker or the database failed, or the workers did not apply the refresh
/// within the wait.
pub async fn refresh_formulas(
    sf: &SalesforceClient,
    pool: &PgPool,
    broker: &Broker,
    options: &FormulaOptions,
) -> anyhow::Result<FormulaReport> {
    let calls_before = sf.usage().calls();
    let target = super::prepare(sf, pool, &options.object, &options.settings).await?;
    let (describe, object, table) = (&target.describe, &target.object, &target.table);
    let formulas = formula_fields(describe, &target.selection);
    let mut report = FormulaReport {
        object: object.clone(),
        fields: formulas.iter().map(|f| (*f).to_owned()).collect(),
        records: 0,
        pages: 0,
        run_id: None,
        api_calls: 0,
    };
    // Every record, as a full sync reads them: by the object's replication key, with its filter.
    let query = soql::Query {
        stamp: target.selection.stamp.as_deref(),
        filter: options.settings.filter.as_deref(),
        ..soql::Query::all(object)
    };
    let Some(stamp) = query.stamp.filter(|_| !formulas.is_empty()) else {
        if !formulas.is_empty() {
            tracing::warn!(
                object,
                "Formula fields not refreshed: the object has no SystemModstamp, LastModifiedDate nor CreatedDate, which a refresh needs to leave newer rows alone; every sync reads it whole, formulas included."
            );
            report.fields.clear();
        }
        report.api_calls = sf.usage().calls() - calls_before;
        return Ok(report);
    };
    let fields = refresh::fields_to_read(describe, stamp, &formulas);
    let api = refresh::choose_api(pool, options.api, table, &query, &fields).await?;
    let channel = broker.channel().await?;
    let run = RefreshRun {
        sf,
        pool,
        query,
        fields: &fields,
        api,
        settings: &options.settings,
        cancel: &CancellationToken::new(),
    };
    let published = refresh::publish(&run, channel.clone()).await;
    common::amqp::close_channel(&channel.channel, "formula refresh published").await;
    let published = published?;
    record_refresh(pool, object, published.run_id).await?;
    tracing::info!(object, run_id = %published.run_id, fields = formulas.len(), records = published.records, pages = published.pages, ?api, "Formula fields re-read and published.");
    if let Some(wait) = options.wait {
        super::repair::wait_until_applied(pool, published.run_id, published.pages, wait).await?;
    }
    report.records = published.records;
    report.pages = published.pages;
    report.run_id = Some(published.run_id);
    report.api_calls = sf.usage().calls() - calls_before;
    Ok(report)
}

/// Notes that `run_id` read every formula field of `object` (a refresh, or a full sync): from
/// when the run started, since its first records were read then.
///
/// # Errors
/// The database refused the statement.
pub(crate) async fn record_refresh(pool: &PgPool, object: &str, run_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO sfsync.formula_refreshes (object, refreshed_at, run_id)
         SELECT $1, started_at, run_id FROM sfsync.runs WHERE run_id = $2
         ON CONFLICT (object) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at, run_id = EXCLUDED.run_id
          WHERE sfsync.formula_refreshes.refreshed_at < EXCLUDED.refreshed_at",
    )
    .bind(object)
    .bind(run_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether formulas read `age_secs` ago (never: `None`) are due again.
fn is_due(age_secs: Option<f64>, every: Duration) -> bool {
    age_secs.is_none_or(|age| age >= every.as_secs_f64())
}

/// Refreshes the formulas of each of `objects` (with their settings) whose last sync read
/// formula fields (so an object without them costs nothing, not even a describe) and whose
/// formulas were last read `every` ago or longer. Does not wait for the workers.
///
/// # Errors
/// As for [`refresh_formulas`].
pub async fn refresh_due(
    sf: &SalesforceClient,
    pool: &PgPool,
    broker: &Broker,
    objects: &[(String, ObjectSettings)],
    api: ApiChoice,
    every: Duration,
) -> anyhow::Result<Vec<FormulaReport>> {
    let mut reports = Vec::new();
    for (object, settings) in objects {
        let table = settings.table(object);
        let Some(object) = columns::with_formulas(pool, object, &table).await? else {
            continue;
        };
        let age: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM now() - refreshed_at)::float8
               FROM sfsync.formula_refreshes WHERE object = $1",
        )
        .bind(&object)
        .fetch_optional(pool)
        .await?;
        if !is_due(age, every) {
            continue;
        }
        let options = FormulaOptions {
            object,
            api,
            wait: None,
            settings: settings.clone(),
        };
        reports.push(refresh_formulas(sf, pool, broker, &options).await?);
    }
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{objects, salesforce::DescribeField, tables};

    #[test]
    fn formula_fields_are_the_synced_calculated_ones() {
        let field = |name: &str, sf_type: &str, calculated| DescribeField {
            name: name.into(),
            sf_type: sf_type.into(),
            calculated,
            updateable: false,
            external_id: false,
            reference_to: Vec::new(),
        };
        let describe = Describe {
            name: "Account".into(),
            queryable: true,
            replicateable: true,
            fields: vec![
                field("Id", "id", false),
                field("SystemModstamp", "datetime", false),
                field("Name", "string", false),
                field("Membership_Span__c", "double", true),
                field("Verification_Status__c", "string", true),
                field("Hidden_Formula__c", "string", true),
            ],
        };
        let selection = tables::select_fields(&describe).unwrap();
        let settings = ObjectSettings {
            exclude_fields: Some(vec!["Hidden_Formula__c".into()]),
            ..ObjectSettings::default()
        };
        let selection = objects::filter_fields(&describe, &settings, selection).unwrap();
        assert_eq!(
            formula_fields(&describe, &selection),
            ["Membership_Span__c", "Verification_Status__c"]
        );
    }

    #[test]
    fn formulas_never_read_or_read_long_enough_ago_are_due() {
        let hour = Duration::from_secs(3600);
        assert!(is_due(None, hour));
        assert!(is_due(Some(3600.0), hour));
        assert!(!is_due(Some(3599.0), hour));
    }
}
