//! cardhub against an account system it did not write: a vendor generated
//! from `wsdl/account-system.wsdl` with node-soap
//! (`tests/peers/node-soap-vendor`, installed by `scripts/node-env`), on real
//! sockets. Online calls are answered and booked there; after timeouts the
//! stand-in approvals reach it through store-and-forward and are booked
//! exactly once; every request carries the WSDL binding's SOAPAction.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::canonical_hub::{StandInHub, balances_csv, hours_ago, start_hub};
use support::{ACTIVE_USD, ACTIVE_USD_2, WAIT, client, code_of, http, purchase, request};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a test waits for something to happen before it fails.
const PATIENCE: Duration = Duration::from_secs(30);

fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/node-soap-vendor")
}

/// The node-soap vendor as a child process on 127.0.0.1, port 0.
struct Vendor {
    base: String,
    _child: Child,
}

impl Vendor {
    /// Starts it with opening balances (minor units, USD) and reads the
    /// bound port from its first line.
    async fn start(accounts: &[(&str, i64)]) -> Vendor {
        let dir = peer_dir();
        assert!(
            dir.join("node_modules/soap").is_dir(),
            "{} has no node_modules: run scripts/node-env first (scripts/test does)",
            dir.display()
        );
        let mut command = Command::new("node");
        command.arg(dir.join("vendor.js"));
        for (account, balance) in accounts {
            command
                .arg("--account")
                .arg(format!("{account}={balance}:840"));
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("node (Node.js 20) on PATH");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut first = String::new();
        tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut first))
            .await
            .expect("the vendor prints its address")
            .unwrap();
        let addr = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line from the vendor: {first:?}"));
        Vendor {
            base: format!("http://{addr}"),
            _child: child,
        }
    }

    fn url(&self) -> &str {
        &self.base
    }

    /// Makes every answer wait `ms` (the request is booked on arrival).
    async fn delay(&self, ms: u64) {
        let response = http()
            .post(format!("{}/admin/delay?ms={ms}", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    /// Accounts, booked transactions and every SOAP request received.
    async fn ledger(&self) -> Value {
        let response = http()
            .get(format!("{}/admin/ledger", self.base))
            .send()
            .await
            .unwrap();
        serde_json::from_str(&response.text().await.unwrap()).unwrap()
    }
}

fn available(ledger: &Value, account: &str) -> i64 {
    ledger["accounts"][account]["available"].as_i64().unwrap()
}

fn entries<'a>(ledger: &'a Value, key: &str) -> &'a Vec<Value> {
    ledger[key].as_array().unwrap()
}

/// Every request the vendor received carried exactly the SOAPAction of
/// the WSDL's SOAP 1.1 binding for its operation, and node-soap dispatched it.
fn assert_binding_actions(ledger: &Value) {
    let requests = entries(ledger, "requests");
    assert!(!requests.is_empty(), "the vendor received nothing");
    for r in requests {
        let operation = r["operation"]
            .as_str()
            .unwrap_or_else(|| panic!("not dispatched to any operation: {r}"));
        let expected = format!("urn:cardhub:account-system:v1#{operation}");
        assert_eq!(r["soapAction"].as_str(), Some(expected.as_str()), "{r}");
    }
}

