//! The demo servers of the vendor interfaces (`cardhub
//! reference-account-system --vendor …`) on real sockets:
//!
//! - called through cardhub's own vendor adapters (`adapters/*.toml`, the
//!   endpoint pointed at the server): approval, a mapped decline
//!   (insufficient funds), reversal, an unknown original, a repeat;
//! - the CoreBank server checking the WS-Security digest, and answering
//!   closed in its own way;
//! - the mainframe server answering many requests in flight on one
//!   connection with their SEQ-NO;
//! - each server's answers to the adapters' golden requests having the
//!   shape (elements and attributes, or columns) of the vendor's samples in
//!   `fixtures/vendors/`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::account::Kind;
use cardhub_core::account::{AccountAnswer, AccountRequest, AccountSystem};
use cardhub_core::adapter::registry::{AdapterHandle, Adapters};
use cardhub_core::adapter::soap::{UsernameToken, wsse_header, wsse_nonce};
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::soap_writer::{Version, envelope};
use cardhub_lab::refsys::corebank::{self, Credentials};
use cardhub_lab::refsys::homebank;
use cardhub_lab::refsys::vendors::{self, DEMO_PASSWORD, Vendor};
use cardhub_lab::refsys::{Mode, RefSys, Switches, accounts, ledger::Ledger};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Rich and poor, numeric so the mainframe's zero-filled ACCT-NO holds them;
/// the golden requests' accounts (CoreBank's, HomeBank's) as well.
const ACCOUNTS: &str = "account,available,currency\n4711000123,940.00,USD\n4711000999,50.00,USD\n0042778812,940.00,USD\n4711002,940.00,USD\n";
const RICH: &str = "4711000123";
const POOR: &str = "4711000999";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn name(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Canonical => "canonical",
        Vendor::LegacySoap12 => "legacy-soap12",
        Vendor::HomebankXml => "homebank-xml",
        Vendor::MainframeFixed => "mainframe-fixed",
    }
}

/// A running demo server and its vendor's adapter aimed at it.
struct Bank {
    addr: SocketAddr,
    state: Arc<RefSys>,
    handle: AdapterHandle,
    stop: CancellationToken,
    _dir: TempDir,
}

impl Drop for Bank {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Bank {
    async fn start(vendor: Vendor) -> Bank {
        Bank::with_password(vendor, DEMO_PASSWORD).await
    }

