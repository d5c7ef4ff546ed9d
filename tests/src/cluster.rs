//! A three-node RabbitMQ cluster of the test's own, run by `scripts/rabbitmq-cluster`: started
//! under a name and ports no other test uses, nodes killed, stopped, started and put under a
//! disk alarm, and removed (data included) when the value is dropped, also after a panic.

use std::process::{Command, Output};

/// The script that runs the cluster.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/rabbitmq-cluster");

/// A running cluster; stopped and removed on drop.
pub struct Cluster {
    name: String,
    port: u16,
    /// `AMQP_URL` for the cluster: its three nodes, comma-separated.
    pub amqp_url: String,
}

impl Cluster {
    /// Starts a cluster named after `test` and this process, its first AMQP port `port`
    /// (the nodes use `port`, `port + 1`, `port + 2`).
    ///
    /// # Panics
    /// The script fails (its output is shown).
    pub fn start(test: &str, port: u16) -> Self {
        let name = format!("sfsync-t-{test}-{}", std::process::id());
        let mut cluster = Self {
            name,
            port,
            amqp_url: String::new(),
        };
        let out = cluster.script(&["start"]);
        cluster.amqp_url = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            cluster.amqp_url.split(',').count(),
            3,
            "{}",
            cluster.amqp_url
        );
        cluster
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("bash");
        command
            .arg(SCRIPT)
            .args(args)
            .env("SFSYNC_CLUSTER_NAME", &self.name)
            .env("SFSYNC_CLUSTER_PORT", self.port.to_string());
        command
    }

    /// Runs the script; panics with its output if it fails.
    fn script(&self, args: &[&str]) -> Output {
        let out = self.command(args).output();
        succeeded(args, out)
    }

    /// Runs the script off the async runtime (a node start takes seconds).
    async fn script_async(&self, args: &[&str]) -> Output {
        let out = tokio::process::Command::from(self.command(args))
            .output()
            .await;
        succeeded(args, out)
    }

    /// `kill -9` of node `node`'s Erlang VM.
    pub async fn kill(&self, node: u8) {
        self.script_async(&["kill", &node.to_string()]).await;
    }

    /// Stops node `node` cleanly.
    pub async fn stop_node(&self, node: u8) {
        self.script_async(&["stop", &node.to_string()]).await;
    }

    /// Starts node `node` again and waits until it is back in the cluster.
    pub async fn start_node(&self, node: u8) {
        self.script_async(&["start", &node.to_string()]).await;
    }

    /// The node leading quorum queue `queue` of vhost `/`.
    pub async fn leader(&self, queue: &str) -> u8 {
        let out = self.script_async(&["leader", queue]).await;
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("leader of {queue}: {text:?}"))
    }

    /// How many nodes hold a replica of quorum queue `queue` of vhost `/` (leader and
    /// followers), as node 1 reports them.
    pub async fn replicas(&self, queue: &str) -> usize {
        let out = self
            .script_async(&["queues", "1", "quorum_status", queue, "--formatter", "json"])
            .await;
        let members: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("quorum_status {queue}: {e}: {:?}", out.stdout));
        members.len()
    }

    /// Raises (`true`) or clears a disk alarm on node `node`, waiting until it is in force or
    /// gone.
    pub async fn disk_alarm(&self, node: u8, on: bool) {
        let state = if on { "on" } else { "off" };
        self.script_async(&["disk-alarm", &node.to_string(), state])
            .await;
    }

    /// The nodes (1–3) holding a connection whose client named itself `connection_name`, as
    /// the first running node lists them.
    pub async fn nodes_of(&self, connection_name: &str) -> Vec<u8> {
        for asked in ["1", "2", "3"] {
            let args = [
                "ctl",
                asked,
                "list_connections",
                "-q",
                "--no-table-headers",
                "pid",
                "client_properties",
            ];
            let mut command = tokio::process::Command::from(self.command(&args));
            let out = command
                .output()
                .await
                .expect("scripts/rabbitmq-cluster runs");
            if !out.status.success() {
                continue; // that node is down: ask the next
            }
            let wanted = format!("\"{connection_name}\"");
            let mut nodes: Vec<u8> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|line| line.contains(&wanted))
                .filter_map(|line| {
                    // The pid names its node: <sfsync-t-…-2@localhost.1234.5.0>
                    let node = line.split('@').next()?.rsplit('-').next()?;
                    node.parse().ok()
                })
                .collect();
            nodes.sort_unstable();
            return nodes;
        }
        panic!("no node of the cluster answers list_connections");
    }
}

/// The script's output; panics with it unless the script ran and succeeded.
fn succeeded(args: &[&str], out: std::io::Result<Output>) -> Output {
    let out = out.expect("scripts/rabbitmq-cluster runs");
    assert!(
        out.status.success(),
        "scripts/rabbitmq-cluster {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Synchronous on purpose: Drop runs during a panic too.
        let _ = self.command(&["stop"]).output();
    }
}
