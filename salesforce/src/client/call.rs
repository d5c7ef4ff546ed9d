//! One authenticated call: the request with its bearer token, the quota checked before and the
//! usage recorded after, the body read into a pooled buffer, one fresh login when the session
//! has expired, all under `SalesforceClient::retrying`.

use std::{future::Future, time::Duration};

use bytes::Bytes;
use common::metrics::RetryCause;
use secrecy::ExposeSecret;

use super::SalesforceClient;
use crate::{SfError, auth::login};

/// One request as the client sends it, once per attempt.
#[derive(Clone, Copy)]
struct Request<'a> {
    method: &'a reqwest::Method,
    /// Under the instance URL: `/services/data/...`.
    path_and_query: &'a str,
    headers: &'a [(&'a str, String)],
    json: Option<&'a serde_json::Value>,
}

impl<M: crate::ApiMetrics> SalesforceClient<M> {
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
    pub(crate) async fn get_checked(
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
        let request = Request {
            method: &method,
            path_and_query,
            headers,
            json,
        };
        self.retrying(|| self.refreshing(|| self.send_once(request)))
            .await
    }

    /// Like [`send`](Self::send), with `check` run on every 2xx body inside the retries: what
    /// it returns is the answer, and an error it finds transient is sent again, as a transient
    /// answer of the whole call would be (a Composite call reads its subrequests' statuses
    /// here).
    pub(crate) async fn send_checked<T>(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        json: Option<&serde_json::Value>,
        check: impl Fn(&[u8]) -> Result<T, SfError>,
    ) -> Result<T, SfError> {
        let request = Request {
            method: &method,
            path_and_query,
            headers: &[],
            json,
        };
        self.retrying(|| async {
            let (_, body) = self.refreshing(|| self.send_once(request)).await?;
            let checked = check(&body);
            self.recycle_body(body);
            checked
        })
        .await
    }

    /// One GET, refreshing an expired session once; an expired token that cannot be refreshed
    /// is a setting to fix.
    async fn get_once_refreshing(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Bytes, SfError> {
        match self
            .refreshing(|| self.get_once(path_and_query, headers))
            .await
        {
            Err(e) if e.is_session_expired() && !self.credentials.can_refresh() => {
                Err(SfError::Config(format!(
                    "{e}. SF_ACCESS_TOKEN cannot be refreshed: set SF_LOGIN_URL, SF_CLIENT_ID and SF_CLIENT_SECRET so sfsync can log in again"
                )))
            }
            other => other,
        }
    }

    /// Runs `call`; when the session has expired and the credentials can log in again, logs
    /// in and runs it once more.
    async fn refreshing<T, F, Fut>(&self, call: F) -> Result<T, SfError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SfError>>,
    {
        match call().await {
            Err(e) if e.is_session_expired() && self.credentials.can_refresh() => {
                tracing::info!("Salesforce session expired; logging in again.");
                self.metrics.retry(RetryCause::SalesforceSessionRefresh);
                *self.session.write().await = login(&self.http, &self.credentials).await?;
                call().await
            }
            other => other,
        }
    }

    async fn get_once(
        &self,
        path_and_query: &str,
        headers: &[(&str, String)],
    ) -> Result<Bytes, SfError> {
        self.send_once(Request {
            method: &reqwest::Method::GET,
            path_and_query,
            headers,
            json: None,
        })
        .await
        .map(|(_, body)| body)
    }

    /// One authenticated request: checks the quota first, counts the call and records the usage
    /// Salesforce reports. Returns the response headers and body of a 2xx answer.
    async fn send_once(
        &self,
        request: Request<'_>,
    ) -> Result<(reqwest::header::HeaderMap, Bytes), SfError> {
        let Request {
            method,
            path_and_query,
            headers,
            json,
        } = request;
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
            .request(method.clone(), &url)
            .bearer_auth(token.expose_secret());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(json) = json {
            request = request.json(json);
        }
        let shown = shown_url(&url);
        self.quota.count_call();
        let response = request
            .send()
            .await
            .map_err(|e| SfError::transport(&shown, &e))?;
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
            .map_err(|e| SfError::transport(&shown, &e))?;
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
}

/// The URL without its query string, for messages (the query holds a long SOQL statement).
fn shown_url(url: &str) -> String {
    url.split_once('?').map_or(url, |(path, _)| path).to_owned()
}
