//! Following a broker connection's `connection.blocked` and `connection.unblocked`.
//!
//! A RabbitMQ node that runs low on memory or disk raises an alarm, and every node of the
//! cluster then blocks the connections that publish: the broker stops reading from them, and
//! lapin stops writing to a blocked connection. Confirms cannot come while that lasts, so the
//! waits in [`crate::confirm`] do not count the time blocked, and a publisher simply waits
//! until the alarm clears: nothing is lost and nothing is given up on. The block is logged
//! once at WARN when it starts and once at INFO when it ends, and kept in a gauge.

use tokio::time::Instant;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use lapin::{Connection, Event};
use tokio::sync::watch;

use crate::metrics::Gauge;

/// The broker blocked a connection's publishing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub since: DateTime<Utc>,
    /// The broker's reason, e.g. "low on disk".
    pub reason: String,
}

/// What a [`BlockWatch`] knows.
#[derive(Debug, Clone, Default)]
struct State {
    /// The block in force.
    block: Option<Block>,
    /// When the last block ended.
    ended: Option<Instant>,
}

/// Whether the broker blocks a connection right now; cheap to clone.
#[derive(Debug, Clone)]
pub struct BlockWatch(watch::Receiver<State>);

impl BlockWatch {
    /// Starts following `connection`'s block notifications; `name` says which connection in
    /// the logs, and `gauge` (when given) is 1 while it is blocked and 0 otherwise. The task it
    /// starts ends with the connection's events, or once every clone of the watch is gone.
    pub fn follow(connection: &Connection, name: &'static str, gauge: Option<Gauge>) -> Self {
        let (tx, rx) = watch::channel(State::default());
        let mut events = Box::pin(connection.events_listener());
        tokio::spawn(async move {
            let mut started: Option<Instant> = None;
            loop {
                let event = tokio::select! {
                    () = tx.closed() => break,
                    event = events.next() => match event {
                        Some(event) => event,
                        None => break,
                    },
                };
                match event {
                    Event::ConnectionBlocked(reason) => {
                        if started.is_none() {
                            tracing::warn!(
                                connection = name,
                                reason,
                                "RabbitMQ blocked publishing on this connection (a memory or disk alarm): waiting until it unblocks; nothing is lost."
                            );
                            started = Some(Instant::now());
                        }
                        if let Some(gauge) = &gauge {
                            gauge.set(1);
                        }
                        tx.send_modify(|state| {
                            state.block = Some(Block {
                                since: Utc::now(),
                                reason,
                            });
                        });
                    }
                    Event::ConnectionUnblocked => {
                        if let Some(start) = started.take() {
                            tracing::info!(connection = name, blocked_for = ?start.elapsed(), "RabbitMQ unblocked publishing on this connection.");
                        }
                        if let Some(gauge) = &gauge {
                            gauge.set(0);
                        }
                        tx.send_modify(|state| {
                            state.block = None;
                            state.ended = Some(Instant::now());
                        });
                    }
                    _ => {}
                }
            }
            // The connection is gone: it blocks nothing any more.
            if let Some(gauge) = &gauge {
                gauge.set(0);
            }
        });
        Self(rx)
    }

    /// A watch that is never blocked (for a connection nobody publishes on, and tests). Its
    /// sender is gone, so [`changed`](Self::changed) returns `false` at once: nothing to follow.
    pub fn never() -> Self {
        Self(watch::channel(State::default()).1)
    }

    /// Whether publishing is blocked now.
    pub fn is_blocked(&self) -> bool {
        self.0.borrow().block.is_some()
    }

    /// The block in force now, if any.
    pub fn current(&self) -> Option<Block> {
        self.0.borrow().block.clone()
    }

    /// When the last block ended, if one did.
    pub fn unblocked_at(&self) -> Option<Instant> {
        self.0.borrow().ended
    }

    /// Waits until the blocked state changes (or the connection is gone).
    pub async fn changed(&mut self) -> bool {
        self.0.changed().await.is_ok()
    }
}
