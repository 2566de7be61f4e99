//! The switch simulator against a real link on 127.0.0.1: one request with
//! `SimClient`, a flood, and the `cardhub sim send` binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::iso8583::{Dialect, Message};
use cardhub_core::link::frame::Framing;
use cardhub_core::link::handler::{Handler, Request, answer};
use cardhub_core::link::{self, RunningLink};
use cardhub_lab::sim::{self, FloodOptions, Pace, SimClient, template};

const CONFIG: &str = r#"
[[switch]]
name = "base24"
role = "listen"
address = "127.0.0.1:0"
dialect = "base24"
header = "ISO006000070"
before_sign_on = "refuse"
"#;

/// Approves every request.
struct Approve;

impl Handler for Approve {
    async fn handle(&self, req: Request) -> Message {
        answer(&req.message, ResponseCode::APPROVED)
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

async fn start_hub() -> (RunningLink, SocketAddr) {
    let config = Config::from_toml(Path::new("test.toml"), CONFIG, root()).unwrap();
    let link = link::start(&config.switches, &config.link, Arc::new(Approve))
        .await
        .unwrap();
    let addr = link.local_addr("base24").unwrap();
    (link, addr)
}

fn base24() -> Arc<Dialect> {
    Arc::new(Dialect::shipped("base24").unwrap().unwrap())
}

#[tokio::test]
async fn client_signs_on_and_gets_an_approval() {
    let (hub, addr) = start_hub().await;
    let dialect = base24();
    let client = SimClient::connect(&addr.to_string(), dialect.clone(), Framing::TwoByte, None)
        .await
        .unwrap();
    let on = client.sign_on().await.unwrap();
    assert_eq!(on.response_code().unwrap(), ResponseCode::APPROVED);
    let mut request =
        template::load(&root().join("fixtures/iso8583/base24/0100.hex"), &dialect).unwrap();
    request.set_stan(client.outbound().next_stan());
    let (reply, rtt) = client
        .request(&request, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply.mti().as_str(), "0110");
    assert_eq!(reply.response_code().unwrap(), ResponseCode::APPROVED);
    assert_eq!(reply.get(11), request.get(11));
    // Answered within its timeout (else `request` fails): what is left to
    // check is that the round trip was measured at all.
    assert!(rtt > Duration::ZERO, "a round-trip time is reported");
    client.close().await;
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_of_5000_is_all_approved_and_matched() {
    let (hub, addr) = start_hub().await;
    let dialect = base24();
    let template =
        template::load(&root().join("fixtures/iso8583/base24/0100.hex"), &dialect).unwrap();
    let report = sim::flood(FloodOptions {
        addresses: vec![addr.to_string()],
        dialect,
        framing: Framing::TwoByte,
        header: None,
        template,
        cards: Vec::new(),
        pace: Pace::Concurrency(50),
        count: 5000,
        connections: 1,
        timeout: Duration::from_secs(5),
        progress: false,
    })
    .await
    .unwrap();
    println!("{report}");
    assert_eq!(report.answered, 5000, "{report}");
    assert_eq!(report.codes.get("00"), Some(&5000), "{report}");
    assert_eq!(report.codes.len(), 1, "{report}");
    assert_eq!(report.timeouts, 0, "{report}");
    assert_eq!(report.errors, 0, "{report}");
    assert_eq!(report.mismatches, 0, "{report}");
    assert_eq!(report.dropped, 0, "{report}");
    assert!(report.latency.p50 <= report.latency.p99);
    assert!(report.latency.p99 <= report.latency.max);
    assert!(report.throughput > 0.0);
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_at_a_rate_over_two_connections_with_cards() {
    let (hub, addr) = start_hub().await;
    let dialect = base24();
    let template =
        template::load(&root().join("fixtures/iso8583/base24/0200.json"), &dialect).unwrap();
    let cards = sim::parse_cards(
        "# two cards\n5413330089010608\n4761739001010010\n",
        Path::new("cards.txt"),
    )
    .unwrap();
    let report = sim::flood(FloodOptions {
        addresses: vec![addr.to_string()],
        dialect,
        framing: Framing::TwoByte,
        header: None,
        template,
        cards,
        pace: Pace::Rate(2000.0),
        count: 400,
        connections: 2,
        timeout: Duration::from_secs(5),
        progress: false,
    })
    .await
    .unwrap();
    assert_eq!(report.codes.get("00"), Some(&400), "{report}");
    assert_eq!(
        report.mismatches + report.timeouts + report.errors,
        0,
        "{report}"
    );
    // 400 at 2000/s take about 0.2 s.
    assert!(report.elapsed >= Duration::from_millis(190), "{report}");
    hub.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_hub_is_a_connect_error() {
    // Bind and drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = SimClient::connect(&port.to_string(), base24(), Framing::TwoByte, None)
        .await
        .err()
        .unwrap();
    assert!(matches!(err, sim::SimError::Connect { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(err.to_string().contains(&port.to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_send_binary_prints_the_masked_answer() {
    let (hub, addr) = start_hub().await;
    let to = addr.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cardhub"))
            .args([
                "sim",
                "send",
                "--to",
                &to,
                "--file",
                "fixtures/iso8583/base24/0200.json",
            ])
            .current_dir(root())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("MTI      0210"), "{stdout}");
    assert!(stdout.contains("response 00"), "{stdout}");
    assert!(stdout.contains("476173******0010"), "{stdout}");
    assert!(
        !stdout.contains("4761739001010010"),
        "full PAN leaked:\n{stdout}"
    );
    assert!(
        !stderr.contains("4761739001010010"),
        "full PAN leaked:\n{stderr}"
    );
    hub.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_send_binary_fails_without_an_answer() {
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = silent.local_addr().unwrap().to_string();
    let keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_cardhub"))
            .args([
                "sim",
                "send",
                "--to",
                &to,
                "--mti",
                "0100",
                "--pan",
                "4761739001010010",
                "--amount",
                "1000",
                "--timeout-ms",
                "200",
            ])
            .current_dir(root())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("signing on"), "{stderr}");
    keep.abort();
}
