//! One switch connection, whichever side opened it.
//!
//! Roles inside: the **reader** (this task) reads frames, answers network
//! management and refusals inline, and spawns one **request task** per
//! financial request; the **writer** task owns the write half and serialises
//! every outgoing frame, batching what is queued into one flush; the
//! [`Outbound`] handle sends cardhub's own requests (sign-on, echo, sign-off,
//! simulator traffic) and matches their answers by MTI class + DE 41 + DE 11.
//!
//! A frame that fails to decode gets a format-error answer (DE 39 = 30) when
//! its MTI and STAN can be recovered; the connection keeps serving. A broken
//! length header or an oversize frame loses the framing: the connection closes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info, warn};

use super::LinkError;
use super::admission::{Counters, Timeout};
use super::config::{BeforeSignOn, SwitchSettings};
use super::frame::FrameCodec;
use super::frame_clock::FrameClock;
use super::handler::{Handler, Origin, Request, answer};
use super::netmgmt::{self, NetworkCode};
use crate::iso8583::fields::{ResponseCode, Stan};
use crate::iso8583::{Dialect, Message, PartialDecode};

/// How long a sign-off at shutdown waits for its answer, at most.
const SIGN_OFF_WAIT: Duration = Duration::from_secs(2);

/// Frames queued for the writer beyond the in-flight limit (network management, refusals).
const WRITER_HEADROOM: usize = 256;

/// What answers are matched by: MTI class, DE 41, DE 11.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MatchKey {
    class: u8,
    terminal: Vec<u8>,
    stan: Vec<u8>,
}

impl MatchKey {
    /// The key of a message, normalised the way fixed fields are padded on
    /// the wire: DE 41 without trailing spaces, DE 11 without leading zeros.
    fn of(msg: &Message) -> MatchKey {
        let terminal = msg.get(41).unwrap_or_default().trim_ascii_end();
        let stan = msg.get(11).unwrap_or_default();
        let first_digit = stan.iter().position(|&b| b != b'0').unwrap_or(stan.len());
        MatchKey {
            class: msg.mti().class(),
            terminal: terminal.to_vec(),
            stan: stan[first_digit..].to_vec(),
        }
    }
}

type Pending = Arc<Mutex<HashMap<MatchKey, oneshot::Sender<Message>>>>;

/// Sends messages on a connection; clones share the connection.
#[derive(Clone)]
pub struct Outbound {
    /// Encoded messages for the writer task.
    frames: mpsc::Sender<Bytes>,
    /// cardhub's requests waiting for an answer.
    pending: Pending,
    dialect: Arc<Dialect>,
    max_frame: usize,
    /// STANs of the requests cardhub originates.
    stan: Arc<AtomicU32>,
}

/// Removes a pending entry when the waiting request ends, however it ends.
struct PendingGuard<'a> {
    pending: &'a Pending,
    key: MatchKey,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.pending.lock() {
            map.remove(&self.key);
        }
    }
}

impl Outbound {
    /// The next STAN for a message cardhub originates (1–999999, wrapping).
    pub fn next_stan(&self) -> Stan {
        let n = self.stan.fetch_add(1, Ordering::Relaxed) % 999_999 + 1;
        Stan::new(n).unwrap_or_else(|_| unreachable!("n is at most 999999"))
    }

    /// The dialect messages on this connection are encoded with.
    pub fn dialect(&self) -> &Arc<Dialect> {
        &self.dialect
    }

    /// Encodes and queues a message for sending.
    ///
    /// # Errors
    /// [`LinkError::Encode`] or [`LinkError::TooLarge`] when it cannot be
    /// sent (nothing is queued), [`LinkError::Closed`] when the connection is gone.
    pub async fn send(&self, msg: &Message) -> Result<(), LinkError> {
        let mut out = Vec::with_capacity(512);
        self.dialect
            .encode_into(msg, &mut out)
            .map_err(|source| LinkError::Encode {
                mti: msg.mti(),
                source,
            })?;
        if out.len() > self.max_frame {
            return Err(LinkError::TooLarge {
                length: out.len(),
                max: self.max_frame,
            });
        }
        self.frames
            .send(Bytes::from(out))
            .await
            .map_err(|_| LinkError::Closed)
    }

