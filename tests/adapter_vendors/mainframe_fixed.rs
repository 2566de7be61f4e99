//! `mainframe-fixed` (fixed-width records over TCP) against a responder task.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

use super::*;

const NAME: &str = "mainframe-fixed";
const ACCOUNT: &str = "4711000123";
const REQUEST_LENGTH: usize = 134;
const ANSWER_LENGTH: usize = 70;
const SEQUENCE: std::ops::Range<usize> = 4..10;
const REPLY_BY: std::ops::Range<usize> = 101..115;

/// A sample answer record, padded to its 70 bytes.
fn record(name: &str) -> String {
    let text = fixture(NAME, name);
    let record = text.strip_suffix('\n').unwrap_or(&text);
    assert!(record.len() <= ANSWER_LENGTH, "{name}");
    format!("{record:<ANSWER_LENGTH$}")
}

/// What the host does with one request record.
enum Reply {
    /// Answers after a pause; the request's SEQ-NO is put into the
    /// record (when it is long enough to hold it).
    After(Duration, String),
    /// Closes the connection.
    Close,
}

type Script = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A fake CARDAUTH host on 127.0.0.1: reads two-byte framed records,
/// checks them against LAYOUT.md, answers as its script says, each
/// answer on its own schedule (so answers can overtake each other).
struct Host {
    address: SocketAddr,
    /// Request records received, in order.
    seen: Arc<Mutex<Vec<String>>>,
    /// Layout violations found in requests.
    problems: Arc<Mutex<Vec<String>>>,
    connections: Arc<AtomicUsize>,
}

impl Host {
    async fn start(script: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Host {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let host = Host {
            address,
            seen: Arc::default(),
            problems: Arc::default(),
            connections: Arc::default(),
        };
        let script: Script = Arc::new(script);
        let (seen, problems, connections) = (
            Arc::clone(&host.seen),
            Arc::clone(&host.problems),
            Arc::clone(&host.connections),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(
                    stream,
                    Arc::clone(&script),
                    Arc::clone(&seen),
                    Arc::clone(&problems),
                ));
            }
        });
        host
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    fn assert_well_formed(&self) {
        let problems = self.problems.lock().unwrap();
        assert!(problems.is_empty(), "{problems:#?}");
    }
}

