//! The switch link over real TCP sockets on 127.0.0.1: network management,
//! many requests in flight, backpressure, broken frames, dial mode,
//! idle echo tests and graceful shutdown.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::{ResponseCode, Stan};
use cardhub_core::iso8583::{Dialect, Message};
use cardhub_core::link::frame::{FrameCodec, Framing};
use cardhub_core::link::handler::answer;
use cardhub_core::link::netmgmt::{self, NetworkCode};
use cardhub_core::link::{
    self, ConnectionHandle, Handler, IssuerUnavailable, Request, RunningLink,
};
use cardhub_core::link::{SwitchSettings, connection};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

const HEADER: &str = "ISO006000070";
const WAIT: Duration = Duration::from_secs(10);

/// Approves everything; an amount of 999 is held until the test opens the
/// gate; records deadlines.
struct TestHandler {
    /// Closed (no permits) until [`TestHandler::open`] closes the semaphore,
    /// which lets every held request and every later one through.
    gate: Semaphore,
    handled: AtomicUsize,
    held: AtomicUsize,
    budget_ms: AtomicUsize,
}

impl Default for TestHandler {
    fn default() -> Self {
        Self {
            gate: Semaphore::new(0),
            handled: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            budget_ms: AtomicUsize::new(0),
        }
    }
}

impl TestHandler {
    /// Lets the held requests (amount 999) and any later ones answer.
    fn open(&self) {
        self.gate.close();
    }

