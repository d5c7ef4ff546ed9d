//! `--script-baseline`: the best script a user would write, timed in the same run as sfsync.
//!
//! `bench/script-baseline/sf_to_pg.py` reads the Contacts with simple-salesforce's
//! `query_all_iter` (REST query and queryMore, one page after the other), COPYs them with
//! psycopg 3 into a staging table in transactions of 2,000 rows and moves them into its final
//! table with one `INSERT … ON CONFLICT (id) DO UPDATE`. It runs in a virtualenv that
//! `bench/scripts/script-baseline-setup.sh` makes (pinned versions from PyPI), against a fresh
//! fake org started with the run's flags (same records, seed, latency and bandwidth), into the
//! schema `script` of the run's database, after sfsync's workers have stopped.
//!
//! Its time is the script's own (from before its token request until its last commit, which
//! leaves out the interpreter's start and imports); the bench also records the process's wall
//! time and CPU.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context as _;
use tokio_postgres::Client;

use crate::{
    cli::BenchArgs,
    launch::{start_fake, wait_for_quiet_host},
    proc_stats::reaped_children_cpu_ns,
    procs::{Binaries, Proc},
    services::Env,
};

/// The schema the script writes its staging and final tables into.
pub const SCHEMA: &str = "script";
/// How often the bench looks whether the script has exited.
const POLL: Duration = Duration::from_millis(10);

/// The Python and the script to run.
#[derive(Debug, Clone)]
pub struct Script {
    pub python: PathBuf,
    pub path: PathBuf,
}

impl Script {
    /// The script from the bench's source tree, and the Python to run it: `--script-python`,
    /// else the virtualenv the setup script makes (or finds already made).
    ///
    /// # Errors
    /// The script is not where the bench was built from, or the setup failed.
    pub async fn prepare(args: &BenchArgs) -> anyhow::Result<Self> {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"));
        let path = source.join("script-baseline").join("sf_to_pg.py");
        anyhow::ensure!(
            path.is_file(),
            "{} not found: --script-baseline runs the script from the source tree the bench was \
             built from",
            path.display()
        );
        let python = match &args.script_python {
            Some(python) => python.clone(),
            None => {
                let setup = source.join("scripts").join("script-baseline-setup.sh");
                eprintln!("bench: preparing the script baseline's virtualenv");
                let out = tokio::process::Command::new("bash")
                    .arg(&setup)
                    .stderr(std::process::Stdio::inherit())
                    .output()
                    .await
                    .with_context(|| format!("running {}", setup.display()))?;
                anyhow::ensure!(
                    out.status.success(),
                    "{} failed ({})",
                    setup.display(),
                    out.status
                );
                let stdout = String::from_utf8_lossy(&out.stdout);
                PathBuf::from(
                    stdout
                        .lines()
                        .last()
                        .context("the setup script printed no Python")?
                        .trim(),
                )
            }
        };
        Ok(Self { python, path })
    }
}

/// What the script prints on its last line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Rows in its final table afterwards.
    pub rows: u64,
    /// From before its token request until its last commit.
    pub seconds: f64,
    /// Its calls to the REST API (describe, query, queryMore).
    pub api_calls: u64,
    /// Fields it selected.
    pub fields: u64,
}

/// The last line of `output` that is the script's JSON report, such as
/// `{"rows": 5000, "seconds": 2.1, "api_calls": 4, "fields": 22, ...}` (other lines, such as
/// Python's warnings on stderr, are skipped).
///
/// # Errors
/// No such line.
pub fn parse_report(output: &str) -> anyhow::Result<Report> {
    output
        .lines()
        .rev()
        .find_map(|line| {
            let json: serde_json::Value = serde_json::from_str(line.trim()).ok()?;
            Some(Report {
                rows: json.get("rows")?.as_u64()?,
                seconds: json.get("seconds")?.as_f64()?,
                api_calls: json.get("api_calls")?.as_u64()?,
                fields: json.get("fields")?.as_u64()?,
            })
        })
        .context("the script printed no result line (rows, seconds, api_calls, fields)")
}

/// One timed run of the script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    pub report: Report,
    /// Spawn until exit: the script's time plus the interpreter's start and imports.
    pub wall_seconds: f64,
    /// The script process's CPU seconds (user and system).
    pub cpu_s: f64,
}

