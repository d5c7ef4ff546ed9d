//! sfsync on a three-node RabbitMQ cluster (`scripts/rabbitmq-cluster`): an import with four
//! worker processes spread over the nodes, while the node leading `sfsync.records` is killed,
//! the node the producer is connected to is killed, a node is stopped and started twice, or a
//! disk alarm blocks the producer; and a worker's dead letter under a disk alarm. Each ends with the table equal to the org, both queues
//! empty and nothing dead-lettered; the producer exits 0 or, when its run failed, a second run
//! completes the import from the watermark.
//!
//! The drills run one at a time (the `SERIAL` lock), each on a cluster of its own. Their size
//! keeps CI quick: `SFSYNC_CLUSTER_CONTACTS` (30,000) Contacts read in pages of
//! `SFSYNC_CLUSTER_PAGE_SIZE` (500) from an org `SFSYNC_CLUSTER_LATENCY_MS` (50) away, so that
//! the import is still going on when the fault comes. The size is
//! `SFSYNC_CLUSTER_CONTACTS=300000 SFSYNC_CLUSTER_PAGE_SIZE=2000 SFSYNC_CLUSTER_LATENCY_MS=0`.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use e2e::{TestEnv, cluster::Cluster, compare};
use fake_salesforce::{FakeOrg, Faults, OrgConfig};
use tokio::{io::AsyncReadExt, process::Child, sync::Mutex};

static SERIAL: Mutex<()> = Mutex::const_new(());

const WORKER: &str = env!("CARGO_BIN_EXE_e2e-worker");
const PRODUCER: &str = env!("CARGO_BIN_EXE_e2e-producer");
const WORKERS: usize = 4;

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn contacts() -> u64 {
    setting("SFSYNC_CLUSTER_CONTACTS", 30_000)
}

/// How long the end of an import may take after the fault.
fn wait() -> Duration {
    Duration::from_secs(120 + contacts() / 1_000)
}

/// A cluster, a fake org, a database, and four worker processes consuming from the cluster.
struct Drill {
    cluster: Cluster,
    env: TestEnv,
    org: FakeOrg,
    _workers: Vec<Child>,
    started: Instant,
}

impl Drill {
    async fn start(test: &str, port: u16) -> Self {
        let cluster = tokio::task::spawn_blocking({
            let test = test.to_owned();
            move || Cluster::start(&test, port)
        })
        .await
        .unwrap();
        let mut env = TestEnv::new().await.unwrap();
        // The database is the test's own; the broker is the cluster, vhost /.
        env.amqp_url = cluster.amqp_url.clone();
        let org = fake_salesforce::spawn(OrgConfig {
            accounts: 200,
            contacts: contacts() as u32,
            seed: 22,
            faults: Faults {
                latency_ms: setting("SFSYNC_CLUSTER_LATENCY_MS", 50),
                ..Faults::default()
            },
            ..OrgConfig::default()
        })
        .await
        .unwrap();
        let workers: Vec<Child> = (0..WORKERS)
            .map(|_| {
                env.worker_process(
                    WORKER,
                    &["--prefetch", "4", "--concurrency", "2"],
                    &[],
                    Stdio::null(),
                )
                .unwrap()
            })
            .collect();
        let drill = Self {
            cluster,
            env,
            org,
            _workers: workers,
            started: Instant::now(),
        };
        drill
            .env
            .wait_until(
                "four workers connected",
                Duration::from_secs(60),
                || async { Ok(drill.cluster.nodes_of("sfsync-worker").await.len() == WORKERS) },
            )
            .await
            .unwrap();
        println!(
            "{test}: the workers are connected to nodes {:?}",
            drill.cluster.nodes_of("sfsync-worker").await
        );
        drill
    }