    /// Waits (bounded) until `n` requests are held at the gate.
    async fn until_held(&self, n: usize) {
        tokio::time::timeout(WAIT, async {
            while self.held.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{n} requests held at the gate"));
    }
}

impl Handler for TestHandler {
    async fn handle(&self, request: Request) -> Message {
        self.handled.fetch_add(1, Ordering::SeqCst);
        self.budget_ms.store(
            (request.deadline - request.received).as_millis() as usize,
            Ordering::SeqCst,
        );
        if request
            .message
            .amount()
            .is_ok_and(|a| a.minor_units() == 999)
        {
            self.held.fetch_add(1, Ordering::SeqCst);
            // Closed: the gate is open (an acquire before that never succeeds).
            let _ = self.gate.acquire().await;
        }
        answer(&request.message, ResponseCode::APPROVED)
    }
}

fn config(extra: &str) -> Config {
    let text = format!(
        "[[switch]]\nname = \"pos\"\nrole = \"listen\"\naddress = \"127.0.0.1:0\"\n\
         dialect = \"base24\"\nheader = \"{HEADER}\"\n{extra}"
    );
    Config::from_toml(Path::new("test.toml"), &text, Path::new(".")).unwrap()
}

async fn start<H: Handler>(extra: &str, handler: Arc<H>) -> (RunningLink, String) {
    let cfg = config(extra);
    let link = link::start(&cfg.switches, &cfg.link, handler)
        .await
        .unwrap();
    let addr = link.local_addr("pos").unwrap().to_string();
    (link, addr)
}

fn base24() -> Arc<Dialect> {
    Arc::new(Dialect::shipped("base24").unwrap().unwrap())
}

/// A switch-side connection built from the link's own connection code.
async fn client(addr: &str) -> ConnectionHandle {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let peer = stream.peer_addr().unwrap();
    let settings = SwitchSettings::simulator(addr, base24(), Framing::TwoByte, Some(HEADER.into()));
    connection::spawn(
        stream,
        peer,
        Arc::new(settings),
        Arc::new(IssuerUnavailable),
        Arc::new(Semaphore::new(10_000)),
        CancellationToken::new(),
    )
}

fn purchase(stan: u32, amount: u64) -> Message {
    let mut m = Message::new("0100".parse().unwrap());
    m.set_header(Some(b"ISO026000070".to_vec()));
    m.set(2, "4761739001010010");
    m.set(3, "000000");
    m.set(4, format!("{amount:012}"));
    m.set(7, "1122030201");
    m.set_stan(Stan::new(stan).unwrap());
    m.set(37, format!("{stan:012}"));
    m.set(41, "TERM0001");
    m.set(49, "978");
    m
}

async fn network(c: &ConnectionHandle, code: NetworkCode) -> Message {
    let msg = netmgmt::request(code, c.outbound.next_stan(), Some(HEADER), None);
    c.outbound.request(&msg, WAIT).await.unwrap()
}

fn code(m: &Message) -> String {
    m.response_code().unwrap().to_string()
}

#[tokio::test]
async fn sign_on_echo_sign_off_and_requests_before_sign_on() {
    let handler = Arc::new(TestHandler::default());
    let (link, addr) = start("", handler.clone()).await;
    let c = client(&addr).await;

    let early = c.outbound.request(&purchase(1, 100), WAIT).await.unwrap();
    assert_eq!(early.mti().as_str(), "0110");
    assert_eq!(code(&early), "91", "refused before sign-on");
    assert_eq!(handler.handled.load(Ordering::SeqCst), 0);

    let on = network(&c, NetworkCode::SignOn).await;
    assert_eq!((on.mti().as_str(), code(&on).as_str()), ("0810", "00"));
    let approved = c.outbound.request(&purchase(2, 100), WAIT).await.unwrap();
    assert_eq!(code(&approved), "00");
    assert_eq!(approved.stan().unwrap().value(), 2);
    assert_eq!(
        handler.budget_ms.load(Ordering::SeqCst),
        4500,
        "5 s minus 500 ms margin"
    );

    let echo = network(&c, NetworkCode::Echo).await;
    assert_eq!(code(&echo), "00");
    let off = network(&c, NetworkCode::SignOff).await;
    assert_eq!(code(&off), "00");
    let late = c.outbound.request(&purchase(3, 100), WAIT).await.unwrap();
    assert_eq!(code(&late), "91", "refused after sign-off");
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1);
    link.shutdown().await;
}

#[tokio::test]
async fn before_sign_on_accept_lets_requests_through() {
    let handler = Arc::new(TestHandler::default());
    let (link, addr) = start("before_sign_on = \"accept\"", handler).await;
    let c = client(&addr).await;
    let reply = c.outbound.request(&purchase(1, 100), WAIT).await.unwrap();
    assert_eq!(code(&reply), "00");
    link.shutdown().await;
}

/// The slow request is held at the gate until all 999 others are answered:
/// it blocks nobody, and it is still answered (and matched) afterwards.
#[tokio::test]
async fn a_thousand_requests_in_flight_and_a_slow_one_blocks_nobody() {
    let handler = Arc::new(TestHandler::default());
    let (link, addr) = start("", handler.clone()).await;
    let c = Arc::new(client(&addr).await);
    network(&c, NetworkCode::SignOn).await;

    let slow = {
        let c = c.clone();
        tokio::spawn(async move { c.outbound.request(&purchase(1, 999), WAIT).await })
    };
    handler.until_held(1).await;
    let mut fast = Vec::new();
    for stan in 2..=1000u32 {
        let c = c.clone();
        fast.push(tokio::spawn(async move {
            let amount = 10_000 + u64::from(stan); // never the slow amount 999
            let reply = c
                .outbound
                .request(&purchase(stan, amount), WAIT)
                .await
                .unwrap();
            (stan, reply)
        }));
    }
    for task in fast {
        let (stan, reply) = task.await.unwrap();
        assert_eq!(
            reply.stan().unwrap().value(),
            stan,
            "answer matched to its request"
        );
        assert_eq!(
            reply.amount().unwrap().minor_units(),
            10_000 + u64::from(stan)
        );
        assert_eq!(code(&reply), "00");
    }
    assert!(!slow.is_finished(), "the slow request is still held");
    handler.open();
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(
        (code(&slow), slow.stan().unwrap().value()),
        ("00".into(), 1)
    );
    assert_eq!(handler.handled.load(Ordering::SeqCst), 1000);
    link.shutdown().await;
}

/// Five requests are held in the handler; the fifteen past the limit are
/// answered 91 while those five are still held, not after them.
#[tokio::test]
async fn past_the_in_flight_limit_requests_get_91_at_once() {
    let handler = Arc::new(TestHandler::default());
    let (link, addr) = start(
        "max_in_flight = 5\nbefore_sign_on = \"accept\"",
        handler.clone(),
    )
    .await;
    let c = Arc::new(client(&addr).await);
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    for stan in 1..=20u32 {
        let (c, answered) = (c.clone(), answered.clone());
        tokio::spawn(async move {
            let reply = c.outbound.request(&purchase(stan, 999), WAIT).await;
            let _ = answered.send(reply.map(|r| code(&r)));
        });
    }
    let mut next = async || {
        tokio::time::timeout(WAIT, answers.recv())
            .await
            .expect("an answer")
            .expect("a sender")
            .expect("answered")
    };
    for _ in 0..15 {
        assert_eq!(next().await, "91", "past the limit, while five are held");
    }
    assert_eq!(handler.held.load(Ordering::SeqCst), 5, "only five handled");
    handler.open();
    for _ in 0..5 {
        assert_eq!(next().await, "00");
    }
    link.shutdown().await;
}

/// A raw switch-side socket speaking 2-byte framing, for broken input.
async fn raw(addr: &str) -> Framed<TcpStream, FrameCodec> {
    Framed::new(
        TcpStream::connect(addr).await.unwrap(),
        FrameCodec::new(Framing::TwoByte, 65_535),
    )
}

async fn next(frames: &mut Framed<TcpStream, FrameCodec>) -> Option<Message> {
    let frame = tokio::time::timeout(WAIT, frames.next()).await.unwrap()?;
    Some(base24().decode(&frame.unwrap()).unwrap())
}

fn encode(m: &Message) -> Bytes {
    Bytes::from(base24().encode(m).unwrap())
}

#[tokio::test]
async fn an_undecodable_message_gets_30_and_the_connection_keeps_serving() {
    let (link, addr) = start(
        "before_sign_on = \"accept\"",
        Arc::new(TestHandler::default()),
    )
    .await;
    let mut frames = raw(&addr).await;
    // A control byte in DE 41 (the last byte before DE 49): DE 11 before it is readable.
    let mut bad = encode(&purchase(42, 100)).to_vec();
    let len = bad.len();
    bad[len - 4] = 0x01;
    frames.send(Bytes::from(bad)).await.unwrap();
    let reply = next(&mut frames).await.unwrap();
    assert_eq!(reply.mti().as_str(), "0110");
    assert_eq!(code(&reply), "30");
    assert_eq!(reply.stan().unwrap().value(), 42);

    // Garbage with no recoverable MTI: no answer, but the line stays up.
    frames.send(Bytes::from_static(b"garbage!")).await.unwrap();
    frames.send(encode(&purchase(43, 100))).await.unwrap();
    let reply = next(&mut frames).await.unwrap();
    assert_eq!(
        (code(&reply), reply.stan().unwrap().value()),
        ("00".into(), 43)
    );
    link.shutdown().await;
}

#[tokio::test]
async fn an_unmatched_answer_is_dropped_and_the_connection_keeps_serving() {
    let (link, addr) = start(
        "before_sign_on = \"accept\"",
        Arc::new(TestHandler::default()),
    )
    .await;
    let mut frames = raw(&addr).await;
    let stray = answer(&purchase(7, 100), ResponseCode::APPROVED);
    frames.send(encode(&stray)).await.unwrap();
    frames.send(encode(&purchase(8, 100))).await.unwrap();
    let reply = next(&mut frames).await.unwrap();
    assert_eq!(reply.stan().unwrap().value(), 8);
    link.shutdown().await;
}

async fn assert_closed_by_hub(mut stream: TcpStream) {
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, stream.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "expected the hub to close, read {n:?}"
    );
}

