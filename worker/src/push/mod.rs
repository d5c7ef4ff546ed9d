//! Write-back in the worker: applying a push batch to Salesforce ([`apply`]) and recording the
//! outcome of each record in the database; [`consume`] feeds it from the push queue.

mod apply;
pub mod consume;

pub use apply::{Applied, ApplyError, RecordFailure, apply};
