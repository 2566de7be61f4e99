//! End-to-end hub benchmark: the hub in this process with its journal on disk
//! (group commit, fsync before every answer), driven by `cardhub sim flood`
//! as a separate process over loopback — once with an account system that
//! approves at once (defined here, bench harness only), once through the
//! canonical adapter to a SOAP 1.1 server on loopback (wiremock).
//!
//! Run: `cargo bench --bench hub` (figures in docs/performance.md).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cardhub::hub::account_system::{
    AccountAnswer, AccountError, AccountRequest, AccountSystem, Operation,
};
use cardhub::hub::service;
use cardhub::iso8583::fields::ResponseCode;
use cardhub::link;
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
        let (dir, config) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
        let systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::from([(
            "bank-a".to_string(),
            Arc::new(ApproveAll) as Arc<dyn AccountSystem>,
        )]);
        let hub = Arc::new(service::open(&config, systems).expect("hub opens"));
        scenario("hub, account system in process", hub, &config, runs).await;
        drop(dir);

        // Through the canonical adapter to a SOAP 1.1 server on loopback.
        let soap_runs: &[(&str, &[&str], u32)] = if full {
            &[
                ("rate 5,000/s", &["--rate", "5000"], 50_000),
                ("throughput", &["--concurrency", "128"], 100_000),
            ]
        } else {
            &[("smoke", &["--concurrency", "8"], 100)]
        };
        let server = soap_server().await;
        let (dir, _) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
        let config = with_canonical_adapter(dir.path(), &server.uri());
        let (hub, _adapters) = service::open_with_adapters(&config).expect("hub opens");
        scenario(
            "hub, canonical adapter to a SOAP server",
            Arc::new(hub),
            &config,
            soap_runs,
        )
        .await;
        drop(dir);
    });
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
fn with_canonical_adapter(dir: &std::path::Path, uri: &str) -> cardhub::config::Config {
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
    cardhub::config::Config::load(&path).expect("config loads")
}

/// Serves `hub` and floods it once per run, printing the simulator's report
/// and the journal's commit figures.
async fn scenario(
    title: &str,
    hub: Arc<cardhub::hub::pipeline::Hub>,
    config: &cardhub::config::Config,
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
fn hub_stats(hub: &cardhub::hub::pipeline::Hub) -> (u64, u64) {
    let s = hub.store_stats();
    (s.commits, s.jobs)
}
