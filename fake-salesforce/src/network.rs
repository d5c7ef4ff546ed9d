//! The network between a client and a distant org: latency on every API call, a link of
//! limited bandwidth that every response body shares, gzip when the client asks for it, and a
//! count of the bytes on the wire.
//!
//! Everything here applies to the API, the paths under `/services` (the OAuth token endpoint,
//! the version list and every REST and Bulk 2.0 resource); the `/__admin/` hooks tests steer the
//! org with are neither delayed, paced nor counted (they are compressed like anything else
//! when asked, which no test notices).
//!
//! The layers, outermost first (see [`crate::routes::router`]):
//! 1. [`wire`]: waits [`Faults::latency_ms`](crate::Faults::latency_ms), then passes the
//!    request on; the response body it gets back is sent over the org's [`Link`] of
//!    [`OrgConfig::bandwidth_mbps`](crate::OrgConfig::bandwidth_mbps) and counted in
//!    [`FaultStats::wire_bytes`](crate::FaultStats::wire_bytes).
//! 2. [`compression`]: gzip when the request's `Accept-Encoding` allows it and
//!    [`OrgConfig::gzip`](crate::OrgConfig::gzip) is on, as Salesforce compresses REST and
//!    Bulk 2.0 responses (chunked, without `Content-Length`). Inside `wire`, so pacing and the
//!    count see the compressed bytes, which are what crosses a real network.
//! 3. The request-line limit and the routes.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use tower_http::compression::{CompressionLayer, CompressionLevel};

use crate::OrgConfig;
use crate::org::Org;

/// The most a paced body sends at once: small enough that a slow link shows as a steady
/// stream, large enough that pacing a fast one costs few timer wake-ups.
pub const PACE_CHUNK: usize = 16 * 1024;

/// The resolution of tokio's timer: a shorter wait is as long as this.
const TIMER_TICK: Duration = Duration::from_millis(1);

/// The one link between the clients and the org: responses sent at once share its bandwidth,
/// as connections to a distant org share the path to it (so reading in parallel does not
/// multiply the bandwidth, and `bytes / bandwidth` is the least time any client needs).
/// Pieces of bodies take turns in the order they ask for the link.
#[derive(Debug, Default)]
pub(crate) struct Link {
    /// When the link is free again: the end of the last piece given a turn.
    free_at: Mutex<Option<Instant>>,
}

impl Link {
    /// Books the link for `bytes` at `rate` bytes a second; returns when they have crossed it.
    fn book(&self, bytes: usize, rate: f64) -> Instant {
        let mut free_at = self.free_at.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        // A piece asked for within a few timer ticks of the link's last booking follows that
        // booking without a gap: the gap is a sleep that woke late, which a real link, busy
        // all along, would not have lost.
        let start = free_at.map_or(now, |f| if f + 2 * TIMER_TICK >= now { f } else { now });
        let done = start + Duration::from_secs_f64(bytes as f64 / rate);
        *free_at = Some(done);
        done
    }
}

/// Whether `path` is an API call: under `/services`.
fn is_api(path: &str) -> bool {
    path == "/services" || path.starts_with("/services/")
}

/// Bytes per second of `mbps` megabits (10^6 bits) per second; `None` when the bandwidth is
/// unlimited (not set, zero, negative or not a number).
pub fn bytes_per_second(mbps: Option<f64>) -> Option<f64> {
    mbps.filter(|m| m.is_finite() && *m > 0.0)
        .map(|m| m * 1_000_000.0 / 8.0)
}

/// gzip on responses whose request accepts it, unless [`OrgConfig::gzip`] is off. The fastest
/// level: the fake shares the machine with what it measures, and level 1 already shrinks
/// REST pages and Bulk CSV several times (a conservative model of Salesforce's own ratio).
/// Bodies of 32 bytes or fewer stay as they are (tower-http's default).
pub fn compression(config: &OrgConfig) -> CompressionLayer {
    CompressionLayer::new()
        .gzip(config.gzip)
        .quality(CompressionLevel::Fastest)
}

