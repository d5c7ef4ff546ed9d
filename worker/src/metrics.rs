//! The worker's Prometheus metrics: records stored and dead-lettered, rows written, values
//! sanitized, upsert time, retries and pages in work; a registry per worker, served by
//! [`common::metrics::MetricsListener::serve`].

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
    time::Duration,
};

use common::metrics::{
    CauseLabels, Exposition, Gauge, ObjectLabels, RetryCause, count_retry, render, retries,
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        histogram::{Histogram, exponential_buckets},
    },
    registry::{Registry, Unit},
};

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Buckets of `sfsync_upsert_duration_seconds`: 5 ms to 41 s, doubling (a page is up to
/// 2,000 records; ~20 ms is typical, seconds mean lock waits or a bisected page).
fn upsert_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// The labels of `sfsync_push_records_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    object: String,
    /// create, update or delete
    op: &'static str,
    /// applied, refused or superseded
    outcome: &'static str,
}

/// The labels of `sfsync_values_sanitized_total`: the object and the field (API names).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FieldLabels {
    object: String,
    field: String,
}

/// A worker's metrics.
#[derive(Debug)]
pub struct WorkerMetrics {
    values_sanitized: Family<FieldLabels, Counter>,
    registry: Registry,
    records_stored: Family<ObjectLabels, Counter>,
    rows_written: Family<ObjectLabels, Counter>,
    records_dead_lettered: Family<ObjectLabels, Counter>,
    upsert_duration: Family<ObjectLabels, Histogram, fn() -> Histogram>,
    retries: Family<CauseLabels, Counter>,
    broker_blocked: Gauge,
    pages_in_flight: Gauge,
    push_records: Family<PushLabels, Counter>,
    api_calls_used: Gauge,
    api_calls_remaining: Gauge,
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
        let values_sanitized = Family::default();
        registry.register(
            "sfsync_values_sanitized",
            "Values stored with characters PostgreSQL cannot hold (NUL) left out, by object and field",
            values_sanitized.clone(),
        );
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
        let broker_blocked = common::metrics::broker_blocked(&mut registry);
        let push_records = Family::default();
        registry.register(
            "sfsync_push_records",
            "Write-back changes this worker finished, by object, op (create, update, delete) and outcome (applied; refused by Salesforce and dead-lettered; superseded: the row was gone, its delete follows)",
            push_records.clone(),
        );
        let api_calls_used = Gauge::default();
        registry.register(
            "sfsync_api_calls_used",
            "The org's API calls used today, as the last write-back answer reported",
            api_calls_used.clone(),
        );
        let api_calls_remaining = Gauge::default();
        registry.register(
            "sfsync_api_calls_remaining",
            "The org's API calls left today, as the last write-back answer reported",
            api_calls_remaining.clone(),
        );
        Self {
            push_records,
            api_calls_used,
            api_calls_remaining,
            values_sanitized,
            registry,
            records_stored,
            rows_written,
            records_dead_lettered,
            upsert_duration,
            retries,
            pages_in_flight,
            broker_blocked,
            objects: RwLock::default(),
        }
    }

    /// `sfsync_broker_blocked`, for the broker connections to keep.
    pub fn broker_blocked(&self) -> Gauge {
        self.broker_blocked.clone()
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

    /// `values` values of `object`'s `field` were stored with their NUL characters left out.
    pub fn sanitized(&self, object: &str, field: &str, values: u64) {
        self.values_sanitized
            .get_or_create(&FieldLabels {
                object: object.to_owned(),
                field: field.to_owned(),
            })
            .inc_by(values);
    }

    pub fn retry(&self, cause: RetryCause) {
        count_retry(&self.retries, cause);
    }

    /// A push batch of `object` was applied: `op` (create, update, delete) and how many of its
    /// records ended each way.
    pub fn pushed(
        &self,
        object: &str,
        op: &'static str,
        applied: u64,
        refused: u64,
        superseded: u64,
    ) {
        for (outcome, n) in [
            ("applied", applied),
            ("refused", refused),
            ("superseded", superseded),
        ] {
            if n > 0 {
                self.push_records
                    .get_or_create(&PushLabels {
                        object: object.to_owned(),
                        op,
                        outcome,
                    })
                    .inc_by(n);
            }
        }
    }

    /// Counts a page as in work until the returned guard is dropped (also when its task is
    /// aborted).
    pub fn page_started(&self) -> InFlight {
        self.pages_in_flight.inc();
        InFlight(self.pages_in_flight.clone())
    }
}

/// The write-back client reports here.
impl salesforce::ApiMetrics for WorkerMetrics {
    fn retry(&self, cause: RetryCause) {
        WorkerMetrics::retry(self, cause);
    }

    fn api_usage(&self, used: u64, max: u64) {
        self.api_calls_used.set(used as i64);
        self.api_calls_remaining
            .set(max.saturating_sub(used) as i64);
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

#[cfg(test)]
mod tests {
    use common::metrics::sample;

    use super::*;

    #[test]
    fn worker_series_have_the_documented_names() {
        let m = WorkerMetrics::new();
        let contact = m.object("Contact");
        contact.stored(1998, 1990);
        contact.dead_lettered(2);
        contact.upsert_took(Duration::from_millis(30));
        m.retry(RetryCause::Database);
        m.sanitized("Contact", "Description", 3);
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
        assert_eq!(
            sample(
                &text,
                r#"sfsync_values_sanitized_total{object="Contact",field="Description"}"#
            ),
            Some(3.0)
        );
        assert_eq!(sample(&text, "sfsync_pages_in_flight"), Some(1.0));
        drop(guard);
        assert_eq!(sample(&m.render(), "sfsync_pages_in_flight"), Some(0.0));
        // The same handles on the next page.
        assert!(Arc::ptr_eq(&contact, &m.object("Contact")));
    }
}
