//! Figures about processes and the host read from `/proc` and the kernel: CPU time (per
//! process, of reaped children, of the whole host, of the PostgreSQL and RabbitMQ servers),
//! minor page faults, and peak RSS (`VmHWM`), sampled while the processes run.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::Context as _;
use tokio::task::JoinHandle;

/// Numeric field `n` (1-based, as in proc(5)) of a `/proc/<pid>/stat` line. The command name
/// (field 2) may hold spaces and parentheses, so the fields are counted from the last `)`.
fn stat_field(text: &str, n: usize) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    // The first field after `)` is field 3 (state).
    rest.split_whitespace().nth(n.checked_sub(3)?)?.parse().ok()
}

/// User plus system CPU time in clock ticks (fields 14 and 15) from `/proc/<pid>/stat`.
pub fn parse_stat(text: &str) -> Option<u64> {
    Some(stat_field(text, 14)? + stat_field(text, 15)?)
}

/// Minor page faults of the whole process (field 10 of `/proc/<pid>/stat`): each is a page
/// touched for the first time (or again after it was given back), which is most of a process's
/// warm-up cost.
pub fn parse_minflt(text: &str) -> Option<u64> {
    stat_field(text, 10)
}

/// [`parse_minflt`] of `pid`.
///
/// # Errors
/// The process is gone or the file is not in the expected format.
pub fn read_minflt(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_minflt(&text).with_context(|| format!("unexpected format of {path}"))
}

/// CPU time (user + system, all threads, living and exited) that process `pid` has used so far,
/// in nanoseconds, from its POSIX CPU-time clock.
///
/// `/proc/<pid>/stat` counts in clock ticks (10 ms): four workers and a producer each read
/// twice put up to ±50 ms of rounding into a 30,000-record run that uses about 0.3 CPU s,
/// which is ±15% of the CPU per 1,000 records the bench reports.
///
/// # Errors
/// The process is gone.
pub fn process_cpu_ns(pid: u32) -> anyhow::Result<u64> {
    use nix::sys::time::TimeValLike as _;
    // Linux's PID_MAX_LIMIT. The clock id holds the PID in its upper bits: a larger one would be
    // cut off there, and 0 names the calling process, so neither may slip through.
    anyhow::ensure!((1..=4_194_304).contains(&pid), "{pid} is not a process id");
    let pid = i32::try_from(pid).context("a PID that does not fit pid_t")?;
    let clock = nix::time::clock_getcpuclockid(nix::unistd::Pid::from_raw(pid))
        .with_context(|| format!("the CPU clock of process {pid}"))?;
    let t = nix::time::clock_gettime(clock)
        .with_context(|| format!("reading the CPU clock of process {pid}"))?;
    Ok(u64::try_from(t.num_nanoseconds()).unwrap_or(0))
}

/// CPU time (user + system) of the bench's children that have exited and been reaped, in
/// nanoseconds (`getrusage(RUSAGE_CHILDREN)`, microsecond resolution). A process that has
/// exited has no CPU clock left to read; once reaped, its time is in this total.
///
/// # Errors
/// `getrusage` failed.
pub fn reaped_children_cpu_ns() -> anyhow::Result<u64> {
    use nix::sys::{
        resource::{UsageWho, getrusage},
        time::TimeValLike as _,
    };
    let usage = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage(RUSAGE_CHILDREN)")?;
    let ns = usage.user_time().num_nanoseconds() + usage.system_time().num_nanoseconds();
    Ok(u64::try_from(ns).unwrap_or(0))
}

/// Busy and total CPU ticks of the whole host (all cores), from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostTicks {
    pub busy: u64,
    pub total: u64,
}

/// Parses the `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal ….
pub fn parse_host_stat(text: &str) -> Option<HostTicks> {
    let line = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let idle = *v.get(3)? + *v.get(4)?;
    let total: u64 = v.iter().sum();
    Some(HostTicks {
        busy: total - idle,
        total,
    })
}

/// The host's CPU ticks so far.
///
/// # Errors
/// `/proc/stat` is unreadable.
pub fn read_host() -> anyhow::Result<HostTicks> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_host_stat(&text).context("unexpected format of /proc/stat")
}

/// CPU ticks of every live PostgreSQL process that works for database `db` or for the whole
/// server (checkpointer, WAL writer, …), and of RabbitMQ (`beam.smp`), by PID, keyed by
/// `postgres` or `beam.smp`. Backends of other databases (other people's tests) are left out;
/// RabbitMQ serves every vhost in one process, so its figure includes any other users.
pub fn server_cpu(db: &str) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let comm = text
            .find('(')
            .zip(text.rfind(')'))
            .map(|(a, b)| &text[a + 1..b]);
        let (Some(comm), Some(ticks)) = (comm, parse_stat(&text)) else {
            continue;
        };
        let ours = match comm {
            "beam.smp" => true,
            "postgres" => std::fs::read(entry.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).into_owned())
                .is_ok_and(|c| postgres_process_is_ours(&c, db)),
            _ => false,
        };
        if ours {
            out.insert(pid, (comm.to_owned(), ticks));
        }
    }
    out
}

/// A backend's title names its database and client (`postgres: user db 127.0.0.1(5432) idle`);
/// background processes name neither.
fn postgres_process_is_ours(cmdline: &str, db: &str) -> bool {
    let title = cmdline.replace('\0', " ");
    let names_a_client = title.contains('(') || title.contains("[local]");
    title.split_whitespace().any(|w| w == db) || !names_a_client
}

