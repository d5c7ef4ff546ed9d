//! What the client reports as it works: each transient failure it waits out, by cause, and the
//! org's API usage from every answer's `Sforce-Limit-Info`. The binary that owns the client
//! says where these go (the producer's and the worker's metrics differ in everything else).

use common::metrics::RetryCause;

/// Where a client's figures go.
pub trait ApiMetrics: Send + Sync + 'static {
    /// A transient failure waited out.
    fn retry(&self, cause: RetryCause);
    /// The org's API calls used of its daily allocation, from the last answer.
    fn api_usage(&self, used: u64, max: u64);
}

/// Figures nobody reads: for a client that only has to work (tests, tools).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoMetrics;

impl ApiMetrics for NoMetrics {
    fn retry(&self, _cause: RetryCause) {}
    fn api_usage(&self, _used: u64, _max: u64) {}
}
