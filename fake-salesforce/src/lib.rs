//! A deterministic fake Salesforce org over HTTP, faithful enough for real client libraries:
//! OAuth token endpoint, REST query/queryAll with paging cursors, describe, limits,
//! getUpdated/getDeleted and Bulk API 2.0 query jobs.
//!
//! # Layout
//! - [`data`]: object metadata, the deterministic record generator and the store.
//! - [`soql`]: the SOQL subset (parser and evaluator).
//! - [`routes`], [`auth`], [`cursor`], [`describe`], [`error`]: the HTTP surface.
//! - [`render`]: JSON page rendering, the hot path.
//! - [`bulk`]: Bulk API 2.0 query jobs and their CSV results.
//! - [`faults`]: injected failures, truncated bodies, slowness, expiring tokens and locators.
//! - `org`: the org's state, its mutations and the replication resources.
//!
//! Tests start an org with [`spawn`] and inspect it through [`Org`]'s methods.
//!
//! # Faults
//! `POST /__admin/faults` (no auth, not counted) or [`Org::set_faults`] switches the
//! [`Faults`] in force: `{"fail_every":N,"fail_status":503|500|403,"truncate_every":N,
//! "garble_every":N,"slow_ms":N,"token_ttl_ms":N|null}` (every field optional, missing ones
//! off), plus the one-shot actions `"expire_tokens":true` ([`Org::expire_all_tokens`]) and
//! `"expire_cursors":true` ([`Org::expire_all_cursors`]). It answers the faults now in force
//! and the [`FaultStats`]; `GET /__admin/faults` answers the same without changing anything.
//!
//! # Keeping in sync: mutations, getUpdated/getDeleted, Bulk 2.0
//! - `POST /__admin/mutate` (no auth, not counted toward API usage) or [`Org::mutate`]
//!   changes a running org: `{"object":"Contact","update":N,"delete":N,"purge":N,
//!   "create":N,"vanish":N,"same_modstamp":false}`, every count optional. It answers the
//!   affected Ids per category (`updated`, `deleted`, `purged`, `created`, `vanished`) and the
//!   `systemModstamp` they all got. Update changes field values (Contact: LastName, Title,
//!   Email, Engagement_Score__c; Account: Name, Phone) plus LastModifiedDate and
//!   SystemModstamp; delete sets IsDeleted (queryAll and getDeleted still see the record);
//!   purge removes deleted records from queryAll but keeps them in getDeleted; create adds
//!   records with the next Ids; vanish removes records without a trace. Each call's stamp is
//!   the wall clock in whole seconds, after every generated stamp and at least a second after
//!   the previous call's; `same_modstamp` reuses the previous call's stamp. Queries that start
//!   afterwards see the change; open query cursors and Bulk jobs keep the snapshot they were
//!   created with. [`Org::count`], [`Org::records`] and [`Org::record_json`] follow mutations.
//! - `GET /sobjects/{Object}/updated/?start=&end=` and `/deleted/` (see `org::replication`):
//!   minute-truncated `[start, end)` windows of at most 30 days; errors are 400
//!   `INVALID_REPLICATION_DATE` or `MISSING_ARGUMENT`.
//! - `/jobs/query` (see [`bulk`]): jobs run against a snapshot when created and complete
//!   after [`OrgConfig::bulk_job_delay`]; results are CSV chunks of `maxRecords` rows
//!   (default [`bulk::DEFAULT_MAX_RECORDS`]) chained by `Sforce-Locator`, `null` on the last.

pub mod auth;
pub mod bulk;
pub mod calendar;
pub mod cursor;
pub mod data;
pub mod describe;
pub mod error;
pub mod faults;
mod org;
pub mod render;
pub mod routes;
pub mod soql;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use faults::{FailStatus, FaultStats, Faults};
pub use org::{MutateRequest, MutateResponse, Org};

/// Everything that shapes an org: its data and its credentials.
#[derive(Debug, Clone)]
pub struct OrgConfig {
    /// Number of generated Account records.
    pub accounts: u32,
    /// Number of generated Contact records.
    pub contacts: u32,
    /// Same seed, same data, byte for byte.
    pub seed: u64,
    pub client_id: String,
    pub client_secret: String,
    pub username: String,
    pub password: String,
    /// The one refresh token the `refresh_token` grant accepts.
    pub refresh_token: String,
    /// Daily API request limit; calls past it get 403 `REQUEST_LIMIT_EXCEEDED`.
    pub api_limit: u64,
    /// How long a query locator stays valid after the query ran.
    pub locator_ttl: Duration,
    /// `instance_url` handed out with tokens; `None` derives it from the request's Host.
    pub instance_url: Option<String>,
    /// How long a Bulk 2.0 query job takes: `UploadComplete` for the first half,
    /// `InProgress` for the second, then `JobComplete` (or `Failed`). Zero completes jobs
    /// at once.
    pub bulk_job_delay: Duration,
    /// Faults injected from the start (see [`faults`]); switchable later with
    /// [`Org::set_faults`] or `POST /__admin/faults`.
    pub faults: Faults,
}

impl Default for OrgConfig {
    fn default() -> Self {
        OrgConfig {
            accounts: 100,
            contacts: 1000,
            seed: 1,
            client_id: "demo".to_owned(),
            client_secret: "demo".to_owned(),
            username: "demo@example.com".to_owned(),
            password: "demo".to_owned(),
            refresh_token: "demo-refresh".to_owned(),
            api_limit: 1_000_000,
            locator_ttl: Duration::from_secs(2 * 24 * 3600),
            instance_url: None,
            bulk_job_delay: Duration::from_millis(200),
            faults: Faults::default(),
        }
    }
}

/// Serves `org` on `listener` until `shutdown` completes.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    org: Arc<Org>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, routes::router(org))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving the fake Salesforce org")
}

/// An org served on a local port in a background task; stopped on drop.
#[derive(Debug)]
pub struct FakeOrg {
    addr: SocketAddr,
    org: Arc<Org>,
    stop: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Starts an org on `127.0.0.1:0` in a background task.
///
/// # Errors
/// When no local port can be bound.
pub async fn spawn(config: OrgConfig) -> anyhow::Result<FakeOrg> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0 for the fake Salesforce org")?;
    let addr = listener.local_addr()?;
    let org = Arc::new(Org::new(config));
    let stop = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        Arc::clone(&org),
        stop.clone().cancelled_owned(),
    ));
    Ok(FakeOrg {
        addr,
        org,
        stop,
        task: Some(task),
    })
}

impl FakeOrg {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn org(&self) -> &Arc<Org> {
        &self.org
    }

    /// Stops accepting requests and waits for the server task to end.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        self.stop.cancel();
        match self.task.take() {
            Some(task) => task.await.context("joining the fake org's server task")?,
            None => Ok(()),
        }
    }
}

impl Drop for FakeOrg {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
