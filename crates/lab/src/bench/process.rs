//! The bench's child processes and what Linux's `/proc` tells about
//! processes: the CPU time of one, of a PostgreSQL server's whole tree;
//! and free loopback ports for the children to listen on.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::Instant;

use super::START_TIMEOUT;

/// `/proc/<pid>/stat` counts CPU time in ticks of 1/100 s (Linux's `USER_HZ`).
const TICK: Duration = Duration::from_millis(10);

/// A child process of this binary, its stderr in `<name>.log`; killed
/// when dropped, so an error never leaves one behind.
pub(super) struct Child {
    pub(super) name: String,
    log: PathBuf,
    process: tokio::process::Child,
}

impl Child {
    pub(super) fn spawn(dir: &Path, name: &str, args: &[&str]) -> Result<Child> {
        let exe = std::env::current_exe().context("finding this program")?;
        let log = dir.join(format!("{name}.log"));
        let stderr = std::fs::File::create(&log)?;
        let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let process = tokio::process::Command::new(exe)
            .args(args)
            .env("RUST_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting the {name}"))?;
        Ok(Child {
            name: name.to_string(),
            log,
            process,
        })
    }

    /// Waits until every address accepts connections.
    pub(super) async fn wait_listening(&mut self, addrs: &[std::net::SocketAddr]) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        for addr in addrs {
            while tokio::net::TcpStream::connect(addr).await.is_err() {
                if let Some(status) = self.process.try_wait()? {
                    bail!(
                        "the {} exited ({status}); see {}",
                        self.name,
                        self.log.display()
                    );
                }
                if Instant::now() > deadline {
                    bail!(
                        "the {} did not listen on {addr} within {START_TIMEOUT:?}; see {}",
                        self.name,
                        self.log.display()
                    );
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    pub(super) fn cpu_time(&self) -> Option<Duration> {
        cpu_time(self.process.id()?)
    }

    /// Kills the process and waits for it (its state is thrown away).
    pub(super) async fn stop(mut self) {
        let _ = self.process.kill().await;
    }
}

/// CPU time (user and system) the process `pid` has used so far; `None`
/// where there is no such process or no `/proc`.
pub(super) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = Stat::read(pid)?;
    Some(TICK * u32::try_from(stat.ticks(UTIME)? + stat.ticks(STIME)?).ok()?)
}

/// CPU time a server and its children have used so far: its own, that of
/// its children that have exited (which it waited for), and that of its
/// children alive now — a PostgreSQL postmaster's backends and background
/// processes, whether they lasted the whole run or not.
pub(super) fn tree_cpu_time(parent: u32) -> Option<Duration> {
    let stat = Stat::read(parent)?;
    let mut ticks = [UTIME, STIME, CUTIME, CSTIME]
        .into_iter()
        .map(|i| stat.ticks(i))
        .sum::<Option<u64>>()?;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        // A child may exit between the listing and the read: skipped.
        if let Some(child) = Stat::read(pid).filter(|s| s.ticks(PPID) == Some(parent.into())) {
            ticks += child.ticks(UTIME).unwrap_or(0) + child.ticks(STIME).unwrap_or(0);
        }
    }
    Some(TICK * u32::try_from(ticks).ok()?)
}

/// The parent of process `pid`, where `/proc` tells.
pub(super) fn parent(pid: u32) -> Option<u32> {
    u32::try_from(Stat::read(pid)?.ticks(PPID)?).ok()
}

// Indexes into the fields after the command name: the state is field 3 of
// `/proc/<pid>/stat` (index 0), the parent 4, utime 14 … cstime 17.
const PPID: usize = 1;
const UTIME: usize = 11;
const STIME: usize = 12;
const CUTIME: usize = 13;
const CSTIME: usize = 14;

/// The fields of `/proc/<pid>/stat` after the command name in parentheses
/// (which may hold spaces).
struct Stat(Vec<String>);

impl Stat {
    fn read(pid: u32) -> Option<Stat> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
        Some(Stat(fields.map(str::to_string).collect()))
    }

    fn ticks(&self, i: usize) -> Option<u64> {
        self.0.get(i)?.parse().ok()
    }
}

/// `N` distinct free loopback addresses (free when asked: another process
/// could take one before the child binds it, which then fails to start).
pub(super) fn free_addresses<const N: usize>() -> Result<[std::net::SocketAddr; N]> {
    let listeners = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .context("finding free ports")?;
    let mut addrs = [std::net::SocketAddr::from(([127, 0, 0, 1], 0)); N];
    for (addr, listener) in addrs.iter_mut().zip(&listeners) {
        *addr = listener.local_addr()?;
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_parent_and_its_tree_used_cpu() {
        let me = std::process::id();
        if Stat::read(me).is_none() {
            return; // no /proc here
        }
        assert_eq!(parent(me), Some(std::os::unix::process::parent_id()));
        // Busy until this process has used two ticks: its tree has too.
        let mut spin = 0u64;
        while cpu_time(me).unwrap() < TICK * 2 {
            spin = std::hint::black_box(spin.wrapping_add(1));
        }
        assert!(tree_cpu_time(me).unwrap() >= TICK * 2);
    }
}
