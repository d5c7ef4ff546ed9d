//! Prometheus metrics: the `--metrics-addr` setting, the worker's and the producer's metrics
//! (a registry each, with a named handle per metric), and the `GET /metrics` endpoint.
//!
//! Every worker and producer owns its registry, none is global: two workers in one process
//! (as in the tests) count apart, as two processes would. The exposition is the OpenMetrics
//! text format, which Prometheus scrapes natively.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError, RwLock, atomic::AtomicU64},
    time::Duration,
};

use chrono::{DateTime, Utc};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};
use tokio::task::JoinHandle;

use crate::config::SettingError;

/// The gauge type of the handles given out (a plain integer gauge).
pub use prometheus_client::metrics::gauge::Gauge;

/// How the setting is named in errors: the flag and its environment variable.
pub const SETTING: &str = "--metrics-addr/SFSYNC_METRICS_ADDR";

/// The OpenMetrics text format, as Prometheus asks for it.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where to serve metrics; flattened into the worker's and the producer's flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://HOST:PORT/metrics, e.g. 0.0.0.0:9898 (all
    /// interfaces) or 127.0.0.1:9898. Off when unset. Port 0 takes a free port; the address
    /// bound is logged at startup.
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

    /// Serves `GET /metrics` until the returned server is dropped. Logs the address at INFO.
    pub fn serve(self, metrics: Arc<dyn Exposition>) -> MetricsServer {
        let addr = self.addr;
        tracing::info!(metrics_addr = %addr, "Serving Prometheus metrics at /metrics.");
        let app = axum::Router::new().route(
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

/// Serves `metrics` on `listener` when there is one.
pub fn serve(
    listener: Option<MetricsListener>,
    metrics: Arc<dyn Exposition>,
) -> Option<MetricsServer> {
    listener.map(|l| l.serve(metrics))
}

/// The `object` label: a Salesforce API name such as `Contact`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub object: String,
}

/// The `cause` label of `sfsync_retries_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    cause: &'static str,
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
        }
    }
}

/// `sfsync_retries_total`, with a series for each of `causes` from the start (so `rate()`
/// sees the first retry).
fn retries(registry: &mut Registry, causes: &[RetryCause]) -> Family<CauseLabels, Counter> {
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

fn render(registry: &Registry) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, registry);
    out
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Buckets of `sfsync_upsert_duration_seconds`: 5 ms to 41 s, doubling (a page is up to
/// 2,000 records; ~20 ms is typical, seconds mean lock waits or a bisected page).
fn upsert_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// A worker's metrics.
#[derive(Debug)]
pub struct WorkerMetrics {
    registry: Registry,
    records_stored: Family<ObjectLabels, Counter>,
    rows_written: Family<ObjectLabels, Counter>,
    records_dead_lettered: Family<ObjectLabels, Counter>,
    upsert_duration: Family<ObjectLabels, Histogram, fn() -> Histogram>,
    retries: Family<CauseLabels, Counter>,
    pages_in_flight: Gauge,
    /// Each object's handles, made once: a page costs one read lock and no allocation.
    objects: RwLock<HashMap<String, Arc<ObjectMetrics>>>,
}

/// One object's series in a worker.
#[derive(Debug)]
pub struct ObjectMetrics {
    records_stored: Counter,
    rows_written: Counter,
    records_dead_lettered: Counter,
    upsert_duration: Histogram,
}

impl ObjectMetrics {
    /// A page's transaction committed: `records` records stored (`rows` of them changed a row).
    pub fn stored(&self, records: u64, rows: u64) {
        self.records_stored.inc_by(records);
        self.rows_written.inc_by(rows);
    }

    /// How long storing one page took (COPY, upsert, bookkeeping and commit).
    pub fn upsert_took(&self, took: Duration) {
        self.upsert_duration.observe(took.as_secs_f64());
    }

    /// `n` dead letters of this object were confirmed by the broker.
    pub fn dead_lettered(&self, n: u64) {
        self.records_dead_lettered.inc_by(n);
    }
}

impl Default for WorkerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl WorkerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let records_stored = Family::default();
        registry.register(
            "sfsync_records_stored",
            "Records committed to their table (inserted, updated, marked deleted, or already current), by object",
            records_stored.clone(),
        );
        let rows_written = Family::default();
        registry.register(
            "sfsync_rows_written",
            "Rows the upserts actually inserted, updated or deleted (records older than the stored row change nothing), by object",
            rows_written.clone(),
        );
        let records_dead_lettered = Family::default();
        registry.register(
            "sfsync_records_dead_lettered",
            "Dead letters confirmed by the broker, by object: one per record set aside, or one per message that could not be handled as a page (object \"unknown\" when it is not an sfsync page)",
            records_dead_lettered.clone(),
        );
        let upsert_duration = Family::new_with_constructor(upsert_histogram as fn() -> Histogram);
        registry.register_with_unit(
            "sfsync_upsert_duration",
            "Time to store one page: COPY, upsert, bookkeeping and commit, by object",
            Unit::Seconds,
            upsert_duration.clone(),
        );
        let retries = retries(
            &mut registry,
            &[RetryCause::Database, RetryCause::BrokerReconnect],
        );
        let pages_in_flight = Gauge::default();
        registry.register(
            "sfsync_pages_in_flight",
            "Pages this worker is storing right now (at most --concurrency)",
            pages_in_flight.clone(),
        );
        Self {
            registry,
            records_stored,
            rows_written,
            records_dead_lettered,
            upsert_duration,
            retries,
            pages_in_flight,
            objects: RwLock::default(),
        }
    }

    /// The handles of one object's series, created on first use.
    pub fn object(&self, object: &str) -> Arc<ObjectMetrics> {
        if let Some(found) = read(&self.objects).get(object) {
            return found.clone();
        }
        let labels = ObjectLabels {
            object: object.to_owned(),
        };
        let made = Arc::new(ObjectMetrics {
            records_stored: self.records_stored.get_or_create(&labels).clone(),
            rows_written: self.rows_written.get_or_create(&labels).clone(),
            records_dead_lettered: self.records_dead_lettered.get_or_create(&labels).clone(),
            upsert_duration: self.upsert_duration.get_or_create(&labels).clone(),
        });
        self.objects
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(labels.object)
            .or_insert(made)
            .clone()
    }

    pub fn retry(&self, cause: RetryCause) {
        self.retries
            .get_or_create(&CauseLabels {
                cause: cause.as_str(),
            })
            .inc();
    }

    /// Counts a page as in work until the returned guard is dropped (also when its task is
    /// aborted).
    pub fn page_started(&self) -> InFlight {
        self.pages_in_flight.inc();
        InFlight(self.pages_in_flight.clone())
    }
}

