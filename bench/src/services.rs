//! A private PostgreSQL database and RabbitMQ vhost per run, removed afterwards: explicitly
//! with [`Env::teardown`] on the normal path, and from `Drop` on an error or Ctrl-C.

use std::process::Command as StdCommand;

use anyhow::Context as _;
use tokio::process::Command;
use tokio_postgres::{Client, NoTls};

/// A database and a vhost of the same name (`sfsync_bench_<uuid>`).
pub struct Env {
    pub name: String,
    pg_base: String,
    amqp_base: String,
    keep: bool,
    db_created: bool,
    vhost_created: bool,
}

impl Env {
    /// Creates the database and the vhost, and gives `guest` all rights on the vhost.
    ///
    /// # Errors
    /// PostgreSQL is unreachable or `rabbitmqctl` failed; whatever was made is removed again.
    pub async fn create(pg_base: &str, amqp_base: &str, keep: bool) -> anyhow::Result<Self> {
        let mut env = Self {
            name: format!("sfsync_bench_{}", uuid::Uuid::new_v4().simple()),
            pg_base: pg_base.trim_end_matches('/').to_owned(),
            amqp_base: amqp_base.trim_end_matches('/').to_owned(),
            keep,
            db_created: false,
            vhost_created: false,
        };
        let admin = connect(&env.admin_url())
            .await
            .context("connecting to PostgreSQL (is it running on --pg?)")?;
        admin
            .batch_execute(&format!("CREATE DATABASE {}", env.name))
            .await
            .with_context(|| format!("creating database {}", env.name))?;
        env.db_created = true;
        rabbitmqctl(&["add_vhost", &env.name]).await?;
        env.vhost_created = true;
        rabbitmqctl(&[
            "set_permissions",
            "-p",
            &env.name,
            "guest",
            ".*",
            ".*",
            ".*",
        ])
        .await?;
        Ok(env)
    }

    fn admin_url(&self) -> String {
        format!("{}/postgres", self.pg_base)
    }

    /// `DATABASE_URL` for the sfsync processes.
    ///
    /// Without TLS, like the bench's own COPY connection: sfsync's default `sslmode=prefer`
    /// would encrypt when the server offers it, and the comparison must be like for like.
    pub fn database_url(&self) -> String {
        format!("{}/{}?sslmode=disable", self.pg_base, self.name)
    }

    /// `AMQP_URL` for the sfsync processes.
    pub fn amqp_url(&self) -> String {
        format!("{}/{}", self.amqp_base, self.name)
    }

    /// A connection to the run's database.
    ///
    /// # Errors
    /// The database cannot be reached.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        connect(&self.database_url()).await
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
                let admin = connect(&self.admin_url()).await?;
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
            let deleted = rabbitmqctl(&["delete_vhost", &self.name]).await;
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
            let _ = StdCommand::new("rabbitmqctl")
                .args(["delete_vhost", &self.name])
                .output();
        }
    }
}

/// Connects with tokio-postgres and drives the connection on a task.
///
/// # Errors
/// The server cannot be reached or refused the login.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("bench: PostgreSQL connection closed: {e}");
        }
    });
    Ok(client)
}

async fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("rabbitmqctl")
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
