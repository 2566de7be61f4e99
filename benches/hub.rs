//! End-to-end hub benchmark: the hub in this process with its journal on disk
//! (group commit, fsync before every answer), driven by `cardhub sim flood`
//! as a separate process over loopback — once with an account system that
//! approves at once (defined here, bench harness only), once through the
//! canonical adapter to a SOAP 1.1 server on loopback (wiremock), and once
//! in stand-in: the institution closed, every request decided from the
//! shadow balance (a balance file applied first), each approval queued for
//! store-and-forward in the same commit.
//!
//! Run: `cargo bench --bench hub` (figures in docs/performance.md);
//! `cargo bench --bench hub -- stand-in` runs only scenarios whose title
//! contains the word.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cardhub_core::account::{
    AccountAnswer, AccountError, AccountRequest, AccountSystem, Operation,
};
use cardhub_core::app;
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::link;
use futures::future::BoxFuture;

/// Approves everything at once, with no balance bookkeeping.
struct ApproveAll;

fn approve() -> BoxFuture<'static, Result<AccountAnswer, AccountError>> {
    Box::pin(async {
        Ok(AccountAnswer {
            code: ResponseCode::APPROVED,
            raw_code: "OK".into(),
            auth_id: Some("123456".into()),
            balances: None,
            message: None,
        })
    })
}

impl AccountSystem for ApproveAll {
    fn name(&self) -> &str {
        "approve-all"
    }

    fn call<'a>(
        &'a self,
        _: Operation,
        _: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        approve()
    }
}

fn flood(addr: &str, pace: &[&str], count: u32) -> String {
    let template = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/iso8583/base24/0100.hex"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args([
            "sim",
            "flood",
            "--to",
            addr,
            "--template",
            template,
            "--quiet",
        ])
        .args(pace)
        .args(["--count", &count.to_string()])
        .output()
        .expect("cardhub sim flood runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn main() {
    // `cargo test --benches` runs benches once without --bench: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    let only = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |title: &str| only.as_deref().is_none_or(|w| title.contains(w));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let runs: &[(&str, &[&str], u32)] = if full {
            &[
                ("rate 10,000/s", &["--rate", "10000"], 100_000),
                ("throughput", &["--concurrency", "128"], 200_000),
            ]
        } else {
            &[("smoke", &["--concurrency", "8"], 200)]
        };
        // The account system approves at once, in process.
        if wanted("account system in process") {
            let (dir, config) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
            let systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::from([(
                "bank-a".to_string(),
                Arc::new(ApproveAll) as Arc<dyn AccountSystem>,
            )]);
            let hub = Arc::new(app::open(&config, systems).expect("hub opens"));
            scenario("hub, account system in process", hub, &config, runs).await;
            drop(dir);
        }

        // Through the canonical adapter to a SOAP 1.1 server on loopback.
        let soap_runs: &[(&str, &[&str], u32)] = if full {
            &[
                ("rate 5,000/s", &["--rate", "5000"], 50_000),
                ("throughput", &["--concurrency", "128"], 100_000),
            ]
        } else {
            &[("smoke", &["--concurrency", "8"], 100)]
        };
        if wanted("canonical adapter") {
            let server = soap_server().await;
            let (dir, _) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
            let config = with_canonical_adapter(dir.path(), &server.uri());
            let (hub, _adapters) = app::open_with_adapters(&config).expect("hub opens");
            scenario(
                "hub, canonical adapter to a SOAP server",
                Arc::new(hub),
                &config,
                soap_runs,
            )
            .await;
            drop(dir);
        }

        // Stand-in: bank-a closed, decided from its balance file.
        if !wanted("stand-in") {
            return;
        }
        let (dir, config) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
        // An account system to queue for (closed: never called during the run).
        let systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::from([(
            "bank-a".to_string(),
            Arc::new(ApproveAll) as Arc<dyn AccountSystem>,
        )]);
        let hub = Arc::new(app::open(&config, systems).expect("hub opens"));
        closed_with_balances(&hub).await;
        let cards = dir.path().join("cards.txt");
        std::fs::write(
            &cards,
            format!("{}\n{}\n", support::ACTIVE_USD, support::ACTIVE_USD_2),
        )
        .expect("cards file");
        let cards = cards.to_string_lossy().into_owned();
        let stand_in_runs: Vec<(&str, Vec<&str>, u32)> = if full {
            vec![
                (
                    "rate 10,000/s",
                    vec!["--rate", "10000", "--cards", &cards],
                    100_000,
                ),
                (
                    "throughput",
                    vec!["--concurrency", "128", "--cards", &cards],
                    200_000,
                ),
            ]
        } else {
            vec![("smoke", vec!["--concurrency", "8", "--cards", &cards], 200)]
        };
        let runs: Vec<(&str, &[&str], u32)> = stand_in_runs
            .iter()
            .map(|(n, p, c)| (*n, p.as_slice(), *c))
            .collect();
        scenario(
            "hub, stand-in (institution closed)",
            hub.clone(),
            &config,
            &runs,
        )
        .await;
        let queued = hub
            .store()
            .read(|c| c.query_row("SELECT COUNT(*) FROM saf_queue", [], |r| r.get::<i64>(0)))
            .expect("queue readable");
        println!("saf         {queued} stand-in approvals queued for replay\n");
        drop(dir);
    });
}