    /// Sends a request and waits for the answer with the same MTI class, DE 41 and DE 11.
    ///
    /// # Errors
    /// [`LinkError::Timeout`] when no answer comes in time, [`LinkError::DuplicateKey`]
    /// when a request with the same keys is already waiting, or a send error.
    pub async fn request(&self, msg: &Message, timeout: Duration) -> Result<Message, LinkError> {
        let key = MatchKey::of(msg);
        let (tx, rx) = oneshot::channel();
        {
            let mut map = self.pending.lock().map_err(|_| LinkError::Closed)?;
            if map.contains_key(&key) {
                return Err(LinkError::DuplicateKey);
            }
            map.insert(key.clone(), tx);
        }
        let _guard = PendingGuard {
            pending: &self.pending,
            key,
        };
        self.send(msg).await?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(LinkError::Closed),
            Err(_) => Err(LinkError::Timeout(timeout)),
        }
    }

    /// Fails every request still waiting for an answer (the connection is gone).
    fn fail_pending(&self) {
        if let Ok(mut map) = self.pending.lock() {
            map.clear();
        }
    }

    /// Hands an answer to the request waiting for it; false when none waits.
    fn complete(&self, answer: Message) -> bool {
        let key = MatchKey::of(&answer);
        let waiter = self
            .pending
            .lock()
            .ok()
            .and_then(|mut map| map.remove(&key));
        match waiter {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }
}

/// A running connection.
pub struct ConnectionHandle {
    /// Sends cardhub's own requests on this connection.
    pub outbound: Outbound,
    /// Whether the link is signed on (by the peer's 0800/001 or ours).
    pub signed_on: Arc<AtomicBool>,
    /// Cancel to close the connection at once.
    pub close: CancellationToken,
    /// Ends when the connection is closed and its in-flight requests are done.
    pub task: JoinHandle<()>,
}

/// How the listener or dialer oversees a connection: what it can see of it
/// and the limits it imposes.
pub(crate) struct Supervision {
    /// Set once the connection is established: signed on, or — with
    /// `before_sign_on = "accept"` — sent a complete frame. Never unset.
    pub established: Arc<AtomicBool>,
    /// Closes the connection from outside (eviction, [`ConnectionHandle::close`]).
    pub close: CancellationToken,
    /// Where time-limit closes are counted.
    pub counters: Arc<Counters>,
    /// Closed unless established by then (listen: accept + `sign_on_timeout_ms`).
    pub sign_on_by: Option<Instant>,
}

impl Default for Supervision {
    fn default() -> Self {
        Supervision {
            established: Arc::default(),
            close: CancellationToken::new(),
            counters: Arc::default(),
            sign_on_by: None,
        }
    }
}

/// The reader's state and everything a request task needs.
struct Connection<H> {
    settings: Arc<SwitchSettings>,
    origin: Arc<Origin>,
    handler: Arc<H>,
    /// Requests in flight on this connection.
    in_flight: Arc<Semaphore>,
    /// Requests in flight on the whole link.
    global: Arc<Semaphore>,
    outbound: Outbound,
    signed_on: Arc<AtomicBool>,
    /// In-flight request tasks, waited for before the connection ends.
    tasks: TaskTracker,
    /// Closes this connection now (dead peer, lost framing, `ConnectionHandle::close`).
    close: CancellationToken,
    /// Link-wide shutdown: refuse new requests, drain, sign off, close.
    shutdown: CancellationToken,
    /// Set once shutdown began on this connection.
    draining: bool,
    /// Established flag, counters and sign-on deadline.
    supervision: Supervision,
}

/// Starts serving a connection: spawns its reader and writer tasks. The
/// idle and frame time limits of `settings` apply; no sign-on time limit.
pub fn spawn<S, H>(
    stream: S,
    peer: SocketAddr,
    settings: Arc<SwitchSettings>,
    handler: Arc<H>,
    global: Arc<Semaphore>,
    shutdown: CancellationToken,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    spawn_supervised(
        stream,
        peer,
        settings,
        handler,
        global,
        shutdown,
        Supervision::default(),
    )
}