/// For API calls: waits the latency in force, then answers with a body that is counted and,
/// with a bandwidth set, paced.
pub(crate) async fn wire(State(org): State<Arc<Org>>, request: Request, next: Next) -> Response {
    if !is_api(request.uri().path()) {
        return next.run(request).await;
    }
    let latency = org.faults().latency_ms;
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let rate = bytes_per_second(org.config().bandwidth_mbps);
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::new(Wire::new(body, org, rate)))
}

/// A response body as it goes onto the wire: each data frame counted in
/// [`FaultStats::wire_bytes`](crate::FaultStats::wire_bytes) as it is handed to the server,
/// and, at a rate of `rate` bytes a second, sent in pieces of at most [`PACE_CHUNK`] bytes,
/// each once it has crossed the org's [`Link`] (which the other responses share). So a body of
/// `n` bytes takes at least `n / rate` seconds, however the layers inside cut it, and bodies
/// sent at once take at least their total over the rate.
/// Errors (the truncation and dropped-connection faults) and trailers pass through.
struct Wire {
    inner: Body,
    org: Arc<Org>,
    rate: Option<f64>,
    /// The rest of the data frame being paced out.
    pending: Bytes,
    /// When the piece being paced out has crossed the link.
    due: Option<Instant>,
    /// The wait before the next piece.
    pause: Option<Pin<Box<Sleep>>>,
    /// The inner body ended (or failed): it is not polled again, whoever polls this one.
    done: bool,
}

impl Wire {
    fn new(inner: Body, org: Arc<Org>, rate: Option<f64>) -> Self {
        Wire {
            inner,
            org,
            rate,
            pending: Bytes::new(),
            due: None,
            pause: None,
            done: false,
        }
    }

    /// Hands `data` to the server, counted.
    fn send(&mut self, data: Bytes) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let n = data.len() as u64;
        self.org
            .fault_counters()
            .wire_bytes
            .fetch_add(n, Ordering::Relaxed);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

impl HttpBody for Wire {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        loop {
            if !this.pending.is_empty() {
                let Some(rate) = this.rate else {
                    let data = std::mem::take(&mut this.pending);
                    return this.send(data);
                };
                let piece = this.pending.len().min(PACE_CHUNK);
                let org = &this.org;
                let due = *this.due.get_or_insert_with(|| org.link().book(piece, rate));
                // Within a timer tick of its due time a piece goes at once: the link stays
                // booked, so the next piece waits the longer. Sleeping for each piece would
                // round every wait up to a tick, and a gzip stream's many small frames would
                // then cross a 50 Mbit/s link at a fifth of its rate.
                if due.saturating_duration_since(Instant::now()) > TIMER_TICK {
                    let pause = this
                        .pause
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                    if pause.deadline() != due {
                        pause.as_mut().reset(due);
                    }
                    ready!(pause.as_mut().poll(cx));
                }
                this.pause = None;
                this.due = None;
                let data = this.pending.split_to(piece);
                return this.send(data);
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
                },
                other => {
                    this.done = true;
                    return Poll::Ready(other);
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && (self.done || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.inner.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_those_under_services() {
        assert!(is_api("/services/oauth2/token"));
        assert!(is_api("/services/data/v62.0/query"));
        assert!(is_api("/services"));
        assert!(!is_api("/__admin/faults"));
        assert!(!is_api("/servicesx"));
    }

    #[test]
    fn bandwidth_is_in_megabits() {
        assert_eq!(bytes_per_second(Some(8.0)), Some(1_000_000.0));
        assert_eq!(bytes_per_second(Some(0.5)), Some(62_500.0));
        assert_eq!(bytes_per_second(None), None);
        assert_eq!(bytes_per_second(Some(0.0)), None);
        assert_eq!(bytes_per_second(Some(f64::NAN)), None);
    }
}
