//! `bench`: see `bench --help` and bench/README.md.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = bench::BenchArgs::parse();
    // Ctrl-C drops the run: child processes are killed and the database and vhost removed
    // (their Drop impls), then the bench exits non-zero.
    let outcome = tokio::select! {
        r = bench::run(args) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
