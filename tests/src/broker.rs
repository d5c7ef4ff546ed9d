//! The test's RabbitMQ vhost: its connections, queue depths, pages and foreign messages
//! published straight onto the work queue, and the dead letters.

use std::{process::Command, time::Duration};

use secrecy::SecretString;
use uuid::Uuid;

use crate::TestEnv;

pub(crate) fn rabbitmqctl(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| anyhow::anyhow!("running rabbitmqctl {args:?}: {e}"))?;
    anyhow::ensure!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

impl TestEnv {
    /// RabbitMQ's process ids of this vhost's connections whose client named itself
    /// `connection_name` (sfsync's binaries do: `sfsync-worker`, `sfsync-producer`).
    pub fn connections_named(&self, connection_name: &str) -> anyhow::Result<Vec<String>> {
        // The table format: the JSON one shows pids in a form close_connection refuses.
        let out = Command::new("rabbitmqctl")
            .args([
                "list_connections",
                "-q",
                "--no-table-headers",
                "pid",
                "vhost",
                "client_properties",
            ])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "rabbitmqctl list_connections failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let wanted = format!("\"{connection_name}\"");
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| {
                let mut columns = line.splitn(3, '\t');
                let (pid, vhost, properties) = (columns.next()?, columns.next()?, columns.next()?);
                (vhost == self.name && properties.contains(&wanted)).then(|| pid.to_owned())
            })
            .collect())
    }

    /// Closes connections of this vhost by their RabbitMQ pids (from [`Self::connections_named`]),
    /// as a broker restart or a network fault would; other vhosts are never touched.
    pub fn close_connections(&self, pids: &[String]) -> anyhow::Result<()> {
        for pid in pids {
            rabbitmqctl(&["close_connection", pid, "sfsync fault test"])?;
        }
        Ok(())
    }

    /// Messages waiting in a queue of this test's vhost.
    pub async fn queue_depth(&self, queue: &str) -> anyhow::Result<u32> {
        let conn = self.amqp().await?;
        let channel = conn.create_channel().await?;
        let q = channel
            .queue_declare(
                queue.into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await?;
        let _ = conn.close(200, "".into()).await;
        Ok(q.message_count())
    }

    /// A connection to this test's vhost.
    pub async fn amqp(&self) -> anyhow::Result<lapin::Connection> {
        common::amqp::connect(&SecretString::from(self.amqp_url.clone()), "sfsync-test").await
    }

    /// Publishes pages of raw records straight onto the work queue, as a producer would.
    /// The run is recorded in `sfsync.runs` the way the producer records it.
    pub async fn publish_pages(
        &self,
        object: &str,
        run_id: Uuid,
        pages: &[Vec<serde_json::Value>],
    ) -> anyhow::Result<()> {
        common::db::migrate(&self.pool).await?;
        producer::runs::start(&self.pool, run_id, object).await?;
        let conn = self.amqp().await?;
        let channel = common::topology::declare_on(&conn).await?;
        let mut publisher = producer::publisher::PagePublisher::new(
            producer::broker::BrokerChannel {
                channel: channel.clone(),
                blocked: common::amqp::BlockWatch::never(),
            },
            8,
        )
        .await?;
        for (n, records) in pages.iter().enumerate() {
            let page = n as u64 + 1;
            let body = serde_json::to_vec(
                &serde_json::json!({"format": 1, "object": object, "run_id": run_id, "page": page, "records": records}),
            )?;
            publisher
                .publish(&producer::publisher::OutgoingPage {
                    object: object.into(),
                    run_id,
                    page,
                    slice: 0,
                    records: records.len() as u64,
                    last_stamp: None,
                    body,
                })
                .await?;
        }
        publisher.finish().await?;
        let records = pages.iter().map(Vec::len).sum::<usize>() as u64;
        producer::runs::finish(&self.pool, run_id, pages.len() as u64, records, None).await?;
        let _ = channel.close(200, "".into()).await;
        let _ = conn.close(200, "".into()).await;
        Ok(())
    }

    /// Publishes `body` straight onto the work queue with no sfsync headers: a message from
    /// somewhere else.
    pub async fn publish_foreign(&self, body: &[u8]) -> anyhow::Result<()> {
        let conn = self.amqp().await?;
        let channel = conn.create_channel().await?;
        channel
            .basic_publish(
                "".into(),
                common::topology::WORK_QUEUE.into(),
                Default::default(),
                body,
                lapin::BasicProperties::default(),
            )
            .await?
            .await?;
        let _ = conn.close(200, "".into()).await;
        Ok(())
    }

    /// Every letter on the dead-letter queue (left in place).
    pub async fn dead_letters(&self) -> anyhow::Result<Vec<producer::dlq::Letter>> {
        let conn = self.amqp().await?;
        let letters = producer::dlq::list(&conn, &producer::dlq::DlqFilter::default()).await;
        let _ = conn.close(200, "".into()).await;
        letters
    }

    /// The letters on the dead-letter queue, once it holds at least `expected` of them.
    ///
    /// A worker commits a page's rows and bookkeeping (`page_results`, `dead_letters`) first and
    /// publishes the page's dead letters after, then acks; so a run is complete in PostgreSQL a
    /// moment before its last letters are on the queue, and reading the queue at once races
    /// them. Waits up to two minutes; the caller asserts the exact letters.
    pub async fn dead_letters_when(
        &self,
        expected: u32,
    ) -> anyhow::Result<Vec<producer::dlq::Letter>> {
        let what = format!("{expected} letters on the dead-letter queue");
        let waited = self
            .wait_until(&what, Duration::from_secs(120), || async {
                Ok(self.queue_depth(common::topology::DEAD_QUEUE).await? >= expected)
            })
            .await;
        if let Err(e) = waited {
            let depth = self.queue_depth(common::topology::DEAD_QUEUE).await?;
            anyhow::bail!("{e:#}; it holds {depth}");
        }
        self.dead_letters().await
    }
}
