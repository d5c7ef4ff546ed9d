//! The hot-path connection pool (deadpool-postgres): one connection per concurrent page, over
//! TLS when `DATABASE_URL`'s `sslmode` asks for it (see [`crate::tls`]).

use std::str::FromStr;

use common::db::{SslMode, TlsSettings};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use secrecy::{ExposeSecret, SecretString};

use crate::tls::{MakeRustlsConnect, client_config};

/// Builds the pool; connections are opened lazily, on first use.
///
/// # Errors
/// `DATABASE_URL` is not a usable PostgreSQL URL.
pub fn build(url: &SecretString, size: usize) -> anyhow::Result<Pool> {
    common::db::control_options(url)?; // same checks and messages as the control connection
    let parsed = url::Url::parse(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: not a valid URL ({e})"))?;
    let tls = TlsSettings::from_url(&parsed)?;
    // tokio-postgres knows only disable/prefer/require: the checks of verify-ca and
    // verify-full live in the rustls config, and sslrootcert is read there.
    let mut config =
        tokio_postgres::Config::from_str(common::db::without_tls_params(&parsed).as_str())
            .map_err(|e| anyhow::anyhow!("DATABASE_URL: {e}"))?;
    config.ssl_mode(match tls.mode {
        SslMode::Disable | SslMode::Allow => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
            tokio_postgres::config::SslMode::Require
        }
    });
    let manager = Manager::from_config(
        config,
        MakeRustlsConnect::new(client_config(&tls)?),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| anyhow::anyhow!("building the database pool: {e}"))
}

/// A pool error with its causes: tokio-postgres says only "error performing TLS handshake",
/// and keeps which certificate check failed in its source, which deadpool's error drops.
pub fn describe(error: &deadpool_postgres::PoolError) -> String {
    let mut text = error.to_string();
    if let deadpool_postgres::PoolError::Backend(e) = error {
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
    }
    text
}
