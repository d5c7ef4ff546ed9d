//! The Salesforce client (the `salesforce` crate), as the producer uses it: reporting to the
//! producer's metrics.

pub use ::salesforce::*;

/// The client with the producer's metrics.
pub type SalesforceClient = ::salesforce::SalesforceClient<crate::metrics::ProducerMetrics>;

impl ApiMetrics for crate::metrics::ProducerMetrics {
    fn retry(&self, cause: common::metrics::RetryCause) {
        crate::metrics::ProducerMetrics::retry(self, cause);
    }

    fn api_usage(&self, used: u64, max: u64) {
        crate::metrics::ProducerMetrics::api_usage(self, used, max);
    }
}
