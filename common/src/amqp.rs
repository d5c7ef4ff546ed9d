//! Connecting to RabbitMQ with a checked URL and a connection name that shows up in
//! `rabbitmqctl list_connections`.
//!
//! `AMQP_URL` may list several nodes of a cluster, separated by commas. Each process shuffles
//! the list once, so that many workers spread over the nodes, connects to the first node that
//! answers, and after losing a connection starts with the next node ([`BrokerNodes`]).
//!
//! `amqps://` URLs are verified against the system's trust store (lapin's rustls platform
//! verifier), plus the CA certificate of RabbitMQ's URI TLS parameter `cacertfile=<path>`, for a
//! broker with a private CA. lapin does not know that parameter, so it is taken off the URL
//! before lapin sees it.

use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use lapin::{Connection, ConnectionProperties, tcp::OwnedTLSConfig, types::LongString};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::config::{SettingError, check_url, redact_url, redact_url_text};

pub use crate::blocked::{Block, BlockWatch};

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

/// How long one node may take to accept a connection before the next is tried: a node that
/// is down refuses at once, but one cut off by the network lets the attempt hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// One broker node: what lapin connects to, and its URL as it may be shown.
#[derive(Debug)]
struct Node {
    target: BrokerTarget,
    /// The URL without its password.
    shown: String,
}

/// The broker's nodes as `AMQP_URL` lists them, in this process's own (shuffled) order, and
/// the node connections start with.
#[derive(Debug)]
pub struct BrokerNodes {
    nodes: Vec<Node>,
    /// Index in `nodes` of the node the last connection was made to.
    current: AtomicUsize,
}

impl BrokerNodes {
    /// Checks every URL of `AMQP_URL` (a comma-separated list of one or more) and shuffles
    /// them.
    ///
    /// # Errors
    /// An entry is empty or not a valid AMQP URL (see [`target`]); the message says which.
    pub fn parse(urls: &SecretString) -> Result<Self, SettingError> {
        let entries: Vec<&str> = urls.expose_secret().split(',').map(str::trim).collect();
        let count = entries.len();
        let mut nodes = Vec::with_capacity(count);
        for (i, entry) in entries.into_iter().enumerate() {
            let which = |problem: String| SettingError {
                setting: "AMQP_URL",
                problem: if count > 1 {
                    format!("node {} of {count}: {problem}", i + 1)
                } else {
                    problem
                },
            };
            if entry.is_empty() {
                return Err(which(format!(
                    "empty entry in the comma-separated list; expected something like {EXAMPLE},amqp://guest:guest@node2:5672/%2f"
                )));
            }
            let target =
                target(&SecretString::from(entry.to_owned())).map_err(|e| which(e.problem))?;
            // As the user wrote it (less its password), without the parameters added for lapin.
            let shown =
                Url::parse(entry).map_or_else(|_| redact_url_text(entry), |url| redact_url(&url));
            nodes.push(Node { target, shown });
        }
        // Each process its own order, so that clients started together spread over the nodes.
        fastrand::shuffle(&mut nodes);
        Ok(Self {
            nodes,
            current: AtomicUsize::new(0),
        })
    }

    /// How many nodes `AMQP_URL` lists.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: `AMQP_URL` names at least one node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Opens a connection, trying the nodes in turn from the one the last connection was made
    /// to, each once.
    ///
    /// # Errors
    /// No node accepted the connection; the message names `AMQP_URL` and each node tried
    /// (without passwords) with its error.
    pub async fn connect(&self, connection_name: &str) -> anyhow::Result<Connection> {
        self.connect_from(self.current.load(Ordering::Relaxed), connection_name)
            .await
    }

    /// Opens a connection after one was lost: as [`connect`](Self::connect), but starting
    /// with the node after the one the lost connection was made to.
    ///
    /// # Errors
    /// As for [`connect`](Self::connect).
    pub async fn reconnect(&self, connection_name: &str) -> anyhow::Result<Connection> {
        self.connect_from(self.current.load(Ordering::Relaxed) + 1, connection_name)
            .await
    }

