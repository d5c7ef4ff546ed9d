//! The clock's side of a run: watching the producer and the workers until every page the
//! producer published is committed, and reading an object's progress from `sfsync.runs` and
//! `sfsync.page_results`.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::{
    cli::BenchArgs,
    proc_stats::{PeakSampler, reaped_children_cpu_ns},
    procs::Proc,
};

/// How often the bench looks at the producer and at `sfsync.page_results`.
const POLL: Duration = Duration::from_millis(20);

/// Watches the producer and the workers while the clock runs (or while `--warm-up` runs).
pub(crate) struct Watch<'a> {
    producer: &'a mut Proc,
    /// The object whose run the producer makes.
    object: &'static str,
    /// Seconds until the producer exited, and its CPU time in nanoseconds (whole life).
    pub(crate) producer_done: Option<(f64, u64)>,
    pub(crate) producer_peak_kib: u64,
    /// Our reaped children's CPU nanoseconds before the producer started.
    self_children0: u64,
    started: Instant,
    timeout: Duration,
}

impl<'a> Watch<'a> {
    /// Watches `producer`, started at `started`, syncing `object`; `self_children0` is our
    /// reaped children's CPU nanoseconds before it started.
    pub(crate) fn new(
        producer: &'a mut Proc,
        object: &'static str,
        self_children0: u64,
        started: Instant,
        args: &BenchArgs,
    ) -> Self {
        Self {
            producer,
            object,
            producer_done: None,
            producer_peak_kib: 0,
            self_children0,
            started,
            timeout: args.timeout(),
        }
    }

    /// Polls until the producer has exited and, unless `publish_only`, every page it
    /// published is committed. Returns the seconds since the producer started.
    /// `sampler` gives the producer's peak RSS (none for the warm-up, which is not measured).
    pub(crate) async fn run(
        &mut self,
        db: &Client,
        sampler: Option<&PeakSampler>,
        workers: &mut [Proc],
        publish_only: bool,
    ) -> anyhow::Result<f64> {
        loop {
            if self.producer_done.is_none() {
                // Sampled while it lives: a zombie has no VmHWM.
                if let Some(sampler) = sampler {
                    self.producer_peak_kib = sampler.peak_kib(self.producer.pid);
                }
                if let Some(status) = self.producer.try_exited()? {
                    let seconds = self.started.elapsed().as_secs_f64();
                    // Reaped just now, so its CPU time has moved into our children's total.
                    let cpu = reaped_children_cpu_ns()?.saturating_sub(self.self_children0);
                    self.producer_done = Some((seconds, cpu));
                    anyhow::ensure!(
                        status.success(),
                        "the producer failed ({status})\n{}",
                        self.producer.log_tail(30)
                    );
                    if publish_only {
                        return Ok(seconds);
                    }
                }
            }
            if !publish_only && let Some(progress) = progress(db, self.object).await? {
                anyhow::ensure!(
                    progress.status != "failed",
                    "the run failed\n{}",
                    self.producer.log_tail(30)
                );
                if self.producer_done.is_some()
                    && progress.status == "published"
                    && progress.pages_done >= progress.pages_published
                {
                    return Ok(self.started.elapsed().as_secs_f64());
                }
            }
            for w in workers.iter_mut() {
                if let Some(status) = w.try_exited()? {
                    anyhow::bail!("{} exited early ({status})\n{}", w.name, w.log_tail(30));
                }
            }
            if self.started.elapsed() > self.timeout {
                let tails: Vec<String> = workers.iter().map(|w| w.log_tail(10)).collect();
                anyhow::bail!(
                    "not every page was stored after {:?} (dead-lettered pages never are; see \
                     the logs)\n{}\n{}",
                    self.timeout,
                    self.producer.log_tail(20),
                    tails.join("\n")
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}

/// An object's run in `sfsync.runs` (one run per object in a fresh database) and its
/// processed pages.
struct Progress {
    status: String,
    pages_published: i64,
    pages_done: i64,
}

async fn progress(db: &Client, object: &str) -> anyhow::Result<Option<Progress>> {
    let row = db
        .query_opt(
            "SELECT r.status, r.pages_published,
                    (SELECT count(*) FROM sfsync.page_results p WHERE p.run_id = r.run_id)
               FROM sfsync.runs r WHERE r.object = $1",
            &[&object],
        )
        .await
        .context("polling sfsync.runs and sfsync.page_results")?;
    Ok(row.map(|r| Progress {
        status: r.get(0),
        pages_published: r.get(1),
        pages_done: r.get(2),
    }))
}