/// Starts a fake org like the run's, times the script against it into the schema `script`,
/// and checks what landed.
///
/// # Errors
/// The fake org or the script failed, or the script gave no result.
pub async fn run(
    args: &BenchArgs,
    bins: &Binaries,
    script: &Script,
    env: &Env,
    db: &Client,
    log_dir: &Path,
) -> anyhow::Result<Figures> {
    let (mut fake, port) = start_fake(args, bins, "fake-salesforce-script", log_dir).await?;
    let script_args = [
        script.path.display().to_string(),
        "--dsn".into(),
        env.database_url(),
        "--schema".into(),
        SCHEMA.into(),
        "--object".into(),
        "Contact".into(),
    ];
    let script_env = [
        ("SF_LOGIN_URL", format!("http://127.0.0.1:{port}")),
        ("SF_CLIENT_ID", "demo".to_owned()),
        ("SF_CLIENT_SECRET", "demo".to_owned()),
    ];
    wait_for_quiet_host(args).await?;
    db.batch_execute("CHECKPOINT").await?;
    let children0 = reaped_children_cpu_ns()?;
    let started = Instant::now();
    let mut python = Proc::spawn("script", &script.python, &script_args, &script_env, log_dir)?;
    let status = loop {
        if let Some(status) = python.try_exited()? {
            break status;
        }
        anyhow::ensure!(
            started.elapsed() < args.timeout(),
            "the script baseline did not finish within {:?}\n{}",
            args.timeout(),
            python.log_tail(20)
        );
        tokio::time::sleep(POLL).await;
    };
    let wall_seconds = started.elapsed().as_secs_f64();
    // Reaped just now: its CPU has moved into our children's total.
    let cpu_s = reaped_children_cpu_ns()?.saturating_sub(children0) as f64 / 1e9;
    fake.terminate(Duration::from_secs(10)).await?;
    anyhow::ensure!(
        status.success(),
        "the script baseline failed ({status})\n{}",
        python.log_tail(30)
    );
    let output = std::fs::read_to_string(&python.log)
        .with_context(|| format!("reading {}", python.log.display()))?;
    let report =
        parse_report(&output).map_err(|e| anyhow::anyhow!("{e}\n{}", python.log_tail(30)))?;
    check(args, db, &report).await?;
    Ok(Figures {
        report,
        wall_seconds,
        cpu_s,
    })
}

/// Warns unless the script stored every record, with the same columns as sfsync.
async fn check(args: &BenchArgs, db: &Client, report: &Report) -> anyhow::Result<()> {
    let stored: i64 = db
        .query_one(&format!("SELECT count(*) FROM {SCHEMA}.contact"), &[])
        .await
        .context("counting the script's rows")?
        .get(0);
    if stored as u64 != u64::from(args.records) || report.rows != u64::from(args.records) {
        eprintln!(
            "bench: warning: the script's table holds {stored} rows (it says {}), expected {}",
            report.rows, args.records
        );
    }
    let columns = |schema: &'static str| async move {
        db.query(
            "SELECT column_name::text FROM information_schema.columns
              WHERE table_schema = $1 AND table_name = 'contact'",
            &[&schema],
        )
        .await
        .map(|rows| {
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
        })
    };
    let ours = columns("salesforce").await?;
    let theirs = columns(SCHEMA).await?;
    let (ours, theirs) = same_fields(&ours, &theirs);
    if ours != theirs {
        eprintln!(
            "bench: warning: the script and sfsync stored different fields: only sfsync {:?}, \
             only the script {:?}",
            ours.difference(&theirs).collect::<Vec<_>>(),
            theirs.difference(&ours).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// The Salesforce fields behind sfsync's and the script's columns: sfsync stores `Id` as
/// `sfid` beside a local serial `id` and its own `_sfsync_` bookkeeping columns; the script
/// stores it as `id`.
fn same_fields(sfsync: &[String], script: &[String]) -> (BTreeSet<String>, BTreeSet<String>) {
    let ours = sfsync
        .iter()
        .filter(|c| c.as_str() != "id" && !c.starts_with("_sfsync_"))
        .map(|c| {
            if c == "sfid" {
                "id".to_owned()
            } else {
                c.clone()
            }
        })
        .collect();
    (ours, script.iter().cloned().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_result_line_is_found_among_other_output() {
        let output = "/venv/lib/python3.11/site-packages/x.py:1: DeprecationWarning: old\n\
                      {\"rows\": 5000, \"seconds\": 2.108, \"api_calls\": 4, \"fields\": 22, \
                      \"object\": \"Contact\", \"staged\": 5000}\n";
        assert_eq!(
            parse_report(output).unwrap(),
            Report {
                rows: 5000,
                seconds: 2.108,
                api_calls: 4,
                fields: 22,
            }
        );
        // The last report wins; JSON without the keys is not one.
        let two = "{\"rows\": 1, \"seconds\": 1, \"api_calls\": 1, \"fields\": 1}\n\
                   {\"rows\": 2, \"seconds\": 0.5, \"api_calls\": 3, \"fields\": 4}\n\
                   {\"level\": \"info\"}\n";
        assert_eq!(parse_report(two).unwrap().rows, 2);
        assert_eq!(parse_report(two).unwrap().seconds, 0.5);
    }

    #[test]
    fn no_result_line_is_an_error() {
        let err = parse_report("Traceback (most recent call last):\n  ...\n").unwrap_err();
        assert!(err.to_string().contains("no result line"), "{err}");
        assert!(
            parse_report("{\"rows\": -1, \"seconds\": 1, \"api_calls\": 1, \"fields\": 1}")
                .is_err()
        );
    }

    #[test]
    fn sfsync_and_the_script_name_the_id_differently() {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let (ours, theirs) = same_fields(
            &strings(&["id", "sfid", "lastname", "email", "_sfsync_run_id"]),
            &strings(&["id", "email", "lastname"]),
        );
        assert_eq!(ours, theirs);
        let (ours, theirs) = same_fields(&strings(&["id", "sfid", "title"]), &strings(&["id"]));
        assert_eq!(ours.difference(&theirs).count(), 1);
    }
}
