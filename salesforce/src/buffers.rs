//! Page-sized byte buffers, reused from page to page.
//!
//! A page passes through two large buffers: the HTTP response (about 2 MB for 2,000 REST
//! records, 3.5 MB for a Bulk CSV chunk of 5,000) and the message body built from it.
//! Allocated afresh for every page, they make the producer's resident memory creep up for the
//! first few hundred thousand records as the allocator's arenas fragment, so a short sync peaks
//! far lower than a long one. Taken from a pool instead, the buffers the pipeline needs
//! are allocated in its first pages and reused: memory reaches its steady state early and
//! stays there, whatever the number of records. Responses and messages have a pool each, so
//! that a message buffer never grows to a Bulk chunk's size.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Buffers kept for reuse, at most, per pool: more than a sync holds at once (one response,
/// [`MESSAGES_AT_ONCE`] messages), with room for a retried response.
const KEPT: usize = 4;

/// Message bodies that exist at once during a sync. One is enough: the next page's HTTP call
/// (the slow part) still runs while this page is published, only building its message waits,
/// and publishing is a copy into the AMQP frames, so a second one makes nothing faster. The
/// bound also makes the peak memory the same for a short sync as for a long one: with a deeper
/// pipeline, a long sync eventually has a moment where publishing lags and pages pile up,
/// which a short one never reaches.
pub const MESSAGES_AT_ONCE: usize = 1;

/// A bounded free list of byte buffers, shared by the fetcher and the publisher.
#[derive(Clone, Default)]
pub struct BufferPool {
    free: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl BufferPool {
    /// An empty buffer, with the capacity of one given back earlier when there is one.
    pub fn take(&self) -> Vec<u8> {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Keeps `buffer`'s allocation for a later [`take`](Self::take), unless enough are kept.
    pub fn give(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() == 0 {
            return;
        }
        buffer.clear();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < KEPT {
            free.push(buffer);
        }
    }

    /// Gives back the allocation behind `bytes` when nothing else shares it (a response body
    /// whose records have been copied out); otherwise it is simply dropped.
    pub fn give_bytes(&self, bytes: Bytes) {
        if let Ok(unique) = bytes.try_into_mut() {
            self.give(unique.into());
        }
    }

    /// Buffers currently kept.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A [`BufferPool`] of which at most a fixed number of buffers are out at once.
pub struct BoundedPool {
    pool: BufferPool,
    slots: Arc<Semaphore>,
}

/// The right to hold one buffer of a [`BoundedPool`]; dropping it (with the message that holds
/// the buffer, on any path) lets the next [`BoundedPool::take`] go ahead.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl BoundedPool {
    pub fn new(at_once: usize) -> Self {
        Self {
            pool: BufferPool::default(),
            slots: Arc::new(Semaphore::new(at_once.max(1))),
        }
    }

    /// An empty buffer and its slot; waits while `at_once` buffers are out.
    pub async fn take(&self) -> (Vec<u8>, Slot) {
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the semaphore is private and never closed"));
        (self.pool.take(), Slot { _permit: permit })
    }

    /// Keeps `buffer` for the next [`take`](Self::take); its slot is freed when dropped.
    pub fn give(&self, buffer: Vec<u8>) {
        self.pool.give(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_empty_with_its_capacity() {
        let pool = BufferPool::default();
        let mut buffer = pool.take();
        buffer.extend_from_slice(&[7; 100_000]);
        let capacity = buffer.capacity();
        pool.give(buffer);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!(again.capacity(), capacity);
    }

    #[test]
    fn a_response_body_comes_back_without_a_copy_unless_it_is_shared() {
        let pool = BufferPool::default();
        let mut buffer = Vec::with_capacity(50_000);
        buffer.extend_from_slice(b"{\"records\":[]}");
        let address = buffer.as_ptr();
        pool.give_bytes(Bytes::from(buffer));
        let again = pool.take();
        assert_eq!(again.as_ptr(), address, "the same allocation is reused");
        assert!(again.capacity() >= 50_000);

        let shared = Bytes::from(vec![1u8; 1000]);
        let _other = shared.clone();
        pool.give_bytes(shared);
        assert_eq!(pool.kept(), 0, "a shared body is not taken over");
    }

    #[tokio::test]
    async fn a_bounded_pool_waits_until_a_slot_is_dropped() {
        let pool = BoundedPool::new(2);
        let (first, first_slot) = pool.take().await;
        let (_second, _second_slot) = pool.take().await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), pool.take()).await;
        assert!(
            third.is_err(),
            "a third buffer was handed out while two were held"
        );
        pool.give(first);
        drop(first_slot);
        let (third, _slot) = tokio::time::timeout(std::time::Duration::from_secs(5), pool.take())
            .await
            .expect("a slot was freed");
        assert!(third.is_empty());
    }

    #[test]
    fn at_most_kept_buffers_are_held() {
        let pool = BufferPool::default();
        for _ in 0..KEPT + 5 {
            pool.give(Vec::with_capacity(10));
        }
        assert_eq!(pool.kept(), KEPT);
        pool.give(Vec::new());
        assert_eq!(pool.kept(), KEPT);
    }
}
