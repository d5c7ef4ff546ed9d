//! Shared by every sfsync binary: Salesforce value types, the message envelope, the AMQP
//! topology, the database schema, configuration and telemetry.

pub mod sfid;
