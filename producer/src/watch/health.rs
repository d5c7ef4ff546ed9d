//! Each object's health in `sync --watch`: when it last succeeded, its last error, and how many
//! passes in a row it has failed. A failing object backs off (the interval, doubled with each
//! failure, capped at [`MAX_BACKOFF`]) while the others go on at their interval; the state is
//! written to `sfsync.watch_objects` for `producer status`.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The longest a failing object waits between two tries.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// One object's state.
#[derive(Debug, Clone, Default)]
struct ObjectHealth {
    last_success: Option<DateTime<Utc>>,
    last_error: Option<(String, DateTime<Utc>)>,
    failures: u32,
    /// Not tried again before this.
    retry_at: Option<(Instant, DateTime<Utc>)>,
}

/// The objects of a watch, by name.
#[derive(Debug)]
pub struct Health {
    interval: Duration,
    objects: HashMap<String, ObjectHealth>,
}

impl Health {
    pub fn new(objects: &[String], interval: Duration) -> Self {
        Self {
            interval,
            objects: objects
                .iter()
                .map(|o| (o.clone(), ObjectHealth::default()))
                .collect(),
        }
    }

    /// Whether `object` may be synced now (it is not backing off).
    pub fn ready(&self, object: &str, now: Instant) -> bool {
        self.objects
            .get(object)
            .and_then(|h| h.retry_at)
            .is_none_or(|(at, _)| now >= at)
    }

    pub fn succeeded(&mut self, object: &str) {
        let health = self.objects.entry(object.to_owned()).or_default();
        health.last_success = Some(Utc::now());
        health.failures = 0;
        health.retry_at = None;
    }

    /// Records a failure; returns how long the object now waits.
    pub fn failed(&mut self, object: &str, error: &str) -> Duration {
        let health = self.objects.entry(object.to_owned()).or_default();
        health.failures += 1;
        health.last_error = Some((error.to_owned(), Utc::now()));
        let wait = backoff(self.interval, health.failures);
        health.retry_at = Some((
            Instant::now() + wait,
            Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
        ));
        wait
    }

    /// Consecutive failures of `object`.
    pub fn failures(&self, object: &str) -> u32 {
        self.objects.get(object).map_or(0, |h| h.failures)
    }

    /// Writes every object's state to `sfsync.watch_objects`, with `paused` (the reason the
    /// daemon syncs nothing, if it does not).
    ///
    /// # Errors
    /// The database refused the statement.
    pub async fn save(&self, pool: &PgPool, paused: Option<&str>) -> sqlx::Result<()> {
        for (object, h) in &self.objects {
            sqlx::query(
                "INSERT INTO sfsync.watch_objects
                        (object, last_success_at, last_error, last_error_at, failures, retry_at, paused, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, now())
                 ON CONFLICT (object) DO UPDATE
                    SET last_success_at = coalesce(EXCLUDED.last_success_at, sfsync.watch_objects.last_success_at),
                        last_error = coalesce(EXCLUDED.last_error, sfsync.watch_objects.last_error),
                        last_error_at = coalesce(EXCLUDED.last_error_at, sfsync.watch_objects.last_error_at),
                        failures = EXCLUDED.failures, retry_at = EXCLUDED.retry_at,
                        paused = EXCLUDED.paused, updated_at = now()",
            )
            .bind(object)
            .bind(h.last_success)
            .bind(h.last_error.as_ref().map(|(e, _)| e.as_str()))
            .bind(h.last_error.as_ref().map(|(_, at)| *at))
            .bind(i32::try_from(h.failures).unwrap_or(i32::MAX))
            .bind(h.retry_at.map(|(_, at)| at))
            .bind(paused)
            .execute(pool)
            .await?;
        }
        Ok(())
    }
}

/// The wait after `failures` failures in a row: the interval, doubled with each, capped.
fn backoff(interval: Duration, failures: u32) -> Duration {
    let doubled = interval.saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF.max(interval))
}

/// One object's row of `sfsync.watch_objects`, as `producer status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct WatchStatus {
    pub object: String,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    pub failures: i32,
    pub retry_at: Option<DateTime<Utc>>,
    pub paused: Option<String>,
}

/// Every watched object's row.
///
/// # Errors
/// The database refused the query.
pub async fn status(pool: &PgPool) -> sqlx::Result<Vec<WatchStatus>> {
    sqlx::query_as(
        "SELECT object, last_success_at, last_error, last_error_at, failures, retry_at, paused
           FROM sfsync.watch_objects ORDER BY object",
    )
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_object_waits_longer_each_time_up_to_the_cap() {
        let s = Duration::from_secs;
        assert_eq!(backoff(s(30), 1), s(30));
        assert_eq!(backoff(s(30), 2), s(60));
        assert_eq!(backoff(s(30), 4), s(240));
        assert_eq!(backoff(s(30), 6), MAX_BACKOFF);
        assert_eq!(backoff(s(30), 60), MAX_BACKOFF);
        // An interval above the cap is the wait itself.
        assert_eq!(backoff(s(900), 3), s(900));
    }

    #[test]
    fn only_the_failing_object_backs_off() {
        let objects = vec!["Contact".to_owned(), "Lead".to_owned()];
        let mut health = Health::new(&objects, Duration::from_secs(10));
        let now = Instant::now();
        health.failed("Lead", "boom");
        assert!(health.ready("Contact", now));
        assert!(!health.ready("Lead", now));
        assert!(health.ready("Lead", now + Duration::from_secs(11)));
        health.failed("Lead", "boom");
        assert!(!health.ready("Lead", now + Duration::from_secs(11)));
        assert_eq!(health.failures("Lead"), 2);
        health.succeeded("Lead");
        assert!(health.ready("Lead", now));
        assert_eq!(health.failures("Lead"), 0);
    }
}
