//! The `fixed-tcp` transport against a responder on a real socket: answers
//! out of order, deadlines, failover and fail-back, broken connections,
//! both framings, oversize records.
//!
//! Request records (written by these tests): sequence (6) | command (1) |
//! delay in ms (4) | id. Commands: `A` answer after the delay, `G` answer
//! once the test opens the responder's gate, `K` close the connection
//! without answering, `H` answer with a record over the maximum.
//! Answers: sequence (6) | `OK` | id.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardhub_core::account::AccountError;
use cardhub_core::adapter::file::{Column, RecordFraming};
use cardhub_core::adapter::fixed::{FixedTcp, FixedTcpConfig};
use cardhub_core::encoding::Encoding;
use futures::future::join_all;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

const MAX_RECORD: usize = 256;
const SEQUENCE: Column = Column {
    start: 0,
    length: 6,
};
const WAIT: Duration = Duration::from_secs(5);

/// What the responder saw, and its gate.
#[derive(Default)]
struct Stats {
    connections: AtomicUsize,
    /// Requests read and not yet answered.
    outstanding: AtomicUsize,
    most_outstanding: AtomicUsize,
    /// Answers written to a connection.
    written: AtomicUsize,
    /// `G` requests are answered once this is cancelled.
    gate: CancellationToken,
}

/// A fake account system on 127.0.0.1.
struct Responder {
    address: SocketAddr,
    stats: Arc<Stats>,
}

impl Responder {
    async fn start(framing: RecordFraming) -> Responder {
        Responder::on(TcpListener::bind("127.0.0.1:0").await.unwrap(), framing)
    }

    fn on(listener: TcpListener, framing: RecordFraming) -> Responder {
        let address = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let shared = Arc::clone(&stats);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, framing, Arc::clone(&shared)));
            }
        });
        Responder { address, stats }
    }

    fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::SeqCst)
    }

    /// Lets the held (`G`) requests be answered.
    fn open_gate(&self) {
        self.stats.gate.cancel();
    }

    /// Waits (bounded) until `count(stats)` reaches `n`.
    async fn until(&self, what: &str, n: usize, count: impl Fn(&Stats) -> &AtomicUsize) {
        tokio::time::timeout(WAIT, async {
            while count(&self.stats).load(Ordering::SeqCst) < n {
                sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("waited for {n} {what}"));
    }
}

/// One connection: reads requests, answers each after its own delay.
async fn serve(stream: TcpStream, framing: RecordFraming, stats: Arc<Stats>) {
    let (read, write) = stream.into_split();
    let (answers, mut queued) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_stats = Arc::clone(&stats);
    let writer = tokio::spawn(async move {
        let mut write: OwnedWriteHalf = write;
        while let Some(record) = queued.recv().await {
            writer_stats.outstanding.fetch_sub(1, Ordering::SeqCst);
            if write.write_all(&frame(framing, &record)).await.is_err() {
                return;
            }
            writer_stats.written.fetch_add(1, Ordering::SeqCst);
        }
    });
    let mut read = BufReader::new(read);
    while let Some(request) = read_record(&mut read, framing).await {
        let now = stats.outstanding.fetch_add(1, Ordering::SeqCst) + 1;
        stats.most_outstanding.fetch_max(now, Ordering::SeqCst);
        let delay: u64 = std::str::from_utf8(&request[7..11])
            .unwrap()
            .parse()
            .unwrap();
        let mut answer = request[..6].to_vec();
        match request[6] {
            b'K' => {
                writer.abort();
                return;
            }
            b'H' => answer.extend(vec![b'X'; MAX_RECORD]),
            _ => {
                answer.extend_from_slice(b"OK");
                answer.extend_from_slice(&request[11..]);
            }
        }
        let (answers, gate) = (answers.clone(), stats.gate.clone());
        let held = request[6] == b'G';
        tokio::spawn(async move {
            if held {
                gate.cancelled().await;
            }
            sleep(Duration::from_millis(delay)).await;
            let _ = answers.send(answer);
        });
    }
    writer.abort();
}

async fn read_record<R: AsyncRead + Unpin>(
    read: &mut BufReader<R>,
    framing: RecordFraming,
) -> Option<Vec<u8>> {
    match framing {
        RecordFraming::TwoByte => {
            let length = read.read_u16().await.ok()?;
            let mut record = vec![0; usize::from(length)];
            read.read_exact(&mut record).await.ok()?;
            Some(record)
        }
        RecordFraming::Delimited => {
            let mut record = Vec::new();
            read.read_until(b'\n', &mut record).await.ok()?;
            (record.pop()? == b'\n').then_some(record)
        }
    }
}

fn frame(framing: RecordFraming, record: &[u8]) -> Vec<u8> {
    match framing {
        RecordFraming::TwoByte => {
            let mut wire = u16::try_from(record.len()).unwrap().to_be_bytes().to_vec();
            wire.extend_from_slice(record);
            wire
        }
        RecordFraming::Delimited => [record, b"\n"].concat(),
    }
}

fn config(addresses: &[SocketAddr], framing: RecordFraming) -> FixedTcpConfig {
    FixedTcpConfig {
        addresses: addresses.iter().map(ToString::to_string).collect(),
        connect_timeout: Duration::from_millis(500),
        framing,
        delimiter: b"\n".to_vec(),
        encoding: Encoding::Ascii,
        sequence: SEQUENCE,
        max_in_flight: 256,
        max_record: MAX_RECORD,
    }
}

/// A request record; the transport fills in the sequence column.
fn request(command: char, delay_ms: u64, id: &str) -> Vec<u8> {
    format!("??????{command}{delay_ms:04}{id}").into_bytes()
}

/// Calls and checks that the answer is this request's.
async fn answered(transport: &FixedTcp, delay_ms: u64, id: &str) {
    let answer = transport
        .call(request('A', delay_ms, id), Instant::now() + WAIT)
        .await
        .unwrap_or_else(|e| panic!("{id}: {e}"));
    assert_eq!(&answer[6..], format!("OK{id}").as_bytes(), "{id}");
}

fn assert_lost(result: Result<Vec<u8>, AccountError>, reason: &str) {
    match result {
        Err(AccountError::Unreachable(m)) if m.starts_with("connection lost") => {
            assert!(m.contains(reason), "{m}");
        }
        other => panic!("expected a lost connection, got {other:?}"),
    }
}

/// A port on 127.0.0.1 where nothing listens.
async fn closed_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
}

