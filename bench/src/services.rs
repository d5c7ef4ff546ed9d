//! A private PostgreSQL database and RabbitMQ vhost per run, removed afterwards: explicitly
//! with [`Env::teardown`] on the normal path, and from `Drop` on an error or Ctrl-C.

use std::process::Command as StdCommand;

use anyhow::Context as _;
use common::db::{SslMode, TlsSettings};
use tokio::process::Command;
use tokio_postgres::{Client, NoTls};
use worker::tls::{MakeRustlsConnect, client_config};

/// Where RabbitMQ is.
#[derive(Debug, Clone)]
pub enum Broker {
    /// One node, at this URL without a vhost; `rabbitmqctl` reaches it.
    Local(String),
    /// The nodes of `scripts/rabbitmq-cluster`, at these URLs without a vhost.
    Cluster(Vec<String>),
}

/// The script that runs a local three-node cluster.
const CLUSTER_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rabbitmq-cluster");

impl Broker {
    /// Starts the local cluster unless it runs, and takes its nodes' URLs.
    ///
    /// # Errors
    /// The script failed.
    pub async fn cluster() -> anyhow::Result<Self> {
        let out = Command::new("bash")
            .args([CLUSTER_SCRIPT, "start"])
            .output()
            .await
            .context("running scripts/rabbitmq-cluster start")?;
        anyhow::ensure!(
            out.status.success(),
            "scripts/rabbitmq-cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let urls = String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(',')
            .map(|url| url.trim_end_matches("/%2f").to_owned())
            .collect();
        Ok(Self::Cluster(urls))
    }

    /// `rabbitmqctl`, for the single node or the cluster's first.
    fn ctl(&self) -> (String, Vec<String>) {
        match self {
            Broker::Local(_) => ("rabbitmqctl".into(), Vec::new()),
            Broker::Cluster(_) => (
                "bash".into(),
                vec![CLUSTER_SCRIPT.into(), "ctl".into(), "1".into()],
            ),
        }
    }
}

/// A database and a vhost of the same name (`sfsync_bench_<uuid>`).
pub struct Env {
    pub name: String,
    pg_base: String,
    broker: Broker,
    keep: bool,
    /// `--pg-tls`: sfsync and the baselines reach the run's database over TLS.
    tls: bool,
    db_created: bool,
    vhost_created: bool,
}

impl Env {
    /// Creates the database and the vhost, and gives `guest` all rights on the vhost.
    ///
    /// # Errors
    /// PostgreSQL is unreachable or `rabbitmqctl` failed; whatever was made is removed again.
    pub async fn create(
        pg_base: &str,
        broker: Broker,
        keep: bool,
        tls: bool,
    ) -> anyhow::Result<Self> {
        let mut env = Self {
            name: format!("sfsync_bench_{}", uuid::Uuid::new_v4().simple()),
            pg_base: pg_base.trim_end_matches('/').to_owned(),
            broker,
            keep,
            tls,
            db_created: false,
            vhost_created: false,
        };
        let admin = connect(&env.admin_url(), false)
            .await
            .context("connecting to PostgreSQL (is it running on --pg?)")?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", env.name))
            .await
            .with_context(|| format!("creating database {}", env.name))?;
        env.db_created = true;
        rabbitmqctl(&env.broker, &["add_vhost", &env.name]).await?;
        env.vhost_created = true;
        rabbitmqctl(
            &env.broker,
            &[
                "set_permissions",
                "-p",
                &env.name,
                "guest",
                ".*",
                ".*",
                ".*",
            ],
        )
        .await?;
        Ok(env)
    }

    fn admin_url(&self) -> String {
        format!("{}/postgres", self.pg_base)
    }

    /// `DATABASE_URL` for the sfsync processes, and the baselines' connection.
    ///
    /// The same for both, so that the comparison is like for like: `sslmode=disable`, or
    /// `require` with `--pg-tls`. (sfsync's default, `prefer`, encrypts whenever the server
    /// offers TLS, and the baselines would not.)
    pub fn database_url(&self) -> String {
        let mode = if self.tls { "require" } else { "disable" };
        format!("{}/{}?sslmode={mode}", self.pg_base, self.name)
    }

