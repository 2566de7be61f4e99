//! The `fixed-tcp` transport: mainframe-style fixed-width records over one
//! persistent TCP connection, many calls in flight, each response matched to
//! its request by a sequence-number column.
//!
//! Roles: [`FixedTcp`] is the handle calls go through; a semaphore bounds the
//! calls in flight. Per connection a **writer** task serialises frames onto
//! the socket and a **reader** task hands each response to the call waiting
//! for its sequence number. The connection opens on the first call, trying
//! the addresses in order; when it breaks, every waiting call fails with
//! [`AccountError::Unreachable`] and the next call connects again from the
//! first address (failover, then fail-back).
//!
//! A response that comes after its call gave up is logged and dropped —
//! unless the counter has wrapped round to its number meanwhile, which the
//! column's width (a million numbers for six digits) makes remote.
//!
//! This layer does not render or parse record fields beyond the sequence
//! column (records are raw bytes), does not retry (a failed call may or may
//! not have reached the account system: the engine decides), sends no
//! keep-alive of its own, and does no TLS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::{Instant, timeout_at};
use tokio_util::codec::{Decoder, Encoder, FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::file::{Column, EndpointFile, RecordFraming, RecordsFile};
use crate::account::AccountError;
use crate::encoding::Encoding;

/// Largest record, in bytes, when the adapter file does not say.
pub const DEFAULT_MAX_RECORD: usize = 8192;

/// Most digits a sequence column may have (the number is a `u64`).
pub const MAX_SEQUENCE_DIGITS: usize = 19;

/// Frames queued for the writer; callers wait (within their deadline) when full.
const WRITER_QUEUE: usize = 256;

/// How to reach one account system and how its records are framed.
#[derive(Debug, Clone)]
pub struct FixedTcpConfig {
    /// `host:port`, tried in this order at every (re)connect.
    pub addresses: Vec<String>,
    /// Time to establish a connection to one address.
    pub connect_timeout: Duration,
    /// `TwoByte`: a 2-byte big-endian length, then the record (at most
    /// 65535 bytes whatever `max_record` says). `Delimited`: the record,
    /// then `delimiter`.
    pub framing: RecordFraming,
    /// Bytes after each record with `Delimited` framing, sent as they are.
    pub delimiter: Vec<u8>,
    /// How the sequence digits are written and read.
    pub encoding: Encoding,
    /// Where the sequence number sits, in request and response records alike.
    pub sequence: Column,
    /// Calls in flight at most (also capped by the numbers the column can hold).
    pub max_in_flight: usize,
    /// Longest record either way; a longer incoming record breaks the connection.
    pub max_record: usize,
}

/// A configuration [`FixedTcp`] cannot work with (named by adapter file key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("endpoint.addresses: none to connect to")]
    NoAddress,
    #[error("records.sequence.length: {0} digits (1 to {MAX_SEQUENCE_DIGITS} allowed)")]
    SequenceWidth(usize),
    #[error("records.delimiter: empty with delimited framing")]
    EmptyDelimiter,
    #[error("endpoint.max_in_flight: 0")]
    NoInFlight,
    #[error("records.sequence: ends at byte {end}, past the largest record ({max} bytes)")]
    RecordTooSmall { max: usize, end: usize },
}