/// [`spawn`], overseen by a listener or dialer.
pub(crate) fn spawn_supervised<S, H>(
    stream: S,
    peer: SocketAddr,
    settings: Arc<SwitchSettings>,
    handler: Arc<H>,
    global: Arc<Semaphore>,
    shutdown: CancellationToken,
    supervision: Supervision,
) -> ConnectionHandle
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    H: Handler,
{
    let (read, write) = tokio::io::split(stream);
    let cfg = &settings.config;
    let codec = FrameCodec::new(cfg.framing, cfg.max_frame);
    let (frames, queue) = mpsc::channel(cfg.max_in_flight + WRITER_HEADROOM);
    let close = supervision.close.clone();
    let read = FrameClock::new(read, settings.frame_timeout());
    let outbound = Outbound {
        frames,
        pending: Arc::default(),
        dialect: settings.dialect.clone(),
        max_frame: cfg.max_frame,
        stan: Arc::new(AtomicU32::new(rand::random::<u32>() % 999_999)),
    };
    let signed_on = Arc::new(AtomicBool::new(false));
    let connection = Connection {
        origin: Arc::new(Origin {
            switch: cfg.name.clone(),
            peer,
        }),
        in_flight: Arc::new(Semaphore::new(cfg.max_in_flight)),
        handler,
        global,
        outbound: outbound.clone(),
        signed_on: signed_on.clone(),
        tasks: TaskTracker::new(),
        close: close.clone(),
        shutdown,
        draining: false,
        settings,
        supervision,
    };
    let writer = tokio::spawn(write_frames(write, codec, queue, close.clone()));
    let task = tokio::spawn(async move {
        connection.run(FramedRead::new(read, codec), writer).await;
    });
    ConnectionHandle {
        outbound,
        signed_on,
        close,
        task,
    }
}

