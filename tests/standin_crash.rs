//! Stand-in and store-and-forward across `kill -9` of the real `cardhub
//! serve` binary: an account-system call cut mid-way is reversed after the
//! restart, and nothing the switch saw approved is lost or told twice.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::canonical_hub::{
    api_post, balances_csv, fixture, hours_ago, http_get, mount_bank, told, wait_for, write_config,
};
use support::{ACTIVE_USD, ACTIVE_USD_2, WAIT, client, code_of, purchase};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// `cardhub serve` on a prepared directory, its log in `hub.log`, up and
/// answering; with the bound switch address and the API's URL (the config
/// binds port 0 for both, so a restart moves them). The CLI's config,
/// `cli.toml`, is the hub's with the API's bound address, for the commands
/// that call the API.
async fn spawn_hub(dir: &Path) -> (std::process::Child, String, String) {
    let config = dir.join("cardhub.toml");
    let served = support::served::serve_dir(dir).await;
    let (switch, api) = (served.switch("base24"), served.api());
    let text = std::fs::read_to_string(&config).unwrap();
    let listen = "listen = \"127.0.0.1:0\"";
    assert_eq!(text.matches(listen).count(), 1, "{text}");
    let bound = api.strip_prefix("http://").unwrap();
    let cli = text.replace(listen, &format!("listen = \"{bound}\""));
    std::fs::write(dir.join("cli.toml"), cli).unwrap();
    (served.child, switch, api)
}

