//! The switch link's counters on `/metrics`, over real sockets: a hub with
//! its API, a connection refused at accept, then a real scrape.
//!
//! Deterministic: the test waits for the refusal itself (the endpoint's
//! counters) within a generous overall limit; nothing asserts on elapsed
//! time.

mod support;

use std::time::Duration;

use cardhub_core::api;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

const TOKEN: &str = "link-metrics-test-token-01";

/// The overall limit for an event the test waits for.
const WAIT: Duration = Duration::from_secs(30);

/// The value of one series in a text exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .find(|(s, _)| *s == series)
        .and_then(|(_, value)| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_shows_on_metrics() {
    let hub = support::start(&format!(
        "max_connections_per_address = 1\n\n[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n"
    ))
    .await;
    let api = api::server::start(
        hub.config.api.as_ref().unwrap(),
        hub.hub.clone(),
        hub.config.institutions.clone().into(),
        &hub.config.prepaid,
        hub.link.stats_source(),
        hub.link.shutdown_token(),
    )
    .await
    .unwrap();

    // The first connection from 127.0.0.1 takes the address's one slot and
    // signs on; the second is refused and closed.
    let switch = support::client(&hub.addr).await;
    let mut refused = TcpStream::connect(&hub.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(WAIT, refused.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the second connection was not closed: {read:?}"
    );
    let give_up = Instant::now() + WAIT;
    while hub.link.stats("base24").unwrap().refused_per_address == 0 {
        assert!(Instant::now() < give_up, "the refusal was never counted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let text = support::http()
        .get(format!("http://{}/metrics", api.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (series, value) in [
        (
            "cardhub_link_refused_total{switch=\"base24\",reason=\"per_address\"}",
            1.0,
        ),
        (
            "cardhub_link_refused_total{switch=\"base24\",reason=\"not_allowed\"}",
            0.0,
        ),
        ("cardhub_link_accepted_total{switch=\"base24\"}", 1.0),
        (
            "cardhub_link_connections{switch=\"base24\",state=\"open\"}",
            1.0,
        ),
        (
            "cardhub_link_connections{switch=\"base24\",state=\"signed_on\"}",
            1.0,
        ),
        ("cardhub_link_evicted_total{switch=\"base24\"}", 0.0),
        (
            "cardhub_link_timeouts_total{switch=\"base24\",limit=\"idle\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    drop(switch);
    hub.link.shutdown().await;
}