/// Why a record cannot be framed or a stream no longer yields records.
#[derive(Debug, thiserror::Error)]
enum RecordError {
    #[error("record of {length} bytes exceeds the maximum of {max}")]
    TooLarge { length: usize, max: usize },
    #[error("no delimiter in {read} bytes: record exceeds the maximum of {max}")]
    Unterminated { read: usize, max: usize },
    #[error("record contains the delimiter")]
    ContainsDelimiter,
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// The sequence column: where the correlation number sits and how its
/// digits are encoded.
#[derive(Debug, Clone, Copy)]
struct Sequence {
    column: Column,
    encoding: Encoding,
}

/// Frames records on the stream; checks, then parses.
#[derive(Debug, Clone)]
struct RecordCodec {
    framing: RecordFraming,
    delimiter: Bytes,
    max: usize,
    /// Delimited: bytes of the buffer known to start no delimiter.
    scanned: usize,
}

/// What a call ends with: the response record or why there is none.
type Answer = Result<Vec<u8>, AccountError>;

/// Consecutive timed-out calls, with no response in between, after which a
/// connection is taken for dead (the peer may have vanished without closing it).
pub const MAX_SILENT_TIMEOUTS: u32 = 3;

/// The reader's (or a lost link's) end of a waiting call.
type Reply = oneshot::Sender<Answer>;

/// The calls waiting on one connection.
#[derive(Default)]
struct Waiting {
    by_sequence: HashMap<u64, Reply>,
    /// Why the connection broke; no call registers once set.
    lost: Option<String>,
}

/// What a connection's calls, reader and writer share.
struct Link {
    /// `host:port` of the peer, for logs and errors.
    peer: String,
    /// Calls waiting for their response, locked briefly by calls and the reader.
    waiting: Mutex<Waiting>,
    /// Cancelled when the connection ends: stops the reader and the writer.
    closed: CancellationToken,
    /// Calls that timed out since the last response arrived: a peer that
    /// vanished without closing the connection answers nothing at all.
    silent_timeouts: AtomicU32,
}

/// One open connection as calls see it.
struct Conn {
    /// Frames for the writer task.
    frames: mpsc::Sender<Bytes>,
    link: Arc<Link>,
}

/// Removes a call's waiting entry however the call ends (answer, deadline, drop).
struct Forget<'a> {
    link: &'a Link,
    sequence: u64,
}

/// Owns the write half: sends queued frames, flushing once per batch.
struct Writer {
    sink: FramedWrite<OwnedWriteHalf, RecordCodec>,
    frames: mpsc::Receiver<Bytes>,
    link: Arc<Link>,
}

/// Owns the read half: routes each response to its waiting call.
struct Reader {
    records: FramedRead<OwnedReadHalf, RecordCodec>,
    sequence: Sequence,
    link: Arc<Link>,
}

/// What all clones of a [`FixedTcp`] share.
struct Shared {
    config: FixedTcpConfig,
    /// Why the configuration cannot work (every call fails with it).
    invalid: Option<String>,
    codec: RecordCodec,
    sequence: Sequence,
    /// Calls in flight: a permit is held from before connecting until the answer.
    in_flight: Semaphore,
    /// Source of sequence numbers, kept across reconnects so that a number
    /// comes back only after the column's range has been used up.
    counter: AtomicU64,
    /// The current connection; the async lock lets one call connect while
    /// the others wait for it.
    current: tokio::sync::Mutex<Option<Arc<Conn>>>,
}

/// The `fixed-tcp` transport to one account system. Clones share the
/// connection, the in-flight limit and the sequence counter.
#[derive(Clone)]
pub struct FixedTcp {
    shared: Arc<Shared>,
}

impl FixedTcpConfig {
    /// The transport settings of an adapter file's `endpoint` and `records`,
    /// with [`DEFAULT_MAX_RECORD`].
    pub fn from_file(endpoint: &EndpointFile, records: &RecordsFile) -> FixedTcpConfig {
        FixedTcpConfig {
            addresses: endpoint.addresses.clone(),
            connect_timeout: Duration::from_millis(endpoint.connect_timeout_ms),
            framing: records.framing,
            delimiter: records.delimiter.as_bytes().to_vec(),
            encoding: records.encoding,
            sequence: records.sequence,
            max_in_flight: endpoint.max_in_flight,
            max_record: DEFAULT_MAX_RECORD,
        }
    }