#[tokio::test]
async fn two_hundred_concurrent_calls_get_their_own_answers_out_of_order() {
    let responder = Responder::start(RecordFraming::TwoByte).await;
    let transport = FixedTcp::new(config(&[responder.address], RecordFraming::TwoByte));
    let finished = Mutex::new(Vec::new());
    join_all((0..200u64).map(|i| {
        let (transport, finished) = (&transport, &finished);
        async move {
            answered(transport, (i * 37) % 50, &format!("CALL{i:04}")).await;
            finished.lock().unwrap().push(i);
        }
    }))
    .await;
    let finished = finished.into_inner().unwrap();
    assert_eq!(finished.len(), 200);
    assert!(!finished.is_sorted(), "answers came back out of order");
    assert_eq!(responder.connections(), 1, "one persistent connection");
    assert!(responder.stats.most_outstanding.load(Ordering::SeqCst) > 100);
}

#[tokio::test]
async fn in_flight_limit_holds_with_ebcdic_sequence_numbers() {
    let responder = Responder::start(RecordFraming::TwoByte).await;
    let mut config = config(&[responder.address], RecordFraming::TwoByte);
    config.max_in_flight = 8;
    config.encoding = Encoding::Ebcdic;
    let transport = FixedTcp::new(config);
    join_all((0..40).map(|i| {
        let transport = &transport;
        async move { answered(transport, 10, &format!("E{i}")).await }
    }))
    .await;
    let most = responder.stats.most_outstanding.load(Ordering::SeqCst);
    assert!((2..=8).contains(&most), "{most} in flight");
}

#[tokio::test]
async fn a_call_past_its_deadline_times_out_while_others_succeed() {
    let responder = Responder::start(RecordFraming::TwoByte).await;
    let transport = FixedTcp::new(config(&[responder.address], RecordFraming::TwoByte));
    answered(&transport, 0, "warm-up").await;
    // Held until after the deadline: only the deadline can end the call.
    let slow = transport.call(
        request('G', 0, "slow"),
        Instant::now() + Duration::from_millis(100),
    );
    let fast = join_all((0..20).map(|i| {
        let transport = &transport;
        async move { answered(transport, 10, &format!("fast{i}")).await }
    }));
    let (slow, ()) = tokio::join!(slow, async {
        fast.await;
    });
    assert_eq!(slow, Err(AccountError::Timeout));
    // The late answer arrives, is dropped, and the connection carries on.
    responder.open_gate();
    responder.until("answers written", 22, |s| &s.written).await;
    answered(&transport, 0, "after").await;
    assert_eq!(responder.connections(), 1);
}