async fn serve(
    stream: TcpStream,
    script: Script,
    seen: Arc<Mutex<Vec<String>>>,
    problems: Arc<Mutex<Vec<String>>>,
) {
    let (mut read, write) = stream.into_split();
    let write = Arc::new(tokio::sync::Mutex::new(write));
    loop {
        let Ok(length) = read.read_u16().await else {
            return;
        };
        let mut bytes = vec![0; usize::from(length)];
        if read.read_exact(&mut bytes).await.is_err() {
            return;
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Err(problem) = check(&bytes) {
            problems
                .lock()
                .unwrap()
                .push(format!("{problem}: {text:?}"));
        }
        seen.lock().unwrap().push(text.clone());
        match script(&text) {
            Reply::Close => return,
            Reply::After(pause, mut answer) => {
                if answer.len() >= SEQUENCE.end && text.len() >= SEQUENCE.end {
                    answer.replace_range(SEQUENCE, &text[SEQUENCE]);
                }
                tokio::spawn(send(Arc::clone(&write), pause, answer));
            }
        }
    }
}

async fn send(write: Arc<tokio::sync::Mutex<OwnedWriteHalf>>, pause: Duration, answer: String) {
    tokio::time::sleep(pause).await;
    let mut frame = u16::try_from(answer.len()).unwrap().to_be_bytes().to_vec();
    frame.extend_from_slice(answer.as_bytes());
    let _ = write.lock().await.write_all(&frame).await;
}

/// A request record as LAYOUT.md describes it.
fn check(record: &[u8]) -> Result<(), String> {
    if record.len() != REQUEST_LENGTH || !record.is_ascii() {
        return Err(format!(
            "{} bytes, ASCII {}",
            record.len(),
            record.is_ascii()
        ));
    }
    let text = std::str::from_utf8(record).unwrap();
    let field = |at: usize, length: usize| &text[at..at + length];
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !["AU01", "LD01", "RV01", "AD01", "BI01"].contains(&field(0, 4)) {
        return Err("TRAN-CODE".into());
    }
    if !digits(&text[SEQUENCE]) || &text[SEQUENCE] == "000000" {
        return Err("SEQ-NO".into());
    }
    for (name, at, length) in [("ACCT-NO", 26, 12), ("AMOUNT", 38, 12), ("CCY", 50, 3)] {
        if !digits(field(at, length)) {
            return Err(name.into());
        }
    }
    let reply_by = &text[REPLY_BY];
    if !(digits(reply_by) || (field(0, 4) == "AD01" && reply_by.trim().is_empty())) {
        return Err("REPLY-BY".into());
    }
    Ok(())
}

fn answering(name: &'static str) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    let answer = record(name);
    move |_: &str| Reply::After(Duration::ZERO, answer.clone())
}

/// The answer to the operation a sample is for (`<operation>.<RESULT>.rec`).
async fn outcome(name: &'static str) -> Result<AccountAnswer, AccountError> {
    let host = Host::start(answering(name)).await;
    let op = if name.starts_with("reverse.") {
        Operation::Reverse
    } else {
        Operation::Authorize
    };
    let result = adapter(NAME, &[host.address.to_string()], "")
        .call(op, &op_request(op, ACCOUNT))
        .await;
    host.assert_well_formed();
    result
}

#[tokio::test]
async fn approval_with_signed_balances() {
    let answer = outcome("authorize.AP.rec").await.unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED);
    assert_eq!(answer.raw_code, "AP");
    assert_eq!(answer.auth_id.as_deref(), Some("M40211"));
    assert_eq!(balances(&answer), Some((81_450, 94_000)));
    assert_eq!(answer.message.as_deref(), Some("APPROVED"));
}

#[tokio::test]
async fn every_result_code_maps_to_de39() {
    let cases = [
        ("authorize.NF.rec", "51"),
        ("authorize.OL.rec", "61"),
        ("authorize.BL.rec", "62"),
        ("authorize.LC.rec", "41"),
        ("authorize.SC.rec", "43"),
        ("authorize.NA.rec", "14"),
        ("authorize.DP.rec", "94"),
        ("authorize.FE.rec", "30"),
        ("authorize.SE.rec", "96"),
        ("reverse.NO.rec", "25"),
    ];
    for (file, de39) in cases {
        let answer = outcome(file).await.unwrap();
        assert_eq!(answer.code.as_str(), de39, "{file}");
        assert_eq!(
            answer.raw_code,
            file[file.len() - 6..file.len() - 4],
            "{file}"
        );
        assert_eq!(answer.auth_id, None, "{file}");
    }
    let overdrawn = outcome("authorize.NF.rec").await.unwrap();
    assert_eq!(balances(&overdrawn), Some((-1_240, -1_240)), "sign column");
    assert_eq!(overdrawn.message.as_deref(), Some("INSUFFICIENT FUNDS"));
    let blocked = outcome("authorize.BL.rec").await.unwrap();
    assert_eq!(blocked.balances, None, "blank balance columns");
}

#[tokio::test]
async fn malformed_answers() {
    let approved = record("authorize.AP.rec");
    let cases = [
        ("too short for RESULT", approved[..10].to_string()),
        (
            "letters in AVAIL-BAL",
            format!("{}0000000814.50{}", &approved[..43], &approved[56..]),
        ),
    ];
    for (what, answer) in cases {
        let host = Host::start(move |_: &str| Reply::After(Duration::ZERO, answer.clone())).await;
        let err = adapter(NAME, &[host.address.to_string()], "")
            .call(
                Operation::Authorize,
                &request(ACCOUNT, Duration::from_secs(2)),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, AccountError::Malformed(_)), "{what}: {err:?}");
    }
}

