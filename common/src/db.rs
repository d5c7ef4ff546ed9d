//! Database connections: sqlx for migrations and control queries, deadpool-postgres for the
//! worker's hot path (`docs/architecture.md`, "Two PostgreSQL clients").

use std::{path::PathBuf, str::FromStr};

use secrecy::{ExposeSecret, SecretString};
use sqlx::{
    ConnectOptions as _, Connection as _,
    postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode},
};
use url::Url;

use crate::config::{SettingError, check_url};

/// sfsync's own schema migrations, embedded at compile time. sqlx takes an advisory lock while
/// it migrates, so two binaries starting at once do not conflict.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

const EXAMPLE: &str = "postgres://user:password@localhost:5432/dbname";

/// `sslmode` as libpq defines it (<https://www.postgresql.org/docs/current/libpq-ssl.html>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// Plain TCP (libpq would fall back to TLS if the server insisted; sqlx does not).
    Allow,
    /// TLS if the server offers it, plain TCP otherwise (the default).
    Prefer,
    /// TLS or nothing; the certificate is not checked (libpq: unless `sslrootcert` is given,
    /// which makes it [`SslMode::VerifyCa`]).
    Require,
    /// TLS, and the certificate must chain to a trusted root; any host name.
    VerifyCa,
    /// TLS, a trusted chain, and the certificate must name the host connected to.
    VerifyFull,
}

/// What `DATABASE_URL` asks of TLS: both PostgreSQL clients follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The effective mode (`require` plus `sslrootcert` is already `verify-ca` here).
    pub mode: SslMode,
    /// Certificates (PEM) trusted besides the Mozilla root set, from `sslrootcert`.
    pub root_cert: Option<PathBuf>,
}

impl TlsSettings {
    /// Reads `sslmode` and `sslrootcert` from the URL's query, as libpq does, falling back to
    /// `PGSSLMODE` and `PGSSLROOTCERT` (which sqlx reads too); the root certificate file must
    /// be readable now, so a typo fails at start.
    ///
    /// # Errors
    /// An unknown `sslmode`, or an `sslrootcert` that cannot be read.
    pub fn from_url(url: &Url) -> Result<Self, SettingError> {
        Self::from_url_and_env(url, |name| std::env::var(name).ok())
    }