    /// The server wants the demo password; the adapter sends `password`.
    async fn with_password(vendor: Vendor, password: &str) -> Bank {
        let mut ledger = Ledger::open(None).unwrap();
        ledger
            .open_accounts(&accounts::parse(ACCOUNTS.as_bytes()).unwrap())
            .unwrap();
        let state = RefSys::new(ledger, Mode::Open, 0);
        let stop = CancellationToken::new();
        let credentials = Credentials {
            username: vendor.default_username().into(),
            password: DEMO_PASSWORD.into(),
        };
        let any = "127.0.0.1:0".parse().unwrap();
        let addr = vendors::spawn(vendor, any, state.clone(), credentials, stop.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(repo().join(format!("adapters/{}.toml", name(vendor))))
            .unwrap()
            .replace(DEMO_PASSWORD, password);
        let mut out = String::new();
        for line in text.lines() {
            match line.split_once(" = [") {
                Some(("urls", _)) => {
                    let path = match vendor {
                        Vendor::LegacySoap12 => corebank::PATH,
                        _ => homebank::PATH,
                    };
                    out.push_str(&format!("urls = [\"http://{addr}{path}\"]"));
                }
                Some(("addresses", _)) => out.push_str(&format!("addresses = [\"{addr}\"]")),
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        std::fs::write(dir.path().join(format!("{}.toml", name(vendor))), out).unwrap();
        let adapters = Arc::new(Adapters::load(dir.path()).unwrap());
        let handle = adapters.handle(name(vendor)).unwrap();
        Bank {
            addr,
            state,
            handle,
            stop,
            _dir: dir,
        }
    }
}

fn request(id: &str, account: &str, amount: u64) -> AccountRequest {
    let mut r = support::account_request(account, Duration::from_secs(3));
    r.transaction_id = id.into();
    r.amount.minor = amount;
    r
}

fn balances(a: &AccountAnswer) -> Option<(i64, i64)> {
    a.balances.map(|b| (b.available, b.ledger))
}

/// The vendor's raw codes for: approved, insufficient funds, reversed,
/// original not found.
struct Raw {
    approved: &'static str,
    insufficient: &'static str,
    reversed: &'static str,
    no_original: &'static str,
}

/// Approval, repeat, balance inquiry, decline, reversal, unknown original —
/// through the vendor's adapter.
async fn the_story(vendor: Vendor, raw: Raw) -> Bank {
    let bank = Bank::start(vendor).await;
    let h = &bank.handle;
    let first = h.authorize(&request("T1", RICH, 12550)).await.unwrap();
    assert_eq!(
        (first.code, first.raw_code.as_str()),
        (ResponseCode::APPROVED, raw.approved)
    );
    assert_eq!(balances(&first), Some((81450, 94000)), "a purchase is held");
    assert!(
        first.auth_id.as_ref().is_some_and(|id| id.len() == 6),
        "{first:?}"
    );

    let again = h.authorize(&request("T1", RICH, 12550)).await.unwrap();
    if vendor == Vendor::LegacySoap12 {
        // The WSDL: "a repeated TxnRef is answered DUPLICATE and never applied twice".
        assert_eq!(
            (again.code.as_str(), again.raw_code.as_str()),
            ("94", "DUPLICATE")
        );
    } else {
        assert_eq!(again, first, "a repeat is the same request");
    }
    let mut inquiry = request("T2", RICH, 0);
    inquiry.kind = Kind::BalanceInquiry;
    let now = h.balance_inquiry(&inquiry).await.unwrap();
    assert_eq!(balances(&now), Some((81450, 94000)), "applied once");

    let poor = h.authorize(&request("T3", POOR, 12550)).await.unwrap();
    assert_eq!(
        (poor.code.as_str(), poor.raw_code.as_str()),
        ("51", raw.insufficient)
    );
    assert_eq!(balances(&poor), Some((5000, 5000)));

    let mut undo = request("R1", RICH, 12550);
    undo.original_transaction_id = Some("T1".into());
    let undone = h.reverse(&undo).await.unwrap();
    assert_eq!(
        (undone.code, undone.raw_code.as_str()),
        (ResponseCode::APPROVED, raw.reversed)
    );
    assert_eq!(
        balances(&undone),
        Some((94000, 94000)),
        "the hold is released"
    );

    let mut lost = request("R2", RICH, 100);
    lost.original_transaction_id = Some("NEVER".into());
    let answer = h.reverse(&lost).await.unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.raw_code.as_str()),
        ("25", raw.no_original)
    );

    let stats = bank.state.stats();
    assert_eq!(stats.requests["authorize"], 3);
    assert_eq!((stats.repeats, stats.faults), (1, 0));
    bank
}

#[tokio::test]
async fn corebank_through_the_legacy_soap12_adapter() {
    let raw = Raw {
        approved: "APPROVED",
        insufficient: "INSUFFICIENT_FUNDS",
        reversed: "CANCELLED",
        no_original: "NO_ORIGINAL",
    };
    let bank = the_story(Vendor::LegacySoap12, raw).await;

    // End of day: CoreBank's fault, no answer; cardhub would stand in.
    bank.state.set_mode(Switches {
        mode: Mode::Closed,
        delay_ms: None,
    });
    let closed = bank.handle.authorize(&request("T9", RICH, 100)).await;
    assert!(closed.is_err(), "{closed:?}");
}

#[tokio::test]
async fn corebank_refuses_a_wrong_password_digest() {
    let bank = Bank::with_password(Vendor::LegacySoap12, "not-the-password").await;
    let refused = bank.handle.authorize(&request("T1", RICH, 12550)).await;
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("FailedAuthentication"), "{error}");
    let stats = bank.state.stats();
    assert_eq!(
        (stats.faults, stats.requests.len()),
        (1, 0),
        "nothing applied"
    );
}

#[tokio::test]
async fn homebank_through_the_homebank_xml_adapter() {
    let raw = Raw {
        approved: "0",
        insufficient: "101",
        reversed: "0",
        no_original: "109",
    };
    let bank = the_story(Vendor::HomebankXml, raw).await;
    let (status, _) = post(
        &format!("http://{}/hbx/v3", bank.addr),
        "text/xml",
        None,
        b"<x/>".to_vec(),
    )
    .await;
    assert_eq!(status, 401, "basic authentication is required");
}

#[tokio::test]
async fn mainframe_through_the_fixed_tcp_adapter() {
    let raw = Raw {
        approved: "AP",
        insufficient: "NF",
        reversed: "AP",
        no_original: "NO",
    };
    let bank = the_story(Vendor::MainframeFixed, raw).await;
    // Many at once through the adapter's one connection.
    let calls = (0..40).map(|i| {
        let h = bank.handle.clone();
        async move {
            h.authorize(&request(&format!("M{i}"), RICH, 100))
                .await
                .unwrap()
        }
    });
    let answers = futures::future::join_all(calls).await;
    assert!(answers.iter().all(|a| a.code == ResponseCode::APPROVED));
    let last = answers.iter().map(|a| balances(a).unwrap().0).min();
    assert_eq!(last, Some(94000 - 40 * 100));
}

// ------------------------------------------------------------- raw wire

/// An adapter golden request (`fixtures/adapters/<vendor>/<op>.request.*`)
/// with its time-dependent placeholders filled.
fn golden(vendor: Vendor, op: &str) -> String {
    let ext = if vendor == Vendor::MainframeFixed {
        "txt"
    } else {
        "xml"
    };
    let path = repo().join(format!(
        "fixtures/adapters/{}/{op}.request.{ext}",
        name(vendor)
    ));
    let text = std::fs::read_to_string(path).unwrap();
    match vendor {
        Vendor::MainframeFixed => text
            .trim_end_matches('\n')
            .replacen("######", "000001", 1)
            .replace("##############", "20991231235959"),
        Vendor::HomebankXml => text.replace('…', "20991231235959"),
        _ => text.replace("<cb:ReplyBy>…", "<cb:ReplyBy>2099-12-31T23:59:59.000Z"),
    }
}

/// `(status, body)` of a POST.
async fn post(
    url: &str,
    content_type: &str,
    basic: Option<(&str, &str)>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut r = support::http()
        .post(url)
        .header("content-type", content_type)
        .body(body);
    if let Some((user, password)) = basic {
        r = r.basic_auth(user, Some(password));
    }
    let response = r.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

/// Elements in document order with their attribute names (namespace
/// declarations left out), indented by depth: what a sample and an answer
/// must share.
fn shape(xml: &[u8]) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut depth = 0;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buf).unwrap();
        let (element, empty) = match &event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(_) => {
                depth -= 1;
                continue;
            }
            Event::Eof => return out,
            _ => continue,
        };
        let mut attributes: Vec<String> = element
            .attributes()
            .map(|a| a.unwrap())
            .filter(|a| a.key.as_namespace_binding().is_none())
            .map(|a| a.key.local_name().into_inner().to_owned())
            .collect();
        attributes.sort();
        let local = element.local_name().into_inner().to_owned();
        out.push(format!("{}{local} {attributes:?}", "  ".repeat(depth)));
        if !empty {
            depth += 1;
        }
    }
}