/// The host's answer to an authorization must be an AU02 record of 70
/// bytes: an LD02 (another transaction's answer under a reused SEQ-NO)
/// or another length is another layout, whatever its RESULT says.
#[tokio::test]
async fn answers_of_another_record_type_or_length_are_malformed() {
    let host = Host::start(answering("load.AP.rec")).await;
    let err = adapter(NAME, &[host.address.to_string()], "")
        .call(
            Operation::Authorize,
            &request(ACCOUNT, Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        AccountError::Malformed(
            "answer record type \"LD02\" in columns 0..4; this operation's is \"AU02\"".into()
        )
    );
    host.assert_well_formed();

    let a = in_encoding("ascii");
    let approved = record("authorize.AP.rec").into_bytes();
    let mut long = approved.clone();
    long.push(b' ');
    for (answer, length) in [(&approved[..69], 69), (&long[..], 71)] {
        let err = decoded(&a, answer).unwrap_err();
        assert_eq!(
            err,
            AccountError::Malformed(format!(
                "answer record is {length} bytes; the layout's is 70"
            ))
        );
    }
    assert_eq!(decoded(&a, &approved).unwrap().code, ResponseCode::APPROVED);
}

#[tokio::test]
async fn answers_are_matched_by_sequence_number_not_arrival() {
    // The first request's answer comes 300 ms late; the second overtakes it.
    let host = Host::start(|request: &str| {
        if request[10..26].ends_with('1') {
            Reply::After(Duration::from_millis(300), record("authorize.AP.rec"))
        } else {
            Reply::After(Duration::ZERO, record("authorize.NF.rec"))
        }
    })
    .await;
    let a = adapter(NAME, &[host.address.to_string()], "");
    let first = request(ACCOUNT, Duration::from_secs(2));
    let mut second = request(ACCOUNT, Duration::from_secs(2));
    second.transaction_id = "0193A2B4C5D60009".into();
    let (first, second) = tokio::join!(
        a.call(Operation::Authorize, &first),
        a.call(Operation::Authorize, &second)
    );
    assert_eq!(first.unwrap().code.as_str(), "00");
    assert_eq!(second.unwrap().code.as_str(), "51");
    assert_eq!(host.connections.load(Ordering::SeqCst), 1, "one connection");
    let sequences: Vec<String> = host
        .seen()
        .iter()
        .map(|r| r[SEQUENCE].to_string())
        .collect();
    assert_eq!(sequences.len(), 2);
    assert_ne!(sequences[0], sequences[1]);
    host.assert_well_formed();
}

#[tokio::test]
async fn late_answers_refusal_closed_connections_and_failover() {
    let slow =
        Host::start(|_: &str| Reply::After(support::NEVER, record("authorize.AP.rec"))).await;
    let a = adapter(NAME, &[slow.address.to_string()], "");
    let late = request(ACCOUNT, Duration::from_millis(300));
    let err = support::within_wait("a late answer", a.call(Operation::Authorize, &late))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::Timeout);

    let closed = format!("127.0.0.1:{}", closed_port());
    let err = adapter(NAME, std::slice::from_ref(&closed), "")
        .call(
            Operation::Authorize,
            &request(ACCOUNT, Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::Unreachable(_)), "{err:?}");

    let hanging_up = Host::start(|_: &str| Reply::Close).await;
    let err = adapter(NAME, &[hanging_up.address.to_string()], "")
        .call(
            Operation::Authorize,
            &request(ACCOUNT, Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::Unreachable(_)), "{err:?}");

    let live = Host::start(answering("authorize.AP.rec")).await;
    let answer = adapter(NAME, &[closed, live.address.to_string()], "")
        .call(
            Operation::Authorize,
            &request(ACCOUNT, Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED, "failover");
    assert_eq!(live.connections.load(Ordering::SeqCst), 1);
    live.assert_well_formed();
}

/// `[endpoint] timeout_ms` should bound a call even when the request's
/// deadline is later, as it does for the HTTP transports.
///
/// In paused time, so that the clock reads exactly where the call gave
/// up: the host is in this runtime and its answer is a timer an hour
/// away, and with every task idle the clock only jumps to the next
/// timer — `timeout_ms` (300 ms) fires first, or, were it ignored, the
/// transport's default.
#[tokio::test(start_paused = true)]
async fn timeout_ms_bounds_a_call_before_the_deadline() {
    let slow =
        Host::start(|_: &str| Reply::After(support::NEVER, record("authorize.AP.rec"))).await;
    let text = format!(
        "[endpoint]\naddresses = [\"{}\"]\ntimeout_ms = 300\n",
        slow.address
    );
    let file = std::fs::read_to_string(repo().join("adapters/mainframe-fixed.toml")).unwrap();
    let start = file.find("[endpoint]").unwrap();
    let end = file.find("[records]").unwrap();
    let file = format!("{}{text}\n{}", &file[..start], &file[end..]);
    let a = Adapter::from_toml(&file, &repo().join("adapters")).unwrap();
    let started = Instant::now();
    let err = a
        .call(Operation::Authorize, &request(ACCOUNT, support::NEVER))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::Timeout);
    let gave_up = started.elapsed();
    assert!(
        (Duration::from_millis(300)..Duration::from_millis(310)).contains(&gave_up),
        "gave up after {gave_up:?} of paused time, not at timeout_ms"
    );
}