    fn from_url_and_env(
        url: &Url,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingError> {
        let param = |name: &str, variable: &str| {
            url.query_pairs()
                .filter(|(k, _)| k == name)
                .last()
                .map(|(_, v)| v.into_owned())
                .or_else(|| env(variable))
        };
        let mode = match param("sslmode", "PGSSLMODE").as_deref() {
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("allow") => SslMode::Allow,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some(other) => {
                return Err(SettingError {
                    setting: "DATABASE_URL",
                    problem: format!(
                        "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                    ),
                });
            }
        };
        let root_cert = param("sslrootcert", "PGSSLROOTCERT").map(PathBuf::from);
        if let Some(path) = &root_cert {
            let pem = std::fs::read(path).map_err(|e| SettingError {
                setting: "DATABASE_URL",
                problem: format!("sslrootcert {}: cannot be read: {e}", path.display()),
            })?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(SettingError {
                    setting: "DATABASE_URL",
                    problem: format!(
                        "sslrootcert {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                        path.display()
                    ),
                });
            }
        }
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same
        // as that of verify-ca".
        let mode = match (mode, &root_cert) {
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        Ok(Self { mode, root_cert })
    }
}

/// The URL without the TLS parameters sfsync handles itself, for clients that do not know them
/// all (tokio-postgres knows only `sslmode=disable|prefer|require`).
pub fn without_tls_params(url: &Url) -> Url {
    let mut stripped = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        stripped.set_query(None);
    } else {
        stripped.query_pairs_mut().clear().extend_pairs(kept);
    }
    stripped
}

/// Checks `DATABASE_URL` and turns it into sqlx connect options.
pub fn control_options(url: &SecretString) -> Result<PgConnectOptions, SettingError> {
    let parsed = check_url("DATABASE_URL", url, &["postgres", "postgresql"], EXAMPLE)?;
    let tls = TlsSettings::from_url(&parsed)?;
    let options = PgConnectOptions::from_str(url.expose_secret()).map_err(|e| SettingError {
        setting: "DATABASE_URL",
        problem: e.to_string(),
    })?;
    let options = match tls.mode {
        SslMode::VerifyCa => options.ssl_mode(PgSslMode::VerifyCa),
        _ => options,
    };
    // Every sfsync statement names its schema, but sqlx keeps its migration history in the first
    // schema of the search path, which by default is "$user": a role named `sfsync` would find
    // sfsync's own schema there on its second start and re-run every migration.
    let options = options.options([("search_path", "public")]);
    // sqlx warns about any statement over 1 s. Here that is mostly the migration lock waiting
    // for another process that is migrating (workers starting together), which is no problem,
    // and the warning broke the one-line error of a binary that then failed on another
    // setting. Slow control statements stay visible with RUST_LOG=sqlx=debug.
    Ok(options.log_slow_statements(log::LevelFilter::Debug, std::time::Duration::from_secs(1)))
}

/// What to do about a failed TLS handshake, for the one-line error; `None` when `error` is
/// not about TLS.
pub fn tls_hint(error: &str) -> Option<&'static str> {
    if error.contains("NotValidForName") || error.contains("not valid for name") {
        Some(
            "The certificate does not name this host: connect by a name the certificate holds, or use sslmode=verify-ca",
        )
    } else if error.contains("certificate") || error.contains("UnknownIssuer") {
        Some(
            "The server's certificate is not trusted: add sslrootcert=<file with its CA certificate> to DATABASE_URL (or sslmode=require to encrypt without verifying the server)",
        )
    } else if error.contains("TLS") || error.contains("SSL") {
        Some(
            "Does the server accept TLS? Enable ssl on the server, or use sslmode=prefer or disable",
        )
    } else {
        None
    }
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
        let text = e.to_string();
        let hint = tls_hint(&text).map_or(String::new(), |h| format!(". {h}"));
        anyhow::anyhow!(
            "DATABASE_URL: cannot connect to PostgreSQL at {}:{}: {text}{hint}",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Result<TlsSettings, SettingError> {
        TlsSettings::from_url_and_env(&Url::parse(url).unwrap(), |_| None)
    }

    #[test]
    fn the_url_wins_over_pgsslmode() {
        let env = |name: &str| (name == "PGSSLMODE").then(|| "require".to_owned());
        let from_env = TlsSettings::from_url_and_env(&Url::parse("postgres://db/x").unwrap(), env);
        assert_eq!(from_env.unwrap().mode, SslMode::Require);
        let url = Url::parse("postgres://db/x?sslmode=disable").unwrap();
        let from_url = TlsSettings::from_url_and_env(&url, env);
        assert_eq!(from_url.unwrap().mode, SslMode::Disable);
    }

    #[test]
    fn sslmode_follows_libpq() {
        let base = "postgres://u:hunter2@db/x";
        assert_eq!(settings(base).unwrap().mode, SslMode::Prefer);
        for (mode, want) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Allow),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            assert_eq!(
                settings(&format!("{base}?sslmode={mode}")).unwrap().mode,
                want
            );
        }
        let bad = settings(&format!("{base}?sslmode=on"))
            .unwrap_err()
            .to_string();
        assert!(
            bad.starts_with("DATABASE_URL: sslmode=\"on\" is not one of"),
            "{bad}"
        );
        assert!(!bad.contains("hunter2"));
        let missing = settings(&format!(
            "{base}?sslmode=verify-ca&sslrootcert=/nope/ca.pem"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("sslrootcert /nope/ca.pem: cannot be read"),
            "{missing}"
        );
    }

    #[test]
    fn require_with_a_root_certificate_verifies_the_chain() {
        let dir = std::env::temp_dir().join(format!("sfsync-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("root.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let url = format!(
            "postgres://db/x?sslmode=require&sslrootcert={}",
            ca.display()
        );
        let tls = settings(&url).unwrap();
        assert_eq!(tls.mode, SslMode::VerifyCa);
        assert_eq!(tls.root_cert.as_deref(), Some(ca.as_path()));
        let stripped =
            without_tls_params(&Url::parse(&format!("{url}&application_name=a")).unwrap());
        assert_eq!(stripped.as_str(), "postgres://db/x?application_name=a");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
