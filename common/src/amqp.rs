//! Connecting to RabbitMQ with a checked URL and a connection name that shows up in
//! `rabbitmqctl list_connections`.
//!
//! `amqps://` URLs are verified against the system's trust store (lapin's rustls platform
//! verifier), plus the CA certificate of RabbitMQ's URI TLS parameter `cacertfile=<path>`, for a
//! broker with a private CA. lapin does not know that parameter, so it is taken off the URL
//! before lapin sees it.

use lapin::{Connection, ConnectionProperties, tcp::OwnedTLSConfig, types::LongString};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::{SettingError, check_url, redact_url};

const EXAMPLE: &str = "amqp://guest:guest@localhost:5672/%2f";

/// The largest AMQP frame sfsync asks for, unless `AMQP_URL` sets `frame_max` itself.
///
/// lapin gives each connection a receive and a send buffer of 32 frames and fills both with
/// zeros as soon as the connection is up: at RabbitMQ's default of 128 KiB that is 8 MiB per
/// process, 2,048 fresh pages touched before the first message.
const FRAME_MAX: u32 = 32 * 1024;

/// RabbitMQ's URI TLS parameters (its "URI query parameters" spec) that sfsync does not
/// implement: refused rather than silently ignored, since most of them loosen or tighten what
/// is checked.
const UNSUPPORTED_TLS_PARAMS: &[&str] = &[
    "certfile",
    "keyfile",
    "verify",
    "fail_if_no_peer_cert",
    "server_name_indication",
    "depth",
    "password",
];

/// The URL lapin gets, and the TLS configuration that goes with it.
#[derive(Debug)]
pub struct BrokerTarget {
    /// `AMQP_URL` without sfsync's own parameters.
    pub uri: SecretString,
    /// Extra trusted CA certificates (PEM) from `cacertfile`.
    pub tls: OwnedTLSConfig,
}

/// Checks `AMQP_URL`, reads `cacertfile` if given, and strips it off.
///
/// # Errors
/// The URL is not an AMQP URL, names a TLS parameter sfsync does not support, or `cacertfile`
/// cannot be read or holds no certificate.
pub fn target(url: &SecretString) -> Result<BrokerTarget, SettingError> {
    let parsed = check_url("AMQP_URL", url, &["amqp", "amqps"], EXAMPLE)?;
    let error = |problem: String| SettingError {
        setting: "AMQP_URL",
        problem,
    };
    let mut cacertfile = None;
    let mut kept = Vec::new();
    for (key, value) in parsed.query_pairs() {
        if key == "cacertfile" {
            cacertfile = Some(value.into_owned());
        } else if UNSUPPORTED_TLS_PARAMS.contains(&key.as_ref()) {
            return Err(error(format!(
                "the TLS parameter {key} is not supported (only cacertfile is); remove it"
            )));
        } else {
            kept.push((key.into_owned(), value.into_owned()));
        }
    }
    if !kept.iter().any(|(key, _)| key == "frame_max") {
        kept.push(("frame_max".to_owned(), FRAME_MAX.to_string()));
    }
    let mut tls = OwnedTLSConfig::default();
    if let Some(path) = cacertfile {
        if parsed.scheme() != "amqps" {
            return Err(error(
                "cacertfile is given but the scheme is amqp:// (no TLS); use amqps://".into(),
            ));
        }
        let pem = std::fs::read_to_string(&path)
            .map_err(|e| error(format!("cacertfile {path}: cannot be read: {e}")))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(error(format!(
                "cacertfile {path}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"
            )));
        }
        tls.cert_chain = Some(pem);
    }
    let mut stripped: Url = parsed;
    if kept.is_empty() {
        stripped.set_query(None);
    } else {
        stripped.query_pairs_mut().clear().extend_pairs(kept);
    }
    Ok(BrokerTarget {
        uri: SecretString::from(String::from(stripped)),
        tls,
    })
}

/// Opens a connection to the broker named by `AMQP_URL`.
///
/// # Errors
/// The URL is invalid, the broker cannot be reached, its certificate is not trusted, or it
/// refuses the login or vhost. The message names `AMQP_URL` and shows the URL without its
/// password.
pub async fn connect(url: &SecretString, connection_name: &str) -> anyhow::Result<Connection> {
    let target = target(url)?;
    let shown = redact_url(&Url::parse(target.uri.expose_secret())?);
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name));
    let runtime = lapin::runtime::default_runtime()
        .map_err(|e| anyhow::anyhow!("AMQP_URL: no async runtime for the connection: {e}"))?;
    Connection::connect_with_config(target.uri.expose_secret(), props, target.tls, runtime)
        .await
        .map_err(|e| {
            let text = e.to_string();
            let hint = if text.contains("certificate") || text.contains("UnknownIssuer") {
                ". The broker's certificate is not trusted: add cacertfile=<file with its CA certificate> to AMQP_URL"
            } else if text.contains("HandshakeFailure") || text.contains("InvalidContentType") || text.contains("corrupt message") {
                ". Is the port a TLS port? amqps:// needs the broker's TLS listener (5671 by default)"
            } else {
                ""
            };
            anyhow::anyhow!("AMQP_URL: cannot connect to RabbitMQ at {shown}: {text}{hint}")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacertfile_is_read_and_taken_off_the_url() {
        let dir = std::env::temp_dir().join(format!("sfsync-amqp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = dir.join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let url = format!(
            "amqps://u:hunter2@broker:5671/%2f?heartbeat=30&cacertfile={}",
            ca.display()
        );
        let parsed = target(&url.into()).unwrap();
        assert_eq!(
            parsed.uri.expose_secret(),
            "amqps://u:hunter2@broker:5671/%2f?heartbeat=30&frame_max=32768"
        );
        assert!(parsed.tls.cert_chain.unwrap().contains("BEGIN CERTIFICATE"));

        let plain = target(&"amqp://u:p@broker/%2f".into()).unwrap();
        assert_eq!(
            plain.uri.expose_secret(),
            "amqp://u:p@broker/%2f?frame_max=32768"
        );
        assert!(plain.tls.cert_chain.is_none());
        // The URL's own frame size wins.
        let own = target(&"amqp://u:p@broker/%2f?frame_max=131072".into()).unwrap();
        assert_eq!(
            own.uri.expose_secret(),
            "amqp://u:p@broker/%2f?frame_max=131072"
        );

        let missing = target(&"amqps://u:hunter2@b/%2f?cacertfile=/nope.pem".into()).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("AMQP_URL: cacertfile /nope.pem: cannot be read"),
            "{missing}"
        );
        assert!(!missing.to_string().contains("hunter2"));
        let unsupported = target(&"amqps://b/%2f?verify=verify_none".into()).unwrap_err();
        assert!(
            unsupported.to_string().contains("verify is not supported"),
            "{unsupported}"
        );
        let no_tls =
            target(&format!("amqp://b/%2f?cacertfile={}", ca.display()).into()).unwrap_err();
        assert!(no_tls.to_string().contains("use amqps://"), "{no_tls}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
