//! The processes under test: finding the release binaries, spawning them with their output in
//! log files, stopping them by PID, and reading their logs. What they use of the host is read
//! in [`crate::proc_stats`].

use std::{
    fs::File,
    io::{Read as _, Seek as _, SeekFrom},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use anyhow::Context as _;
use tokio::process::{Child, Command};

/// The three release binaries the bench drives.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub producer: PathBuf,
    pub worker: PathBuf,
    pub fake_salesforce: PathBuf,
}

impl Binaries {
    /// Finds them in `dir`, or next to the running bench binary (the same target directory).
    ///
    /// # Errors
    /// One is missing; the message says how to build them.
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Self> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .context("finding the bench binary")?
                .parent()
                .context("the bench binary has no directory")?
                .to_path_buf(),
        };
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            anyhow::ensure!(
                path.is_file(),
                "{} not found. Build the binaries under test first, in the same profile and \
                 target directory as the bench:\n    cargo build --release -p producer -p worker -p fake-salesforce",
                path.display()
            );
            Ok(path)
        };
        Ok(Self {
            producer: find("producer")?,
            worker: find("worker")?,
            fake_salesforce: find("fake-salesforce")?,
        })
    }
}

/// A child process whose stdout and stderr go to one log file. Killed if dropped while running
/// (an error or Ctrl-C), so no process outlives the bench.
pub struct Proc {
    pub name: String,
    pub pid: u32,
    pub log: PathBuf,
    child: Child,
    exited: Option<ExitStatus>,
}

impl Proc {
    /// Spawns `program args` with `envs` added to the environment.
    ///
    /// # Errors
    /// The log file cannot be created or the program cannot be started.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        envs: &[(&str, String)],
        log_dir: &Path,
    ) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone()?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id().context("the child has no pid")?;
        Ok(Self {
            name: name.to_owned(),
            pid,
            log,
            child,
            exited: None,
        })
    }

    /// The exit status if the process has exited (reaping it), else `None`.
    ///
    /// # Errors
    /// `waitpid` failed.
    pub fn try_exited(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Sends SIGTERM (by PID, with `kill`), waits up to `grace`, then SIGKILLs.
    ///
    /// # Errors
    /// Waiting for the child failed.
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.try_exited()? {
            return Ok(status);
        }
        // No unsafe code here (workspace lint), so no libc::kill: the kill(1) utility does it.
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await;
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                eprintln!(
                    "bench: {} (pid {}) ignored SIGTERM for {grace:?}; killing it",
                    self.name, self.pid
                );
                self.child.start_kill()?;
                self.child.wait().await?
            }
        };
        self.exited = Some(status);
        Ok(status)
    }

    /// The last `lines` lines of the log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = read_tail(&self.log, 64 * 1024).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!(
            "--- last lines of {} ({}) ---\n{tail}",
            self.name,
            self.log.display()
        )
    }

    /// Whether the log contains `needle` (for readiness lines such as "Worker consuming.").
    pub fn log_contains(&self, needle: &str) -> bool {
        std::fs::read_to_string(&self.log).is_ok_and(|t| t.contains(needle))
    }
}

fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
