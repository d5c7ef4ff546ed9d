//! The Salesforce client: one authenticated connection to an org, logged in once and shared by
//! every call of a command.
//!
//! - this file: the client, logging in, and what it hands out (metrics, usage, buffers).
//! - `call`: one authenticated request, with one fresh login when the session expired.
//! - `retry`: the retry policy, and running a call under it.
//! - `quota`: the org's API usage, and stopping at `--max-api-usage`.
//!
//! The calls sfsync makes sit next to this module: `describe`, `query`, `deleted`, `bulk`.

mod call;
mod metrics;
mod quota;
mod retry;

use std::{sync::Arc, time::Duration};

use backon::Retryable;
use bytes::Bytes;
use tokio::sync::RwLock;

pub use self::{quota::Quota, retry::RetryPolicy};
use super::{
    auth::{Credentials, Session, login},
    error::SfError,
};
use crate::buffers::BufferPool;

pub use self::metrics::{ApiMetrics, NoMetrics};

/// An authenticated connection to one org.
pub struct SalesforceClient<M = NoMetrics> {
    http: reqwest::Client,
    credentials: Credentials,
    session: RwLock<Session>,
    pub(crate) api_version: String,
    retry: RetryPolicy,
    quota: Quota,
    /// The caller's metrics: this client keeps the API usage and the Salesforce retries
    /// current, and every part of the caller reaches them through it.
    metrics: Arc<M>,
    /// Where response bodies are read into; see [`recycle_body`](Self::recycle_body).
    responses: BufferPool,
}

impl<M: ApiMetrics + Default> SalesforceClient<M> {
    /// Logs in (retrying transient failures) and returns a ready client.
    ///
    /// # Errors
    /// Bad credentials ([`SfError::Login`]), bad settings, or an org unreachable after retries.
    pub async fn connect(
        credentials: Credentials,
        api_version: &str,
        retry: RetryPolicy,
    ) -> Result<Self, SfError> {
        if !api_version
            .split('.')
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
            || !api_version.contains('.')
        {
            return Err(SfError::Config(format!(
                "SF_API_VERSION: {api_version:?} is not an API version such as 62.0"
            )));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(300))
            .user_agent(concat!("sfsync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SfError::Config(format!("cannot build the HTTP client: {e}")))?;
        // Fewer tries than for data calls: an unreachable login host is usually a wrong setting.
        let login_retry = RetryPolicy {
            max_retries: retry.max_retries.min(3),
            ..retry
        };
        let session = (|| login(&http, &credentials))
            .retry(login_retry.backoff())
            .when(SfError::is_transient)
            .notify(|e, after| tracing::warn!(error = %e, retry_in = ?after, "Salesforce login failed; retrying."))
            .await
            .map_err(|e| match e {
                SfError::Transient { url, detail, .. } => {
                    let setting = if matches!(credentials, Credentials::AccessToken { .. }) { "SF_INSTANCE_URL" } else { "SF_LOGIN_URL" };
                    SfError::Config(format!("{setting}: cannot reach Salesforce at {url}: {detail}"))
                }
                other => other,
            })?;
        // Once per client: how it signs in, never with what secret.
        let (signed_in_at, user) = credentials.sign_in();
        tracing::info!(flow = credentials.flow(), login = %signed_in_at, user, instance_url = %session.instance_url, "Logged in to Salesforce.");
        Ok(Self {
            http,
            credentials,
            session: RwLock::new(session),
            api_version: api_version.to_owned(),
            retry,
            quota: Quota::default(),
            metrics: Arc::default(),
            responses: BufferPool::default(),
        })
    }
}

impl<M: ApiMetrics> SalesforceClient<M> {
    /// Hands a response body back once nothing needs it any more (its records are copied
    /// into a message), so the next response is read into the same buffer.
    pub fn recycle_body(&self, body: Bytes) {
        self.responses.give_bytes(body);
    }

    /// Reports to `metrics` (instead of a private set nobody scrapes).
    pub fn with_metrics(mut self, metrics: Arc<M>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics this client reports to.
    pub fn metrics(&self) -> &M {
        &self.metrics
    }

    /// Stops every call once the org's reported usage reaches `percent` of its daily limit.
    pub fn with_max_api_usage(mut self, percent: Option<f64>) -> Self {
        self.quota.stop_at_percent = percent;
        self
    }

    /// The org's API usage as last reported, and the calls this client made.
    pub fn usage(&self) -> &Quota {
        &self.quota
    }

    /// `/services/data/v62.0`
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.api_version)
    }

    /// How long one round trip to the org takes: `GET /services/data/` (the list of API
    /// versions, which needs no session, does no work and counts against no limit). `None`
    /// when it fails: the caller then knows nothing of the distance.
    pub async fn round_trip(&self) -> Option<std::time::Duration> {
        let url = {
            let session = self.session.read().await;
            format!(
                "{}/services/data/",
                session.instance_url.as_str().trim_end_matches('/')
            )
        };
        let started = std::time::Instant::now();
        let answer = self.http.get(&url).send().await.ok()?;
        answer.bytes().await.ok()?;
        Some(started.elapsed())
    }
}