impl Exposition for WorkerMetrics {
    fn render(&self) -> String {
        render(&self.registry)
    }
}

/// One page in work; counted down when dropped.
#[derive(Debug)]
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// A producer's metrics.
#[derive(Debug)]
pub struct ProducerMetrics {
    registry: Registry,
    records_published: Family<ObjectLabels, Counter>,
    pages_published: Family<ObjectLabels, Counter>,
    retries: Family<CauseLabels, Counter>,
    pages_in_flight: Gauge,
    api_calls_used: Gauge,
    api_calls_remaining: Gauge,
    watermark_lag: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    last_sync: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    /// Each object's confirmed watermark; the lag is computed from it at each scrape, so it
    /// keeps growing while nothing moves it.
    watermarks: Mutex<HashMap<String, DateTime<Utc>>>,
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ProducerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let records_published = Family::default();
        registry.register(
            "sfsync_records_published",
            "Records published to RabbitMQ and confirmed by the broker, by object",
            records_published.clone(),
        );
        let pages_published = Family::default();
        registry.register(
            "sfsync_pages_published",
            "Pages (messages) published to RabbitMQ and confirmed by the broker, by object",
            pages_published.clone(),
        );
        let retries = retries(
            &mut registry,
            &[
                RetryCause::SalesforceUnavailable,
                RetryCause::SalesforceSessionRefresh,
                RetryCause::SalesforceQueryRestart,
                RetryCause::SalesforceRequestLimit,
                RetryCause::BrokerReconnect,
            ],
        );
        let pages_in_flight = Gauge::default();
        registry.register(
            "sfsync_pages_in_flight",
            "Pages published but not yet confirmed by the broker (at most --confirm-window)",
            pages_in_flight.clone(),
        );
        let api_calls_used = Gauge::default();
        registry.register(
            "sfsync_api_calls_used",
            "The org's API calls used in the last 24 hours, as Salesforce last reported it (Sforce-Limit-Info)",
            api_calls_used.clone(),
        );
        let api_calls_remaining = Gauge::default();
        registry.register(
            "sfsync_api_calls_remaining",
            "The org's API calls left of its daily limit, as Salesforce last reported it",
            api_calls_remaining.clone(),
        );
        let watermark_lag = Family::default();
        registry.register_with_unit(
            "sfsync_watermark_lag",
            "Now minus the object's watermark (the SystemModstamp up to which every change is confirmed on the broker); in a quiet org it grows too",
            Unit::Seconds,
            watermark_lag.clone(),
        );
        let last_sync = Family::default();
        registry.register_with_unit(
            "sfsync_last_sync_completed_timestamp",
            "When the object's last successful sync ended (Unix time)",
            Unit::Seconds,
            last_sync.clone(),
        );
        Self {
            registry,
            records_published,
            pages_published,
            retries,
            pages_in_flight,
            api_calls_used,
            api_calls_remaining,
            watermark_lag,
            last_sync,
            watermarks: Mutex::default(),
        }
    }

    fn labels(object: &str) -> ObjectLabels {
        ObjectLabels {
            object: object.to_owned(),
        }
    }

    /// `pages` pages holding `records` records were confirmed by the broker.
    pub fn published(&self, object: &str, pages: u64, records: u64) {
        let labels = Self::labels(object);
        self.pages_published.get_or_create(&labels).inc_by(pages);
        self.records_published
            .get_or_create(&labels)
            .inc_by(records);
    }

    pub fn retry(&self, cause: RetryCause) {
        self.retries
            .get_or_create(&CauseLabels {
                cause: cause.as_str(),
            })
            .inc();
    }

    /// The gauge of pages awaiting confirms, for the publisher to keep current.
    pub fn pages_in_flight(&self) -> Gauge {
        self.pages_in_flight.clone()
    }

    /// Salesforce reported `api-usage=used/max`.
    pub fn api_usage(&self, used: u64, max: u64) {
        self.api_calls_used
            .set(i64::try_from(used).unwrap_or(i64::MAX));
        self.api_calls_remaining
            .set(i64::try_from(max.saturating_sub(used)).unwrap_or(i64::MAX));
    }

    /// The object's watermark is (at least) `stamp`.
    pub fn watermark(&self, object: &str, stamp: DateTime<Utc>) {
        let mut marks = self
            .watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mark = marks.entry(object.to_owned()).or_insert(stamp);
        *mark = (*mark).max(stamp);
    }

    /// A sync of `object` finished successfully at `at`.
    pub fn sync_completed(&self, object: &str, at: DateTime<Utc>) {
        self.last_sync
            .get_or_create(&Self::labels(object))
            .set(at.timestamp_millis() as f64 / 1000.0);
    }
}

