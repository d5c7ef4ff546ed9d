//! What every sfsync binary's `main` does before its command runs: logging, the allocator's
//! thresholds, the async runtime and the shutdown signal, then one `error:` line and exit code 1
//! if the command fails.

use tokio_util::sync::CancellationToken;

/// The body of every sfsync binary's `main`: sets up logging (with lapin's and
/// rustls-platform-verifier's own lines off: every failure of theirs reaches sfsync as an error
/// it reports, in one line), glibc's allocator thresholds ([`crate::allocator`]) and a
/// multi-threaded runtime, then runs `run` with a token that SIGTERM or Ctrl-C cancels. A
/// failure is one `error:` line on stderr and exit code 1.
pub fn init_and_run<F, Fut>(run: F) -> std::process::ExitCode
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
        crate::shutdown::cancel_on_signal(cancel.clone());
        match run(cancel).await {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        }
    })
}