/// Polls `check` until it returns Some, or fails after [`PATIENCE`] with
/// `what` and the last value seen.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() > deadline => {
                panic!("timed out waiting for {what}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

async fn saf_items(hub: &StandInHub) -> Vec<Value> {
    let response = http()
        .get(format!("{}/api/saf?institution=bank-a&limit=1000", hub.api))
        .bearer_auth(support::canonical_hub::TOKEN)
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_calls_are_answered_and_booked_by_a_wsdl_generated_vendor() {
    let vendor = Vendor::start(&[("A-1001", 100_000), ("A-1002", 5_000)]).await;
    let hub = start_hub(vendor.url(), 5_000).await;
    let c = client(&hub.switch).await;

    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 12_550, 1)).await, "00");
    let ledger = vendor.ledger().await;
    assert_binding_actions(&ledger);
    assert_eq!(available(&ledger, "A-1001"), 100_000 - 12_550, "{ledger}");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 2_000, 2)).await, "00");
    // More than A-1002 holds: the vendor's 116, DE 39 51; nothing moves.
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD_2, 9_000, 3)).await, "51");

    let ledger = vendor.ledger().await;
    assert_eq!(available(&ledger, "A-1001"), 100_000 - 12_550 - 2_000);
    assert_eq!(available(&ledger, "A-1002"), 5_000, "{ledger}");
    let booked = entries(&ledger, "transactions");
    let amounts: Vec<(&str, i64)> = booked
        .iter()
        .map(|t| {
            (
                t["operation"].as_str().unwrap(),
                t["amount"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(amounts, vec![("Authorize", 12_550), ("Authorize", 2_000)]);
    let second = booked[1]["id"].as_str().unwrap().to_string();

    // The switch reverses the 20.00 purchase (DE 90 names STAN 2).
    let mut reversal = request("0400", "000000", ACTIVE_USD, 2_000, 4);
    reversal.set(90, "010000000211220302010000476173900000000000");
    let (answer, _) = c.request(&reversal, WAIT).await.unwrap();
    assert_eq!(answer.response_code().unwrap().as_str(), "00");
    let ledger = vendor.ledger().await;
    assert_eq!(available(&ledger, "A-1001"), 100_000 - 12_550, "{ledger}");
    let last = entries(&ledger, "transactions").last().unwrap().clone();
    assert_eq!(
        (last["operation"].as_str(), last["original"].as_str()),
        (Some("Reverse"), Some(second.as_str())),
        "{last}"
    );
    assert_eq!(last["amount"], 2_000);
    assert_binding_actions(&ledger);
    hub.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stand_in_approvals_after_timeouts_are_booked_once_through_saf() {
    let vendor = Vendor::start(&[("A-1001", 100_000), ("A-1002", 5_000)]).await;
    // The switch waits 1 s; the account system gets 0.7 s of it.
    let hub = start_hub(vendor.url(), 1_000).await;
    let (status, applied) = hub
        .upload(&balances_csv(
            &hours_ago(1),
            &[("A-1001", "1000.00"), ("A-1002", "50.00")],
        ))
        .await;
    assert_eq!(status, 200, "{applied}");
    let c = client(&hub.switch).await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 10_000, 1)).await, "00");

    // Slow: every answer comes after the switch's deadline. The first
    // purchases still reach the vendor (and are booked there, late); once
    // the breaker opens, cardhub stands in without asking.
    vendor.delay(1_500).await;
    let stand_in = [
        (ACTIVE_USD, 5_000),
        (ACTIVE_USD, 5_000),
        (ACTIVE_USD_2, 1_000),
        (ACTIVE_USD, 5_000),
        (ACTIVE_USD, 5_000),
    ];
    for (stan, (pan, amount)) in (2..).zip(stand_in) {
        assert_eq!(code_of(&c, &purchase(pan, amount, stan)).await, "00");
    }
    let approvals = hub.journal("decided_by = 'stand_in' AND response_code = '00'");
    assert_eq!(approvals.len(), stand_in.len(), "{approvals:?}");

    vendor.delay(0).await;
    // Every stand-in approval is told through SAF and taken: delivered.
    let items = eventually("every SAF item delivered", || async {
        let items = saf_items(&hub).await;
        let done =
            items.len() >= approvals.len() && items.iter().all(|i| i["state"] == "delivered");
        if done {
            Ok(items)
        } else {
            Err(format!("{items:?}"))
        }
    })
    .await;
    assert_eq!(
        items.len(),
        approvals.len(),
        "one advice per approval: {items:?}"
    );

    let ledger = vendor.ledger().await;
    let spent: u64 = stand_in
        .iter()
        .filter(|(pan, _)| *pan == ACTIVE_USD)
        .map(|(_, a)| a)
        .sum();
    assert_eq!(
        available(&ledger, "A-1001"),
        100_000 - 10_000 - spent as i64,
        "{ledger}"
    );
    assert_eq!(available(&ledger, "A-1002"), 5_000 - 1_000, "{ledger}");
    // Each approval booked exactly once: by its late Authorize, or by its
    // advice (naming it as the original, or being its only record).
    let booked = entries(&ledger, "transactions");
    for (id, _, _) in &approvals {
        let times = booked
            .iter()
            .filter(|t| match t["operation"].as_str() {
                Some("Authorize") => t["id"] == id.as_str(),
                Some("Advice") => {
                    t["original"] == id.as_str()
                        || (t["original"].is_null() && t["id"] == id.as_str())
                }
                _ => false,
            })
            .count();
        assert_eq!(times, 1, "{id} booked {times} times: {ledger}");
    }
    let requests = entries(&ledger, "requests");
    let late = requests
        .iter()
        .filter(|r| r["operation"] == "Authorize")
        .filter(|r| {
            approvals
                .iter()
                .any(|(id, _, _)| r["transactionId"] == id.as_str())
        })
        .count();
    assert!(late >= 1, "at least one late Authorize reached the vendor");
    for advice in requests.iter().filter(|r| r["operation"] == "Advice") {
        assert_eq!(advice["resultCode"], "000", "{advice}");
    }
    assert_binding_actions(&ledger);
    hub.link.shutdown().await;
}