/// A change to a golden request, for another outcome.
type Edit = fn(&str) -> String;

fn sample(vendor: Vendor, file: &str) -> Vec<u8> {
    std::fs::read(
        repo()
            .join("fixtures/vendors")
            .join(name(vendor))
            .join(file),
    )
    .unwrap()
}

/// The golden request of `op` as CoreBank gets it: the Body in a fresh
/// envelope with a valid UsernameToken; `edit` applied to the Body.
fn corebank_envelope(op: &str, edit: impl Fn(&str) -> String) -> String {
    let golden = golden(Vendor::LegacySoap12, op);
    let body =
        &golden[golden.find("<soap:Body>").unwrap() + 11..golden.find("</soap:Body>").unwrap()];
    let token = UsernameToken {
        username: "CARDHUB01".into(),
        password: DEMO_PASSWORD.into(),
        digest: true,
    };
    let mut header = String::new();
    wsse_header(&token, jiff::Timestamp::now(), &wsse_nonce(), &mut header);
    let mut xml = String::new();
    envelope(Version::V12, Some(&header), &edit(body), &mut xml);
    xml
}

#[tokio::test]
async fn corebank_answers_have_the_samples_shape() {
    let bank = Bank::start(Vendor::LegacySoap12).await;
    let url = format!("http://{}/services/CardAuth2009", bank.addr);
    let ns = "http://corebank.example/cardauth/2009";
    let steps: [(&str, &str, Edit, &str); 7] = [
        (
            "authorize",
            "ReserveFunds",
            |b| b.to_owned(),
            "reserve-funds.approved.xml",
        ),
        (
            "authorize",
            "ReserveFunds",
            |b| {
                b.replace("0193A2B4C5D60001", "BIG")
                    .replace(">125.50<", ">99999.00<")
            },
            "reserve-funds.insufficient-funds.xml",
        ),
        (
            "reverse",
            "CancelReservation",
            |b| b.to_owned(),
            "cancel-reservation.cancelled.xml",
        ),
        (
            "advice",
            "PostAdvice",
            |b| b.to_owned(),
            "post-advice.accepted.xml",
        ),
        (
            "balance_inquiry",
            "GetBalance",
            |b| b.to_owned(),
            "get-balance.approved.xml",
        ),
        (
            "load",
            "CreditAccount",
            |b| b.to_owned(),
            "credit-account.approved.xml",
        ),
        (
            "reverse",
            "CancelReservation",
            |b| {
                b.replace("0193A2B4C5D60002", "R-LOST")
                    .replace("<cb:OrigTxnRef>0193A2B4C5D60001", "<cb:OrigTxnRef>NEVER")
            },
            "cancel-reservation.no-original.xml",
        ),
    ];
    for (op, action, edit, file) in steps {
        let ct = format!("application/soap+xml; charset=utf-8; action=\"{ns}/{action}\"");
        let (status, body) = post(&url, &ct, None, corebank_envelope(op, edit).into_bytes()).await;
        assert_eq!(status, 200, "{file}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            shape(&body),
            shape(&sample(Vendor::LegacySoap12, file)),
            "{file}"
        );
    }
    let ct = format!("application/soap+xml; action=\"{ns}/ReserveFunds\"");
    let forged = corebank_envelope("authorize", |b| b.to_owned()).replacen(
        "</wsse:Password>",
        "x</wsse:Password>",
        1,
    );
    let (status, body) = post(&url, &ct, None, forged.into_bytes()).await;
    assert_eq!(status, 400);
    assert_eq!(
        shape(&body),
        shape(&sample(Vendor::LegacySoap12, "fault.authentication.xml"))
    );
    bank.state.set_mode(Switches {
        mode: Mode::Closed,
        delay_ms: None,
    });
    let late = corebank_envelope("authorize", |b| b.replace("0193A2B4C5D60001", "LATE"));
    let (status, body) = post(&url, &ct, None, late.into_bytes()).await;
    assert_eq!(status, 500);
    assert_eq!(
        shape(&body),
        shape(&sample(
            Vendor::LegacySoap12,
            "fault.ledger-unavailable.xml"
        ))
    );
}

