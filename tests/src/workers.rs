//! Workers for the tests: in-process ones (cancelled through a token) and `e2e-worker`
//! processes (stopped with SIGTERM, as an orchestrator stops them).

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::TestEnv;

impl TestEnv {
    /// Starts an in-process worker; cancel the token to stop it gracefully.
    pub fn spawn_worker(&self, prefetch: u16, concurrency: u16) -> RunningWorker {
        Self::spawn_worker_with(self.worker_args(prefetch, concurrency))
    }

    /// Worker arguments for this test's services.
    pub fn worker_args(&self, prefetch: u16, concurrency: u16) -> worker::WorkerArgs {
        worker::WorkerArgs {
            prefetch,
            concurrency,
            shutdown_timeout: Duration::from_secs(30),
            confirm_timeout: Duration::from_secs(60),
            metrics: common::metrics::MetricsArgs::default(),
            services: self.services(),
            salesforce: salesforce::CredentialArgs::none(),
            max_api_usage: 80.0,
        }
    }

    /// Starts an in-process worker with these arguments.
    pub fn spawn_worker_with(args: worker::WorkerArgs) -> RunningWorker {
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(worker::run(args, cancel.clone()));
        RunningWorker { cancel, handle }
    }

    /// Starts an in-process worker serving metrics on a free port of 127.0.0.1; returns it
    /// and the address to scrape.
    pub async fn spawn_worker_with_metrics(
        &self,
        prefetch: u16,
        concurrency: u16,
    ) -> anyhow::Result<(RunningWorker, std::net::SocketAddr)> {
        Self::spawn_worker_serving_metrics(self.worker_args(prefetch, concurrency)).await
    }

    /// Starts an in-process worker with these arguments, serving metrics on a free port of
    /// 127.0.0.1; returns it and the address to scrape.
    pub async fn spawn_worker_serving_metrics(
        mut args: worker::WorkerArgs,
    ) -> anyhow::Result<(RunningWorker, std::net::SocketAddr)> {
        args.metrics.metrics_addr = Some("127.0.0.1:0".into());
        let listener = args
            .metrics
            .bind()
            .await?
            .ok_or_else(|| anyhow::anyhow!("no metrics address"))?;
        let addr = listener.local_addr();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(worker::run_with_metrics(
            args,
            Some(listener),
            cancel.clone(),
        ));
        Ok((RunningWorker { cancel, handle }, addr))
    }

    /// A `worker` process (the `e2e-worker` binary) on this test's services; `extra_env`
    /// overrides [`Self::process_env`]. Killed when the handle is dropped.
    pub fn worker_process(
        &self,
        binary: &str,
        args: &[&str],
        extra_env: &[(&str, String)],
        stderr: std::process::Stdio,
    ) -> anyhow::Result<tokio::process::Child> {
        let mut cmd = tokio::process::Command::new(binary);
        cmd.args(args)
            .envs(self.process_env())
            .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true);
        Ok(cmd.spawn()?)
    }
}

/// Sends SIGTERM to a child process (a worker stops gracefully: it finishes and acks the pages
/// in work).
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

/// Stops a worker process with SIGTERM and waits (up to two minutes) until it exits; panics
/// unless it exits 0, as a worker that finished and acked its pages in work does.
pub async fn stop_gracefully(child: &mut tokio::process::Child) {
    sigterm(child);
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the worker stops within two minutes of SIGTERM")
        .expect("waiting for the worker");
    assert_eq!(status.code(), Some(0), "the worker's exit after SIGTERM");
}

/// A worker running in this process.
pub struct RunningWorker {
    pub cancel: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl RunningWorker {
    /// Asks the worker to stop and waits; panics if it failed.
    pub async fn stop(self) {
        self.cancel.cancel();
        self.handle
            .await
            .expect("worker task panicked")
            .expect("worker failed");
    }
}