impl Exposition for ProducerMetrics {
    fn render(&self) -> String {
        let now = Utc::now();
        let marks: Vec<(String, DateTime<Utc>)> = self
            .watermarks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(o, w)| (o.clone(), *w))
            .collect();
        for (object, mark) in marks {
            let lag = (now - mark).num_milliseconds() as f64 / 1000.0;
            self.watermark_lag
                .get_or_create(&ObjectLabels { object })
                .set(lag);
        }
        render(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `series` (name and labels), if any.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.split(' ').next()?.parse().ok())
    }

    #[test]
    fn worker_series_have_the_documented_names() {
        let m = WorkerMetrics::new();
        let contact = m.object("Contact");
        contact.stored(1998, 1990);
        contact.dead_lettered(2);
        contact.upsert_took(Duration::from_millis(30));
        m.retry(RetryCause::Database);
        let guard = m.page_started();
        let text = m.render();
        assert_eq!(
            sample(&text, r#"sfsync_records_stored_total{object="Contact"}"#),
            Some(1998.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"sfsync_rows_written_total{object="Contact"}"#),
            Some(1990.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"sfsync_records_dead_lettered_total{object="Contact"}"#
            ),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                r#"sfsync_upsert_duration_seconds_count{object="Contact"}"#
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"sfsync_retries_total{cause="database"}"#),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, r#"sfsync_retries_total{cause="broker_reconnect"}"#),
            Some(0.0)
        );
        assert_eq!(sample(&text, "sfsync_pages_in_flight"), Some(1.0));
        drop(guard);
        assert_eq!(sample(&m.render(), "sfsync_pages_in_flight"), Some(0.0));
        // The same handles on the next page.
        assert!(Arc::ptr_eq(&contact, &m.object("Contact")));
    }

    #[test]
    fn producer_series_have_the_documented_names() {
        let m = ProducerMetrics::new();
        m.published("Contact", 2, 4000);
        m.api_usage(120, 15000);
        m.watermark("Contact", Utc::now() - chrono::Duration::seconds(60));
        m.watermark("Contact", Utc::now() - chrono::Duration::seconds(3600));
        let text = m.render();
        assert_eq!(
            sample(&text, r#"sfsync_records_published_total{object="Contact"}"#),
            Some(4000.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, r#"sfsync_pages_published_total{object="Contact"}"#),
            Some(2.0)
        );
        assert_eq!(sample(&text, "sfsync_api_calls_used"), Some(120.0));
        assert_eq!(sample(&text, "sfsync_api_calls_remaining"), Some(14880.0));
        let lag = sample(&text, r#"sfsync_watermark_lag_seconds{object="Contact"}"#).unwrap();
        assert!(
            (59.0..70.0).contains(&lag),
            "the newer watermark counts: {lag}"
        );
        assert_eq!(
            sample(
                &text,
                r#"sfsync_retries_total{cause="salesforce_unavailable"}"#
            ),
            Some(0.0)
        );
    }

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