impl<H: Handler> Connection<H> {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        mut frames: FramedRead<FrameClock<R>, FrameCodec>,
        writer: JoinHandle<()>,
    ) {
        let switch = self.origin.switch.clone();
        let peer = self.origin.peer;
        info!(switch, %peer, "connection open");
        let idle_echo = self.settings.idle_echo();
        let idle_timeout = self.settings.idle_timeout();
        let sign_on_by = self.supervision.sign_on_by;
        let mut last_frame = Instant::now();
        // Unlike `last_frame`, not moved by our own echo tests.
        let mut last_received = last_frame;
        let echo_outstanding = Arc::new(AtomicBool::new(false));
        let drained = CancellationToken::new();
        loop {
            let echo_at = idle_echo.map(|d| last_frame + d);
            let echo_ready = echo_at.is_some() && !echo_outstanding.load(Ordering::Relaxed);
            tokio::select! {
                biased;
                _ = self.close.cancelled() => break,
                _ = drained.cancelled() => break,
                _ = self.shutdown.cancelled(), if !self.draining => {
                    self.draining = true;
                    tokio::spawn(drain(
                        self.tasks.clone(),
                        self.outbound.clone(),
                        self.signed_on.clone(),
                        self.settings.clone(),
                        drained.clone(),
                    ));
                }
                _ = sleep_until_opt(echo_at), if echo_ready => {
                    echo_outstanding.store(true, Ordering::Relaxed);
                    tokio::spawn(echo_test(
                        self.outbound.clone(),
                        self.settings.clone(),
                        echo_outstanding.clone(),
                        self.close.clone(),
                    ));
                    // Wait a whole idle period again before the next echo.
                    last_frame = Instant::now();
                }
                _ = sleep_until_opt(sign_on_by),
                    if sign_on_by.is_some() && !self.supervision.established.load(Ordering::Relaxed) =>
                {
                    self.supervision.counters.timed_out(Timeout::SignOn);
                    info!(switch, %peer, limit_ms = self.settings.config.sign_on_timeout_ms,
                        "not signed on in time, closing the connection");
                    break;
                }
                _ = sleep_until_opt(idle_timeout.map(|d| last_received + d)), if idle_timeout.is_some() => {
                    self.supervision.counters.timed_out(Timeout::Idle);
                    info!(switch, %peer, limit_ms = self.settings.config.idle_timeout_ms,
                        "no frame for too long, closing the connection");
                    break;
                }
                frame = frames.next() => match frame {
                    None => {
                        info!(switch, %peer, "peer closed the connection");
                        break;
                    }
                    Some(Err(_)) if frames.get_ref().expired() => {
                        self.supervision.counters.timed_out(Timeout::Frame);
                        info!(switch, %peer, limit_ms = self.settings.config.frame_timeout_ms,
                            "frame not completed in time, closing the connection");
                        break;
                    }
                    Some(Err(e)) => {
                        warn!(switch, %peer, error = %e, "framing lost, closing the connection");
                        break;
                    }
                    Some(Ok(bytes)) => {
                        let more_buffered = !frames.read_buffer().is_empty();
                        frames.get_mut().frame_done(more_buffered);
                        last_frame = Instant::now();
                        last_received = last_frame;
                        self.on_frame(&bytes, last_frame).await;
                        self.note_established();
                    }
                },
            }
        }
        self.close.cancel();
        // Requests of ours still waiting will get no answer on this connection.
        self.outbound.fail_pending();
        self.tasks.close();
        self.tasks.wait().await;
        let _ = writer.await;
        info!(switch, %peer, "connection closed");
    }

    /// Handles one frame: answers, refusals and network management inline,
    /// financial requests in their own task.
    async fn on_frame(&mut self, bytes: &[u8], received: Instant) {
        let msg = match self.settings.dialect.decode_partial(bytes) {
            Ok(msg) => msg,
            Err(PartialDecode { error, partial }) => {
                warn!(switch = self.origin.switch, peer = %self.origin.peer, %error, "undecodable message");
                if let Some(p) = partial.filter(|p| p.mti().expects_response() && p.has(11)) {
                    self.reply(&answer(&p, ResponseCode::FORMAT_ERROR)).await;
                }
                return;
            }
        };
        let mti = msg.mti();
        if !mti.expects_response() {
            // An approved answer to our sign-on or sign-off changes the state
            // before anything behind it on the line is read.
            if let Some(on) = netmgmt::state_after_answer(&msg) {
                self.signed_on.store(on, Ordering::Relaxed);
            }
            if !self.outbound.complete(msg) {
                warn!(switch = self.origin.switch, %mti, "unmatched answer dropped");
            }
            return;
        }
        if mti.class() == 8 {
            let (reply, state) = netmgmt::answer_request(&msg);
            if let Some(on) = state {
                self.signed_on.store(on, Ordering::Relaxed);
                info!(
                    switch = self.origin.switch,
                    signed_on = on,
                    "network management"
                );
            }
            self.reply(&reply).await;
            return;
        }
        let refusal = if self.draining {
            Some(ResponseCode::ISSUER_UNAVAILABLE)
        } else if !self.signed_on.load(Ordering::Relaxed)
            && self.settings.config.before_sign_on == BeforeSignOn::Refuse
        {
            Some(self.settings.refuse_code)
        } else {
            None
        };
        if let Some(code) = refusal {
            self.reply(&answer(&msg, code)).await;
            return;
        }
        let permits = match (
            self.in_flight.clone().try_acquire_owned(),
            self.global.clone().try_acquire_owned(),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            _ => {
                debug!(
                    switch = self.origin.switch,
                    "in-flight limit reached, answering 91"
                );
                self.reply(&answer(&msg, ResponseCode::ISSUER_UNAVAILABLE))
                    .await;
                return;
            }
        };
        let request = Request {
            message: msg,
            received,
            deadline: received + self.settings.budget(),
            origin: self.origin.clone(),
        };
        let handler = self.handler.clone();
        let outbound = self.outbound.clone();
        // A request whose handling panics is the hub's fault: answered 96.
        let failed = answer(&request.message, ResponseCode::SYSTEM_ERROR);
        self.tasks.spawn(async move {
            let handled = AssertUnwindSafe(handler.handle(request)).catch_unwind();
            let reply = handled.await.unwrap_or_else(|_| {
                error!("request handling panicked: answering 96");
                failed
            });
            send_reply(&outbound, &reply).await;
            drop(permits);
        });
    }

    /// Marks the connection established once it is signed on, or once it
    /// sent a frame where sign-on is not required.
    fn note_established(&self) {
        let established = &self.supervision.established;
        if !established.load(Ordering::Relaxed)
            && (self.settings.config.before_sign_on == BeforeSignOn::Accept
                || self.signed_on.load(Ordering::Relaxed))
        {
            established.store(true, Ordering::Relaxed);
        }
    }

    async fn reply(&self, msg: &Message) {
        send_reply(&self.outbound, msg).await;
    }
}

