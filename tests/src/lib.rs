//! Support for sfsync's end-to-end tests: a private database and RabbitMQ vhost per test, a
//! fake org, and in-process producer and workers wired to them.
//!
//! Real services, no mocks: PostgreSQL from `SFSYNC_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`) and RabbitMQ from `SFSYNC_TEST_AMQP` (default
//! `amqp://guest:guest@127.0.0.1:5672`); vhosts are made with `rabbitmqctl`. Each test removes
//! only what it made, also when it panics (in `Drop`).

mod addresses;
pub mod binary;
mod broker;
pub mod cluster;
pub mod compare;
pub mod config_dir;
pub mod org;
pub mod proxy;
mod runs;
pub mod scrape;
mod workers;
pub mod write_back;

use std::{process::Command, time::Duration};

use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use broker::rabbitmqctl;
pub use workers::{RunningWorker, sigterm, stop_gracefully};

fn pg_base() -> String {
    std::env::var("SFSYNC_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

fn amqp_base() -> String {
    std::env::var("SFSYNC_TEST_AMQP").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672".into())
}

/// Logs go to the test output only when `TEST_LOG` is set.
pub fn init_test_log() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx=warn".into()))
            .with_test_writer()
            .try_init();
    }
}

/// A private database and vhost, dropped with the value.
pub struct TestEnv {
    pub name: String,
    pub database_url: String,
    pub amqp_url: String,
    pub pool: PgPool,
}

impl TestEnv {
    /// Creates database `sfsync_t_<id>` and vhost `sfsync_t_<id>`.
    pub async fn new() -> anyhow::Result<Self> {
        init_test_log();
        let name = format!("sfsync_t_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", pg_base())).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await?;
        admin.close().await?;
        rabbitmqctl(&["add_vhost", &name])?;
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"])?;
        let database_url = format!("{}/{name}", pg_base());
        let pool = PgPool::connect(&database_url).await?;
        Ok(Self {
            amqp_url: format!("{}/{name}", amqp_base()),
            database_url,
            pool,
            name,
        })
    }

    pub fn services(&self) -> common::config::ServiceArgs {
        common::config::ServiceArgs {
            amqp_url: SecretString::from(self.amqp_url.clone()),
            database_url: SecretString::from(self.database_url.clone()),
        }
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop runs during a panic too, with no runtime to rely on.
        let _ = Command::new("psql")
            .args([
                &format!("{}/postgres", pg_base()),
                "-qc",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
        let _ = rabbitmqctl(&["delete_vhost", &self.name]);
    }
}

impl TestEnv {
    /// Polls `check` every 100 ms until it returns true, or fails after `timeout`.
    pub async fn wait_until<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> anyhow::Result<()>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<bool>>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if check().await? {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Rows in `salesforce.<table>`.
    pub async fn count_rows(&self, table: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM salesforce.{table}"
        )))
        .fetch_one(&self.pool)
        .await?)
    }

    /// Environment for running sfsync binaries against this test's services.
    pub fn process_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AMQP_URL", self.amqp_url.clone()),
            ("DATABASE_URL", self.database_url.clone()),
            (
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            ),
        ]
    }
}

/// Creates `salesforce.<table>` for `object` with the fields the hand-made pages of the tests
/// carry: Id, LastName, SystemModstamp and IsDeleted.
pub async fn create_small_table(pool: &PgPool, object: &str, table: &str) -> anyhow::Result<()> {
    use producer::salesforce::{Describe, DescribeField};
    let describe = Describe {
        name: object.into(),
        queryable: true,
        replicateable: true,
        fields: [
            ("Id", "id"),
            ("LastName", "string"),
            ("SystemModstamp", "datetime"),
            ("IsDeleted", "boolean"),
        ]
        .iter()
        .map(|(n, t)| DescribeField {
            name: (*n).into(),
            sf_type: (*t).into(),
            calculated: false,
            updateable: false,
            external_id: false,
            reference_to: Vec::new(),
        })
        .collect(),
    };
    let fields = producer::tables::select_fields(&describe)?;
    producer::tables::ensure_table(pool, object, table, &fields).await?;
    Ok(())
}
