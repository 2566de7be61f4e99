//! The shipped vendor adapters against fake account systems on real sockets:
//!
//! - `legacy-soap12`: SOAP 1.2 with its own WSDL, decimal amounts, textual
//!   result codes, vendor enums, WS-Security PasswordDigest, vendor fault
//!   codes (wiremock);
//! - `homebank-xml`: proprietary XML over HTTP, result codes in attributes,
//!   HTTP basic auth (wiremock);
//! - `mainframe-fixed`: fixed-width records over TCP with two-byte framing
//!   and a sequence column (a responder task in this file).
//!
//! Per adapter: approval, every mapped decline, faults (SOAP), HTTP errors,
//! malformed and late answers, refused connections, failover, and request
//! bodies against golden files in `fixtures/adapters/<name>/`
//! (`CARDHUB_BLESS=1` rewrites them; review the diff). Answers come from
//! `fixtures/vendors/<name>/`. Also: every `adapters/*.toml` loads.

#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cardhub_core::account::{AccountAnswer, AccountError, AccountRequest, AdviceDecision, Decider};
use cardhub_core::account::{Channel, Kind};
use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::file::Operation;
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::money::{Currency, Money};
use tokio::time::Instant;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

// ------------------------------------------------------------- helpers

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `fixtures/vendors/<adapter>/<name>`.
fn fixture(adapter: &str, name: &str) -> String {
    let path = repo().join("fixtures/vendors").join(adapter).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `adapters/<name>.toml`.
fn adapter_text(name: &str) -> String {
    std::fs::read_to_string(repo().join(format!("adapters/{name}.toml"))).unwrap()
}

/// `adapters/<name>.toml` with its endpoint list (`urls` or `addresses`)
/// replaced by `endpoints`, then `extra` appended.
fn adapter(name: &str, endpoints: &[String], extra: &str) -> Adapter {
    edited_adapter(name, &adapter_text(name), endpoints, extra)
}

/// [`adapter`] from `text`, an edited `adapters/<name>.toml`.
fn edited_adapter(name: &str, text: &str, endpoints: &[String], extra: &str) -> Adapter {
    let list = endpoints
        .iter()
        .map(|e| format!("{e:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut replaced = 0;
    let mut out = String::new();
    for line in text.lines() {
        match line.split_once(" = [") {
            Some((key @ ("urls" | "addresses"), _)) => {
                replaced += 1;
                out.push_str(&format!("{key} = [{list}]"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    assert_eq!(replaced, 1, "{name}: one endpoint list");
    out.push_str(extra);
    Adapter::from_toml(&out, &repo().join("adapters"))
        .unwrap_or_else(|e| panic!("{name}: {}", e.problems().join("; ")))
}

fn usd(minor: u64) -> Money {
    Money::new(minor, Currency::from_numeric(840).unwrap())
}

/// A 125.50 USD POS purchase on `account`.
fn request(account: &str, deadline_in: Duration) -> AccountRequest {
    support::account_request(account, deadline_in)
}

/// The request of the story each operation's sample answer tells (see the
/// fixtures' TxnRef / ref): a purchase, a 500.00 deposit, the purchase's
/// reversal, a 60.00 stand-in ATM withdrawal advice, an ATM balance inquiry.
fn op_request(op: Operation, account: &str) -> AccountRequest {
    let mut r = request(account, Duration::from_secs(2));
    let atm = |r: &mut AccountRequest| {
        r.channel = Channel::Atm;
        r.terminal = "ATM00017".into();
        r.merchant = None;
    };
    match op {
        Operation::Authorize => {}
        Operation::Load => {
            r.transaction_id = "0193A2B4C5D60005".into();
            r.kind = Kind::Load;
            r.amount = usd(50000);
        }
        Operation::Reverse => {
            r.transaction_id = "0193A2B4C5D60002".into();
            r.original_transaction_id = Some("0193A2B4C5D60001".into());
        }
        Operation::Advice => {
            r.transaction_id = "0193A2B4C5D60003".into();
            r.kind = Kind::Cash;
            r.amount = usd(6000);
            atm(&mut r);
            r.decision = Some(AdviceDecision {
                code: ResponseCode::APPROVED,
                decided_by: Decider::StandIn,
                reason: "institution closed for end of day".into(),
            });
        }
        Operation::BalanceInquiry => {
            r.transaction_id = "0193A2B4C5D60004".into();
            r.kind = Kind::BalanceInquiry;
            r.amount = usd(0);
            atm(&mut r);
        }
    }
    r
}

fn balances(answer: &AccountAnswer) -> Option<(i64, i64)> {
    answer.balances.map(|b| (b.available, b.ledger))
}

/// Compares `got` with a golden file; `CARDHUB_BLESS=1` writes it first.
fn golden(adapter: &str, file: &str, got: &str) {
    let dir = repo().join("fixtures/adapters").join(adapter);
    let path = dir.join(file);
    if std::env::var_os("CARDHUB_BLESS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, got).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (CARDHUB_BLESS=1 writes it)", path.display()));
    assert_eq!(got, expected, "{}", Path::new(&path).display());
}

/// The text of every element closed by `close` replaced with `…`.
fn blank_text(text: &str, close: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(end) = rest.find(close) {
        let start = rest[..end].rfind('>').map_or(0, |i| i + 1);
        out.push_str(&rest[..start]);
        out.push('…');
        out.push_str(close);
        rest = &rest[end + close.len()..];
    }
    out.push_str(rest);
    out
}

/// Every `name="value"` with the value replaced by `…`.
fn blank_attribute(text: &str, name: &str) -> String {
    let open = format!(" {name}=\"");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&open) {
        let value = at + open.len();
        let end = value + rest[value..].find('"').unwrap();
        out.push_str(&rest[..value]);
        out.push('…');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn header<'r>(request: &'r Request, name: &str) -> Option<&'r str> {
    request.headers.get(name).map(|v| v.to_str().unwrap())
}

async fn last_request(server: &MockServer) -> Request {
    server.received_requests().await.unwrap().pop().unwrap()
}

/// A wiremock server answering every POST with `status` and `body`.
async fn http_server(status: u16, body: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

/// An HTTP adapter's answer to `op` when the server answers `status` and `body`.
async fn http_outcome(
    name: &str,
    path: &str,
    account: &str,
    op: Operation,
    status: u16,
    body: String,
) -> Result<AccountAnswer, AccountError> {
    let server = http_server(status, body).await;
    adapter(name, &[format!("{}{path}", server.uri())], "")
        .call(op, &op_request(op, account))
        .await
}

/// HTTP 5xx without a usable body, an answer after the deadline, a refused
/// connection, and failover from a closed port to a live server.
async fn http_transport_outcomes(name: &str, path: &str, account: &str, approval: String) {
    for (status, body) in [
        (500, "Internal Server Error".to_string()),
        (503, "<html><body>Service Unavailable</body></html>".into()),
    ] {
        let err = http_outcome(name, path, account, Operation::Authorize, status, body)
            .await
            .unwrap_err();
        assert_eq!(err, AccountError::HttpStatus(status), "{name}");
    }

    let slow = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(approval.clone())
                .set_delay(support::NEVER),
        )
        .mount(&slow)
        .await;
    let a = adapter(name, &[format!("{}{path}", slow.uri())], "");
    let late = request(account, Duration::from_millis(300));
    let err = support::within_wait(name, a.call(Operation::Authorize, &late))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::Timeout, "{name}");

    let closed = format!("http://127.0.0.1:{}{path}", closed_port());
    let err = adapter(name, std::slice::from_ref(&closed), "")
        .call(
            Operation::Authorize,
            &request(account, Duration::from_secs(2)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AccountError::Unreachable(_)),
        "{name}: {err:?}"
    );

    let live = http_server(200, approval).await;
    let answer = adapter(name, &[closed, format!("{}{path}", live.uri())], "")
        .call(
            Operation::Authorize,
            &request(account, Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED, "{name}: failover");
    assert_eq!(live.received_requests().await.unwrap().len(), 1);
}

// ------------------------------------------------------ every adapter file

#[tokio::test]
async fn every_adapter_file_loads_under_its_file_name() {
    let dir = repo().join("adapters");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let adapter =
                Adapter::load(&path).unwrap_or_else(|e| panic!("{}", e.problems().join("\n")));
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            assert_eq!(adapter.name(), stem, "{}", path.display());
            names.push(stem);
        }
    }
    for shipped in [
        "canonical",
        "legacy-soap12",
        "homebank-xml",
        "mainframe-fixed",
    ] {
        assert!(names.iter().any(|n| n == shipped), "{shipped} in {names:?}");
    }
}

// ------------------------------------------------------------ legacy-soap12

mod legacy_soap12;

// ------------------------------------------------------------- homebank-xml

mod homebank_xml;

// ---------------------------------------------------------- mainframe-fixed

mod mainframe_fixed;