/// A sign column holding anything but +, -, C, D or blank is a malformed
/// answer, not a positive balance.
#[tokio::test]
async fn an_unknown_sign_is_malformed() {
    let good = record("authorize.AP.rec");
    assert_eq!(&good[42..43], "+", "layout: available sign at column 42");
    let bad = format!("{}?{}", &good[..42], &good[43..]);
    let host = Host::start(move |_: &str| Reply::After(Duration::ZERO, bad.clone())).await;
    let a = adapter("mainframe-fixed", &[host.address.to_string()], "");
    let err = a
        .call(
            Operation::Authorize,
            &request(ACCOUNT, Duration::from_secs(5)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AccountError::Malformed(why) if why.contains("sign")),
        "{err:?}"
    );
}

/// A value longer than its column is refused before anything is sent:
/// a cut amount or account would be another amount or account.
#[tokio::test]
async fn values_longer_than_their_columns_are_refused_not_cut() {
    let host = Host::start(answering("authorize.AP.rec")).await;
    let a = adapter("mainframe-fixed", &[host.address.to_string()], "");
    let mut big = request(ACCOUNT, Duration::from_secs(5));
    big.amount = usd(1_234_567_890_123);
    let err = a.call(Operation::Authorize, &big).await.unwrap_err();
    assert!(
        matches!(&err, AccountError::Unsendable(why) if why.contains("columns")),
        "{err:?}"
    );
    let long_account = request("12345678901234567890123456789", Duration::from_secs(5));
    let err = a
        .call(Operation::Authorize, &long_account)
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::Unsendable(_)), "{err:?}");
}