/// Applies a balance file for bank-a's accounts (plenty of money) and closes bank-a.
async fn closed_with_balances(hub: &Arc<cardhub_core::hub::pipeline::Hub>) {
    let format: cardhub_core::standin::balance_file::BalanceFormat = toml::from_str(
        "format = \"csv\"\naccount = \"account\"\navailable = \"available\"\ncurrency_code = \"USD\"",
    )
    .expect("format");
    let file = "account,available\nA-1001,10000000000.00\nA-1002,10000000000.00\n".to_string();
    let h = hub.clone();
    tokio::task::spawn_blocking(move || {
        cardhub_core::standin::balances::apply(
            h.store(),
            h.book(),
            "bank-a",
            &format,
            file.as_bytes(),
            Some(jiff::Timestamp::now()),
            "bench",
        )
    })
    .await
    .expect("apply runs")
    .expect("balances applied");
    hub.institutions()
        .set_state(
            "bank-a",
            cardhub_core::standin::state::InstitutionState::Closed,
            cardhub_core::standin::state::Source::Cli,
            "benchmark",
        )
        .await
        .expect("closed");
}

/// A SOAP 1.1 account system on loopback that approves every Authorize.
async fn soap_server() -> wiremock::MockServer {
    let answer = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/soap/canonical/authorize-response.soap11.xml"
    ))
    .expect("fixture");
    let server = wiremock::MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(answer))
        .mount(&server)
        .await;
    server
}

/// The prepared config with bank-a reaching `uri` through the canonical adapter.
fn with_canonical_adapter(dir: &std::path::Path, uri: &str) -> cardhub_core::config::Config {
    let adapters = dir.join("adapters");
    std::fs::create_dir_all(&adapters).expect("adapters dir");
    let canonical = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/adapters/canonical.toml"
    ))
    .expect("canonical adapter")
    .replace("http://127.0.0.1:8080", uri);
    std::fs::write(adapters.join("canonical.toml"), canonical).expect("write adapter");
    let path = dir.join("cardhub.toml");
    let text = std::fs::read_to_string(&path).expect("config").replace(
        "id = \"bank-a\"\nname = \"Bank A\"",
        "id = \"bank-a\"\nname = \"Bank A\"\nadapter = \"canonical\"",
    );
    std::fs::write(&path, format!("adapters_dir = \"adapters\"\n{text}")).expect("write config");
    cardhub_core::config::Config::load(&path).expect("config loads")
}

/// Serves `hub` and floods it once per run, printing the simulator's report
/// and the journal's commit figures.
async fn scenario(
    title: &str,
    hub: Arc<cardhub_core::hub::pipeline::Hub>,
    config: &cardhub_core::config::Config,
    runs: &[(&str, &[&str], u32)],
) {
    let link = link::start(&config.switches, &config.link, hub.clone())
        .await
        .expect("link starts");
    let addr = link.local_addr("base24").expect("listening").to_string();
    for (name, pace, count) in runs {
        let before = hub_stats(&hub);
        let started = Instant::now();
        let addr = addr.clone();
        let pace: Vec<String> = pace.iter().map(|p| p.to_string()).collect();
        let count = *count;
        let report = tokio::task::spawn_blocking(move || {
            let pace: Vec<&str> = pace.iter().map(String::as_str).collect();
            flood(&addr, &pace, count)
        })
        .await
        .expect("flood");
        let secs = started.elapsed().as_secs_f64();
        let after = hub_stats(&hub);
        println!("== {title}, {name}\n{report}");
        println!(
            "store       {} journal commits (fsyncs), {:.0}/s, {:.1} rows per commit\n",
            after.0 - before.0,
            (after.0 - before.0) as f64 / secs,
            (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64
        );
    }
    link.shutdown().await;
}

/// (commits, jobs) of the hub's store so far.
fn hub_stats(hub: &cardhub_core::hub::pipeline::Hub) -> (u64, u64) {
    let s = hub.store_stats();
    (s.commits, s.jobs)
}
