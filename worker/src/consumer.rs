//! The consume loop: per-consumer prefetch, at most `concurrency` pages in work (each through
//! [`step::process`] and [`step::settle`]), and a graceful drain on shutdown.
//!
//! A transient failure is retried in-process, holding the delivery: on RabbitMQ 3.10 every
//! return of a delivery raises its delivery count, so requeueing on a database outage would
//! walk healthy pages into the dead-letter queue (see `docs/architecture.md`).
//!
//! A lost broker connection is not fatal either: the worker reconnects with backoff, declares
//! the topology and its QoS again, and consumes on (see [`crate::session`]).

use std::sync::Arc;

use anyhow::Context as _;
use common::{amqp::BrokerNodes, health::Health, metrics::MetricsListener};
use futures::StreamExt;
use tokio::{sync::Semaphore, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::WorkerArgs,
    dead_letter::DeadLetterPublisher,
    metrics::WorkerMetrics,
    session::{Session, reconnect},
    step::{self, Context, Incoming},
};

/// `/readyz`'s check of the database: the pool connects, and pages are stored.
pub const DATABASE: &str = "database";
/// `/readyz`'s check of the broker: connected and consuming `sfsync.records`.
pub const BROKER: &str = "broker";

/// Runs a worker until `cancel` fires, then drains and returns `Ok`. A lost broker connection
/// (or a consumer the broker cancelled) is not an error: the worker reconnects with backoff
/// and carries on.
///
/// # Errors
/// A setting is wrong, or a service is unreachable at start.
pub async fn run(args: WorkerArgs, cancel: CancellationToken) -> anyhow::Result<()> {
    let listener = args.metrics.bind().await?;
    run_with_metrics(args, listener, cancel).await
}

/// [`run`] with the metrics address already bound (`None`: no metrics endpoint), so that a
/// caller binding port 0 knows where to scrape.
///
/// # Errors
/// As for [`run`].
pub async fn run_with_metrics(
    args: WorkerArgs,
    listener: Option<MetricsListener>,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(WorkerMetrics::new());
    let health = Arc::new(Health::new(&[DATABASE, BROKER]));
    let _server = common::metrics::serve(listener, metrics.clone(), health.clone());
    let pool = connect_database(&args).await?;
    health.pass(DATABASE);

    // A wrong URL, password or host fails fast. Once connected, a refused setup step is
    // retried like a reconnect: RabbitMQ 3.10 can refuse the first consumers of a quorum queue
    // declared a moment earlier (INTERNAL_ERROR, `{badmatch,{error,noproc}}` in its log) when
    // several workers start together.
    let nodes = Arc::new(BrokerNodes::parse(&args.services.amqp_url)?);
    let connection = Arc::new(nodes.connect(crate::session::CONNECTION_NAME).await?);
    let mut session = match Session::set_up(connection, &args, &metrics).await {
        Ok(session) => session,
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "Setting up the consumer failed; retrying."
            );
            match reconnect(&args, &nodes, &metrics, &cancel).await {
                Some(session) => session,
                None => return Ok(()),
            }
        }
    };
    health.pass(BROKER);
    tracing::info!(
        prefetch = args.prefetch,
        concurrency = args.concurrency,
        "Worker consuming."
    );

    let push = start_push(&args, &nodes, &pool, &metrics, &cancel).await?;
    let dead_letters = DeadLetterPublisher::new(
        session.connection.clone(),
        session.blocked.clone(),
        args.confirm_timeout,
    );
    let ctx = Arc::new(Context::new(pool, dead_letters, metrics, health.clone()));
    let permits = Arc::new(Semaphore::new(usize::from(args.concurrency)));
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = permits.clone().acquire_owned() => permit.context("page permits closed")?,
        };
        let next = tokio::select! {
            () = cancel.cancelled() => break,
            next = session.consumer.next() => next,
        };
        while tasks.try_join_next().is_some() {}
        let lost = match next {
            Some(Ok(delivery)) => {
                let ctx = ctx.clone();
                tasks.spawn(async move {
                    let outcome = step::process(&ctx, &Incoming::of(&delivery)).await;
                    step::settle(&delivery, &outcome).await;
                    drop(permit);
                });
                continue;
            }
            Some(Err(e)) => format!("lost the RabbitMQ connection: {e}"),
            None => format!(
                "the broker cancelled this worker's consumer (was {} deleted?)",
                common::topology::WORK_QUEUE
            ),
        };
        drop(permit);
        health.fail(BROKER, format!("{lost}; reconnecting"));
        tracing::warn!(
            error = lost,
            in_flight = tasks.len(),
            "Reconnecting to RabbitMQ; pages in work will not be acked and come again."
        );
        session.close("worker reconnecting").await;
        match reconnect(&args, &nodes, &ctx.metrics, &cancel).await {
            Some(fresh) => {
                session = fresh;
                ctx.dead_letters
                    .use_connection(session.connection.clone(), session.blocked.clone())
                    .await;
                health.pass(BROKER);
                tracing::info!("Reconnected to RabbitMQ; consuming again.");
            }
            None => break,
        }
    }

    health.stopping();
    session.stop_consuming().await;
    drain(&mut tasks, &args, &ctx).await;
    if let Some(push) = push {
        // It stops after the batch in hand (the same token).
        let _ = push.await;
    }
    session.close("worker stopping").await;
    tracing::info!("Worker stopped.");
    Ok(())
}