#[tokio::test]
async fn fails_over_to_the_next_address_and_back_to_the_first() {
    let first = closed_port().await;
    let second = Responder::start(RecordFraming::TwoByte).await;
    let transport = FixedTcp::new(config(&[first, second.address], RecordFraming::TwoByte));
    answered(&transport, 0, "failover").await;
    assert_eq!(second.connections(), 1);

    // The first address comes back; once the second drops the connection,
    // the next call connects to the first again.
    let first = Responder::on(
        TcpListener::bind(first).await.unwrap(),
        RecordFraming::TwoByte,
    );
    let dropped = transport
        .call(request('K', 0, "kill"), Instant::now() + WAIT)
        .await;
    assert_lost(dropped, "closed the connection");
    answered(&transport, 0, "fail-back").await;
    assert_eq!((first.connections(), second.connections()), (1, 1));
}

#[tokio::test]
async fn unreachable_names_every_address_and_the_last_reason() {
    let (a, b) = (closed_port().await, closed_port().await);
    let transport = FixedTcp::new(config(&[a, b], RecordFraming::TwoByte));
    match transport
        .call(request('A', 0, "x"), Instant::now() + WAIT)
        .await
    {
        Err(AccountError::Unreachable(m)) => {
            assert!(
                m.contains(&a.to_string()) && m.contains(&b.to_string()),
                "{m}"
            );
            assert!(m.contains("last: ") && m.contains("refused"), "{m}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_closed_connection_fails_waiting_calls_and_the_next_call_reconnects() {
    let responder = Responder::start(RecordFraming::TwoByte).await;
    let transport = FixedTcp::new(config(&[responder.address], RecordFraming::TwoByte));
    let deadline = Instant::now() + WAIT;
    // Never answered: only the closed connection can end these calls
    // before their deadline.
    let waiting =
        join_all((0..5).map(|i| transport.call(request('G', 0, &format!("w{i}")), deadline)));
    let kill = async {
        responder
            .until("requests read", 5, |s| &s.outstanding)
            .await;
        transport.call(request('K', 0, "kill"), deadline).await
    };
    let (waiting, killed) = tokio::join!(waiting, kill);
    for result in waiting.into_iter().chain([killed]) {
        assert_lost(result, "closed the connection");
    }
    answered(&transport, 0, "again").await;
    assert_eq!(responder.connections(), 2);
}

#[tokio::test]
async fn delimited_framing_with_newline() {
    let responder = Responder::start(RecordFraming::Delimited).await;
    let transport = FixedTcp::new(config(&[responder.address], RecordFraming::Delimited));
    join_all((0..50u64).map(|i| {
        let transport = &transport;
        async move { answered(transport, (i * 13) % 30, &format!("line{i}")).await }
    }))
    .await;
    let refused = transport
        .call(b"??????A0000a\nb".to_vec(), Instant::now() + WAIT)
        .await;
    assert!(matches!(refused, Err(AccountError::Malformed(m)) if m.contains("delimiter")));
}

#[tokio::test]
async fn an_oversize_response_closes_the_connection() {
    for framing in [RecordFraming::TwoByte, RecordFraming::Delimited] {
        let responder = Responder::start(framing).await;
        let transport = FixedTcp::new(config(&[responder.address], framing));
        let deadline = Instant::now() + WAIT;
        let (waiting, huge) = tokio::join!(
            transport.call(request('A', 2000, "waiting"), deadline),
            transport.call(request('H', 50, "huge"), deadline),
        );
        for result in [waiting, huge] {
            assert_lost(result, "exceeds the maximum of 256");
        }
        answered(&transport, 0, "again").await;
        assert_eq!(responder.connections(), 2, "{framing:?}");
    }
}

/// A peer that vanishes without closing the connection answers nothing:
/// after `MAX_SILENT_TIMEOUTS` timed-out calls the connection is dropped and
/// the next call connects again (here: to a peer that answers).
#[tokio::test]
async fn a_silent_peer_is_dropped_after_consecutive_timeouts() {
    use cardhub_core::adapter::fixed::MAX_SILENT_TIMEOUTS;
    // Accepts, reads, never answers, never closes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    let transport = FixedTcp::new(config(&[silent_addr], RecordFraming::TwoByte));
    for i in 0..MAX_SILENT_TIMEOUTS {
        let err = transport
            .call(
                request('A', 0, &format!("s{i}")),
                Instant::now() + Duration::from_millis(150),
            )
            .await
            .unwrap_err();
        assert_eq!(err, AccountError::Timeout);
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "one connection so far");
    let _ = transport
        .call(
            request('A', 0, "again"),
            Instant::now() + Duration::from_millis(150),
        )
        .await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the dead connection was replaced"
    );
}
