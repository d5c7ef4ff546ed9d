//! fake-salesforce
