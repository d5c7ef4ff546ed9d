//! Row locks: a write call locks the parents of the records it writes for as long as it runs,
//! as Salesforce locks the Account of a Contact it inserts or updates (and an Account it
//! writes itself). A record whose parent another call in flight holds waits up to
//! [`Faults::lock_wait_ms`](crate::Faults::lock_wait_ms), then fails with
//! `UNABLE_TO_LOCK_ROW`; the call's other records go ahead. [`Faults::write_ms`](crate::Faults::write_ms)
//! is how long a call holds its locks, so that two calls can collide.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::RecordError;

/// How often a waiting call looks again.
const POLL: Duration = Duration::from_millis(5);

/// The locks held by calls in flight: parent Id (18 characters) → the call holding it.
#[derive(Debug, Default)]
pub(crate) struct RowLocks {
    held: Mutex<HashMap<String, u64>>,
    calls: AtomicU64,
}

/// The locks one call holds; released when dropped, however the call ends.
#[derive(Debug)]
pub(crate) struct Held<'a> {
    locks: &'a RowLocks,
    call: u64,
    keys: Vec<String>,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self
            .locks
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            if held.get(key) == Some(&self.call) {
                held.remove(key);
            }
        }
    }
}

impl RowLocks {
    /// Takes the locks each record needs (`wanted[i]`: record i's parent Ids), waiting up to
    /// `wait` for the ones other calls hold. Answers the locks taken and, per record, the
    /// `UNABLE_TO_LOCK_ROW` error of a record whose parent stayed locked.
    pub async fn acquire(
        &self,
        wanted: &[Vec<String>],
        wait: Duration,
    ) -> (Held<'_>, Vec<Option<RecordError>>) {
        let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let mut missing: BTreeSet<&str> = wanted.iter().flatten().map(String::as_str).collect();
        let mut got = Vec::new();
        let deadline = Instant::now() + wait;
        loop {
            {
                let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
                missing.retain(|key| match held.get(*key) {
                    Some(&owner) if owner != call => true,
                    _ => {
                        held.insert((*key).to_owned(), call);
                        got.push((*key).to_owned());
                        false
                    }
                });
            }
            if missing.is_empty() || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        let errors = wanted
            .iter()
            .map(|keys| {
                keys.iter()
                    .find(|k| missing.contains(k.as_str()))
                    .map(|parent| RecordError {
                        status_code: "UNABLE_TO_LOCK_ROW",
                        message: format!(
                            "unable to obtain exclusive access to this record or 1 records: \
                             {parent}"
                        ),
                        fields: Vec::new(),
                    })
            })
            .collect();
        let held = Held {
            locks: self,
            call,
            keys: got,
        };
        (held, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_held_parent_fails_the_other_call_and_is_released_on_drop() {
        let locks = RowLocks::default();
        let a = vec![vec!["001A".to_owned()]];
        let (first, errors) = locks.acquire(&a, Duration::ZERO).await;
        assert!(errors[0].is_none());
        let b = vec![vec!["001A".to_owned()], vec!["001B".to_owned()], vec![]];
        let (_second, errors) = locks.acquire(&b, Duration::from_millis(20)).await;
        let lost = errors[0].as_ref().unwrap();
        assert_eq!(lost.status_code, "UNABLE_TO_LOCK_ROW");
        assert_eq!(
            lost.message,
            "unable to obtain exclusive access to this record or 1 records: 001A"
        );
        assert!(errors[1].is_none() && errors[2].is_none());
        drop(first);
        let (_third, errors) = locks.acquire(&a, Duration::ZERO).await;
        assert!(errors[0].is_none());
    }
}
