//! Talking to Salesforce: login, describe, paged queries over the REST API, getDeleted, and
//! Bulk API 2.0 query jobs.

pub mod auth;
pub mod bulk;
pub mod client;
pub mod deleted;
mod describe;
pub mod error;
pub mod page;
pub mod query;

pub use auth::{CredentialArgs, Credentials};
pub use client::{RetryPolicy, SalesforceClient};
pub use describe::{Describe, DescribeField};
pub use error::SfError;
