//! Prometheus metrics, the part both binaries share: the `--metrics-addr` setting, the
//! `GET /metrics` endpoint (with the probes `GET /livez` and `GET /readyz`, see
//! [`crate::health`]), and the names and labels both use (`sfsync_retries_total` and its
//! causes, the `object` label). The worker's and the producer's own metrics live in their
//! crates (`worker::metrics`, `producer::metrics`).
//!
//! Every worker and producer owns its registry, none is global: two workers in one process
//! (as in the tests) count apart, as two processes would. The exposition is the OpenMetrics
//! text format, which Prometheus scrapes natively.

use std::{net::SocketAddr, sync::Arc};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};
use tokio::task::JoinHandle;

use crate::{config::SettingError, health::Health};

/// The gauge type of the handles given out (a plain integer gauge).
pub use prometheus_client::metrics::gauge::Gauge;

/// How the setting is named in errors: the flag and its environment variable.
pub const SETTING: &str = "--metrics-addr/SFSYNC_METRICS_ADDR";

/// The OpenMetrics text format, as Prometheus asks for it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where to serve metrics; flattened into the worker's and the producer's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics, and the probes /livez and
    /// /readyz, e.g. 0.0.0.0:9898 (all interfaces) or 127.0.0.1:9898. Off when unset. Port 0
    /// takes a free port; the address bound is logged at startup.
    #[arg(long, env = "SFSYNC_METRICS_ADDR", value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

impl MetricsArgs {
    /// Binds the metrics address, if one is set (an empty value counts as unset).
    ///
    /// # Errors
    /// The value is not `HOST:PORT`, does not resolve, or cannot be bound (in use, not an
    /// address of this host): a [`SettingError`] naming the setting and the value.
    pub async fn bind(&self) -> Result<Option<MetricsListener>, SettingError> {
        let Some(value) = self
            .metrics_addr
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
        else {
            return Ok(None);
        };
        let bad = |e: std::io::Error| SettingError {
            setting: SETTING,
            problem: format!(
                "cannot serve metrics on {value:?}: {e}; expected HOST:PORT such as 127.0.0.1:9898 or 0.0.0.0:9898"
            ),
        };
        let listener = tokio::net::TcpListener::bind(value).await.map_err(bad)?;
        let addr = listener.local_addr().map_err(bad)?;
        Ok(Some(MetricsListener { listener, addr }))
    }
}

/// A bound metrics address, not yet serving. Binding first lets a test (or a caller asking for
/// port 0) learn the address before the service starts.
#[derive(Debug)]
pub struct MetricsListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

/// Something that renders its metrics in the text exposition format.
pub trait Exposition: Send + Sync + 'static {
    fn render(&self) -> String;
}

/// The running `/metrics` endpoint; stops when dropped.
#[derive(Debug)]
pub struct MetricsServer {
    task: JoinHandle<()>,
    addr: SocketAddr,
}

impl MetricsServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsListener {
    /// The address bound (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `GET /metrics`, and `GET /livez` and `GET /readyz` from `health` (see
    /// [`crate::health`]), until the returned server is dropped. Logs the address at INFO.
    pub fn serve(self, metrics: Arc<dyn Exposition>, health: Arc<Health>) -> MetricsServer {
        let addr = self.addr;
        tracing::info!(metrics_addr = %addr, "Serving Prometheus metrics at /metrics, probes at /livez and /readyz.");
        let probe = |answer: fn(&Health) -> (bool, String), health: Arc<Health>| {
            axum::routing::get(move || {
                let (ok, body) = answer(&health);
                let status = if ok {
                    axum::http::StatusCode::OK
                } else {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                };
                async move { (status, body) }
            })
        };
        let app = axum::Router::new()
            .route("/livez", probe(Health::liveness, health.clone()))
            .route("/readyz", probe(Health::readiness, health))
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let metrics = metrics.clone();
                    async move {
                        (
                            [(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)],
                            metrics.render(),
                        )
                    }
                }),
            );
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(self.listener, app).await {
                tracing::warn!(error = %e, metrics_addr = %addr, "The metrics endpoint stopped.");
            }
        });
        MetricsServer { task, addr }
    }
}

/// Serves `metrics` and `health`'s probes on `listener` when there is one.
pub fn serve(
    listener: Option<MetricsListener>,
    metrics: Arc<dyn Exposition>,
    health: Arc<Health>,
) -> Option<MetricsServer> {
    listener.map(|l| l.serve(metrics, health))
}

