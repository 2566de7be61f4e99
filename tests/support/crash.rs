//! The store's `kill -9` tests, on either back end: a child process (the
//! test binary itself, run again on its ignored test `crash_child`) writes
//! rows and prints the id of each one the store acknowledged; the parent
//! kills it in the middle of writing and checks every acknowledged row is
//! stored.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cardhub_core::store::{Store, sql};

/// What the child prints before the id of an acknowledged row.
const ACK: &str = "ACK ";

/// Starts this test binary's `crash_child` with `var` set to `value`, kills
/// it with SIGKILL once it has acknowledged at least `at_least` rows, and
/// returns the ids of every row it acknowledged before it died.
pub fn acknowledged_then_killed(var: &str, value: &OsStr, at_least: usize) -> Vec<String> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = Command::new(exe)
        .args(["--exact", "crash_child", "--ignored", "--nocapture"])
        .env(var, value)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let (lines, acks) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut out = BufReader::new(stdout);
        let mut line = String::new();
        // Only whole lines count: a torn last line was never acknowledged.
        while out.read_line(&mut line).is_ok_and(|n| n > 0) {
            if let Some(id) = line.strip_prefix(ACK).and_then(|l| l.strip_suffix('\n')) {
                let _ = lines.send(id.to_owned());
            }
            line.clear();
        }
    });
    let mut acked = Vec::new();
    while acked.len() < at_least {
        let id = acks
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("child stopped acknowledging after {}", acked.len()));
        acked.push(id);
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap child");
    reader.join().expect("reader");
    acked.extend(acks.try_iter());
    acked
}

/// The child's side: `writers` tasks writing rows `crash-<w>-<n>` on
/// `store` with `insert`, each printing the row's id once the store has
/// acknowledged it, until the parent kills the process.
pub async fn write_and_acknowledge(
    store: &Store,
    writers: usize,
    insert: fn(&sql::Connection, &str) -> sql::Result<i64>,
) {
    let writers: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0u64.. {
                    let txn = format!("crash-{w}-{n}");
                    let id = txn.clone();
                    store
                        .write(move |c| insert(c, &txn))
                        .await
                        .expect("child write");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{ACK}{id}").expect("stdout");
                    out.flush().expect("flush");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.expect("writer");
    }
}
