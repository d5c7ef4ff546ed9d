//! API usage accounting: the org's usage as `Sforce-Limit-Info` last reported it, the calls
//! this client made, and stopping at `--max-api-usage`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::SfError;

/// The org's API usage as `Sforce-Limit-Info` last reported it, the calls this client made, and
/// the share of the daily limit past which sfsync stops (`--max-api-usage`).
#[derive(Debug, Default)]
pub struct Quota {
    used: AtomicU64,
    max: AtomicU64,
    calls: AtomicU64,
    /// Percent of the daily limit; `None` never stops.
    pub(super) stop_at_percent: Option<f64>,
}

impl Quota {
    /// Parses `api-usage=N/M` (the only form Salesforce sends; suffixes are ignored).
    pub(super) fn record(&self, header: &str) {
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

    pub(super) fn count_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// API calls this client has made (token requests excluded).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Forgets the last reported usage, so that the next call is made (and reports it again)
    /// even if the last report was past the limit: how a paused client learns that the usage
    /// fell, at the cost of one call.
    pub fn forget(&self) {
        self.max.store(0, Ordering::Relaxed);
        self.used.store(0, Ordering::Relaxed);
    }

    /// Last reported (used, max), if any call reported it.
    pub fn last(&self) -> Option<(u64, u64)> {
        let max = self.max.load(Ordering::Relaxed);
        (max > 0).then(|| (self.used.load(Ordering::Relaxed), max))
    }

    /// An error once the last reported usage reaches the limit set.
    ///
    /// # Errors
    /// [`SfError::Quota`]: the last answer reported usage at or past the limit.
    pub fn check(&self) -> Result<(), SfError> {
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
