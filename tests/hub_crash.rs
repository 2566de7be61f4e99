//! Crash safety: the hub runs in a child process under load and is killed
//! with SIGKILL; after restart every answer the switch received as approved
//! is in the journal. The child is this test binary, re-executed on the
//! ignored test `hub_child`.

mod support;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use cardhub_core::config::Config;
use support::*;

const DIR_VAR: &str = "CARDHUB_CRASH_TEST_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_approval_the_switch_saw_survives_kill_9() {
    let (dir, _) = prepare("").await;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hub_child", "--ignored", "--nocapture"])
        .env(DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let addr = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("LISTEN ").map(str::to_string))
    })
    .await
    .unwrap()
    .expect("child hub listening");

    let c = Arc::new(client(&addr).await);
    let approved = Arc::new(Mutex::new(HashSet::new()));
    let mut workers = Vec::new();
    for w in 0..32u32 {
        let (c, approved) = (c.clone(), approved.clone());
        workers.push(tokio::spawn(async move {
            for i in 0.. {
                let stan = 1 + w * 20_000 + i;
                let Ok((answer, _)) = c.request(&purchase(ACTIVE_USD, 1, stan), WAIT).await else {
                    break;
                };
                if answer.response_code().is_ok_and(|code| code.is_approval()) {
                    approved.lock().unwrap().insert(format!("{stan:06}"));
                }
            }
        }));
    }
    // Killed once the switch has seen approvals enough, under full load.
    wait_until("150 approvals", || approved.lock().unwrap().len() >= 150).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }

    let approved = approved.lock().unwrap().clone();
    assert!(
        approved.len() > 100,
        "only {} approvals before the kill",
        approved.len()
    );
    println!(
        "{} approvals before the kill, all in the journal",
        approved.len()
    );
    let db = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    let mut in_journal = HashSet::new();
    let mut stmt = db
        .prepare_cached("SELECT stan FROM journal WHERE response_code = '00' AND entry = 'request'")
        .unwrap();
    for stan in stmt.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        in_journal.insert(stan.unwrap());
    }
    let missing: Vec<_> = approved.difference(&in_journal).collect();
    assert!(
        missing.is_empty(),
        "{} approvals lost: {missing:?}",
        missing.len()
    );
}

/// The hub process of the crash test; does nothing unless run by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by every_approval_the_switch_saw_survives_kill_9"]
async fn hub_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let config = Config::load(&dir.join("cardhub.toml")).unwrap();
    let temp = tempfile::tempdir().unwrap(); // unused holder; the real dir belongs to the parent
    let t = start_in(temp, config, Arc::new(TestBank::default())).await;
    println!("LISTEN {}", t.addr);
    std::future::pending::<()>().await;
}