/// Sends an answer; one that cannot be encoded is replaced by a 96 answer.
async fn send_reply(outbound: &Outbound, reply: &Message) {
    match outbound.send(reply).await {
        Ok(()) => {}
        Err(LinkError::Closed) => debug!("answer dropped: connection closed"),
        Err(e) => {
            warn!(error = %e, "answer cannot be sent, answering 96 instead");
            if let Err(e) = outbound
                .send(&answer(reply, ResponseCode::SYSTEM_ERROR))
                .await
            {
                warn!(error = %e, "96 answer cannot be sent either");
            }
        }
    }
}

/// Shutdown of one connection: wait for in-flight requests, sign off, then
/// let the reader stop.
async fn drain(
    tasks: TaskTracker,
    outbound: Outbound,
    signed_on: Arc<AtomicBool>,
    settings: Arc<SwitchSettings>,
    drained: CancellationToken,
) {
    tasks.close();
    tasks.wait().await;
    if signed_on.load(Ordering::Relaxed) {
        let cfg = &settings.config;
        let off = netmgmt::request(
            NetworkCode::SignOff,
            outbound.next_stan(),
            cfg.header.as_deref(),
            cfg.terminal_id.as_deref(),
        );
        match outbound
            .request(&off, settings.echo_timeout().min(SIGN_OFF_WAIT))
            .await
        {
            Ok(_) => info!(switch = cfg.name, "signed off"),
            Err(e) => warn!(switch = cfg.name, error = %e, "sign-off not answered"),
        }
        signed_on.store(false, Ordering::Relaxed);
    }
    drained.cancel();
}

/// An echo test on an idle line; an unanswered one closes the connection.
async fn echo_test(
    outbound: Outbound,
    settings: Arc<SwitchSettings>,
    outstanding: Arc<AtomicBool>,
    close: CancellationToken,
) {
    let cfg = &settings.config;
    let echo = netmgmt::request(
        NetworkCode::Echo,
        outbound.next_stan(),
        cfg.header.as_deref(),
        cfg.terminal_id.as_deref(),
    );
    match outbound.request(&echo, settings.echo_timeout()).await {
        Ok(_) => debug!(switch = cfg.name, "echo answered"),
        Err(e) => {
            warn!(switch = cfg.name, error = %e, "echo test failed, dropping the peer");
            close.cancel();
        }
    }
    outstanding.store(false, Ordering::Relaxed);
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The writer: one frame at a time from the queue, everything already queued
/// batched into one flush. On close it sends what is queued, then shuts the
/// write side down.
async fn write_frames<W: AsyncWrite + Unpin>(
    write: W,
    codec: FrameCodec,
    mut queue: mpsc::Receiver<Bytes>,
    close: CancellationToken,
) {
    let mut sink = FramedWrite::new(write, codec);
    loop {
        let next = tokio::select! {
            biased;
            frame = queue.recv() => frame,
            _ = close.cancelled() => None,
        };
        let Some(frame) = next else { break };
        if let Err(e) = sink.feed(frame).await {
            debug!(error = %e, "write failed");
            return;
        }
        while let Ok(frame) = queue.try_recv() {
            if sink.feed(frame).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    while let Ok(frame) = queue.try_recv() {
        if sink.feed(frame).await.is_err() {
            return;
        }
    }
    let _ = sink.flush().await;
    let _ = sink.get_mut().shutdown().await;
}
