//! What `/livez` and `/readyz` answer, for an orchestrator's probes (served on the metrics
//! address, see [`crate::metrics`]).
//!
//! - `/livez`: 200 while the process runs its main loop; 503 once that loop has ended in a
//!   way the process cannot leave by itself. An orchestrator restarts a process that is not
//!   live, so nothing that recovers on its own (a lost broker, a database outage) makes it so.
//! - `/readyz`: 200 when every check the process registered passes (a worker: connected to the
//!   database, and connected to the broker and consuming), else 503 with one line per failing
//!   check and why. It is 503 from the start until the checks first pass, and again once the
//!   process is stopping.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

/// The process's checks, shared by its parts.
#[derive(Debug)]
pub struct Health {
    /// Each check, and why it fails (`None`: it passes).
    checks: Mutex<BTreeMap<&'static str, Option<String>>>,
    stopping: AtomicBool,
    dead: Mutex<Option<String>>,
}

impl Health {
    /// `checks`, each failing with "starting" until it is first passed.
    pub fn new(checks: &[&'static str]) -> Self {
        Self {
            checks: Mutex::new(
                checks
                    .iter()
                    .map(|name| (*name, Some("starting".to_owned())))
                    .collect(),
            ),
            stopping: AtomicBool::new(false),
            dead: Mutex::new(None),
        }
    }

    fn checks(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Option<String>>> {
        self.checks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `check` passes.
    pub fn pass(&self, check: &'static str) {
        self.checks().insert(check, None);
    }

    /// `check` fails because of `reason`.
    pub fn fail(&self, check: &'static str, reason: impl Into<String>) {
        self.checks().insert(check, Some(reason.into()));
    }

    /// The process is stopping: not ready any more, whatever the checks say.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The main loop ended for good (`reason`): not live any more.
    pub fn dead(&self, reason: impl Into<String>) {
        *self.dead.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.into());
    }

    /// Whether the process is live, and the body that says so.
    pub fn liveness(&self) -> (bool, String) {
        match &*self.dead.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(reason) => (false, format!("not live: {reason}\n")),
            None => (true, "live\n".to_owned()),
        }
    }

    /// Whether the process is ready, and the body that says so (each failing check on a line).
    pub fn readiness(&self) -> (bool, String) {
        if self.stopping.load(Ordering::Relaxed) {
            return (false, "not ready: stopping\n".to_owned());
        }
        let failing: Vec<String> = self
            .checks()
            .iter()
            .filter_map(|(name, reason)| reason.as_ref().map(|r| format!("{name}: {r}")))
            .collect();
        if failing.is_empty() {
            (true, "ready\n".to_owned())
        } else {
            (false, format!("not ready\n{}\n", failing.join("\n")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes_and_not_stopping() {
        let health = Health::new(&["database", "broker"]);
        let (ready, body) = health.readiness();
        assert!(!ready);
        assert_eq!(body, "not ready\nbroker: starting\ndatabase: starting\n");
        health.pass("database");
        health.pass("broker");
        assert_eq!(health.readiness(), (true, "ready\n".to_owned()));
        health.fail("broker", "lost the RabbitMQ connection; reconnecting");
        assert_eq!(
            health.readiness(),
            (
                false,
                "not ready\nbroker: lost the RabbitMQ connection; reconnecting\n".to_owned()
            )
        );
        health.pass("broker");
        health.stopping();
        assert_eq!(health.readiness().1, "not ready: stopping\n");
        assert!(health.liveness().0);
        health.dead("the consume loop failed");
        assert_eq!(
            health.liveness(),
            (false, "not live: the consume loop failed\n".to_owned())
        );
    }
}
