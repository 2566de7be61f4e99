//! One hub per store: a second `cardhub serve` on a served store exits
//! non-zero naming the store and the holder while the first keeps
//! answering; once the holder is killed (`kill -9`) the next one starts.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::*;

/// A config in `dir` (named `name`) serving the store `hub.db`, its switch
/// listener on a free port.
fn write_config(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, config_text("")).unwrap();
    path
}

/// A hub on `config`, up, and where it listens.
async fn serve(config: &Path) -> served::Served {
    let log = config.with_extension("log");
    served::serve(config, &[], &log, &["base24"], false).await
}

fn wait_exit(child: &mut Child) -> ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "the second hub did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hub_on_a_served_store_is_refused_until_the_first_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let first_config = write_config(dir.path(), "first.toml");
    let second_config = write_config(dir.path(), "second.toml");
    let mut first = serve(&first_config).await;
    let first_addr = first.switch("base24");

    // Refused before it binds anything.
    let mut second = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["serve", "--config"])
        .arg(&second_config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_exit(&mut second);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "the second hub started: {stderr}");
    let store = dir.path().join("hub.db");
    for needle in [
        format!("the store {} is already served", store.display()),
        format!("(pid {})", first.child.id()),
    ] {
        assert!(stderr.contains(&needle), "{needle:?} not in: {stderr}");
    }

    // The first one still answers.
    let c = client(&first_addr).await;
    let (answer, _) = c
        .request(&purchase(ACTIVE_USD, 100, 1), WAIT)
        .await
        .unwrap();
    assert!(answer.response_code().is_ok(), "{answer:?}");

    first.child.kill().unwrap(); // SIGKILL: the kernel releases the lock
    first.child.wait().unwrap();
    let mut third = serve(&second_config).await;
    client(&third.switch("base24")).await;
    third.child.kill().unwrap();
    third.child.wait().unwrap();
}
