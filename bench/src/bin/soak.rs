//! `soak`: see [`bench::soak`] and bench/README.md.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = bench::soak::SoakArgs::parse();
    // Ctrl-C drops the soak: child processes are killed and the database and vhost removed.
    let outcome = tokio::select! {
        r = bench::soak::run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("soak: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