/// With Salesforce settings, logs in and starts applying write-back batches (see
/// [`crate::push::consume`]); without them, write-back is left to other workers.
///
/// # Errors
/// The Salesforce settings are incomplete or wrong, or the login failed.
async fn start_push(
    args: &WorkerArgs,
    nodes: &Arc<BrokerNodes>,
    pool: &deadpool_postgres::Pool,
    metrics: &Arc<WorkerMetrics>,
    cancel: &CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if args.salesforce.is_empty() {
        tracing::info!(
            "No Salesforce settings (SF_LOGIN_URL and the rest): this worker does not apply write-back batches."
        );
        return Ok(None);
    }
    let credentials = salesforce::Credentials::from_args(&args.salesforce)?;
    let max_usage = (args.max_api_usage < 100.0).then_some(args.max_api_usage);
    let sf = salesforce::SalesforceClient::<WorkerMetrics>::connect(
        credentials,
        &args.salesforce.sf_api_version,
        salesforce::RetryPolicy::default(),
    )
    .await?
    .with_max_api_usage(max_usage)
    .with_metrics(metrics.clone());
    Ok(Some(tokio::spawn(crate::push::consume::run(
        nodes.clone(),
        pool.clone(),
        Arc::new(sf),
        cancel.clone(),
    ))))
}

/// Connects the hot-path pool after migrating with the control connection. One pooled
/// connection is opened at once, so that a TLS or login problem of the hot-path client (a
/// different library than the control connection's) fails the start, not every page.
async fn connect_database(args: &WorkerArgs) -> anyhow::Result<deadpool_postgres::Pool> {
    let control = common::db::connect_control(&args.services.database_url).await?;
    common::db::migrate(&control).await?;
    control.close().await;
    let pool = crate::pool::build(&args.services.database_url, usize::from(args.concurrency))?;
    let probe = pool.get().await.map_err(|e| {
        let text = crate::pool::describe(&e);
        let hint = common::db::tls_hint(&text).map_or(String::new(), |h| format!(". {h}"));
        anyhow::anyhow!("DATABASE_URL: the worker's connection pool cannot connect: {text}{hint}")
    })?;
    drop(probe); // back to the pool
    Ok(pool)
}

/// Waits for the pages in work, at most `--shutdown-timeout`; then stops their retries and
/// abandons them (they are redelivered).
async fn drain(tasks: &mut JoinSet<()>, args: &WorkerArgs, ctx: &Context) {
    while tasks.try_join_next().is_some() {}
    let in_flight = tasks.len();
    if in_flight > 0 {
        tracing::info!(in_flight, "Finishing pages in work.");
    }
    let finished = tokio::time::timeout(args.shutdown_timeout, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            left = tasks.len(),
            "Shutdown timeout passed; unfinished pages will be redelivered."
        );
        ctx.hard_stop.cancel();
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}
