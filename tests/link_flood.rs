//! A listening switch endpoint under attack, over real sockets on the
//! loopback range: idle connections, slowloris senders, one address opening
//! too many connections, strangers off the allow-list — and the real switch
//! still signs on and gets every answer.
//!
//! Deterministic: time limits are configured short, and the tests wait for
//! the events themselves (the endpoint's counters, a closed socket) within a
//! generous overall limit; nothing asserts on elapsed time. Attackers bind
//! source addresses in 127.0.0.0/8 so the per-address limit can be tested
//! apart from the rest.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::config::Config;
use cardhub_core::iso8583::Dialect;
use cardhub_core::link::frame::Framing;
use cardhub_core::link::{self, ConnectionStats, IssuerUnavailable, RunningLink};
use cardhub_lab::sim::SimClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

const HEADER: &str = "ISO006000070";
/// Overall limit on waiting for any one event; never reached when things work.
const WAIT: Duration = Duration::from_secs(30);
/// How often a waiting test looks at the counters again.
const POLL: Duration = Duration::from_millis(10);

/// Raises the soft open-file limit to the hard one when it is low: the
/// flood test holds about 800 sockets (700 attacking ends, the hub's
/// side of at most 64 and those it is closing) at its peak.
fn enough_file_descriptors() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some_and(|soft| soft < 4096) {
        let raised = rustix::process::Rlimit {
            current: limit.maximum.map(|hard| hard.min(8192)),
            maximum: limit.maximum,
        };
        setrlimit(Resource::Nofile, raised).expect("raise the open-file limit");
    }
}

/// A link-only endpoint ("pos") answering 91 to financial requests.
async fn start_link(extra: &str) -> (RunningLink, SocketAddr) {
    let text = format!(
        "[[switch]]\nname = \"pos\"\nrole = \"listen\"\naddress = \"127.0.0.1:0\"\n\
         header = \"{HEADER}\"\n{extra}"
    );
    let cfg = Config::from_toml(Path::new("test.toml"), &text, Path::new(".")).unwrap();
    let link = link::start(&cfg.switches, &cfg.link, Arc::new(IssuerUnavailable))
        .await
        .unwrap();
    let addr = link.local_addr("pos").unwrap();
    (link, addr)
}