#[tokio::test]
async fn homebank_answers_have_the_samples_shape() {
    let bank = Bank::start(Vendor::HomebankXml).await;
    let url = format!("http://{}/hbx/v3", bank.addr);
    let auth = Some(("cardhub", DEMO_PASSWORD));
    let steps: [(&str, Edit, &str); 7] = [
        ("authorize", |b| b.to_owned(), "auth.ok.xml"),
        (
            "authorize",
            |b| {
                b.replace("0193A2B4C5D60001", "BIG")
                    .replace(">12550<", ">9999900<")
            },
            "auth.101-insufficient-funds.xml",
        ),
        ("reverse", |b| b.to_owned(), "revs.ok.xml"),
        ("advice", |b| b.to_owned(), "advc.ok.xml"),
        ("balance_inquiry", |b| b.to_owned(), "balq.ok.xml"),
        ("load", |b| b.to_owned(), "cred.ok.xml"),
        (
            "reverse",
            |b| {
                b.replace("0193A2B4C5D60002", "R-LOST")
                    .replace("ref=\"0193A2B4C5D60001\"", "ref=\"NEVER\"")
            },
            "revs.109-original-not-found.xml",
        ),
    ];
    for (op, edit, file) in steps {
        let body = edit(&golden(Vendor::HomebankXml, op)).into_bytes();
        let (status, answer) = post(&url, "text/xml; charset=utf-8", auth, body).await;
        assert_eq!(status, 200, "{file}");
        assert_eq!(
            shape(&answer),
            shape(&sample(Vendor::HomebankXml, file)),
            "{file}"
        );
    }
    let (_, answer) = post(&url, "text/xml", auth, b"<HBRequest".to_vec()).await;
    assert_eq!(
        shape(&answer),
        shape(&sample(Vendor::HomebankXml, "auth.minus1-syntax-error.xml"))
    );
}

