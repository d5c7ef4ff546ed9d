//! The hot-path connection pool (deadpool-postgres): one connection per concurrent page.

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};

/// Builds the pool; connections are opened lazily, on first use.
///
/// # Errors
/// `DATABASE_URL` is not a usable PostgreSQL URL.
pub fn build(url: &SecretString, size: usize) -> anyhow::Result<Pool> {
    common::db::control_options(url)?; // same checks and messages as the control connection
    let config = tokio_postgres::Config::from_str(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| anyhow::anyhow!("building the database pool: {e}"))
}
