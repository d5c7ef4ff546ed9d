//! Write-back in the worker: applying a push batch to Salesforce ([`apply`]) and recording the
//! outcome of each record in the database.

mod apply;

pub use apply::{Applied, ApplyError, RecordFailure, apply};