/// Sends `records` on one connection, all before reading; returns the
/// answers in the order they came.
async fn exchange(addr: SocketAddr, records: &[String]) -> Vec<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r.as_bytes());
    }
    stream.write_all(&out).await.unwrap();
    let mut answers = Vec::new();
    for _ in records {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.unwrap();
        let mut answer = vec![0u8; u16::from_be_bytes(len).into()];
        stream.read_exact(&mut answer).await.unwrap();
        answers.push(String::from_utf8(answer).unwrap());
    }
    answers
}

/// Which of a 70-byte answer's fields are filled, and the signs.
fn columns(record: &str) -> Vec<String> {
    let fields = [
        (0, 4),
        (4, 6),
        (10, 2),
        (12, 6),
        (18, 24),
        (42, 1),
        (43, 13),
        (56, 1),
        (57, 13),
    ];
    assert_eq!(record.len(), 70, "{record:?}");
    fields
        .iter()
        .map(|&(at, len)| {
            let value = &record[at..at + len];
            match value {
                "+" | "-" => "sign".to_owned(),
                _ if len == 1 => value.to_owned(),
                _ if value.trim().is_empty() => "blank".to_owned(),
                _ => "filled".to_owned(),
            }
        })
        .collect()
}

#[tokio::test]
async fn mainframe_answers_in_flight_by_seq_no_with_the_samples_columns() {
    let bank = Bank::start(Vendor::MainframeFixed).await;
    let with_seq = |op: &str, seq: u32, edit: &dyn Fn(String) -> String| {
        edit(golden(Vendor::MainframeFixed, op)).replacen("000001", &format!("{seq:06}"), 1)
    };
    let same = |r: String| r;
    let first = exchange(bank.addr, &[with_seq("authorize", 1, &same)]).await;
    // Then six at once on one connection; answers come back by SEQ-NO.
    let records = [
        with_seq("authorize", 2, &|r| {
            r.replacen("0193A2B4C5D60001", "BIG0000000000001", 1)
                .replacen("000000012550", "000099999900", 1)
        }),
        with_seq("reverse", 3, &same),
        with_seq("advice", 4, &same),
        with_seq("balance_inquiry", 5, &same),
        with_seq("load", 6, &same),
        with_seq("reverse", 7, &|r| {
            r.replacen("0193A2B4C5D60002", "R-LOST          ", 1)
                .replacen("0193A2B4C5D60001", "NEVER           ", 1)
        }),
    ];
    let answers = exchange(bank.addr, &records).await;
    let by_seq = |seq: u32| -> &str {
        let seq = format!("{seq:06}");
        answers
            .iter()
            .find(|a| a[4..10] == seq)
            .unwrap_or_else(|| panic!("SEQ-NO {seq}: {answers:?}"))
    };
    let expected = [
        (first[0].as_str(), "authorize.AP.rec"),
        (by_seq(2), "authorize.NF.rec"),
        (by_seq(3), "reverse.AP.rec"),
        (by_seq(4), "advice.AP.rec"),
        (by_seq(5), "balance_inquiry.AP.rec"),
        (by_seq(6), "load.AP.rec"),
        (by_seq(7), "reverse.NO.rec"),
    ];
    for (got, file) in expected {
        let sample = String::from_utf8(sample(Vendor::MainframeFixed, file)).unwrap();
        let sample = sample.trim_end_matches('\n');
        assert_eq!(&got[..4], &sample[..4], "{file}: TRAN-CODE");
        assert_eq!(&got[10..12], &sample[10..12], "{file}: RESULT");
        assert_eq!(columns(got)[2..], columns(sample)[2..], "{file}: {got:?}");
    }
    let bad = exchange(
        bank.addr,
        &[with_seq("authorize", 9, &|r| {
            r.replacen("000000012550", "00000001255X", 1)
        })],
    )
    .await;
    assert_eq!(&bad[0][..24], "AU02000009FE      FORMAT");
}