/// CPU ticks spent between two [`server_cpu`] snapshots, per command name. Processes that
/// started in between count from zero; those that ended in between are missed.
pub fn cpu_delta_by_command(
    before: &HashMap<u32, (String, u64)>,
    after: &HashMap<u32, (String, u64)>,
) -> HashMap<String, u64> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for (pid, (comm, ticks)) in after {
        let start = before
            .get(pid)
            .filter(|(c, _)| c == comm)
            .map_or(0, |(_, t)| *t);
        *out.entry(comm.clone()).or_default() += ticks.saturating_sub(start);
    }
    out
}

/// Parses the `VmHWM:` (peak resident set) line of `/proc/<pid>/status`, in KiB. A zombie has
/// none.
pub fn parse_vmhwm_kib(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
}

/// Peak RSS of `pid` so far, in KiB; `None` once it has exited.
pub fn read_vmhwm_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| parse_vmhwm_kib(&t))
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we know of).
pub fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Polls `VmHWM` of the watched processes every 50 ms and keeps each one's maximum, so a
/// process that exits on its own (the producer) still has a peak.
pub struct PeakSampler {
    peaks: Arc<Mutex<HashMap<u32, u64>>>,
    task: JoinHandle<()>,
}

impl PeakSampler {
    pub fn start(pids: Vec<u32>) -> Self {
        let peaks: Arc<Mutex<HashMap<u32, u64>>> =
            Arc::new(Mutex::new(pids.into_iter().map(|p| (p, 0)).collect()));
        let shared = peaks.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                let pids: Vec<u32> = lock(&shared).keys().copied().collect();
                for pid in pids {
                    if let Some(kib) = read_vmhwm_kib(pid) {
                        let mut map = lock(&shared);
                        if let Some(peak) = map.get_mut(&pid) {
                            *peak = (*peak).max(kib);
                        }
                    }
                }
            }
        });
        Self { peaks, task }
    }

    /// Starts watching another process.
    pub fn watch(&self, pid: u32) {
        lock(&self.peaks).entry(pid).or_insert(0);
    }

    /// Samples `pid` once more now and returns its peak in KiB (0 if never seen).
    pub fn peak_kib(&self, pid: u32) -> u64 {
        let mut map = lock(&self.peaks);
        let peak = map.entry(pid).or_insert(0);
        if let Some(kib) = read_vmhwm_kib(pid) {
            *peak = (*peak).max(kib);
        }
        *peak
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as a process may choose.
        let text = "4242 (wor ker) x) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    250 50 7 3 20 0 9 0 12345 123456789 4321 18446744073709551615";
        assert_eq!(parse_stat(text), Some(300));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn vmhwm_is_read_in_kib() {
        let status =
            "Name:\tworker\nVmPeak:\t  900000 kB\nVmHWM:\t   45678 kB\nVmRSS:\t   40000 kB\n";
        assert_eq!(parse_vmhwm_kib(status), Some(45_678));
        assert_eq!(parse_vmhwm_kib("Name:\tzombie\nState:\tZ (zombie)\n"), None);
    }

    #[test]
    fn host_busy_excludes_idle_and_iowait() {
        let text = "cpu  100 5 40 800 20 3 2 1 0 0\ncpu0 50 2 20 400 10 1 1 0 0 0\n";
        assert_eq!(
            parse_host_stat(text),
            Some(HostTicks {
                busy: 151,
                total: 971
            })
        );
    }

    #[test]
    fn postgres_processes_of_other_databases_are_not_ours() {
        let db = "sfsync_bench_1";
        assert!(postgres_process_is_ours(
            "postgres: postgres sfsync_bench_1 127.0.0.1(40000) idle",
            db
        ));
        assert!(postgres_process_is_ours("postgres: checkpointer ", db));
        assert!(postgres_process_is_ours(
            "/usr/lib/postgresql/15/bin/postgres\0-D\0/var/lib/postgresql/15/main\0",
            db
        ));
        assert!(!postgres_process_is_ours(
            "postgres: postgres sfsync_t_9 127.0.0.1(40001) INSERT",
            db
        ));
        assert!(!postgres_process_is_ours(
            "postgres: postgres sfsync_bench_12 [local] idle",
            db
        ));
    }

    #[test]
    fn own_process_is_readable() {
        assert!(read_vmhwm_kib(std::process::id()).is_some_and(|k| k > 0));
    }

    /// Burns about `ms` of CPU in this thread.
    fn spin(ms: u64) {
        let until = std::time::Instant::now() + Duration::from_millis(ms);
        let mut x = 0u64;
        while std::time::Instant::now() < until {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }

    #[test]
    fn a_process_cpu_clock_counts_to_the_millisecond() {
        let me = std::process::id();
        let before = process_cpu_ns(me).unwrap();
        spin(25);
        let used = process_cpu_ns(me).unwrap() - before;
        // 25 ms of wall time in one thread; a busy host may give it less of a core, never more
        // than the whole process could have used. Ticks would have said 20 or 30 ms.
        assert!((5_000_000..1_000_000_000).contains(&used), "{used} ns");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let gone = process_cpu_ns(child.id()).unwrap_err();
        assert!(gone.to_string().contains("CPU clock"), "{gone:#}");
        assert!(process_cpu_ns(0).is_err());
        assert!(process_cpu_ns(u32::MAX / 2).is_err());
    }

    #[test]
    fn a_reaped_child_counts_in_the_children_total() {
        let before = reaped_children_cpu_ns().unwrap();
        let status = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .status()
            .unwrap();
        assert!(status.success());
        let used = reaped_children_cpu_ns().unwrap() - before;
        assert!(used > 1_000_000, "{used} ns for 200,000 shell loop rounds");
    }
}
