//! Write-back: changes the application makes to a table reach Salesforce. An object opts in
//! with `write` in its `[objects.<Name>]` section ([`WriteFields`]); its fields are checked
//! against the describe when a sync starts ([`write_columns`]), and its table gets the capture
//! trigger that records each change in `sfsync.outbox` in the application's own transaction
//! ([`capture`]). [`dispatch`] claims the outbox in batches of coalesced operations; sending
//! [`push`] sends them to the workers, which apply them (docs/write-back.md).

pub mod capture;
pub mod coalesce;
pub mod dispatch;
mod fields;
pub mod links;
pub mod push;

pub use fields::{DEFAULT_EXTERNAL_ID, WriteError, WriteFields, external_id_field, write_columns};

use anyhow::Context as _;
use sqlx::PgPool;

use crate::{objects::ObjectSettings, salesforce::Describe, tables::FieldSelection};

/// Brings the capture of `table` in line with the object's `write` setting: checks the write
/// fields against the describe and installs the trigger, or removes a trigger the setting no
/// longer asks for. Called when a sync starts, after the table is made.
///
/// # Errors
/// A write field the org does not allow ([`WriteError`]), or the database.
pub async fn prepare(
    pool: &PgPool,
    describe: &Describe,
    selection: &FieldSelection,
    settings: &ObjectSettings,
    table: &str,
) -> anyhow::Result<()> {
    let object = &describe.name;
    match &settings.write {
        Some(setting) => {
            let external_id = external_id_field(describe, settings.external_id.as_deref())?;
            let columns = write_columns(describe, selection, setting, &external_id)?;
            capture::install(pool, table, &columns)
                .await
                .with_context(|| format!("installing the capture trigger on salesforce.{table}"))?;
            let references: Vec<String> = links::reference_columns(describe, &columns)
                .into_iter()
                .map(|(column, _)| column)
                .collect();
            links::install(pool, table, &references)
                .await
                .with_context(|| format!("adding the parent-row columns of salesforce.{table}"))?;
            capture::register(
                pool,
                &capture::Registration {
                    table,
                    object,
                    conflict: settings.conflict.unwrap_or_default(),
                    external_id_field: &external_id,
                },
            )
            .await
            .with_context(|| format!("registering salesforce.{table} for write-back"))?;
            tracing::info!(object, table, columns = ?columns, external_id, "Changes the application makes to these columns are captured for write-back.");
        }
        None if capture::installed(pool, table).await? => {
            capture::remove(pool, table).await?;
            tracing::warn!(
                object,
                table,
                "The object no longer has `write`: changes to its table are no longer captured for write-back."
            );
        }
        None => {}
    }
    Ok(())
}
