//! Talking to Salesforce: login, describe and paged queries over the REST API.

pub mod auth;
pub mod bulk;
pub mod client;
pub mod error;
pub mod page;

pub use auth::{CredentialArgs, Credentials};
pub use client::{Describe, DescribeField, RetryPolicy, SalesforceClient};
pub use error::SfError;
