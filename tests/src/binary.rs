//! Running sfsync's binaries to their end, and the one-line error a failed one must print.

use std::{process::Stdio, time::Duration};

use crate::TestEnv;

/// How a binary exited and what it printed.
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `binary` to its end (at most `limit`) with `env` on top of the test's services.
/// `RUST_LOG` is unset (the binaries' default filter) unless `env` sets it, and backtraces are
/// asked for, so that one would show if anything panicked.
pub async fn run(
    binary: &str,
    args: &[&str],
    base: &TestEnv,
    env: &[(&str, String)],
    limit: Duration,
) -> Output {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(args)
        .envs(base.process_env())
        .env_remove("RUST_LOG")
        .env("RUST_BACKTRACE", "1")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    output(command, limit).await
}

/// Runs a prepared command to its end (at most `limit`, then it is killed and the test
/// fails), with no input, and collects what it printed.
pub async fn output(mut command: tokio::process::Command, limit: Duration) -> Output {
    let out = tokio::time::timeout(
        limit,
        command.stdin(Stdio::null()).kill_on_drop(true).output(),
    )
    .await
    .expect("the binary exits by itself")
    .expect("the binary runs");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Asserts a failure as the issues ask for one: non-zero exit and exactly one line on stderr
/// besides logged retries (an unreachable service is retried, at WARN, before the error),
/// starting `error: `, with no panic or backtrace. Returns that line and how many retries
/// were logged.
pub fn one_line_error<'a>(case: &str, out: &'a Output) -> (&'a str, usize) {
    assert!(!out.success, "{case}: exit 0; stderr: {}", out.stderr);
    let (retries, rest): (Vec<&str>, Vec<&str>) = out
        .stderr
        .trim()
        .lines()
        .partition(|l| l.contains("WARN") && l.contains("retrying"));
    assert_eq!(rest.len(), 1, "{case}: not one line:\n{}", out.stderr);
    let line = rest[0];
    assert!(line.starts_with("error: "), "{case}: {line}");
    for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
        assert!(!out.stderr.contains(bad), "{case}: {}", out.stderr);
    }
    (line, retries.len())
}
