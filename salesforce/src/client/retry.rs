//! Retrying Salesforce calls: the policy (bounded and jittered, slower for the org's request
//! limit) and running one attempt under it.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use common::metrics::RetryCause;

use super::SalesforceClient;
use crate::SfError;

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
    pub(super) fn backoff(&self) -> ExponentialBuilder {
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

impl<M: crate::ApiMetrics> SalesforceClient<M> {
    /// Runs `attempt` until it succeeds or fails for good: transient failures are retried
    /// with [`RetryPolicy::backoff`] (honouring Retry-After), and 403 `REQUEST_LIMIT_EXCEEDED`
    /// with the slower [`RetryPolicy::limit_backoff`] around that; when the limit never lifts,
    /// the error says so ([`SfError::RequestLimit`]).
    pub(super) async fn retrying<T, F, Fut>(&self, attempt: F) -> Result<T, SfError>
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
}
