//! The REST client: authenticated GETs with bounded, jittered retries, one token refresh on
//! `INVALID_SESSION_ID`, and the calls sfsync needs (describe, query, queryMore).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use common::metrics::RetryCause;

use crate::metrics::ProducerMetrics;
use secrecy::ExposeSecret;
use serde::Deserialize;
use tokio::sync::RwLock;

use super::auth::{Credentials, Session, login, transport_detail};
use super::error::SfError;
use super::page::QueryPage;
use crate::buffers::BufferPool;

/// Retry policy: bounded and jittered, so that many producers do not retry in step.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Transient failures (network, 5xx, 429, a cut-off or garbled body): quick retries.
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retries: usize,
    /// 403 `REQUEST_LIMIT_EXCEEDED` (the org's API or concurrent-request limit): fewer retries
    /// after longer pauses, since hammering an org at its limit only uses more of it; the
    /// primary guard is `--max-api-usage`, which stops before the limit.
    pub limit_min_delay: Duration,
    pub limit_max_delay: Duration,
    pub limit_max_retries: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retries: 6,
            limit_min_delay: Duration::from_secs(30),
            limit_max_delay: Duration::from_secs(300),
            limit_max_retries: 3,
        }
    }
}

impl RetryPolicy {
    fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }

    fn limit_backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::default()
            .with_min_delay(self.limit_min_delay)
            .with_max_delay(self.limit_max_delay.max(self.limit_min_delay))
            .with_max_times(self.limit_max_retries)
            .with_jitter()
    }
}

/// An authenticated connection to one org.
pub struct SalesforceClient {
    http: reqwest::Client,
    credentials: Credentials,
    session: RwLock<Session>,
    api_version: String,
    retry: RetryPolicy,
    quota: Quota,
    /// The producer's metrics: this client keeps the API usage and the Salesforce retries
    /// current, and every part of a sync reaches them through it.
    metrics: std::sync::Arc<ProducerMetrics>,
    /// Where response bodies are read into; see [`recycle_body`](Self::recycle_body).
    responses: BufferPool,
}

/// The org's API usage as `Sforce-Limit-Info` last reported it, the calls this client made, and
/// the share of the daily limit past which sfsync stops (`--max-api-usage`).
#[derive(Debug, Default)]
pub struct Quota {
    used: AtomicU64,
    max: AtomicU64,
    calls: AtomicU64,
    /// Percent of the daily limit; `None` never stops.
    stop_at_percent: Option<f64>,
}

impl Quota {
    /// Parses `api-usage=N/M` (the only form Salesforce sends; suffixes are ignored).
    fn record(&self, header: &str) {
        let Some(rest) = header
            .split(';')
            .find_map(|p| p.trim().strip_prefix("api-usage="))
        else {
            return;
        };
        if let Some((used, max)) = rest.split_once('/')
            && let (Ok(used), Ok(max)) = (used.trim().parse::<u64>(), max.trim().parse::<u64>())
        {
            self.used.store(used, Ordering::Relaxed);
            self.max.store(max, Ordering::Relaxed);
        }
    }

    fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// API calls this client has made (token requests excluded).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Last reported (used, max), if any call reported it.
    pub fn last(&self) -> Option<(u64, u64)> {
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| (self.used.load(Ordering::Relaxed), max))
    }

    fn check(&self) -> Result<(), SfError> {
        let (Some(limit), Some((used, max))) = (self.stop_at_percent, self.last()) else {
            return Ok(());
        };
        let percent = used as f64 * 100.0 / max as f64;
        if percent >= limit {
            return Err(SfError::Quota { used, max, limit });
        }
        Ok(())
    }
}

/// One field of a describe result; only what sfsync uses.
#[derive(Debug, Clone, Deserialize)]
pub struct DescribeField {
    pub name: String,
    #[serde(rename = "type")]
    pub sf_type: String,
}