/// Waits until `done` holds for the endpoint's stats; panics with the last
/// stats after [`WAIT`].
async fn wait_for(
    link: &RunningLink,
    switch: &str,
    what: &str,
    done: impl Fn(&ConnectionStats) -> bool,
) -> ConnectionStats {
    let give_up = Instant::now() + WAIT;
    loop {
        let stats = link.stats(switch).unwrap();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < give_up,
            "waited for {what}; stats: {stats:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    let from: IpAddr = from.parse().unwrap();
    socket.bind(SocketAddr::new(from, 0)).unwrap();
    socket.connect(to).await.unwrap()
}

/// Waits for the hub to close `stream` (end of stream or reset); panics
/// after [`WAIT`] or when the hub sends anything.
async fn closed_by_hub(stream: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match tokio::time::timeout(WAIT, stream.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("the hub sent {n} bytes instead of closing"),
        Err(_) => panic!("the hub did not close the connection within {WAIT:?}"),
    }
}

fn base24() -> Arc<Dialect> {
    Arc::new(Dialect::shipped("base24").unwrap().unwrap())
}

/// The switch: the simulator's client, from 127.0.0.1, signed on.
async fn switch(addr: SocketAddr) -> SimClient {
    let c = SimClient::connect(
        &addr.to_string(),
        base24(),
        Framing::TwoByte,
        Some(HEADER.into()),
    )
    .await
    .unwrap();
    c.sign_on().await.unwrap();
    c
}

/// Connections the endpoint admitted or refused so far.
fn handled(s: &ConnectionStats) -> u64 {
    s.accepted + s.refused_not_allowed + s.refused_per_address + s.refused_full
}

/// Source address number `i` of an attack, 8 connections per address.
fn attacker_address(wave: u8, i: usize) -> String {
    format!("127.{wave}.{}.{}", i / 8 / 250, i / 8 % 250 + 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_switch_gets_every_answer_through_idle_and_slowloris_floods() {
    enough_file_descriptors();
    let hub = support::start(
        "max_connections = 64\nreserved_connections = 16\nmax_connections_per_address = 8\n\
         sign_on_timeout_ms = 2000\nframe_timeout_ms = 500\nidle_timeout_ms = 60000",
    )
    .await;
    let addr: SocketAddr = hub.addr.parse().unwrap();

    // 500 connections that never send a byte, and 100 that trickle a frame
    // header one byte at a time and never finish it.
    let mut idle = Vec::new();
    for i in 0..500 {
        idle.push(connect_from(&attacker_address(1, i), addr).await);
    }
    let mut slowloris = Vec::new();
    for i in 0..100 {
        let mut stream = connect_from(&attacker_address(2, i), addr).await;
        slowloris.push(tokio::spawn(async move {
            // A 2-byte length of 1000, then the body a byte per 50 ms;
            // bounded: 400 bytes at most. True when the hub cut it off.
            let bytes = [0x03, 0xe8]
                .into_iter()
                .chain(std::iter::repeat_n(b'0', 400));
            for b in bytes {
                if stream.write_all(&[b]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        }));
    }
    // Every attacking connection has been admitted (evicting older ones) or refused.
    let stats = wait_for(
        &hub.link,
        "base24",
        "600 attacking connections handled",
        |s| handled(s) >= 600,
    )
    .await;
    assert!(
        stats.open <= 48,
        "strangers keep out of the reserved slots: {stats:?}"
    );
    assert!(stats.evicted > 0, "{stats:?}");

    // The switch connects after the attacker, and gets in.
    let c = switch(addr).await;
    let stats = wait_for(&hub.link, "base24", "the switch established", |s| {
        s.established == 1
    })
    .await;
    assert_eq!(stats.refused_full, 0);

    // A second wave after it signed on cannot push it out.
    for i in 0..100 {
        idle.push(connect_from(&attacker_address(3, i), addr).await);
    }
    wait_for(&hub.link, "base24", "the second wave handled", |s| {
        handled(s) >= 701
    })
    .await;

    let mut answers = Vec::new();
    for stan in 1..=50u32 {
        let amount = 100 + u64::from(stan);
        answers.push(
            support::code_of(&c, &support::purchase(support::ACTIVE_USD, amount, stan)).await,
        );
    }
    assert!(answers.iter().all(|code| code == "00"), "{answers:?}");

    // Every slowloris sender was cut off (evicted, or by the frame time
    // limit), none left trickling until it gave up.
    for task in slowloris {
        let cut_off = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        assert!(cut_off, "a slowloris sender kept its connection");
    }
    let stats = hub.link.stats("base24").unwrap();
    assert_eq!(stats.established, 1, "{stats:?}");
    drop(idle);
    c.close().await;
    hub.link.shutdown().await;
}

#[tokio::test]
async fn a_connection_not_signed_on_in_time_is_closed() {
    let (link, addr) = start_link("sign_on_timeout_ms = 200").await;
    let c = switch(addr).await;
    let mut silent = connect_from("127.0.0.1", addr).await;
    // A complete frame that is not a sign-on does not count.
    let mut echo_only = connect_from("127.0.0.1", addr).await;
    let echo = cardhub_core::link::netmgmt::request(
        cardhub_core::link::netmgmt::NetworkCode::Echo,
        cardhub_core::iso8583::fields::Stan::new(1).unwrap(),
        Some(HEADER),
        None,
    );
    let body = base24().encode(&echo).unwrap();
    let mut frame = u16::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    echo_only.write_all(&frame).await.unwrap();
    let mut answer = [0u8; 2];
    echo_only.read_exact(&mut answer).await.unwrap();
    let mut rest = vec![0u8; usize::from(u16::from_be_bytes(answer))];
    echo_only.read_exact(&mut rest).await.unwrap();

    closed_by_hub(&mut silent).await;
    closed_by_hub(&mut echo_only).await;
    let stats = wait_for(&link, "pos", "two sign-on time-outs", |s| {
        s.sign_on_timeouts == 2
    })
    .await;
    // The switch connected before both and signed on: still served.
    assert!(c.is_signed_on());
    c.sign_on().await.unwrap();
    assert_eq!(stats.established, 1, "{stats:?}");
    link.shutdown().await;
}

#[tokio::test]
async fn without_sign_on_required_a_first_frame_is_enough() {
    let (link, addr) = start_link("before_sign_on = \"accept\"\nsign_on_timeout_ms = 200").await;
    let mut silent = connect_from("127.0.0.1", addr).await;
    let c = SimClient::connect(
        &addr.to_string(),
        base24(),
        Framing::TwoByte,
        Some(HEADER.into()),
    )
    .await
    .unwrap();
    // An echo test is a complete frame: the connection is established.
    let echo = cardhub_core::link::netmgmt::request(
        cardhub_core::link::netmgmt::NetworkCode::Echo,
        c.outbound().next_stan(),
        Some(HEADER),
        None,
    );
    c.outbound().request(&echo, WAIT).await.unwrap();
    closed_by_hub(&mut silent).await;
    let stats = wait_for(&link, "pos", "one sign-on time-out", |s| {
        s.sign_on_timeouts == 1
    })
    .await;
    assert_eq!(stats.established, 1);
    c.outbound().request(&echo, WAIT).await.unwrap();
    link.shutdown().await;
}

#[tokio::test]
async fn a_connection_without_frames_for_the_idle_limit_is_closed() {
    let (link, addr) =
        start_link("sign_on_timeout_ms = 0\nidle_echo_ms = 0\nidle_timeout_ms = 200").await;
    let mut quiet = connect_from("127.0.0.1", addr).await;
    closed_by_hub(&mut quiet).await;
    let stats = wait_for(&link, "pos", "an idle time-out", |s| s.idle_timeouts == 1).await;
    assert_eq!((stats.sign_on_timeouts, stats.frame_timeouts), (0, 0));
    link.shutdown().await;
}

#[tokio::test]
async fn a_frame_not_completed_in_time_closes_the_connection() {
    let (link, addr) = start_link("sign_on_timeout_ms = 0\nframe_timeout_ms = 200").await;
    let mut slow = connect_from("127.0.0.1", addr).await;
    // The length header of a 100-byte frame and 3 bytes of it.
    slow.write_all(&[0, 100, b'0', b'1', b'0']).await.unwrap();
    closed_by_hub(&mut slow).await;
    let stats = wait_for(&link, "pos", "a frame time-out", |s| s.frame_timeouts == 1).await;
    assert_eq!((stats.sign_on_timeouts, stats.idle_timeouts), (0, 0));
    link.shutdown().await;
}

#[tokio::test]
async fn one_address_gets_its_limit_and_no_more() {
    let (link, addr) = start_link("max_connections_per_address = 3").await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect_from("127.0.0.2", addr).await);
    }
    wait_for(&link, "pos", "three admitted", |s| s.open == 3).await;
    let mut fourth = connect_from("127.0.0.2", addr).await;
    closed_by_hub(&mut fourth).await;
    let stats = wait_for(&link, "pos", "one refusal", |s| s.refused_per_address == 1).await;
    assert_eq!(stats.open, 3);
    // Another address is not affected.
    let c = switch(addr).await;
    assert!(c.is_signed_on());
    link.shutdown().await;
}

#[tokio::test]
async fn the_allow_list_refuses_strangers_and_admits_the_switch() {
    let (link, addr) = start_link("allow = [\"127.0.0.1\", \"127.0.9.0/24\"]").await;
    let mut stranger = connect_from("127.0.0.2", addr).await;
    closed_by_hub(&mut stranger).await;
    let mut other = connect_from("127.0.8.1", addr).await;
    closed_by_hub(&mut other).await;
    let _listed_block = connect_from("127.0.9.200", addr).await;
    let c = switch(addr).await;
    let stats = wait_for(&link, "pos", "the switch established", |s| {
        s.established == 1
    })
    .await;
    assert_eq!(stats.refused_not_allowed, 2, "{stats:?}");
    assert_eq!(
        stats.open, 2,
        "the switch and the one from the listed block"
    );
    assert!(c.is_signed_on());
    link.shutdown().await;
}

#[tokio::test]
async fn strangers_fill_their_share_and_the_switch_still_gets_in_and_stays() {
    let (link, addr) = start_link("max_connections = 4\nreserved_connections = 1").await;
    let mut strangers = Vec::new();
    for i in 1..=3 {
        strangers.push(connect_from(&format!("127.0.0.{}", i + 1), addr).await);
    }
    wait_for(&link, "pos", "three strangers in", |s| s.open == 3).await;
    // The strangers' share is full; the switch evicts the oldest stranger.
    let c = switch(addr).await;
    closed_by_hub(&mut strangers[0]).await;
    let stats = wait_for(&link, "pos", "the switch established", |s| {
        s.established == 1
    })
    .await;
    assert_eq!(stats.evicted, 1);
    // Strangers keep coming: they take the free slot, then evict each other,
    // never the signed-on switch.
    for i in 0..6 {
        strangers.push(connect_from(&format!("127.0.1.{}", i + 1), addr).await);
    }
    let stats = wait_for(&link, "pos", "six more handled", |s| s.accepted == 10).await;
    assert_eq!(
        (stats.open, stats.established, stats.evicted),
        (4, 1, 6),
        "{stats:?}"
    );
    // Still served.
    c.sign_on().await.unwrap();
    link.shutdown().await;
}
