//! Connecting to RabbitMQ with a checked URL and a connection name that shows up in
//! `rabbitmqctl list_connections`.

use lapin::{Connection, ConnectionProperties, types::LongString};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{check_url, redact_url};

const EXAMPLE: &str = "amqp://guest:guest@localhost:5672/%2f";

/// Opens a connection to the broker named by `AMQP_URL`.
///
/// # Errors
/// The URL is invalid, the broker cannot be reached, or it refuses the login or vhost. The
/// message names `AMQP_URL` and shows the URL without its password.
pub async fn connect(url: &SecretString, connection_name: &str) -> anyhow::Result<Connection> {
    let parsed = check_url("AMQP_URL", url, &["amqp", "amqps"], EXAMPLE)?;
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name));
    Connection::connect(url.expose_secret(), props)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "AMQP_URL: cannot connect to RabbitMQ at {}: {e}",
                redact_url(&parsed)
            )
        })
}

/// How long closing a channel or connection may take: a broker that is gone never answers the
/// close, and lapin would wait for ever.
pub const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Closes a channel, giving up after [`CLOSE_TIMEOUT`]; errors are ignored (it may be gone).
pub async fn close_channel(channel: &lapin::Channel, reason: &str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(200, reason.into())).await;
}

/// Closes a connection, giving up after [`CLOSE_TIMEOUT`]; errors are ignored.
pub async fn close_connection(connection: &Connection, reason: &str) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(200, reason.into())).await;
}
