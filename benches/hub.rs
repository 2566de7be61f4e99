//! End-to-end hub benchmark: the hub in this process with its journal on disk
//! (group commit, fsync before every answer) and an account system that
//! approves at once — defined here, bench harness only — driven by
//! `cardhub sim flood` as a separate process over loopback.
//!
//! Run: `cargo bench --bench hub` (figures in docs/performance.md).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use cardhub::hub::account_system::{AccountAnswer, AccountError, AccountRequest, AccountSystem};
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
        })
    })
}

impl AccountSystem for ApproveAll {
    fn name(&self) -> &str {
        "approve-all"
    }
    fn authorize<'a>(
        &'a self,
        _: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        approve()
    }
    fn load<'a>(
        &'a self,
        _: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        approve()
    }
    fn reverse<'a>(
        &'a self,
        _: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        approve()
    }
    fn advice<'a>(
        &'a self,
        _: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        approve()
    }
    fn balance_inquiry<'a>(
        &'a self,
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
    // `cargo test --benches` runs benches once with --bench absent: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (dir, config) = support::prepare("max_in_flight = 50000\nidle_echo_ms = 0").await;
        let systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::from([(
            "bank-a".to_string(),
            Arc::new(ApproveAll) as Arc<dyn AccountSystem>,
        )]);
        let hub = Arc::new(service::open(&config, systems).expect("hub opens"));
        let link = link::start(&config.switches, &config.link, hub.clone())
            .await
            .expect("link starts");
        let addr = link.local_addr("base24").expect("listening").to_string();
        let runs: &[(&str, &[&str], u32)] = if full {
            &[
                ("rate 10,000/s", &["--rate", "10000"], 100_000),
                ("throughput", &["--concurrency", "128"], 200_000),
            ]
        } else {
            &[("smoke", &["--concurrency", "8"], 200)]
        };
        for (name, pace, count) in runs {
            let before = hub_stats(&hub);
            let started = Instant::now();
            let addr = addr.clone();
            let pace: Vec<&str> = pace.to_vec();
            let report = tokio::task::spawn_blocking(move || flood(&addr, &pace, *count))
                .await
                .expect("flood");
            let secs = started.elapsed().as_secs_f64();
            let after = hub_stats(&hub);
            println!("== hub, {name}\n{report}");
            println!(
                "store       {} journal commits (fsyncs), {:.0}/s, {:.1} rows per commit\n",
                after.0 - before.0,
                (after.0 - before.0) as f64 / secs,
                (after.1 - before.1) as f64 / (after.0 - before.0).max(1) as f64
            );
        }
        link.shutdown().await;
        drop(dir);
    });
}

/// (commits, jobs) of the hub's store so far.
fn hub_stats(hub: &cardhub::hub::pipeline::Hub) -> (u64, u64) {
    let s = hub.store_stats();
    (s.commits, s.jobs)
}