/// The `object` label: a Salesforce API name such as `Contact`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub object: String,
}

/// The `cause` label of `sfsync_retries_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabels {
    pub cause: &'static str,
}

/// Why something was tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// Worker: storing a page failed transiently (database unreachable, deadlock, serialization
    /// failure, lock timeout); the page is stored again.
    Database,
    /// Worker or producer: a new broker connection after the old one was lost (each attempt).
    BrokerReconnect,
    /// Producer: Salesforce gave no usable answer (5xx, 429, timeout, network error).
    SalesforceUnavailable,
    /// Producer: the access token expired (401 INVALID_SESSION_ID) and sfsync logged in again.
    SalesforceSessionRefresh,
    /// Producer: Salesforce dropped a query cursor (INVALID_QUERY_LOCATOR); the query is run
    /// again from the last stamp fetched.
    SalesforceQueryRestart,
    /// Producer: Salesforce refused a call with 403 REQUEST_LIMIT_EXCEEDED; retried later.
    SalesforceRequestLimit,
    /// Producer: a query or `COUNT()` ran too long (400 QUERY_TIMEOUT); it is run again over
    /// two halves of its stamp window (each narrowing counts once).
    SalesforceQueryTimeout,
}

impl RetryCause {
    pub fn as_str(self) -> &'static str {
        match self {
            RetryCause::Database => "database",
            RetryCause::BrokerReconnect => "broker_reconnect",
            RetryCause::SalesforceUnavailable => "salesforce_unavailable",
            RetryCause::SalesforceSessionRefresh => "salesforce_session_refresh",
            RetryCause::SalesforceQueryRestart => "salesforce_query_restart",
            RetryCause::SalesforceRequestLimit => "salesforce_request_limit",
            RetryCause::SalesforceQueryTimeout => "salesforce_query_timeout",
        }
    }
}

/// `sfsync_retries_total`, with a series for each of `causes` from the start (so `rate()`
/// sees the first retry).
pub fn retries(registry: &mut Registry, causes: &[RetryCause]) -> Family<CauseLabels, Counter> {
    let family = Family::<CauseLabels, Counter>::default();
    for cause in causes {
        let _ = family.get_or_create(&CauseLabels {
            cause: cause.as_str(),
        });
    }
    registry.register(
        "sfsync_retries",
        "Retries, by cause: transient failures that sfsync waited out and tried again",
        family.clone(),
    );
    family
}

/// `sfsync_broker_blocked`: 1 while the broker blocks the process's publishing connection (a
/// memory or disk alarm, see [`crate::blocked`]), else 0.
pub fn broker_blocked(registry: &mut Registry) -> Gauge {
    let gauge = Gauge::default();
    registry.register(
        "sfsync_broker_blocked",
        "1 while RabbitMQ blocks this process's publishing connection (a memory or disk alarm on a node); publishing waits, nothing is lost; 0 otherwise",
        gauge.clone(),
    );
    gauge
}

/// Counts one retry of `cause` in a family made by [`retries`].
pub fn count_retry(family: &Family<CauseLabels, Counter>, cause: RetryCause) {
    family
        .get_or_create(&CauseLabels {
            cause: cause.as_str(),
        })
        .inc();
}

/// The registry in the text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

/// The value of the sample whose name and labels are `series` (e.g.
/// `sfsync_records_stored_total{object="Contact"}`, labels as the exposition writes them), if
/// `text` has it.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bad_addresses_name_the_setting_and_the_value() {
        for bad in ["nonsense", "127.0.0.1", "127.0.0.1:99999"] {
            let err = MetricsArgs {
                metrics_addr: Some(bad.into()),
            }
            .bind()
            .await
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("--metrics-addr/SFSYNC_METRICS_ADDR: ") && err.contains(bad),
                "{err}"
            );
            assert!(!err.contains('\n'), "{err}");
        }
        let off = MetricsArgs {
            metrics_addr: Some(" ".into()),
        };
        assert!(off.bind().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_address_in_use_is_refused_by_name() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let err = MetricsArgs {
            metrics_addr: Some(addr.clone()),
        }
        .bind()
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains(SETTING) && err.contains(&addr), "{err}");
    }
}