/// `mainframe-fixed` with its records in `encoding` (the file says ascii).
fn in_encoding(encoding: &str) -> Adapter {
    let file = std::fs::read_to_string(repo().join("adapters/mainframe-fixed.toml")).unwrap();
    let file = file.replace(r#"encoding = "ascii""#, &format!("encoding = {encoding:?}"));
    Adapter::from_toml(&file, &repo().join("adapters"))
        .unwrap_or_else(|e| panic!("{}", e.problems().join("; ")))
}

/// The approval record with `message` in its MESSAGE columns (18..42),
/// as `bytes` of the record encoding.
fn approval_saying(message: &[u8]) -> Vec<u8> {
    let mut answer = record("authorize.AP.rec").into_bytes();
    let mut column = message.to_vec();
    column.resize(24, b' ');
    answer.splice(18..42, column);
    answer
}

fn latin1(text: &str) -> Vec<u8> {
    text.chars().map(|c| u8::try_from(c).unwrap()).collect()
}

fn decoded(a: &Adapter, answer: &[u8]) -> Result<AccountAnswer, AccountError> {
    let r = request(ACCOUNT, Duration::from_secs(5));
    a.decode_answer(Operation::Authorize, 200, answer, &r)
}

fn encoded(a: &Adapter, merchant: &str) -> Result<Vec<u8>, AccountError> {
    let mut r = request(ACCOUNT, Duration::from_secs(5));
    r.merchant = Some(merchant.into());
    a.encode_request(Operation::Authorize, &r)
}

/// MERCH-ID: columns 64..79 of the request.
const MERCHANT: std::ops::Range<usize> = 64..79;

/// One byte per character in Latin-1 and Windows-1252: the columns after
/// a `Ü` stay where the layout puts them, both ways.
#[test]
fn latin1_and_cp1252_records_are_read_and_written_byte_for_byte() {
    let a = in_encoding("latin1");
    let answer = decoded(&a, &approval_saying(&latin1("BESTÄTIGT FÜR MÜLLER"))).unwrap();
    assert_eq!(answer.message.as_deref(), Some("BESTÄTIGT FÜR MÜLLER"));
    assert_eq!(balances(&answer), Some((81_450, 94_000)));
    let sent = encoded(&a, "CAFÉ MÜNCHEN").unwrap();
    assert_eq!(sent.len(), REQUEST_LENGTH);
    assert_eq!(&sent[MERCHANT], b"CAF\xc9 M\xdcNCHEN   ");
    let err = encoded(&a, "CAFÉ 5 €").unwrap_err();
    assert_eq!(
        err,
        AccountError::Unsendable(
            "record field MERCH-ID: '€' (U+20AC) cannot be written in ISO-8859-1".into()
        )
    );

    let a = in_encoding("cp1252");
    let answer = decoded(&a, &approval_saying(b"FEE 2,50 \x80 \x93OK\x94")).unwrap();
    assert_eq!(answer.message.as_deref(), Some("FEE 2,50 € “OK”"));
    assert_eq!(
        &encoded(&a, "5 €").unwrap()[MERCHANT],
        b"5 \x80            "
    );
}

/// In UTF-8 (the default) a column counts bytes: `É` takes two.
#[test]
fn utf8_records_count_bytes_not_characters() {
    let a = in_encoding("utf-8");
    let answer = decoded(&a, &approval_saying("GRÜSSE AN MÜLLER".as_bytes())).unwrap();
    assert_eq!(answer.message.as_deref(), Some("GRÜSSE AN MÜLLER"));
    assert_eq!(balances(&answer), Some((81_450, 94_000)));
    let sent = encoded(&a, "CAFÉ").unwrap();
    assert_eq!(sent.len(), REQUEST_LENGTH);
    assert_eq!(&sent[MERCHANT], "CAFÉ          ".as_bytes());
    let err = encoded(&a, "ÉÉÉÉÉÉÉÉ").unwrap_err();
    assert_eq!(
        err,
        AccountError::Unsendable(
            "record field MERCH-ID: 16 bytes do not fit its 15 columns".into()
        )
    );
    // A column boundary through a character: the host wrote another layout.
    let mut cut = "X".repeat(23).into_bytes();
    cut.extend_from_slice("Ü".as_bytes());
    let err = decoded(&a, &approval_saying(&cut)).unwrap_err();
    assert!(
        matches!(&err, AccountError::Malformed(why) if why == "answer columns 18..42: not UTF-8 at byte 23 of them"),
        "{err:?}"
    );
}

/// `ascii` is 7-bit: nothing else is sent as `?` or read as Latin-1.
#[test]
fn ascii_records_refuse_other_characters() {
    let a = in_encoding("ascii");
    let err = encoded(&a, "CAFÉ").unwrap_err();
    assert!(
        matches!(&err, AccountError::Unsendable(why) if why.contains("'É' (U+00C9) cannot be written in US-ASCII")),
        "{err:?}"
    );
    let err = decoded(&a, &approval_saying(&latin1("MÜLLER"))).unwrap_err();
    assert!(
        matches!(&err, AccountError::Malformed(why) if why.contains("not US-ASCII at byte 1")),
        "{err:?}"
    );
    let unknown = std::fs::read_to_string(repo().join("adapters/mainframe-fixed.toml"))
        .unwrap()
        .replace(r#"encoding = "ascii""#, r#"encoding = "koi8-r""#);
    let Err(err) = Adapter::from_toml(&unknown, &repo().join("adapters")) else {
        panic!("koi8-r is not a record encoding");
    };
    assert!(err.to_string().contains("koi8-r"), "{err}");
}

/// With `time_zone`, REPLY-BY (`{deadline:%Y%m%d%H%M%S}`) is the host's
/// local time, not UTC.
#[test]
fn time_zone_renders_reply_by_in_local_time() {
    let zone = "Asia/Kolkata"; // UTC+05:30 all year
    let file = adapter_text(NAME).replace(
        "transport = \"fixed-tcp\"\n",
        &format!("transport = \"fixed-tcp\"\ntime_zone = {zone:?}\n"),
    );
    let a = Adapter::from_toml(&file, &repo().join("adapters"))
        .unwrap_or_else(|e| panic!("{}", e.problems().join("; ")));
    let r = request(ACCOUNT, Duration::from_secs(2));
    let sent = a.encode_request(Operation::Authorize, &r).unwrap();
    let reply_by = std::str::from_utf8(&sent[REPLY_BY]).unwrap();
    let civil = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", reply_by).unwrap();
    let ahead = |zone: jiff::tz::TimeZone| {
        let at = civil.to_zoned(zone).unwrap().timestamp();
        at.duration_since(jiff::Timestamp::now()).as_secs()
    };
    let local = ahead(jiff::tz::TimeZone::get(zone).unwrap());
    assert!(
        (-1..=3).contains(&local),
        "REPLY-BY {reply_by} is {local} s ahead"
    );
    let as_utc = ahead(jiff::tz::TimeZone::UTC);
    assert!(
        (19_799..=19_803).contains(&as_utc),
        "5:30 ahead of UTC: {as_utc}"
    );
}

/// A request record with SEQ-NO and REPLY-BY (when present) blanked to `#`.
fn normalised(record: &str) -> String {
    let mut text = record.to_string();
    text.replace_range(SEQUENCE, &"#".repeat(SEQUENCE.len()));
    if !text[REPLY_BY].trim().is_empty() {
        text.replace_range(REPLY_BY, &"#".repeat(REPLY_BY.len()));
    }
    text + "\n"
}

#[tokio::test]
async fn request_records_match_the_golden_files() {
    let host = Host::start(|request: &str| {
        let op = match &request[..4] {
            "AU01" => "authorize",
            "LD01" => "load",
            "RV01" => "reverse",
            "AD01" => "advice",
            _ => "balance_inquiry",
        };
        Reply::After(Duration::ZERO, record(&format!("{op}.AP.rec")))
    })
    .await;
    let a = adapter(NAME, &[host.address.to_string()], "");
    for op in Operation::ALL {
        let r = op_request(op, ACCOUNT);
        let answer = a.call(op, &r).await.unwrap();
        assert_eq!(answer.code, ResponseCode::APPROVED, "{op:?}");
        assert!(answer.balances.is_some(), "{op:?}");
        let sent = host.seen().pop().unwrap();
        if op != Operation::Advice {
            // REPLY-BY: the deadline (2 s ahead) in UTC, to the second.
            let reply_by = jiff::civil::DateTime::strptime("%Y%m%d%H%M%S", &sent[REPLY_BY])
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp();
            let ahead = reply_by.duration_since(jiff::Timestamp::now());
            assert!(
                (-1..=3).contains(&ahead.as_secs()),
                "REPLY-BY {} is {ahead:?} ahead",
                &sent[REPLY_BY]
            );
        }
        golden(
            NAME,
            &format!("{}.request.txt", op.as_str()),
            &normalised(&sent),
        );
    }
    assert_eq!(host.connections.load(Ordering::SeqCst), 1, "one connection");
    host.assert_well_formed();
}
