//! Producer runs against a fake org, and waiting until the workers stored them.

use std::time::Duration;

use uuid::Uuid;

use crate::TestEnv;

impl TestEnv {
    /// Pages of `run_id` the workers have processed.
    pub async fn pages_done(&self, run_id: Uuid) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Producer arguments for `object` against a fake org.
    pub fn sync_args(
        &self,
        org: &fake_salesforce::FakeOrg,
        object: &str,
    ) -> producer::cli::SyncArgs {
        producer::cli::SyncArgs {
            objects: vec![object.into()],
            all: false,
            full: false,
            overlap: Duration::from_secs(300),
            hard_delete: false,
            watch: false,
            interval: Duration::from_secs(30),
            describe_interval: Duration::from_secs(900),
            deleted_interval: Duration::from_secs(300),
            retention: Duration::from_secs(14 * 86_400),
            formula_refresh: None,
            max_api_usage: 100.0,
            api: producer::sync::ApiChoice::Rest,
            bulk_threshold: 100_000,
            parallel: 8,
            parallel_above: 10_000,
            // The fake org answers at once: cut anyway, so that the tests read in slices.
            parallel_min_latency: Duration::ZERO,
            page_size: 2000,
            confirm_window: 16,
            confirm_timeout: Duration::from_secs(120),
            no_progress: true,
            limit_retry: producer::cli::LimitRetryArgs::default(),
            metrics: common::metrics::MetricsArgs::default(),
            salesforce: producer::salesforce::CredentialArgs {
                sf_login_url: Some(org.base_url()),
                sf_client_id: Some("demo".into()),
                sf_client_secret: Some("demo".into()),
                sf_username: None,
                sf_jwt_key_file: None,
                sf_refresh_token: None,
                sf_password: None,
                sf_instance_url: None,
                sf_access_token: None,
                sf_api_version: "62.0".into(),
            },
            services: self.services(),
            object_config: Default::default(),
        }
    }

    /// Waits until workers have processed `pages` pages of `run_id`.
    pub async fn wait_for_run(
        &self,
        run_id: Uuid,
        pages: u64,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let done: i64 =
                sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results WHERE run_id = $1")
                    .bind(run_id)
                    .fetch_one(&self.pool)
                    .await?;
            if done as u64 >= pages {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "run {run_id}: {done} of {pages} pages processed after {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Pages processed by workers, over all runs.
    pub async fn pages_done_any(&self) -> anyhow::Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM sfsync.page_results")
                .fetch_one(&self.pool)
                .await
                .unwrap_or(0),
        )
    }

    /// Waits until the workers have processed every page of every run recorded (as after a
    /// `producer sync` binary, whose run ids the test does not see).
    pub async fn wait_for_all_runs(&self, timeout: Duration) -> anyhow::Result<()> {
        self.wait_until("every page stored", timeout, || async {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(pages_published), 0)::bigint
                        - (SELECT count(*) FROM sfsync.page_results)
                   FROM sfsync.runs",
            )
            .fetch_one(&self.pool)
            .await?;
            Ok(waiting == 0)
        })
        .await
    }
}