    async fn connect_from(
        &self,
        first: usize,
        connection_name: &str,
    ) -> anyhow::Result<Connection> {
        let count = self.nodes.len();
        let mut failures = Vec::new();
        for i in (first..first + count).map(|i| i % count) {
            let node = &self.nodes[i];
            match connect_node(node, connection_name).await {
                Ok(connection) => {
                    self.current.store(i, Ordering::Relaxed);
                    if count > 1 {
                        tracing::info!(
                            node = node.shown,
                            connection = connection_name,
                            "Connected to RabbitMQ."
                        );
                    }
                    return Ok(connection);
                }
                Err(e) if count == 1 => {
                    anyhow::bail!(
                        "AMQP_URL: cannot connect to RabbitMQ at {}: {e}",
                        node.shown
                    )
                }
                Err(e) => {
                    // The last node's failure is in the error that follows.
                    if failures.len() + 1 < count {
                        tracing::warn!(
                            node = node.shown,
                            error = e,
                            "RabbitMQ node does not answer; retrying with the next node."
                        );
                    }
                    failures.push(format!("{}: {e}", node.shown));
                }
            }
        }
        anyhow::bail!(
            "AMQP_URL: cannot connect to RabbitMQ at any of its {count} nodes: {}",
            failures.join("; ")
        )
    }
}

/// Connects to one node; the error text comes with a hint where one helps.
async fn connect_node(node: &Node, connection_name: &str) -> Result<Connection, String> {
    let props =
        ConnectionProperties::default().with_connection_name(LongString::from(connection_name));
    let runtime = lapin::runtime::default_runtime()
        .map_err(|e| format!("no async runtime for the connection: {e}"))?;
    let attempt = Connection::connect_with_config(
        node.target.uri.expose_secret(),
        props,
        node.target.tls.clone(),
        runtime,
    );
    let text = match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
        Ok(Ok(connection)) => return Ok(connection),
        Ok(Err(e)) => e.to_string(),
        Err(_) => return Err(format!("no answer within {CONNECT_TIMEOUT:?}")),
    };
    let hint = if text.contains("certificate") || text.contains("UnknownIssuer") {
        ". The broker's certificate is not trusted: add cacertfile=<file with its CA certificate> to AMQP_URL"
    } else if text.contains("HandshakeFailure")
        || text.contains("InvalidContentType")
        || text.contains("corrupt message")
    {
        ". Is the port a TLS port? amqps:// needs the broker's TLS listener (5671 by default)"
    } else {
        ""
    };
    Err(format!("{text}{hint}"))
}

/// Opens a connection to the broker named by `AMQP_URL` (its first node that answers).
///
/// # Errors
/// The URL is invalid, no node can be reached, its certificate is not trusted, or it refuses
/// the login or vhost. The message names `AMQP_URL` and shows the URLs without passwords.
pub async fn connect(url: &SecretString, connection_name: &str) -> anyhow::Result<Connection> {
    BrokerNodes::parse(url)?.connect(connection_name).await
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

    #[test]
    fn a_list_of_nodes_is_checked_entry_by_entry_and_shuffled_per_process() {
        let nodes = BrokerNodes::parse(
            &"amqp://u:hunter2@a:5672/%2f, amqp://u:hunter2@b:5672/%2f,amqp://u:hunter2@c:5672/%2f"
                .into(),
        )
        .unwrap();
        assert_eq!(nodes.len(), 3);
        let mut hosts: Vec<&str> = nodes
            .nodes
            .iter()
            .map(|n| {
                assert!(!n.shown.contains("hunter2"), "{}", n.shown);
                assert!(n.shown.contains("u:***@"), "{}", n.shown);
                n.shown.split('@').nth(1).unwrap()
            })
            .collect();
        hosts.sort_unstable();
        assert_eq!(hosts, ["a:5672/%2f", "b:5672/%2f", "c:5672/%2f"]);

        // Shuffled: over many parses, more than one node comes first.
        let firsts: std::collections::HashSet<String> = (0..50)
            .map(|_| {
                let nodes =
                    BrokerNodes::parse(&"amqp://a/%2f,amqp://b/%2f,amqp://c/%2f".into()).unwrap();
                nodes.nodes[0].shown.clone()
            })
            .collect();
        assert!(firsts.len() > 1, "{firsts:?}");

        let empty = BrokerNodes::parse(&"amqp://u:hunter2@a/%2f,,amqp://b/%2f".into()).unwrap_err();
        assert!(
            empty
                .to_string()
                .starts_with("AMQP_URL: node 2 of 3: empty entry"),
            "{empty}"
        );
        let bad = BrokerNodes::parse(&"amqp://u:hunter2@a/%2f,http://u:hunter3@b/".into())
            .unwrap_err()
            .to_string();
        assert!(
            bad.starts_with("AMQP_URL: node 2 of 2: scheme \"http\""),
            "{bad}"
        );
        assert!(!bad.contains("hunter"), "{bad}");
    }
}
