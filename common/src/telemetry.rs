//! Logging setup shared by the binaries: `RUST_LOG` filters, `LOG_FORMAT=json` for machines.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber, writing to stderr (stdout carries command output).
/// `default_filter` applies when `RUST_LOG` is unset. Calling it twice is harmless.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init()
    };
}