    /// Checks what [`FixedTcp::new`] cannot refuse, so that an adapter file
    /// with an unusable transport is refused when it is loaded.
    ///
    /// # Errors
    /// Every problem found.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut problems = Vec::new();
        if self.addresses.is_empty() {
            problems.push(ConfigError::NoAddress);
        }
        let width = self.sequence.length;
        if width == 0 || width > MAX_SEQUENCE_DIGITS {
            problems.push(ConfigError::SequenceWidth(width));
        }
        if self.framing == RecordFraming::Delimited && self.delimiter.is_empty() {
            problems.push(ConfigError::EmptyDelimiter);
        }
        if self.max_in_flight == 0 {
            problems.push(ConfigError::NoInFlight);
        }
        let end = self.sequence.start.saturating_add(width);
        let max = RecordCodec::new(self).max;
        if end > max {
            problems.push(ConfigError::RecordTooSmall { max, end });
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl Sequence {
    /// Numbers in use are 1 ..= `largest` (10^width − 1).
    fn largest(self) -> u64 {
        u32::try_from(self.column.length)
            .ok()
            .and_then(|width| 10u64.checked_pow(width))
            .map_or(u64::MAX, |limit| limit - 1)
    }

    /// The number for the `counter`-th call, wrapping before it outgrows the column.
    fn nth(self, counter: u64) -> u64 {
        counter % self.largest().max(1) + 1
    }

    /// The column inside `record`, if the record is long enough to hold it.
    fn field(self, length: usize) -> Option<std::ops::Range<usize>> {
        let end = self.column.start.checked_add(self.column.length)?;
        (end <= length).then_some(self.column.start..end)
    }

    /// Checks that a request record holds the column.
    fn fits(self, record: &[u8]) -> Result<std::ops::Range<usize>, AccountError> {
        self.field(record.len()).ok_or_else(|| {
            AccountError::Malformed(format!(
                "request record of {} bytes is too short for the sequence column at {}, {} long",
                record.len(),
                self.column.start,
                self.column.length
            ))
        })
    }

    /// Writes `number` zero-padded into the column (high digits that do not
    /// fit are dropped; [`Sequence::nth`] never makes such numbers).
    ///
    /// # Errors
    /// [`AccountError::Malformed`] when the record is too short.
    fn write(self, record: &mut [u8], number: u64) -> Result<(), AccountError> {
        let range = self.fits(record)?;
        let digits = format!("{number:0width$}", width = range.len());
        for (slot, digit) in record[range].iter_mut().rev().zip(digits.bytes().rev()) {
            *slot = self.encoding.ascii_byte(digit);
        }
        Ok(())
    }

    /// The number in a response's column; `None` when the record is too
    /// short or the column holds anything but digits.
    fn read(self, record: &[u8]) -> Option<u64> {
        let range = self.field(record.len())?;
        let digits = self.encoding.decode(&record[range]).ok()?;
        digits.bytes().try_fold(0u64, |number, digit| {
            let value = digit.is_ascii_digit().then(|| u64::from(digit - b'0'))?;
            number.checked_mul(10)?.checked_add(value)
        })
    }
}

impl RecordCodec {
    fn new(config: &FixedTcpConfig) -> RecordCodec {
        let max = match config.framing {
            RecordFraming::TwoByte => config.max_record.min(usize::from(u16::MAX)),
            RecordFraming::Delimited => config.max_record,
        };
        RecordCodec {
            framing: config.framing,
            delimiter: Bytes::copy_from_slice(&config.delimiter),
            max,
            scanned: 0,
        }
    }

    fn too_large(&self, length: usize) -> RecordError {
        let max = self.max;
        RecordError::TooLarge { length, max }
    }

    /// Checks a record to send; a record that fails is never sent.
    fn check(&self, record: &[u8]) -> Result<(), RecordError> {
        if record.len() > self.max {
            return Err(self.too_large(record.len()));
        }
        if self.framing == RecordFraming::Delimited && self.find(record).is_some() {
            return Err(RecordError::ContainsDelimiter);
        }
        Ok(())
    }

    /// Where the delimiter starts in `bytes`, if it does.
    fn find(&self, bytes: &[u8]) -> Option<usize> {
        let width = self.delimiter.len().max(1);
        bytes.windows(width).position(|w| w == &self.delimiter[..])
    }

    fn decode_two_byte(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RecordError> {
        let Some(&[high, low]) = src.get(..2) else {
            return Ok(None);
        };
        let length = usize::from(u16::from_be_bytes([high, low]));
        if length > self.max {
            return Err(self.too_large(length));
        }
        if src.len() < 2 + length {
            src.reserve(2 + length - src.len());
            return Ok(None);
        }
        src.advance(2);
        Ok(Some(src.split_to(length)))
    }

    fn decode_delimited(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RecordError> {
        let width = self.delimiter.len();
        let from = self.scanned.min(src.len());
        let Some(at) = self.find(&src[from..]).map(|i| from + i) else {
            if src.len() >= self.max.saturating_add(width) {
                return Err(RecordError::Unterminated {
                    read: src.len(),
                    max: self.max,
                });
            }
            self.scanned = src.len().saturating_sub(width.saturating_sub(1));
            return Ok(None);
        };
        self.scanned = 0;
        if at > self.max {
            return Err(self.too_large(at));
        }
        let record = src.split_to(at);
        src.advance(width);
        Ok(Some(record))
    }
}

impl Decoder for RecordCodec {
    type Item = BytesMut;
    type Error = RecordError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, RecordError> {
        match self.framing {
            RecordFraming::TwoByte => self.decode_two_byte(src),
            RecordFraming::Delimited => self.decode_delimited(src),
        }
    }
}

impl Encoder<Bytes> for RecordCodec {
    type Error = RecordError;

    fn encode(&mut self, record: Bytes, dst: &mut BytesMut) -> Result<(), RecordError> {
        self.check(&record)?;
        match self.framing {
            RecordFraming::TwoByte => {
                let length =
                    u16::try_from(record.len()).map_err(|_| self.too_large(record.len()))?;
                dst.reserve(2 + record.len());
                dst.put_u16(length);
                dst.put_slice(&record);
            }
            RecordFraming::Delimited => {
                dst.reserve(record.len() + self.delimiter.len());
                dst.put_slice(&record);
                dst.put_slice(&self.delimiter);
            }
        }
        Ok(())
    }
}

impl Link {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_lost(&self) -> bool {
        self.waiting().lost.is_some()
    }

    /// Picks a sequence number no waiting call holds and registers the call.
    ///
    /// # Errors
    /// [`AccountError::Unreachable`] when the connection is already lost.
    fn register(
        &self,
        sequence: Sequence,
        counter: &AtomicU64,
    ) -> Result<(u64, oneshot::Receiver<Answer>), AccountError> {
        let mut waiting = self.waiting();
        if let Some(reason) = &waiting.lost {
            return Err(AccountError::Unreachable(format!(
                "connection lost: {reason}"
            )));
        }
        // The in-flight limit leaves at least one number free; after a wrap,
        // skip numbers that slow calls still hold.
        let mut number = sequence.nth(counter.fetch_add(1, Ordering::Relaxed));
        for _ in 0..waiting.by_sequence.len() {
            if !waiting.by_sequence.contains_key(&number) {
                break;
            }
            number = sequence.nth(counter.fetch_add(1, Ordering::Relaxed));
        }
        let (reply, answer) = oneshot::channel();
        waiting.by_sequence.insert(number, reply);
        Ok((number, answer))
    }

    /// Hands a response to the call waiting for its sequence number.
    fn complete(&self, number: u64, record: Vec<u8>) {
        self.silent_timeouts.store(0, Ordering::Relaxed);
        let reply = self.waiting().by_sequence.remove(&number);
        match reply {
            Some(reply) => {
                if reply.send(Ok(record)).is_err() {
                    debug!(peer = %self.peer, sequence = number, "response came as its call ended");
                }
            }
            None => warn!(
                peer = %self.peer,
                sequence = number,
                "response for no waiting call (late or unknown) dropped"
            ),
        }
    }

    /// Marks the connection lost, fails every waiting call and stops both tasks.
    fn lose(&self, reason: String) {
        let failed = {
            let mut waiting = self.waiting();
            if waiting.lost.is_some() {
                return;
            }
            waiting.lost = Some(reason.clone());
            std::mem::take(&mut waiting.by_sequence)
        };
        self.closed.cancel();
        warn!(peer = %self.peer, %reason, failed = failed.len(), "fixed-tcp connection lost");
        for reply in failed.into_values() {
            let lost = AccountError::Unreachable(format!("connection lost: {reason}"));
            // A call that already gave up has nothing to be told.
            let _ = reply.send(Err(lost));
        }
    }
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.link.waiting().by_sequence.remove(&self.sequence);
    }
}

impl Writer {
    async fn run(mut self) {
        loop {
            let next = tokio::select! {
                () = self.link.closed.cancelled() => return,
                next = self.frames.recv() => next,
            };
            // Every handle is gone: nobody can be waiting; close quietly.
            let Some(frame) = next else {
                self.link.closed.cancel();
                return;
            };
            let mut sent = self.sink.feed(frame).await;
            while sent.is_ok() {
                match self.frames.try_recv() {
                    Ok(frame) => sent = self.sink.feed(frame).await,
                    Err(_) => break,
                }
            }
            if sent.is_ok() {
                sent = self.sink.flush().await;
            }
            if let Err(e) = sent {
                let reason = format!("writing to {}: {e}", self.link.peer);
                return self.link.lose(reason);
            }
        }
    }
}

impl Reader {
    async fn run(mut self) {
        loop {
            let next = tokio::select! {
                () = self.link.closed.cancelled() => return,
                next = self.records.next() => next,
            };
            let reason = match next {
                Some(Ok(record)) => {
                    match self.sequence.read(&record) {
                        Some(number) => self.link.complete(number, record.to_vec()),
                        None => warn!(
                            peer = %self.link.peer,
                            length = record.len(),
                            "response without a readable sequence number dropped"
                        ),
                    }
                    continue;
                }
                Some(Err(e)) => format!("reading from {}: {e}", self.link.peer),
                None => format!("{} closed the connection", self.link.peer),
            };
            return self.link.lose(reason);
        }
    }
}

impl Shared {
    /// Connects to the first address that accepts, within `connect_timeout`
    /// each and the deadline overall, and starts the connection's tasks.
    ///
    /// # Errors
    /// [`AccountError::Unreachable`] naming the addresses and the last
    /// reason, or [`AccountError::Timeout`] when the deadline passes.
    async fn connect(&self, deadline: Instant) -> Result<Conn, AccountError> {
        let mut last = String::from("no address configured");
        for address in &self.config.addresses {
            if Instant::now() >= deadline {
                return Err(AccountError::Timeout);
            }
            let limit = (Instant::now() + self.config.connect_timeout).min(deadline);
            match timeout_at(limit, TcpStream::connect(address.as_str())).await {
                Ok(Ok(stream)) => {
                    info!(%address, "fixed-tcp connected");
                    return Ok(self.start(stream, address));
                }
                Ok(Err(e)) => last = format!("{address}: {e}"),
                Err(_) => last = format!("{address}: no connection within the connect timeout"),
            }
            warn!(reason = %last, "fixed-tcp connect failed");
        }
        Err(AccountError::Unreachable(format!(
            "no connection to any of [{}]; last: {last}",
            self.config.addresses.join(", ")
        )))
    }

    /// Spawns the reader and writer of a new connection.
    fn start(&self, stream: TcpStream, address: &str) -> Conn {
        if let Err(e) = stream.set_nodelay(true) {
            debug!(%address, error = %e, "TCP_NODELAY not set");
        }
        let (read, write) = stream.into_split();
        let (frames, queued) = mpsc::channel(WRITER_QUEUE);
        let link = Arc::new(Link {
            peer: address.to_owned(),
            waiting: Mutex::default(),
            closed: CancellationToken::new(),
            silent_timeouts: AtomicU32::new(0),
        });
        let writer = Writer {
            sink: FramedWrite::new(write, self.codec.clone()),
            frames: queued,
            link: Arc::clone(&link),
        };
        let reader = Reader {
            records: FramedRead::new(read, self.codec.clone()),
            sequence: self.sequence,
            link: Arc::clone(&link),
        };
        tokio::spawn(writer.run());
        tokio::spawn(reader.run());
        Conn { frames, link }
    }
}

impl FixedTcp {
    /// A transport; nothing connects until the first call. A configuration
    /// that fails [`FixedTcpConfig::validate`] makes every call fail.
    pub fn new(config: FixedTcpConfig) -> FixedTcp {
        let invalid = config.validate().err().map(|problems| {
            (problems.iter().map(ToString::to_string))
                .collect::<Vec<_>>()
                .join("; ")
        });
        let sequence = Sequence {
            column: config.sequence,
            encoding: config.encoding,
        };
        let numbers = usize::try_from(sequence.largest()).unwrap_or(usize::MAX);
        let permits = config
            .max_in_flight
            .min(numbers)
            .min(Semaphore::MAX_PERMITS);
        FixedTcp {
            shared: Arc::new(Shared {
                codec: RecordCodec::new(&config),
                config,
                invalid,
                sequence,
                in_flight: Semaphore::new(permits),
                counter: AtomicU64::new(0),
                current: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Sends one request record and waits for the response record with the
    /// same sequence number. The number is written into `record`'s sequence
    /// column; the rest of the record is sent as it is.
    ///
    /// # Errors
    /// - [`AccountError::Timeout`] when `deadline` passes first (waiting for
    ///   a slot, connecting or for the answer); a late answer is dropped.
    /// - [`AccountError::Unreachable`] when no address accepts a connection,
    ///   when the connection breaks while the call waits, or when the
    ///   configuration is unusable.
    /// - [`AccountError::Malformed`] when the request record cannot be sent:
    ///   too short for the sequence column, over the maximum, or containing
    ///   the delimiter.
    pub async fn call(&self, record: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, AccountError> {
        let shared = &*self.shared;
        if let Some(problem) = &shared.invalid {
            return Err(AccountError::Unreachable(format!(
                "fixed-tcp transport misconfigured: {problem}"
            )));
        }
        shared.sequence.fits(&record)?;
        shared
            .codec
            .check(&record)
            .map_err(|e| AccountError::Malformed(format!("request {e}")))?;
        timeout_at(deadline, self.exchange(record, deadline))
            .await
            .unwrap_or(Err(AccountError::Timeout))
    }

    /// Takes a slot, numbers and sends the record, and waits for its answer.
    async fn exchange(
        &self,
        mut record: Vec<u8>,
        deadline: Instant,
    ) -> Result<Vec<u8>, AccountError> {
        let shared = &*self.shared;
        let _slot = shared
            .in_flight
            .acquire()
            .await
            .map_err(|_| AccountError::Unreachable("transport closed".into()))?;
        let conn = self.connection(deadline).await?;
        let (number, answer) = conn.link.register(shared.sequence, &shared.counter)?;
        let _forget = Forget {
            link: &conn.link,
            sequence: number,
        };
        shared.sequence.write(&mut record, number)?;
        // A closed queue means the writer is gone and the link has already
        // failed `answer`.
        let _ = conn.frames.send(Bytes::from(record)).await;
        match timeout_at(deadline, answer).await {
            Ok(answer) => {
                answer.unwrap_or_else(|_| Err(AccountError::Unreachable("connection lost".into())))
            }
            Err(_) => {
                let silent = conn.link.silent_timeouts.fetch_add(1, Ordering::Relaxed) + 1;
                if silent >= MAX_SILENT_TIMEOUTS {
                    // The next call reconnects (and fails over).
                    conn.link
                        .lose(format!("{silent} calls timed out with nothing received"));
                }
                Err(AccountError::Timeout)
            }
        }
    }

    /// The open connection, or a new one when there is none or it broke.
    async fn connection(&self, deadline: Instant) -> Result<Arc<Conn>, AccountError> {
        let mut current = self.shared.current.lock().await;
        if let Some(conn) = current.as_ref().filter(|conn| !conn.link.is_lost()) {
            return Ok(Arc::clone(conn));
        }
        *current = None;
        let conn = Arc::new(self.shared.connect(deadline).await?);
        *current = Some(Arc::clone(&conn));
        Ok(conn)
    }
}

#[cfg(test)]
#[path = "fixed_tests.rs"]
mod tests;
