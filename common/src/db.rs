//! Database connections: sqlx for migrations and control queries, deadpool-postgres for the
//! worker's hot path (DESIGN.md "Two PostgreSQL clients, each for one job").

use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    Connection as _,
    postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions},
};

use crate::config::{SettingError, check_url};

/// sfsync's own schema migrations, embedded at compile time. sqlx takes an advisory lock while
/// it migrates, so two binaries starting at once do not conflict.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

const EXAMPLE: &str = "postgres://user:password@localhost:5432/dbname";

/// Checks `DATABASE_URL` and turns it into sqlx connect options.
pub fn control_options(url: &SecretString) -> Result<PgConnectOptions, SettingError> {
    check_url("DATABASE_URL", url, &["postgres", "postgresql"], EXAMPLE)?;
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|e| SettingError {
        setting: "DATABASE_URL",
        problem: e.to_string(),
    })?;
    // Every sfsync statement names its schema, but sqlx keeps its migration history in the first
    // schema of the search path, which by default is "$user": a role named `sfsync` would find
    // sfsync's own schema there on its second start and re-run every migration.
    Ok(options.options([("search_path", "public")]))
}

/// A small sqlx pool for control queries (migrations, runs, table definitions).
///
/// # Errors
/// The URL is invalid or the database cannot be reached.
pub async fn connect_control(url: &SecretString) -> anyhow::Result<PgPool> {
    let options = control_options(url)?;
    // One connection first, so that a refused connection or login is reported as such (the
    // pool would only say that it timed out waiting).
    let first = PgConnection::connect_with(&options).await.map_err(|e| {
        anyhow::anyhow!(
            "DATABASE_URL: cannot connect to PostgreSQL at {}:{}: {e}",
            options.get_host(),
            options.get_port()
        )
    })?;
    let _ = first.close().await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot connect to PostgreSQL: {e}"))?;
    Ok(pool)
}

/// Applies sfsync's migrations.
///
/// # Errors
/// A migration fails or was changed after it was applied.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .map_err(|e| anyhow::anyhow!("applying sfsync's database migrations failed: {e}"))
}
