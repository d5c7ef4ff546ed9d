//! Turns SIGINT and SIGTERM into a cancelled token that every long-running task watches.

use tokio_util::sync::CancellationToken;

/// Spawns a task that cancels `token` on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            () = term => {},
        }
        tracing::info!("Shutdown requested; finishing in-flight work.");
        token.cancel();
    });
}

/// The body of every sfsync binary's `main`: logging (with lapin's and rustls-platform-verifier's
/// own lines off: every failure of theirs reaches sfsync as an error it reports, in one line), a
/// runtime, a token cancelled by
/// SIGTERM/Ctrl-C, then `run`; a failure is one `error:` line on stderr and exit code 1.
pub fn run_binary<F, Fut>(run: F) -> std::process::ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    crate::telemetry::init("info,sqlx=warn,lapin=off,rustls_platform_verifier=off");
    crate::allocator::settle();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signal(cancel.clone());
        match run(cancel).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