#[tokio::test]
async fn oversize_and_broken_frames_close_only_their_connection() {
    let (link, addr) = start(
        "before_sign_on = \"accept\"",
        Arc::new(TestHandler::default()),
    )
    .await;

    let mut oversize = TcpStream::connect(&addr).await.unwrap();
    oversize
        .write_all(&[0xff, 0xff, b'I', b'S', b'O'])
        .await
        .unwrap();
    assert_closed_by_hub(oversize).await;

    let mut empty = TcpStream::connect(&addr).await.unwrap();
    empty.write_all(&[0, 0]).await.unwrap();
    assert_closed_by_hub(empty).await;

    // The peer closes in the middle of a frame.
    let mut truncated = TcpStream::connect(&addr).await.unwrap();
    truncated
        .write_all(&[0, 200, b'I', b'S', b'O'])
        .await
        .unwrap();
    drop(truncated);

    // The hub still serves new connections.
    let mut frames = raw(&addr).await;
    frames.send(encode(&purchase(9, 100))).await.unwrap();
    assert_eq!(code(&next(&mut frames).await.unwrap()), "00");
    link.shutdown().await;
}

#[tokio::test]
async fn etx_and_ascii_framings_work_end_to_end() {
    for (framing, name) in [
        (Framing::TwoByteEtx, "two-byte-etx"),
        (Framing::FourAscii, "four-ascii"),
    ] {
        let extra = format!("before_sign_on = \"accept\"\nframing = \"{name}\"");
        let (link, addr) = start(&extra, Arc::new(TestHandler::default())).await;
        let mut frames = Framed::new(
            TcpStream::connect(&addr).await.unwrap(),
            FrameCodec::new(framing, 9999),
        );
        frames.send(encode(&purchase(5, 100))).await.unwrap();
        let frame = tokio::time::timeout(WAIT, frames.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let reply = base24().decode(&frame).unwrap();
        assert_eq!(code(&reply), "00", "{name}");
        link.shutdown().await;
    }
}

#[tokio::test]
async fn an_idle_peer_that_does_not_answer_echo_is_dropped() {
    let extra = "idle_echo_ms = 100\necho_timeout_ms = 200\nbefore_sign_on = \"accept\"";
    let (link, addr) = start(extra, Arc::new(TestHandler::default())).await;
    // A live peer (answers echo through the link code) stays connected.
    let live = client(&addr).await;
    // A silent peer reads the echo test but never answers.
    let mut silent = raw(&addr).await;
    let echo = next(&mut silent).await.unwrap();
    assert_eq!(echo.mti().as_str(), "0800");
    assert_eq!(echo.network_management_code().unwrap(), 301);
    let closed = tokio::time::timeout(WAIT, silent.next()).await.unwrap();
    assert!(
        closed.is_none() || closed.unwrap().is_err(),
        "silent peer dropped"
    );
    assert!(
        !live.task.is_finished(),
        "the answering peer is still connected"
    );
    let reply = live
        .outbound
        .request(&purchase(1, 100), WAIT)
        .await
        .unwrap();
    assert_eq!(code(&reply), "00");
    link.shutdown().await;
}

#[tokio::test]
async fn shutdown_answers_every_request_in_flight_then_signs_off() {
    let handler = Arc::new(TestHandler::default());
    let (link, addr) = start("", handler.clone()).await;
    let c = Arc::new(client(&addr).await);
    network(&c, NetworkCode::SignOn).await;
    let mut tasks = Vec::new();
    for stan in 1..=50u32 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            c.outbound.request(&purchase(stan, 999), WAIT).await
        }));
    }
    // All fifty are in the handler when the shutdown begins; they are
    // let through only once it has.
    handler.until_held(50).await;
    let stopped = link.shutdown_token();
    let stopping = tokio::spawn(link.shutdown());
    tokio::time::timeout(WAIT, stopped.cancelled())
        .await
        .expect("shutdown began");
    handler.open();
    for task in tasks {
        let reply = task.await.unwrap().expect("answered during shutdown");
        assert_eq!(code(&reply), "00");
    }
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
    // The hub signed off (our side answered its 0800/002) and closed.
    assert!(!c.signed_on.load(Ordering::SeqCst));
    tokio::time::timeout(WAIT, async {
        while !c.task.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

/// The switch side of a dial-mode link: accepts, expects a sign-on, answers it.
async fn accept_sign_on(listener: &TcpListener) -> Framed<TcpStream, FrameCodec> {
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut frames = Framed::new(stream, FrameCodec::new(Framing::TwoByte, 8192));
    let sign_on = next(&mut frames).await.unwrap();
    assert_eq!(sign_on.network_management_code().unwrap(), 1);
    frames
        .send(encode(&answer(&sign_on, ResponseCode::APPROVED)))
        .await
        .unwrap();
    frames
}

#[tokio::test]
async fn dial_mode_signs_on_and_reconnects_after_the_peer_restarts() {
    let switch = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = switch.local_addr().unwrap();
    let text = format!(
        "[[switch]]\nname = \"out\"\nrole = \"dial\"\naddress = \"{address}\"\n\
         header = \"{HEADER}\"\nreconnect_min_ms = 50\nreconnect_max_ms = 200\n"
    );
    let cfg = Config::from_toml(Path::new("t.toml"), &text, Path::new(".")).unwrap();
    let link = link::start(&cfg.switches, &cfg.link, Arc::new(TestHandler::default()))
        .await
        .unwrap();

    let mut first = accept_sign_on(&switch).await;
    first.send(encode(&purchase(1, 100))).await.unwrap();
    assert_eq!(code(&next(&mut first).await.unwrap()), "00");
    drop(first); // the switch goes away

    let mut second = accept_sign_on(&switch).await;
    second.send(encode(&purchase(2, 100))).await.unwrap();
    let reply = next(&mut second).await.unwrap();
    assert_eq!(
        (code(&reply), reply.stan().unwrap().value()),
        ("00".into(), 2)
    );
    // Shutdown signs off the dialled connection.
    let stopping = tokio::spawn(link.shutdown());
    let off = next(&mut second).await.unwrap();
    assert_eq!(off.network_management_code().unwrap(), 2);
    second
        .send(encode(&answer(&off, ResponseCode::APPROVED)))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}

/// Handling that panics on an amount of 13: the hub's fault.
struct PanickingHandler;

impl Handler for PanickingHandler {
    async fn handle(&self, request: Request) -> Message {
        let amount = request.message.amount().map(|a| a.minor_units());
        assert!(amount != Ok(13), "a bug in the hub");
        answer(&request.message, ResponseCode::APPROVED)
    }
}

/// A request whose handling panics is answered 96 (the hub's error, not
/// the switch's), and the connection keeps serving.
#[tokio::test]
async fn a_panic_while_handling_is_answered_96_and_the_link_serves_on() {
    let (link, addr) = start("", Arc::new(PanickingHandler)).await;
    let c = client(&addr).await;
    network(&c, NetworkCode::SignOn).await;
    let failed = c.outbound.request(&purchase(1, 13), WAIT).await.unwrap();
    assert_eq!(failed.response_code().unwrap(), ResponseCode::SYSTEM_ERROR);
    let next = c.outbound.request(&purchase(2, 100), WAIT).await.unwrap();
    assert_eq!(next.response_code().unwrap(), ResponseCode::APPROVED);
    link.shutdown().await;
}