    /// Starts `producer sync` of every Contact, as a process of its own.
    fn producer(&self, full: bool, extra: &[(&str, String)]) -> Child {
        let page_size = setting("SFSYNC_CLUSTER_PAGE_SIZE", 500).to_string();
        let mut args = vec![
            "sync",
            "--object",
            "Contact",
            "--no-progress",
            "--api",
            "rest",
            "--parallel",
            "1",
            "--page-size",
            &page_size,
        ];
        if full {
            args.push("--full");
        }
        tokio::process::Command::new(PRODUCER)
            .args(args)
            .envs(self.env.process_env())
            .env("SF_LOGIN_URL", self.org.base_url())
            .env("SF_CLIENT_ID", "demo")
            .env("SF_CLIENT_SECRET", "demo")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// Waits until `share` of the org's Contacts are stored.
    async fn wait_stored(&self, share: f64) {
        let want = (contacts() as f64 * share) as i64;
        self.env
            .wait_until(&format!("{want} contacts stored"), wait(), || async {
                Ok(self.env.count_rows("contact").await.unwrap_or(0) >= want)
            })
            .await
            .unwrap();
    }

    /// Waits for `producer` to exit; returns whether it exited 0, and what it logged.
    async fn exit(&self, mut producer: Child) -> (bool, String) {
        let mut stderr = String::new();
        let mut pipe = producer.stderr.take().unwrap();
        let status = tokio::time::timeout(wait(), async {
            pipe.read_to_string(&mut stderr).await.unwrap();
            producer.wait().await.unwrap()
        })
        .await
        .expect("the producer exits");
        (status.success(), stderr)
    }

    /// The end every drill must reach: the producer exited 0, or a second run from the
    /// watermark does; then the table equals the org, both queues are empty and nothing is
    /// dead-lettered. Returns whether the first run exited 0, and its log.
    async fn assert_complete(&self, test: &str, producer: Child) -> (bool, String) {
        let (first, log) = self.exit(producer).await;
        if first {
            println!("{test}: the producer exited 0");
        } else {
            println!(
                "{test}: the producer failed; running it again from the watermark. Its log:\n{log}"
            );
            let (again, log) = self.exit(self.producer(false, &[])).await;
            assert!(again, "{test}: the second run failed too:\n{log}");
        }
        let env = &self.env;
        let all = contacts() as i64;
        env.wait_until("every contact stored", wait(), || async {
            Ok(env.count_rows("contact").await? == all)
        })
        .await
        .unwrap();
        env.wait_until("an empty work queue", wait(), || async {
            Ok(env.queue_depth(common::topology::WORK_QUEUE).await? == 0)
        })
        .await
        .unwrap();
        assert_eq!(
            env.queue_depth(common::topology::DEAD_QUEUE).await.unwrap(),
            0,
            "{test}: nothing on the dead-letter queue"
        );
        let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM sfsync.dead_letters")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        assert_eq!(dead, 0, "{test}: no dead letters booked");
        compare::assert_table_matches(&env.pool, "contact", self.org.org().records("Contact"))
            .await;
        println!(
            "{test}: {all} contacts stored and equal to the org, {:.1} s after the workers started",
            self.started.elapsed().as_secs_f64()
        );
        (first, log)
    }
}

/// A free address of 127.0.0.1, for a process's metrics.
fn free_addr() -> std::net::SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

/// Waits until the process serving metrics on `metrics` says the broker blocks it.
async fn wait_blocked(env: &TestEnv, metrics: std::net::SocketAddr) {
    env.wait_until(
        "sfsync_broker_blocked 1",
        Duration::from_secs(30),
        || async {
            let text = e2e::scrape::scrape(metrics).await.unwrap_or_default();
            Ok(e2e::scrape::sample(&text, "sfsync_broker_blocked", &[]) == Some(1.0))
        },
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_node_that_leads_the_work_queue_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let test = "kill-leader";
    let drill = Drill::start(test, 5701).await;
    // Declared by sfsync with RabbitMQ's default group size: a replica on every node.
    assert_eq!(
        drill.cluster.replicas(common::topology::WORK_QUEUE).await,
        3
    );
    assert_eq!(
        drill.cluster.replicas(common::topology::DEAD_QUEUE).await,
        3
    );
    let producer = drill.producer(true, &[]);
    drill.wait_stored(0.2).await;
    let leader = drill.cluster.leader(common::topology::WORK_QUEUE).await;
    drill.cluster.kill(leader).await;
    println!(
        "{test}: killed node {leader}, which led {}",
        common::topology::WORK_QUEUE
    );
    drill.assert_complete(test, producer).await;
    // The queue has a leader again, on another node.
    let now = drill.cluster.leader(common::topology::WORK_QUEUE).await;
    assert_ne!(now, leader, "the leader moved off the killed node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_producers_node_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let test = "kill-producer-node";
    let drill = Drill::start(test, 5711).await;
    let producer = drill.producer(true, &[]);
    drill.wait_stored(0.2).await;
    let nodes = drill.cluster.nodes_of("sfsync-producer").await;
    assert_eq!(
        nodes.len(),
        1,
        "the producer holds one connection: {nodes:?}"
    );
    drill.cluster.kill(nodes[0]).await;
    println!("{test}: killed node {}, the producer's", nodes[0]);
    drill.assert_complete(test, producer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_and_started_twice_loses_nothing() {
    let _serial = SERIAL.lock().await;
    let test = "stop-start";
    let drill = Drill::start(test, 5721).await;
    let producer = drill.producer(true, &[]);
    for (round, share) in [0.15, 0.45].into_iter().enumerate() {
        drill.wait_stored(share).await;
        let leader = drill.cluster.leader(common::topology::WORK_QUEUE).await;
        drill.cluster.stop_node(leader).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        drill.cluster.start_node(leader).await;
        println!(
            "{test}: stopped and started node {leader} (round {})",
            round + 1
        );
    }
    drill.assert_complete(test, producer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_alarm_blocks_the_producer_which_waits_and_finishes() {
    let _serial = SERIAL.lock().await;
    let test = "disk-alarm";
    let drill = Drill::start(test, 5731).await;
    let metrics = free_addr();
    // A confirm timeout far shorter than the alarm: waiting while blocked must not count.
    let producer = drill.producer(
        true,
        &[
            ("SFSYNC_CONFIRM_TIMEOUT", "2s".into()),
            ("SFSYNC_METRICS_ADDR", metrics.to_string()),
        ],
    );
    drill.wait_stored(0.1).await;
    let node = drill.cluster.nodes_of("sfsync-producer").await[0];
    drill.cluster.disk_alarm(node, true).await;
    let env = &drill.env;
    wait_blocked(env, metrics).await;
    // `producer status` says why the run does not move.
    let status = e2e::binary::run(PRODUCER, &["status"], env, &[], Duration::from_secs(60)).await;
    assert!(status.success, "{}", status.stderr);
    assert!(
        status
            .stdout
            .contains("publishing blocked by RabbitMQ since"),
        "{}",
        status.stdout
    );
    // Blocked for several confirm timeouts: the producer waits, it does not give up.
    let stored = env.count_rows("contact").await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    drill.cluster.disk_alarm(node, false).await;
    println!(
        "{test}: node {node} under a disk alarm for 8 s ({stored} of {} contacts stored when it began)",
        contacts()
    );
    let (exited_0, log) = drill.assert_complete(test, producer).await;
    assert!(
        exited_0,
        "the producer waited out the alarm and finished:\n{log}"
    );
    assert_eq!(
        log.matches("RabbitMQ blocked publishing").count(),
        1,
        "the block is logged once:\n{log}"
    );
    assert!(
        !log.contains("Lost the broker"),
        "waiting while blocked is not a lost broker:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_alarm_blocks_a_workers_dead_letters_which_wait_and_land() {
    let _serial = SERIAL.lock().await;
    let test = "worker-alarm";
    let cluster = tokio::task::spawn_blocking(|| Cluster::start("worker-alarm", 5741))
        .await
        .unwrap();
    let mut env = TestEnv::new().await.unwrap();
    env.amqp_url = cluster.amqp_url.clone();
    common::db::migrate(&env.pool).await.unwrap();
    e2e::create_small_table(&env.pool, "Contact", "contact")
        .await
        .unwrap();
    // A page with one record the worker must set aside, queued before any worker runs.
    let good = serde_json::json!({"attributes": {"type": "Contact"}, "Id": "003000000000001AAA",
        "LastName": "Stored", "SystemModstamp": "2024-01-01T00:00:00.000+0000", "IsDeleted": false});
    let refused = serde_json::json!({"attributes": {"type": "Contact"}, "Id": "003000000000002AAA",
        "LastName": "Refused", "SystemModstamp": "not a datetime", "IsDeleted": false});
    env.publish_pages("Contact", uuid::Uuid::now_v7(), &[vec![good, refused]])
        .await
        .unwrap();
    // Every publisher of the cluster is blocked from now on; consuming goes on.
    cluster.disk_alarm(1, true).await;
    let metrics = free_addr();
    let mut worker = env
        .worker_process(
            WORKER,
            &["--prefetch", "1", "--concurrency", "1"],
            &[
                ("SFSYNC_CONFIRM_TIMEOUT", "2s".into()),
                ("SFSYNC_METRICS_ADDR", metrics.to_string()),
            ],
            Stdio::piped(),
        )
        .unwrap();
    let mut log = worker.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = log.read_to_string(&mut text).await;
        text
    });
    // The good record is stored; its page's dead letter waits for the broker.
    env.wait_until("the good record stored", wait(), || async {
        Ok(env.count_rows("contact").await? == 1)
    })
    .await
    .unwrap();
    wait_blocked(&env, metrics).await;
    // Blocked for several confirm timeouts: the letter waits, it is not given up on.
    tokio::time::sleep(Duration::from_secs(8)).await;
    cluster.disk_alarm(1, false).await;
    let letters = env.dead_letters_when(1).await.unwrap();
    assert_eq!(letters.len(), 1, "one dead letter");
    assert_eq!(
        letters[0].info.sfid.as_deref(),
        Some("003000000000002AAA"),
        "the refused record's letter"
    );
    env.wait_until("the page acked", wait(), || async {
        Ok(env.queue_depth(common::topology::WORK_QUEUE).await? == 0)
    })
    .await
    .unwrap();
    e2e::sigterm(&worker);
    let status = tokio::time::timeout(wait(), worker.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the worker stops cleanly: {status}");
    let log = log.await.unwrap();
    assert_eq!(
        log.matches("RabbitMQ blocked publishing").count(),
        1,
        "the block is logged once:\n{log}"
    );
    assert!(
        !log.contains("Sending dead letters failed"),
        "waiting while blocked is not a failed letter:\n{log}"
    );
    println!("{test}: the dead letter waited out an 8 s disk alarm and landed; the page was acked");
}