    /// `AMQP_URL` for the sfsync processes: the vhost on each node.
    pub fn amqp_url(&self) -> String {
        let nodes = match &self.broker {
            Broker::Local(url) => std::slice::from_ref(url),
            Broker::Cluster(urls) => urls.as_slice(),
        };
        nodes
            .iter()
            .map(|base| format!("{}/{}", base.trim_end_matches('/'), self.name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A connection to the run's database.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        connect(&self.database_url(), self.tls).await
    }

    /// Drops the database and deletes the vhost, unless `--keep` was given.
    ///
    /// # Errors
    /// Either removal failed (the other is still attempted).
    pub async fn teardown(mut self) -> anyhow::Result<()> {
        if self.keep {
            self.report_kept();
            self.db_created = false;
            self.vhost_created = false;
            return Ok(());
        }
        let mut result = Ok(());
        if self.db_created {
            let dropped = async {
                let admin = connect(&self.admin_url(), false).await?;
                admin
                    .batch_execute(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        self.name
                    ))
                    .await
                    .with_context(|| format!("dropping database {}", self.name))
            }
            .await;
            self.db_created = false;
            result = dropped;
        }
        if self.vhost_created {
            self.vhost_created = false;
            let deleted = rabbitmqctl(&self.broker, &["delete_vhost", &self.name]).await;
            result = result.and(deleted);
        }
        result
    }

    fn report_kept(&self) {
        if self.db_created || self.vhost_created {
            eprintln!(
                "kept database and vhost {0}: DATABASE_URL={1} AMQP vhost {0}",
                self.name,
                self.database_url()
            );
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Synchronous on purpose: this runs when a run failed or Ctrl-C dropped its future.
        if self.keep {
            self.report_kept();
            return;
        }
        if self.db_created {
            let _ = StdCommand::new("psql")
                .args([
                    &self.admin_url(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                ])
                .output();
        }
        if self.vhost_created {
            let (program, first) = self.broker.ctl();
            let _ = StdCommand::new(program)
                .args(first)
                .args(["delete_vhost", &self.name])
                .output();
        }
    }
}

/// Connects with tokio-postgres and drives the connection on a task: without TLS, or with the
/// worker's own TLS client (as `sslmode=require`: encrypted, the certificate not checked), so
/// that the baselines pay what the worker's pool pays.
///
/// # Errors
/// The server cannot be reached or refused the login.
pub async fn connect(url: &str, tls: bool) -> anyhow::Result<Client> {
    if !tls {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .context("connecting to PostgreSQL")?;
        tokio::spawn(drive(connection));
        return Ok(client);
    }
    let settings = TlsSettings {
        mode: SslMode::Require,
        root_cert: None,
    };
    let (client, connection) =
        tokio_postgres::connect(url, MakeRustlsConnect::new(client_config(&settings)?))
            .await
            .context(
                "connecting to PostgreSQL over TLS (--pg-tls: does the server have ssl = on?)",
            )?;
    tokio::spawn(drive(connection));
    Ok(client)
}

/// Runs a connection until it closes, saying why if it failed.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        eprintln!("bench: PostgreSQL connection closed: {e}");
    }
}

async fn rabbitmqctl(broker: &Broker, args: &[&str]) -> anyhow::Result<()> {
    let (program, first) = broker.ctl();
    let out = Command::new(program)
        .args(first)
        .args(args)
        .output()
        .await
        .with_context(|| format!("running rabbitmqctl {args:?} (is rabbitmq-server installed?)"))?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(tls: bool) -> Env {
        Env {
            name: "sfsync_bench_x".to_owned(),
            pg_base: "postgres://postgres@127.0.0.1:5432".to_owned(),
            broker: Broker::Local("amqp://guest:guest@127.0.0.1:5672".to_owned()),
            keep: false,
            tls,
            db_created: false,
            vhost_created: false,
        }
    }

    #[test]
    fn sfsync_and_the_baselines_get_the_same_sslmode() {
        assert_eq!(
            env(false).database_url(),
            "postgres://postgres@127.0.0.1:5432/sfsync_bench_x?sslmode=disable"
        );
        assert_eq!(
            env(true).database_url(),
            "postgres://postgres@127.0.0.1:5432/sfsync_bench_x?sslmode=require"
        );
    }

    /// Whether `client`'s own connection is encrypted, as the server sees it.
    async fn encrypted(client: &Client) -> bool {
        client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0)
    }

    #[tokio::test]
    async fn the_baselines_tls_connection_is_encrypted() {
        // The local server has ssl = on (docs/operating.md, "TLS").
        let tls = connect(
            "postgres://postgres@127.0.0.1:5432/postgres?sslmode=require",
            true,
        )
        .await
        .unwrap();
        assert!(encrypted(&tls).await);
        let plain = connect("postgres://postgres@127.0.0.1:5432/postgres", false)
            .await
            .unwrap();
        assert!(!encrypted(&plain).await);
    }
}
