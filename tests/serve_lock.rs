//! One hub per store: a second `cardhub serve` on a served store exits
//! non-zero naming the store and the holder while the first keeps
//! answering; once the holder is killed (`kill -9`) the next one starts.

mod support;

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use support::*;
use tokio::net::TcpStream;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A config in `dir` (named `name`) serving the store `hub.db` on a port of
/// its own; returns the file and the switch address.
fn write_config(dir: &Path, name: &str) -> (std::path::PathBuf, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let path = dir.join(name);
    std::fs::write(&path, config_text("").replace("127.0.0.1:0", &addr)).unwrap();
    (path, addr)
}

fn serve(config: &Path, stderr: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

async fn wait_listening(addr: &str, child: &mut Child) {
    tokio::time::timeout(WAIT, async {
        while TcpStream::connect(addr).await.is_err() {
            assert!(child.try_wait().unwrap().is_none(), "the hub exited");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("hub listening");
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
    let (first_config, first_addr) = write_config(dir.path(), "first.toml");
    let (second_config, second_addr) = write_config(dir.path(), "second.toml");
    let mut first = serve(&first_config, Stdio::null());
    wait_listening(&first_addr, &mut first).await;

    let mut second = serve(&second_config, Stdio::piped());
    let status = wait_exit(&mut second);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "the second hub started: {stderr}");
    let store = dir.path().join("hub.db");
    for needle in [
        format!("the store {} is already served", store.display()),
        format!("(pid {})", first.id()),
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

    first.kill().unwrap(); // SIGKILL: the kernel releases the lock
    first.wait().unwrap();
    let mut third = serve(&second_config, Stdio::null());
    wait_listening(&second_addr, &mut third).await;
    client(&second_addr).await;
    third.kill().unwrap();
    third.wait().unwrap();
}
