//! Talking to Salesforce: login, describe, paged queries over the REST API, getDeleted,
//! Bulk API 2.0 query jobs, and writes through sObject Collections, alone or with a read-back
//! in one Composite call. The producer reads through it; the workers write through it
//! (write-back), which is why it is a crate of its own.

pub mod auth;
pub mod buffers;
pub mod bulk;
pub mod client;
pub mod collections;
pub mod composite;
pub mod deleted;
mod describe;
pub mod error;
pub mod jwt;
pub mod page;
pub mod query;

pub use auth::{CredentialArgs, Credentials};
pub use client::{ApiMetrics, NoMetrics, RetryPolicy, SalesforceClient};
pub use describe::{Describe, DescribeField};
pub use error::SfError;
