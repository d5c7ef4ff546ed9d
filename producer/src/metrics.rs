//! The producer's Prometheus metrics: pages and records published, retries, pages awaiting
//! confirms, the org's API usage, each object's watermark lag and last sync; a registry per
//! producer, served by [`common::metrics::MetricsListener::serve`].

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError, atomic::AtomicU64},
};

use chrono::{DateTime, Utc};
use common::metrics::{
    CauseLabels, Exposition, Gauge, ObjectLabels, RetryCause, count_retry, render, retries,
};
use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::{Registry, Unit},
};

/// The `reason` label of `sfsync_paused`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// A producer's metrics.
#[derive(Debug)]
pub struct ProducerMetrics {
    registry: Registry,
    records_published: Family<ObjectLabels, Counter>,
    pages_published: Family<ObjectLabels, Counter>,
    retries: Family<CauseLabels, Counter>,
    pages_in_flight: Gauge,
    broker_blocked: Gauge,
    api_calls_used: Gauge,
    api_calls_remaining: Gauge,
    watermark_lag: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    last_sync: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
    push_pending: Family<ObjectLabels, Gauge>,
    paused: Family<ReasonLabels, Gauge>,
    object_failures: Family<ObjectLabels, Gauge>,
    push_oldest_pending: Family<ObjectLabels, Gauge<f64, AtomicU64>>,
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
                RetryCause::SalesforceQueryTimeout,
                RetryCause::BrokerReconnect,
            ],
        );
        let pages_in_flight = Gauge::default();
        registry.register(
            "sfsync_pages_in_flight",
            "Pages published but not yet confirmed by the broker (at most --confirm-window)",
            pages_in_flight.clone(),
        );
        let broker_blocked = common::metrics::broker_blocked(&mut registry);
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
        let paused = Family::default();
        registry.register(
            "sfsync_paused",
            "1 while sync --watch syncs nothing, by reason (\"API quota\": the org's usage is at or past --max-api-usage); 0 once it goes on",
            paused.clone(),
        );
        let object_failures = Family::default();
        registry.register(
            "sfsync_object_failures",
            "Passes in a row in which the object's sync failed (sync --watch; 0 after a success); a failing object is tried again after a growing pause",
            object_failures.clone(),
        );
        let push_pending = Family::default();
        registry.register(
            "sfsync_push_pending_changes",
            "Changes of a writable object waiting in sfsync.outbox to be sent to Salesforce, as producer push --watch last saw them",
            push_pending.clone(),
        );
        let push_oldest_pending = Family::default();
        registry.register_with_unit(
            "sfsync_push_oldest_pending_age",
            "How long the oldest change waiting in sfsync.outbox has waited (0 when none waits), as producer push --watch last saw it",
            Unit::Seconds,
            push_oldest_pending.clone(),
        );
        Self {
            registry,
            records_published,
            pages_published,
            retries,
            pages_in_flight,
            broker_blocked,
            api_calls_used,
            api_calls_remaining,
            watermark_lag,
            last_sync,
            push_pending,
            push_oldest_pending,
            paused,
            object_failures,
            watermarks: Mutex::default(),
        }
    }

    /// The write-back outbox of `object` as `producer push --watch` last saw it: changes
    /// waiting to be sent, and how old the oldest of them is (0 when none waits).
    pub fn outbox(&self, object: &str, pending: i64, oldest_pending_secs: f64) {
        let labels = Self::labels(object);
        self.push_pending.get_or_create(&labels).set(pending);
        self.push_oldest_pending
            .get_or_create(&labels)
            .set(oldest_pending_secs);
    }

    /// Whether `sync --watch` is paused for `reason`.
    pub fn paused(&self, reason: &str, paused: bool) {
        self.paused
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .set(i64::from(paused));
    }

    /// Passes in a row in which `object`'s sync failed.
    pub fn object_failures(&self, object: &str, failures: u32) {
        self.object_failures
            .get_or_create(&Self::labels(object))
            .set(i64::from(failures));
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
        count_retry(&self.retries, cause);
    }

    /// The gauge of pages awaiting confirms, for the publisher to keep current.
    /// `sfsync_broker_blocked`, for the broker connection to keep.
    pub fn broker_blocked(&self) -> Gauge {
        self.broker_blocked.clone()
    }

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
    use common::metrics::sample;

    use super::*;

    #[test]
    fn producer_series_have_the_documented_names() {
        let m = ProducerMetrics::new();
        m.published("Contact", 2, 4000);
        m.api_usage(120, 15000);
        m.watermark("Contact", Utc::now() - chrono::Duration::seconds(60));
        m.watermark("Contact", Utc::now() - chrono::Duration::seconds(3600));
        m.outbox("Contact", 12, 4.5);
        let text = m.render();
        assert_eq!(
            sample(&text, r#"sfsync_push_pending_changes{object="Contact"}"#),
            Some(12.0),
            "{text}"
        );
        assert_eq!(
            sample(
                &text,
                r#"sfsync_push_oldest_pending_age_seconds{object="Contact"}"#
            ),
            Some(4.5)
        );
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
}
