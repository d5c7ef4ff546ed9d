//! `worker`: see `worker --help`.

use clap::Parser;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = worker::WorkerArgs::parse();
    common::telemetry::init("info,sqlx=warn,lapin=warn");
    let cancel = CancellationToken::new();
    common::shutdown::cancel_on_signal(cancel.clone());
    match worker::run(args, cancel).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