/// Runs `cardhub ARGS --config DIR/cli.toml` (see [`spawn_hub`]); panics
/// with its output when it fails.
fn cli(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .arg("--config")
        .arg(dir.join("cli.toml"))
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

fn db_rows(dir: &Path, sql: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(dir.join("hub.db")).unwrap();
    let mut stmt = db.prepare_cached(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `kill -9` while an Authorize is under way at a slow account system that
/// applies it: at restart the call is journaled (96, outcome unknown) and a
/// Reverse queued for it, delivered once the call cannot still be under
/// way; the account system undoes the hold, and the switch's 0420 finds the
/// original instead of an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_by_kill_9_is_reversed_after_restart() {
    use cardhub_lab::refsys::{self, Mode, RefSys, Switches, accounts, ledger::Ledger};
    let mut ledger = Ledger::open(None).unwrap();
    let opening = accounts::parse(b"account,available,currency\nA-1001,1000.00,USD\n").unwrap();
    ledger.open_accounts(&opening).unwrap();
    // Applies at once, answers 4 s later: after the hub is killed.
    let vendor = RefSys::new(ledger, Mode::Slow, 4_000);
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = refsys::spawn("127.0.0.1:0".parse().unwrap(), vendor.clone(), stop.clone())
        .await
        .unwrap();
    let (dir, _) = support::prepare("").await;
    let any = "127.0.0.1:0";
    write_config(dir.path(), &format!("http://{addr}"), 5_000, any, any);
    let (mut child, switch, _) = spawn_hub(dir.path()).await;
    let c = client(&switch).await;
    let pending =
        tokio::spawn(async move { c.request(&purchase(ACTIVE_USD, 10_000, 1), WAIT).await });
    wait_for("the Authorize to be applied", || {
        vendor.stats().requests.get("authorize") == Some(&1)
    })
    .await;
    child.kill().unwrap(); // SIGKILL, mid-call
    child.wait().unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "no answer left the killed hub"
    );
    assert!(
        db_rows(dir.path(), "SELECT txn_id, stan FROM journal").is_empty(),
        "nothing decided before the kill"
    );
    vendor.set_mode(Switches {
        mode: Mode::Open,
        delay_ms: Some(0),
    });

    let (mut child, switch, api) = spawn_hub(dir.path()).await;
    let original = db_rows(
        dir.path(),
        "SELECT printf('%016X', txn_id), response_code || ' ' || reason FROM journal WHERE stan = '000001'",
    );
    assert_eq!(original.len(), 1, "{original:?}");
    assert!(original[0].1.starts_with("96 ") && original[0].1.contains("outcome unknown"));
    // The switch's reversal advice finds the original (declined: nothing more to undo).
    let c = client(&switch).await;
    let mut reversal = support::request("0420", "000000", ACTIVE_USD, 10_000, 2);
    reversal.set(90, "010000000111220302010000476173900000000000");
    assert_eq!(code_of(&c, &reversal).await, "00");
    let rows = db_rows(
        dir.path(),
        "SELECT entry, printf('%016X', original_txn_id) FROM journal WHERE stan = '000002'",
    );
    assert_eq!(rows, [("request".to_string(), original[0].0.clone())]);
    // The Reverse, under an id of its own, waits out the late-answer window.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let item = loop {
        let listed: serde_json::Value =
            serde_json::from_str(&http_get(&api, "/api/saf?state=delivered").await).unwrap();
        if let Some(item) = listed["items"].as_array().and_then(|i| i.first()).cloned() {
            break item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reversal delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item["operation"], "reverse", "{item}");
    assert_eq!(item["txn_id"], original[0].0.as_str(), "{item}");
    assert_ne!(item["request_id"], item["txn_id"], "{item}");
    // 400: the account system found the hold and released it.
    assert_eq!(item["last_code"], "00 (400)", "{item}");
    assert_eq!(vendor.stats().requests.get("reverse"), Some(&1));
    child.kill().unwrap();
    child.wait().unwrap();
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_told_twice_across_kill_9() {
    let bank = MockServer::start().await;
    // Slow advices: replay is still running when the hub is killed.
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/xml; charset=utf-8")
                .set_body_string(fixture("advice-response.soap11.xml"))
                .set_delay(Duration::from_millis(20)),
        )
        .with_priority(1)
        .mount(&bank)
        .await;
    mount_bank(&bank, Duration::ZERO).await;
    let (dir, _) = support::prepare("").await;
    let any = "127.0.0.1:0";
    write_config(dir.path(), &bank.uri(), 5_000, any, any);
    let (mut child, switch, api) = spawn_hub(dir.path()).await;
    // Through the CLI: the balance file uploaded, the state set in the store.
    let csv = balances_csv(
        &hours_ago(1),
        &[("A-1001", "1000000.00"), ("A-1002", "1000000.00")],
    );
    std::fs::write(dir.path().join("balances.csv"), csv).unwrap();
    cli(
        dir.path(),
        &["balances", "upload", "bank-a", "balances.csv"],
    );
    cli(
        dir.path(),
        &[
            "institutions",
            "set-state",
            "bank-a",
            "closed",
            "--reason",
            "end of day",
        ],
    );
    let mut waited = 0;
    while !http_get(&api, "/api/institutions")
        .await
        .contains("\"state\":\"closed\"")
    {
        assert!(waited < 200, "the hub did not pick up the CLI's state");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }

    // Stand-in traffic, and kill -9 in the middle of it.
    let c = Arc::new(client(&switch).await);
    let approved = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let mut workers = Vec::new();
    for w in 0..8u32 {
        let (c, approved) = (c.clone(), approved.clone());
        workers.push(tokio::spawn(async move {
            let card = if w % 2 == 0 { ACTIVE_USD } else { ACTIVE_USD_2 };
            for i in 0.. {
                let stan = 1 + w * 50_000 + i;
                let Ok((answer, _)) = c.request(&purchase(card, 100, stan), WAIT).await else {
                    break;
                };
                if answer.response_code().is_ok_and(|code| code.is_approval()) {
                    approved.lock().unwrap().insert(format!("{stan:06}"));
                }
            }
        }));
    }
    // Killed once the switch has seen approvals enough, under full load.
    support::wait_until("50 approvals", || approved.lock().unwrap().len() >= 50).await;
    child.kill().unwrap();
    child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let approved = approved.lock().unwrap().clone();
    assert!(
        approved.len() > 20,
        "only {} approvals before the kill",
        approved.len()
    );

    // After restart: every approval the switch saw is journaled and queued.
    let (mut child, _, api) = spawn_hub(dir.path()).await;
    let stood_in = db_rows(
        dir.path(),
        "SELECT stan, printf('%016X', txn_id) FROM journal WHERE decided_by = 'stand_in' \
         AND response_code = '00' AND entry = 'request' ORDER BY txn_id",
    );
    let journaled: std::collections::HashSet<String> =
        stood_in.iter().map(|r| r.0.clone()).collect();
    assert!(
        approved.is_subset(&journaled),
        "an approval the switch saw is not journaled"
    );
    let mut queued: Vec<String> = db_rows(
        dir.path(),
        "SELECT printf('%016X', txn_id), state FROM saf_queue",
    )
    .into_iter()
    .map(|q| q.0)
    .collect();
    queued.sort();
    let ids: Vec<String> = stood_in.iter().map(|r| r.1.clone()).collect();
    assert_eq!(queued, ids, "each approval queued once");

    // Reopen, and kill -9 again while replay runs.
    let open = r#"{"state": "open"}"#;
    assert_eq!(
        api_post(&api, "/api/institutions/bank-a/state", open.into()).await,
        200
    );
    let mut waited = 0;
    while told(&bank, "<as:Advice ").await.len() < ids.len() / 4 && waited < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partly = told(&bank, "<as:Advice ").await.len();
    assert!(
        partly < ids.len(),
        "replay finished before the kill; nothing was tested"
    );

    let (mut child, _, _) = spawn_hub(dir.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !db_rows(
        dir.path(),
        "SELECT CAST(seq AS TEXT), state FROM saf_queue WHERE state != 'delivered'",
    )
    .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = cli(dir.path(), &["txn", "show", &ids[0]]);
    assert!(
        shown.contains("\"decided_by\": \"stand_in\"")
            && shown.contains("\"state\": \"delivered\""),
        "{shown}"
    );
    assert!(
        !shown.contains("4761739001010010"),
        "card number in clear: {shown}"
    );
    let status = cli(dir.path(), &["status"]);
    assert!(
        status.contains("bank-a") && status.contains("stand_in"),
        "{status}"
    );
    let listed = cli(
        dir.path(),
        &["saf", "list", "--state", "delivered", "--limit", "5"],
    );
    assert_eq!(listed.lines().count(), 6, "header and five items: {listed}");
    child.kill().unwrap();
    child.wait().unwrap();

    // The account system was told every stand-in approval; a repeat is only
    // an advice that was in flight at the kill (it drops it by its id).
    let advised: Vec<String> = told(&bank, "<as:Advice ")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    let mut distinct = advised.clone();
    distinct.sort();
    distinct.dedup();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        distinct, expected,
        "every stand-in approval told, nothing else"
    );
    let repeats = advised.len() - distinct.len();
    assert!(
        repeats <= 2,
        "{repeats} repeats: more than the two in flight at the kill"
    );
    // Per account, first deliveries in the order the decisions were made durable.
    for account in ["A-1001", "A-1002"] {
        let mine: Vec<String> = db_rows(
            dir.path(),
            &format!(
                "SELECT printf('%016X', txn_id), account FROM saf_queue \
                 WHERE account = '{account}' ORDER BY seq"
            ),
        )
        .into_iter()
        .map(|r| r.0)
        .collect();
        let mut firsts: Vec<&String> = Vec::new();
        for id in advised.iter().filter(|id| mine.contains(id)) {
            if !firsts.contains(&id) {
                firsts.push(id);
            }
        }
        assert_eq!(
            firsts,
            mine.iter().collect::<Vec<_>>(),
            "{account} in order"
        );
    }
}
