//! Talking to Salesforce: login, describe, paged queries over the REST API, getDeleted, and
//! Bulk API 2.0 query jobs. The producer reads through it; the workers will write through it
//! (write-back), which is why it is a crate of its own.

pub mod auth;
pub mod buffers;
pub mod bulk;
pub mod client;
pub mod collections;
pub mod deleted;
mod describe;
pub mod error;
pub mod page;
pub mod query;

pub use auth::{CredentialArgs, Credentials};
pub use client::{ApiMetrics, NoMetrics, RetryPolicy, SalesforceClient};
pub use describe::{Describe, DescribeField};
pub use error::SfError;
