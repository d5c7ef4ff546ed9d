//! Support for sfsync's end-to-end tests: a private database and RabbitMQ vhost per test, a
//! fake org, and in-process producer and workers wired to them.
//!
//! Real services, no mocks: PostgreSQL from `SFSYNC_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`) and RabbitMQ from `SFSYNC_TEST_AMQP` (default
//! `amqp://guest:guest@127.0.0.1:5672`); vhosts are made with `rabbitmqctl`. Each test removes
//! only what it made, also when it panics (in `Drop`).

pub mod binary;
pub mod compare;
pub mod config_dir;
pub mod proxy;
pub mod scrape;

use std::{process::Command, time::Duration};

use secrecy::SecretString;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("running rabbitmqctl {args:?}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
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

    /// Starts an in-process worker; cancel the token to stop it gracefully.
    pub fn spawn_worker(&self, prefetch: u16, concurrency: u16) -> RunningWorker {
        Self::spawn_worker_with(self.worker_args(prefetch, concurrency))
    }

    /// Worker arguments for this test's services.
    pub fn worker_args(&self, prefetch: u16, concurrency: u16) -> worker::WorkerArgs {
        worker::WorkerArgs {
            prefetch,
            concurrency,
            shutdown_timeout: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(60),
            metrics: common::metrics::MetricsArgs::default(),
            services: self.services(),
        }
    }

    /// Starts an in-process worker with these arguments.
    pub fn spawn_worker_with(args: worker::WorkerArgs) -> RunningWorker {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(worker::run(args, cancel.clone()));
        RunningWorker { cancel, handle }
    }

    /// Starts an in-process worker serving metrics on a free port of 127.0.0.1; returns it
    /// and the address to scrape.
    pub async fn spawn_worker_with_metrics(
        &self,
        prefetch: u16,
        concurrency: u16,
    ) -> anyhow::Result<(RunningWorker, std::net::SocketAddr)> {
        Self::spawn_worker_serving_metrics(self.worker_args(prefetch, concurrency)).await
    }

    /// Starts an in-process worker with these arguments, serving metrics on a free port of
    /// 127.0.0.1; returns it and the address to scrape.
    pub async fn spawn_worker_serving_metrics(
        mut args: worker::WorkerArgs,
    ) -> anyhow::Result<(RunningWorker, std::net::SocketAddr)> {
        args.metrics.metrics_addr = Some("127.0.0.1:0".into());
        let listener = args
            .metrics
            .bind()
            .await?
            .ok_or_else(|| anyhow::anyhow!("no metrics address"))?;
        let addr = listener.local_addr();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(worker::run_with_metrics(
            args,
            Some(listener),
            cancel.clone(),
        ));
        Ok((RunningWorker { cancel, handle }, addr))
    }

    /// This test's `DATABASE_URL` with `addr` as the server, e.g. a [`proxy`].
    pub fn database_url_via(&self, addr: std::net::SocketAddr) -> anyhow::Result<String> {
        url_via(&self.database_url, addr)
    }

    /// The PostgreSQL server's address, for a [`proxy`] in front of it.
    pub async fn database_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        server_addr(&self.database_url, 5432).await
    }

    /// This test's `AMQP_URL` with `addr` as the broker, e.g. a [`proxy`].
    pub fn amqp_url_via(&self, addr: std::net::SocketAddr) -> anyhow::Result<String> {
        url_via(&self.amqp_url, addr)
    }

    /// RabbitMQ's address, for a [`proxy`] in front of it.
    pub async fn amqp_addr(&self) -> anyhow::Result<std::net::SocketAddr> {
        server_addr(&self.amqp_url, 5672).await
    }

    /// RabbitMQ's process ids of this vhost's connections whose client named itself
    /// `connection_name` (sfsync's binaries do: `sfsync-worker`, `sfsync-producer`).
    pub fn connections_named(&self, connection_name: &str) -> anyhow::Result<Vec<String>> {
        // The table format: the JSON one shows pids in a form close_connection refuses.
        let out = Command::new("rabbitmqctl")
            .args([
                "list_connections",
                "-q",
                "--no-table-headers",
                "pid",
                "vhost",
                "client_properties",
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl list_connections failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wanted = format!("\"{connection_name}\"");
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut columns = line.splitn(3, '\t');
                let (pid, vhost, properties) = (columns.next()?, columns.next()?, columns.next()?);
                (vhost == self.name && properties.contains(&wanted)).then(|| pid.to_owned())
            })
            .collect())
    }

    /// Closes connections of this vhost by their RabbitMQ pids (from [`Self::connections_named`]),
    /// as a broker restart or a network fault would; other vhosts are never touched.
    pub fn close_connections(&self, pids: &[String]) -> anyhow::Result<()> {
        for pid in pids {
            rabbitmqctl(&["close_connection", pid, "sfsync fault test"])?;
        }
        Ok(())
    }

    /// A `worker` process (the `e2e-worker` binary) on this test's services; `extra_env`
    /// overrides [`Self::process_env`]. Killed when the handle is dropped.
    pub fn worker_process(
        &self,
        binary: &str,
        args: &[&str],
        extra_env: &[(&str, String)],
        stderr: std::process::Stdio,
    ) -> anyhow::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(args)
            .envs(self.process_env())
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        Ok(cmd.spawn()?)
    }

    /// Pages of `run_id` the workers have processed.
    pub async fn pages_done(&self, run_id: Uuid) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Producer arguments for `object` against a fake org.
    pub fn sync_args(
        &self,
        org: &fake_salesforce::FakeOrg,
        object: &str,
    ) -> producer::cli::SyncArgs {
        producer::cli::SyncArgs {
            objects: vec![object.into()],
            all: false,
            full: false,
            overlap: Duration::from_secs(300),
            hard_delete: false,
            watch: false,
            interval: Duration::from_secs(30),
            formula_refresh: None,
            max_api_usage: 100.0,
            api: producer::sync::ApiChoice::Rest,
            bulk_threshold: 100_000,
            page_size: 2000,
            confirm_window: 16,
            no_progress: true,
            limit_retry: producer::cli::LimitRetryArgs::default(),
            metrics: common::metrics::MetricsArgs::default(),
            salesforce: producer::salesforce::CredentialArgs {
                sf_login_url: Some(org.base_url()),
                sf_client_id: Some("demo".into()),
                sf_client_secret: Some("demo".into()),
                sf_username: None,
                sf_password: None,
                sf_instance_url: None,
                sf_access_token: None,
                sf_api_version: "62.0".into(),
            },
            services: self.services(),
            object_config: Default::default(),
        }
    }

    /// Waits until workers have processed `pages` pages of `run_id`.
    pub async fn wait_for_run(
        &self,
        run_id: Uuid,
        pages: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
                    .bind(run_id)
                    .fetch_one(&self.pool)
                    .await?;
            if done as u64 >= pages {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "run {run_id}: {done} of {pages} pages processed after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Messages waiting in a queue of this test's vhost.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let conn =
            lapin::Connection::connect(&self.amqp_url, lapin::ConnectionProperties::default())
                .await?;
        let channel = conn.create_channel().await?;
        let q = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await?;
        let _ = conn.close(200, "".into()).await;
        Ok(q.message_count())
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

    /// Pages processed by workers, over all runs.
    pub async fn pages_done_any(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0),
        )
    }

    /// Rows in `salesforce.<table>`.
    pub async fn count_rows(&self, table: &str) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM salesforce.{table}"
        )))
        .fetch_one(&self.pool)
        .await?)
    }

    /// A connection to this test's vhost.
    pub async fn amqp(&self) -> anyhow::Result<lapin::Connection> {
        common::amqp::connect(&SecretString::from(self.amqp_url.clone()), "sfsync-test").await
    }

    /// Publishes pages of raw records straight onto the work queue, as a producer would.
    /// The run is recorded in `sfsync.runs` the way the producer records it.
    pub async fn publish_pages(
        &self,
        object: &str,
        run_id: Uuid,
        pages: &[Vec<serde_json::Value>],
    ) -> anyhow::Result<()> {
        common::db::migrate(&self.pool).await?;
        producer::runs::start(&self.pool, run_id, object).await?;
        let conn = self.amqp().await?;
        let channel = common::topology::declare_on(&conn).await?;
        let mut publisher = producer::publisher::PagePublisher::new(channel.clone(), 8).await?;
        for (n, records) in pages.iter().enumerate() {
            let page = n as u64 + 1;
            let body = serde_json::to_vec(
                &serde_json::json!({"format": 1, "object": object, "run_id": run_id, "page": page, "records": records}),
            )?;
            publisher
                .publish(&producer::publisher::OutgoingPage {
                    object: object.into(),
                    run_id,
                    page,
                    records: records.len() as u64,
                    last_stamp: None,
                    body,
                })
                .await?;
        }
        publisher.finish().await?;
        let records = pages.iter().map(Vec::len).sum::<usize>() as u64;
        producer::runs::finish(&self.pool, run_id, pages.len() as u64, records, None).await?;
        let _ = channel.close(200, "".into()).await;
        let _ = conn.close(200, "".into()).await;
        Ok(())
    }

    /// Publishes `body` straight onto the work queue with no sfsync headers: a message from
    /// somewhere else.
    pub async fn publish_foreign(&self, body: &[u8]) -> anyhow::Result<()> {
        let conn = self.amqp().await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_publish(
                "".into(),
                common::topology::WORK_QUEUE.into(),
                Default::default(),
                body,
                lapin::BasicProperties::default(),
            )
            .await?
            .await?;
        let _ = conn.close(200, "".into()).await;
        Ok(())
    }

    /// Every letter on the dead-letter queue (left in place).
    pub async fn dead_letters(&self) -> anyhow::Result<Vec<producer::dlq::Letter>> {
        let conn = self.amqp().await?;
        let letters = producer::dlq::list(&conn, &producer::dlq::DlqFilter::default()).await;
        let _ = conn.close(200, "".into()).await;
        letters
    }

    /// The letters on the dead-letter queue, once it holds at least `expected` of them.
    ///
    /// A worker commits a page's rows and bookkeeping (`page_results`, `dead_letters`) first and
    /// publishes the page's dead letters after, then acks; so a run is complete in PostgreSQL a
    /// moment before its last letters are on the queue, and reading the queue at once races
    /// them. Waits up to two minutes; the caller asserts the exact letters.
    pub async fn dead_letters_when(
        &self,
        expected: u32,
    ) -> anyhow::Result<Vec<producer::dlq::Letter>> {
        let what = format!("{expected} letters on the dead-letter queue");
        let waited = self
            .wait_until(&what, Duration::from_secs(120), || async {
                Ok(self.queue_depth(common::topology::DEAD_QUEUE).await? >= expected)
            })
            .await;
        if let Err(e) = waited {
            let depth = self.queue_depth(common::topology::DEAD_QUEUE).await?;
            anyhow::bail!("{e:#}; it holds {depth}");
        }
        self.dead_letters().await
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

/// `url` with `addr` as its host and port.
fn url_via(url: &str, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut url = url::Url::parse(url)?;
    url.set_host(Some(&addr.ip().to_string()))?;
    url.set_port(Some(addr.port()))
        .map_err(|()| anyhow::anyhow!("cannot set a port on {}", url.scheme()))?;
    Ok(url.to_string())
}

/// The socket address `url` points at.
async fn server_addr(url: &str, default_port: u16) -> anyhow::Result<std::net::SocketAddr> {
    let url = url::Url::parse(url)?;
    let host = url.host_str().unwrap_or("127.0.0.1");
    let port = url.port().unwrap_or(default_port);
    tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| anyhow::anyhow!("{host}:{port} does not resolve"))
}

/// Sends SIGTERM to a child process (a worker stops gracefully: it finishes and acks the pages
/// in work).
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

/// Stops a worker process with SIGTERM and waits (up to two minutes) until it exits; panics
/// unless it exits 0, as a worker that finished and acked its pages in work does.
pub async fn stop_gracefully(child: &mut tokio::process::Child) {
    sigterm(child);
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the worker stops within two minutes of SIGTERM")
        .expect("waiting for the worker");
    assert_eq!(status.code(), Some(0), "the worker's exit after SIGTERM");
}

/// A worker running in this process.
pub struct RunningWorker {
    pub cancel: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningWorker {
    /// Asks the worker to stop and waits; panics if it failed.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.handle
            .await
            .expect("worker task panicked")
            .expect("worker failed");
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
        })
        .collect(),
    };
    let fields = producer::tables::select_fields(&describe)?;
    producer::tables::ensure_table(pool, object, table, &fields).await?;
    Ok(())
}