/// The parts of `GET /sobjects/{Object}/describe` that sfsync uses.
#[derive(Debug, Clone, Deserialize)]
pub struct Describe {
    pub name: String,
    #[serde(default = "yes")]
    pub queryable: bool,
    pub fields: Vec<DescribeField>,
}

fn yes() -> bool {
    true
}

impl SalesforceClient {
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
        tracing::info!(instance_url = %session.instance_url, "Logged in to Salesforce.");
        Ok(Self {
            http,
            credentials,
            session: RwLock::new(session),
            api_version: api_version.to_owned(),
            retry,
            quota: Quota::default(),
            metrics: std::sync::Arc::default(),
            responses: BufferPool::default(),
        })
    }

    /// Hands a response body back once nothing needs it any more (its records are copied
    /// into a message), so the next response is read into the same buffer.
    pub fn recycle_body(&self, body: Bytes) {
        self.responses.give_bytes(body);
    }

    /// Reports to `metrics` (instead of a private set nobody scrapes).
    pub fn with_metrics(mut self, metrics: std::sync::Arc<ProducerMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// The producer's metrics.
    pub fn metrics(&self) -> &ProducerMetrics {
        &self.metrics
    }

    /// Stops every call once the org's reported usage reaches `percent` of its daily limit.
    pub fn with_max_api_usage(mut self, percent: Option<f64>) -> Self {
        self.quota.stop_at_percent = percent;
        self
    }

    /// `/services/data/v62.0`
    pub fn data_path(&self) -> String {
        format!("/services/data/v{}", self.api_version)
    }

    /// GETs a path under the instance (`/services/data/...`), retrying transient failures and
    /// refreshing an expired token once per attempt.
    ///
    /// # Errors
    /// Salesforce's own errors (not retried), or failures that outlasted the retries.
    pub async fn get(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Bytes, SfError> {
        self.get_checked(path_and_query, headers, |_| Ok(())).await
    }

    /// Like [`get`](Self::get), with `check` run on every 2xx body inside the retries, so that
    /// a body `check` finds garbled (a transient error) is fetched again.
    async fn get_checked(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
        check: impl Fn(&[u8]) -> Result<(), SfError>,
    ) -> Result<Bytes, SfError> {
        self.retrying(|| async {
            let body = self.get_once_refreshing(path_and_query, headers).await?;
            check(&body)?;
            Ok(body)
        })
        .await
    }

    /// Runs `attempt` until it succeeds or fails for good: transient failures are retried
    /// with [`RetryPolicy::backoff`] (honouring Retry-After), and 403 `REQUEST_LIMIT_EXCEEDED`
    /// with the slower [`RetryPolicy::limit_backoff`] around that; when the limit never lifts,
    /// the error says so ([`SfError::RequestLimit`]).
    async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, SfError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, SfError>>,
    {
        let started = std::time::Instant::now();
        let transient = || {
            (&attempt)
                .retry(self.retry.backoff())
                .when(SfError::is_transient)
                .adjust(|e, planned| match e {
                    // Honour Retry-After when Salesforce (or a proxy) sends one, within reason.
                    SfError::Transient { retry_after: Some(after), .. } => Some((*after).min(Duration::from_secs(120))),
                    _ => planned,
                })
                .notify(|e, after| {
                    self.metrics.retry(RetryCause::SalesforceUnavailable);
                    tracing::warn!(error = %e, retry_in = ?after, "Salesforce call failed; retrying.");
                })
        };
        transient
            .retry(self.retry.limit_backoff())
            .when(SfError::is_request_limit)
            .notify(|e, after| {
                self.metrics.retry(RetryCause::SalesforceRequestLimit);
                tracing::warn!(error = %e, retry_in = ?after, "Salesforce refused the call: its request limit is reached; retrying later.");
            })
            .await
            .map_err(|e| match e {
                SfError::Api { status: 403, code, message } if code == "REQUEST_LIMIT_EXCEEDED" => SfError::RequestLimit {
                    message,
                    retries: self.retry.limit_max_retries,
                    waited: started.elapsed(),
                },
                other => other,
            })
    }

    async fn get_once_refreshing(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Bytes, SfError> {
        match self.get_once(path_and_query, headers).await {
            Err(e) if e.is_session_expired() && self.credentials.can_refresh() => {
                tracing::info!("Salesforce session expired; logging in again.");
                self.metrics.retry(RetryCause::SalesforceSessionRefresh);
                let fresh = login(&self.http, &self.credentials).await?;
                *self.session.write().await = fresh;
                self.get_once(path_and_query, headers).await
            }
            Err(e) if e.is_session_expired() => Err(SfError::Config(format!(
                "{e}. SF_ACCESS_TOKEN cannot be refreshed: set SF_LOGIN_URL, SF_CLIENT_ID and SF_CLIENT_SECRET so sfsync can log in again"
            ))),
            other => other,
        }
    }

    async fn get_once(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Bytes, SfError> {
        self.send_once(reqwest::Method::GET, path_and_query, headers, None)
            .await
            .map(|(_, body)| body)
    }

    /// One authenticated request: checks the quota first, counts the call and records the usage
    /// Salesforce reports. Returns the response headers and body of a 2xx answer.
    async fn send_once(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        json: Option<&serde_json::Value>,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), SfError> {
        self.quota.check()?;
        let (url, token) = {
            let session = self.session.read().await;
            (
                format!(
                    "{}{}",
                    session.instance_url.as_str().trim_end_matches('/'),
                    path_and_query
                ),
                session.access_token.clone(),
            )
        };
        let mut request = self
            .http
            .request(method, &url)
            .bearer_auth(token.expose_secret());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(json) = json {
            request = request.json(json);
        }
        let shown = shown_url(&url);
        self.quota.count_call();
        let response = request.send().await.map_err(|e| SfError::Transient {
            url: shown.clone(),
            detail: transport_detail(&e),
            retry_after: None,
        })?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(Duration::from_secs);
        if let Some(usage) = response
            .headers()
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
        {
            self.quota.record(usage);
            if let Some((used, max)) = self.quota.last() {
                self.metrics.api_usage(used, max);
            }
        }
        let response_headers = response.headers().clone();
        let body = self
            .read_body(response)
            .await
            .map_err(|e| SfError::Transient {
                url: shown.clone(),
                detail: transport_detail(&e),
                retry_after: None,
            })?;
        if (200..300).contains(&status) {
            Ok((response_headers, body))
        } else {
            Err(SfError::from_response(&shown, status, retry_after, &body))
        }
    }

    /// Reads a response body into a pooled buffer (`bytes()` would collect the chunks and then
    /// copy them into a fresh allocation of the body's size, for every page).
    async fn read_body(&self, mut response: reqwest::Response) -> reqwest::Result<Bytes> {
        /// A Content-Length is only a hint: past this, the buffer grows as data really arrives.
        const MAX_RESERVE: u64 = 64 << 20;
        let mut body = self.responses.take();
        body.reserve(response.content_length().unwrap_or(0).min(MAX_RESERVE) as usize);
        while let Some(chunk) = response.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(body))
    }

    /// Like [`get`](Self::get) for any method, with an optional JSON body, returning headers too.
    ///
    /// # Errors
    /// As for [`get`](Self::get).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        headers: &[(&str, String)],
        json: Option<&serde_json::Value>,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), SfError> {
        self.retrying(|| async {
            match self
                .send_once(method.clone(), path_and_query, headers, json)
                .await
            {
                Err(e) if e.is_session_expired() && self.credentials.can_refresh() => {
                    self.metrics.retry(RetryCause::SalesforceSessionRefresh);
                    *self.session.write().await = login(&self.http, &self.credentials).await?;
                    self.send_once(method.clone(), path_and_query, headers, json)
                        .await
                }
                other => other,
            }
        })
        .await
    }

    /// The org's API usage as last reported, and the calls this client made.
    pub fn usage(&self) -> &Quota {
        &self.quota
    }

    /// Records deleted in `[start, end)` as getDeleted reports them: (Id, deletion time).
    /// Salesforce keeps them for about 15 days and answers windows of at most 30 days.
    ///
    /// # Errors
    /// The window is refused (INVALID_REPLICATION_DATE) or the call failed.
    pub async fn get_deleted(
        &self,
        object: &str,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<(String, String)>, SfError> {
        #[derive(Deserialize)]
        struct Deleted {
            id: String,
            #[serde(rename = "deletedDate")]
            deleted_date: String,
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "deletedRecords", default)]
            deleted_records: Vec<Deleted>,
        }
        let enc = |t: chrono::DateTime<chrono::Utc>| {
            url::form_urlencoded::byte_serialize(common::sftime::format_soql(t).as_bytes())
                .collect::<String>()
        };
        let path = format!(
            "{}/sobjects/{object}/deleted/?start={}&end={}",
            self.data_path(),
            enc(start),
            enc(end)
        );
        let body = self.get(&path, &[]).await?;
        let answer: Answer = serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            url: path,
            detail: format!("getDeleted answer not understood: {e}"),
        })?;
        Ok(answer
            .deleted_records
            .into_iter()
            .map(|d| (d.id, d.deleted_date))
            .collect())
    }

    /// Describes one object.
    ///
    /// # Errors
    /// The object does not exist (a message naming it), or the call failed.
    pub async fn describe(&self, object: &str) -> Result<Describe, SfError> {
        let path = format!("{}/sobjects/{object}/describe", self.data_path());
        let body = self.get(&path, &[]).await.map_err(|e| match e {
            SfError::Api { status: 404, .. } => SfError::Config(format!("object {object:?} does not exist in this org (describe answered NOT_FOUND); check --object against Setup > Object Manager")),
            other => other,
        })?;
        serde_json::from_slice(&body).map_err(|e| SfError::Protocol {
            url: path,
            detail: format!("describe result not understood: {e}"),
        })
    }

    /// Runs SOQL through `query` (or `queryAll`, which includes deleted records) and returns
    /// the first page's raw body, checked to be a query result (a garbled one is fetched
    /// again).
    ///
    /// # Errors
    /// Salesforce refused the query, or the call failed after retries.
    pub async fn query(
        &self,
        soql: &str,
        include_deleted: bool,
        batch_size: u32,
    ) -> Result<Bytes, SfError> {
        let resource = if include_deleted { "queryAll" } else { "query" };
        let encoded: String = url::form_urlencoded::byte_serialize(soql.as_bytes()).collect();
        let path = format!("{}/{resource}?q={encoded}", self.data_path());
        self.get_checked(
            &path,
            &[("Sforce-Query-Options", format!("batchSize={batch_size}"))],
            |body| QueryPage::parse(body, resource).map(drop),
        )
        .await
    }

    /// Fetches the page a `nextRecordsUrl` points at (a path relative to the instance).
    ///
    /// # Errors
    /// The locator is invalid or expired (`INVALID_QUERY_LOCATOR`), or the call failed.
    pub async fn query_more(
        &self,
        next_records_url: &str,
        batch_size: u32,
    ) -> Result<Bytes, SfError> {
        if !next_records_url.starts_with("/services/data/") {
            return Err(SfError::Protocol {
                url: next_records_url.to_owned(),
                detail: "nextRecordsUrl is not a /services/data/ path".into(),
            });
        }
        self.get_checked(
            next_records_url,
            &[("Sforce-Query-Options", format!("batchSize={batch_size}"))],
            |body| QueryPage::parse(body, next_records_url).map(drop),
        )
        .await
    }
}

/// The URL without its query string, for messages (the query holds a long SOQL statement).
fn shown_url(url: &str) -> String {
    url.split_once('?').map_or(url, |(path, _)| path).to_owned()
}
