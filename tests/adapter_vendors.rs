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

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cardhub::adapter::Adapter;
use cardhub::adapter::file::Operation;
use cardhub::hub::account_system::{
    AccountAnswer, AccountError, AccountRequest, AdviceDecision, Decider,
};
use cardhub::hub::model::{Channel, Kind};
use cardhub::iso8583::fields::ResponseCode;
use cardhub::money::{Currency, Money};
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

mod legacy_soap12 {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use cardhub::adapter::xml::{Document, Limits};
    use sha1::{Digest, Sha1};

    const NAME: &str = "legacy-soap12";
    const PATH: &str = "/services/CardAuth2009";
    const ACCOUNT: &str = "0042778812";
    const ACTIONS: &str = "http://corebank.example/cardauth/2009/";
    const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
    const WSSE: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
    const WSU: &str =
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
    /// The adapter file's inline demo password.
    const PASSWORD: &str = "demo-only-not-a-secret";

    fn answer(name: &str) -> String {
        fixture(NAME, name)
    }

    /// The answer to an authorization when the server answers `status` and `body`.
    async fn outcome(status: u16, body: String) -> Result<AccountAnswer, AccountError> {
        http_outcome(NAME, PATH, ACCOUNT, Operation::Authorize, status, body).await
    }

    /// The answer to the operation a sample is for (reversal samples:
    /// `cancel-reservation.*`, `revs.*`; all others authorization).
    async fn sample_outcome(file: &str) -> Result<AccountAnswer, AccountError> {
        let op = if file.starts_with("cancel-reservation.") || file.starts_with("revs.") {
            Operation::Reverse
        } else {
            Operation::Authorize
        };
        http_outcome(NAME, PATH, ACCOUNT, op, 200, answer(file)).await
    }

    /// The vendor operation behind each cardhub operation, and the sample
    /// answer for it.
    fn vendor(op: Operation) -> (&'static str, &'static str) {
        match op {
            Operation::Authorize => ("ReserveFunds", "reserve-funds.approved.xml"),
            Operation::Load => ("CreditAccount", "credit-account.approved.xml"),
            Operation::Reverse => ("CancelReservation", "cancel-reservation.cancelled.xml"),
            Operation::Advice => ("PostAdvice", "post-advice.accepted.xml"),
            Operation::BalanceInquiry => ("GetBalance", "get-balance.approved.xml"),
        }
    }

    #[tokio::test]
    async fn approval_reads_decimal_balances_and_sends_soap12_headers() {
        let server = http_server(200, answer("reserve-funds.approved.xml")).await;
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        let answer = a
            .call(
                Operation::Authorize,
                &request(ACCOUNT, Duration::from_secs(2)),
            )
            .await
            .unwrap();
        assert_eq!(answer.code, ResponseCode::APPROVED);
        assert_eq!(answer.raw_code, "APPROVED");
        assert_eq!(answer.auth_id.as_deref(), Some("A7K29Q"));
        assert_eq!(balances(&answer), Some((81_450, 94_000)));
        assert_eq!(answer.message.as_deref(), Some("Funds reserved"));

        let sent = last_request(&server).await;
        assert_eq!(sent.url.path(), PATH);
        assert_eq!(
            header(&sent, "content-type"),
            Some(
                r#"application/soap+xml; charset=utf-8; action="http://corebank.example/cardauth/2009/ReserveFunds""#
            )
        );
        assert_eq!(
            header(&sent, "soapaction"),
            None,
            "SOAP 1.2 has no SOAPAction"
        );
        let body = String::from_utf8(sent.body).unwrap();
        assert!(body.contains("<cb:Amt>125.50</cb:Amt>"), "{body}");
        assert!(body.contains("<cb:Ccy>USD</cb:Ccy>"), "{body}");
    }

    /// Amounts go out and come back with the currency's decimals: KWD has 3.
    #[tokio::test]
    async fn decimals_follow_the_currency() {
        let server = http_server(200, answer("reserve-funds.approved.xml")).await;
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        let mut r = request(ACCOUNT, Duration::from_secs(2));
        r.amount = Money::new(1250, Currency::from_numeric(414).unwrap());
        let answer = a.call(Operation::Authorize, &r).await.unwrap();
        assert_eq!(balances(&answer), Some((814_500, 940_000)), "814.50 KWD");
        let body = String::from_utf8(last_request(&server).await.body).unwrap();
        assert!(body.contains("<cb:Amt>1.250</cb:Amt>"), "{body}");
        assert!(body.contains("<cb:Ccy>KWD</cb:Ccy>"), "{body}");

        // More decimals than the currency has is not a balance.
        let sloppy = answer_with_available("814.505");
        let err = outcome(200, sloppy).await.unwrap_err();
        assert!(matches!(err, AccountError::Malformed(_)), "{err:?}");
    }

    fn answer_with_available(value: &str) -> String {
        answer("reserve-funds.approved.xml").replace(
            "<cb:Available>814.50</cb:Available>",
            &format!("<cb:Available>{value}</cb:Available>"),
        )
    }

    #[tokio::test]
    async fn every_textual_status_maps_to_de39() {
        let cases = [
            (
                "reserve-funds.insufficient-funds.xml",
                "INSUFFICIENT_FUNDS",
                "51",
            ),
            ("reserve-funds.account-blocked.xml", "ACCOUNT_BLOCKED", "62"),
            ("reserve-funds.card-lost.xml", "CARD_LOST", "41"),
            ("reserve-funds.card-stolen.xml", "CARD_STOLEN", "43"),
            ("reserve-funds.card-expired.xml", "CARD_EXPIRED", "54"),
            ("reserve-funds.limit-exceeded.xml", "LIMIT_EXCEEDED", "61"),
            (
                "reserve-funds.frequency-exceeded.xml",
                "FREQUENCY_EXCEEDED",
                "65",
            ),
            ("reserve-funds.unknown-account.xml", "UNKNOWN_ACCOUNT", "14"),
            ("reserve-funds.not-permitted.xml", "NOT_PERMITTED", "57"),
            ("reserve-funds.duplicate.xml", "DUPLICATE", "94"),
            ("reserve-funds.system-error.xml", "SYSTEM_ERROR", "96"),
            ("cancel-reservation.no-original.xml", "NO_ORIGINAL", "25"),
        ];
        for (file, status, de39) in cases {
            let answer = sample_outcome(file).await.unwrap();
            assert_eq!(answer.code.as_str(), de39, "{file}");
            assert_eq!(answer.raw_code, status, "{file}");
            assert_eq!(answer.auth_id, None, "{file}");
        }
        let overdrawn = outcome(200, answer("reserve-funds.insufficient-funds.xml"))
            .await
            .unwrap();
        assert_eq!(balances(&overdrawn), Some((-1_240, -1_240)));
        assert_eq!(
            overdrawn.message.as_deref(),
            Some("Available balance too low")
        );

        let unknown = answer("reserve-funds.approved.xml").replace(
            "<cb:Status>APPROVED</cb:Status>",
            "<cb:Status>PENDING_REVIEW</cb:Status>",
        );
        let answer = outcome(200, unknown).await.unwrap();
        assert_eq!(
            (answer.code.as_str(), answer.raw_code.as_str()),
            ("05", "PENDING_REVIEW")
        );
    }

    #[tokio::test]
    async fn faults_are_no_answer_unless_their_code_is_mapped() {
        let declined = outcome(400, answer("fault.invalid-amount.xml"))
            .await
            .unwrap();
        assert_eq!(declined.code.as_str(), "13");
        assert_eq!(declined.raw_code, "CB-E1004");
        assert_eq!(declined.message.as_deref(), Some("Amount not acceptable"));
        assert_eq!((declined.auth_id, declined.balances), (None, None));

        let err = outcome(500, answer("fault.ledger-unavailable.xml"))
            .await
            .unwrap_err();
        assert_eq!(
            err,
            AccountError::Fault {
                code: "CB-E9001".into(),
                message: "Core ledger unavailable".into(),
            }
        );

        // No CoreBank detail: the SOAP 1.2 Code and Subcode are the code.
        let err = outcome(400, answer("fault.authentication.xml"))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AccountError::Fault { code, .. } if code == "env:Sender/wsse:FailedAuthentication"),
            "{err:?}"
        );
    }

    /// SOAP fault codes map by namespace and local name: `soap:Receiver`
    /// (the envelope's namespace) and `wsse:FailedAuthentication` (from
    /// `[namespaces]`) match whatever prefixes the answer binds.
    #[tokio::test]
    async fn soap_fault_codes_map_by_qualified_name() {
        let text = adapter_text(NAME)
            .replace(
                r#""CB-E1004" = "13""#,
                "\"CB-E1004\" = \"13\"\n\"soap:Receiver\" = \"91\"\n\"wsse:FailedAuthentication\" = \"63\"",
            )
            .replace("[namespaces]\n", &format!("[namespaces]\nwsse = {WSSE:?}\n"));
        let outcome = |body: String| {
            let text = text.clone();
            async move {
                let server = http_server(500, body).await;
                edited_adapter(NAME, &text, &[format!("{}{PATH}", server.uri())], "")
                    .call(
                        Operation::Authorize,
                        &request(ACCOUNT, Duration::from_secs(2)),
                    )
                    .await
            }
        };
        let prefixed = |file: &str| {
            answer(file)
                .replace("env:", "soap12:")
                .replace("xmlns:env=", "xmlns:soap12=")
                .replace("wsse:", "sec:")
                .replace("xmlns:wsse=", "xmlns:sec=")
        };
        for body in [
            answer("fault.authentication.xml"),
            prefixed("fault.authentication.xml"),
        ] {
            let declined = outcome(body).await.unwrap();
            assert_eq!(declined.code.as_str(), "63");
            assert!(declined.raw_code.ends_with(":FailedAuthentication"));
        }
        // The vendor's CB-E9001 is not mapped; the SOAP code is.
        for body in [
            answer("fault.ledger-unavailable.xml"),
            prefixed("fault.ledger-unavailable.xml"),
        ] {
            let declined = outcome(body).await.unwrap();
            assert_eq!(declined.code.as_str(), "91");
            assert!(declined.raw_code.ends_with(":Receiver"));
        }
        // The vendor's mapped code still comes first.
        let declined = outcome(answer("fault.invalid-amount.xml")).await.unwrap();
        assert_eq!(
            (declined.code.as_str(), declined.raw_code.as_str()),
            ("13", "CB-E1004")
        );
    }

    #[tokio::test]
    async fn malformed_answers() {
        let approved = answer("reserve-funds.approved.xml");
        let cases = [
            ("not XML", "Service temporarily unavailable".to_string()),
            ("truncated", approved[..approved.len() / 2].to_string()),
            (
                "a SOAP 1.1 envelope",
                approved.replace(SOAP12, "http://schemas.xmlsoap.org/soap/envelope/"),
            ),
            (
                "no Status",
                approved.replace("<cb:Status>APPROVED</cb:Status>", ""),
            ),
            (
                "another vendor's namespace",
                approved.replace("cardauth/2009", "cardauth/2012"),
            ),
            ("a balance with a comma", answer_with_available("814,50")),
        ];
        for (what, body) in cases {
            let err = outcome(200, body).await.unwrap_err();
            assert!(matches!(err, AccountError::Malformed(_)), "{what}: {err:?}");
        }
    }

    #[tokio::test]
    async fn http_errors_late_answers_refusal_and_failover() {
        http_transport_outcomes(NAME, PATH, ACCOUNT, answer("reserve-funds.approved.xml")).await;
    }

    /// The UsernameToken of a sent envelope: its PasswordDigest must be
    /// Base64(SHA-1(nonce + created + password)).
    fn verify_token(body: &[u8]) -> (String, String) {
        let doc = Document::parse(body, &Limits::default()).unwrap();
        let root = doc.root();
        assert_eq!(doc.name(root), (SOAP12, "Envelope"));
        let header = doc.child(root, SOAP12, "Header").expect("soap:Header");
        let security = doc.child(header, WSSE, "Security").expect("wsse:Security");
        assert_eq!(
            doc.attribute(security, Some(SOAP12), "mustUnderstand"),
            Some("1")
        );
        let token = doc.child(security, WSSE, "UsernameToken").unwrap();
        let user = doc.child(token, WSSE, "Username").unwrap();
        assert_eq!(doc.trimmed_text(user), "CARDHUB01");
        let password = doc.child(token, WSSE, "Password").unwrap();
        assert_eq!(
            doc.attribute(password, None, "Type"),
            Some(
                "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
            )
        );
        let nonce_node = doc.child(token, WSSE, "Nonce").unwrap();
        assert_eq!(
            doc.attribute(nonce_node, None, "EncodingType"),
            Some(
                "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary"
            )
        );
        let nonce_text = doc.trimmed_text(nonce_node).to_string();
        let nonce = BASE64.decode(&nonce_text).unwrap();
        assert_eq!(nonce.len(), 16);
        let created = doc.trimmed_text(doc.child(token, WSU, "Created").unwrap());
        let at: jiff::Timestamp = created.parse().unwrap();
        let skew = jiff::Timestamp::now().duration_since(at).abs();
        assert!(
            skew < jiff::SignedDuration::from_secs(10),
            "created {created}"
        );

        let mut sha = Sha1::new();
        sha.update(&nonce);
        sha.update(created.as_bytes());
        sha.update(PASSWORD.as_bytes());
        assert_eq!(
            doc.trimmed_text(password),
            BASE64.encode(sha.finalize()),
            "PasswordDigest"
        );
        assert!(!String::from_utf8_lossy(body).contains(PASSWORD));
        (nonce_text, created.to_string())
    }

    #[tokio::test]
    async fn ws_security_password_digest_verifies_with_a_fresh_nonce() {
        let server = http_server(200, answer("reserve-funds.approved.xml")).await;
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        for _ in 0..2 {
            a.call(
                Operation::Authorize,
                &request(ACCOUNT, Duration::from_secs(2)),
            )
            .await
            .unwrap();
        }
        let sent = server.received_requests().await.unwrap();
        let (first, _) = verify_token(&sent[0].body);
        let (second, _) = verify_token(&sent[1].body);
        assert_ne!(first, second, "a nonce is used once");
    }

    /// The envelope as received, with the WS-Security values and the
    /// deadline blanked.
    fn normalised(body: &[u8]) -> String {
        let mut text = String::from_utf8(body.to_vec()).unwrap();
        for close in [
            "</wsse:Password>",
            "</wsse:Nonce>",
            "</wsu:Created>",
            "</cb:ReplyBy>",
        ] {
            text = blank_text(&text, close);
        }
        text
    }

    #[tokio::test]
    async fn request_bodies_match_the_golden_files() {
        let server = MockServer::start().await;
        for op in Operation::ALL {
            let (action, file) = vendor(op);
            let content_type = format!("action=\"{ACTIONS}{action}\"");
            Mock::given(wiremock::matchers::path(PATH))
                .and(move |r: &Request| {
                    header(r, "content-type").is_some_and(|c| c.ends_with(&content_type))
                })
                .respond_with(ResponseTemplate::new(200).set_body_string(answer(file)))
                .mount(&server)
                .await;
        }
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        for op in Operation::ALL {
            let answer = a.call(op, &op_request(op, ACCOUNT)).await.unwrap();
            assert_eq!(answer.code, ResponseCode::APPROVED, "{op:?}");
            assert!(answer.balances.is_some(), "{op:?}");
            let sent = last_request(&server).await;
            verify_token(&sent.body);
            golden(
                NAME,
                &format!("{}.request.xml", op.as_str()),
                &normalised(&sent.body),
            );
        }
    }
}

// ------------------------------------------------------------- homebank-xml

mod homebank_xml {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;

    const NAME: &str = "homebank-xml";
    const PATH: &str = "/hbx/v3";
    const ACCOUNT: &str = "4711002";

    fn answer(name: &str) -> String {
        fixture(NAME, name)
    }

    /// The answer to an authorization when the server answers `status` and `body`.
    async fn outcome(status: u16, body: String) -> Result<AccountAnswer, AccountError> {
        http_outcome(NAME, PATH, ACCOUNT, Operation::Authorize, status, body).await
    }

    /// The answer to the operation a sample is for (reversal samples:
    /// `cancel-reservation.*`, `revs.*`; all others authorization).
    async fn sample_outcome(file: &str) -> Result<AccountAnswer, AccountError> {
        let op = if file.starts_with("cancel-reservation.") || file.starts_with("revs.") {
            Operation::Reverse
        } else {
            Operation::Authorize
        };
        http_outcome(NAME, PATH, ACCOUNT, op, 200, answer(file)).await
    }

    fn vendor(op: Operation) -> (&'static str, &'static str) {
        match op {
            Operation::Authorize => ("AUTH", "auth.ok.xml"),
            Operation::Load => ("CRED", "cred.ok.xml"),
            Operation::Reverse => ("REVS", "revs.ok.xml"),
            Operation::Advice => ("ADVC", "advc.ok.xml"),
            Operation::BalanceInquiry => ("BALQ", "balq.ok.xml"),
        }
    }

    #[tokio::test]
    async fn approval_from_attributes_with_basic_auth() {
        let server = http_server(200, answer("auth.ok.xml")).await;
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        let answer = a
            .call(
                Operation::Authorize,
                &request(ACCOUNT, Duration::from_secs(2)),
            )
            .await
            .unwrap();
        assert_eq!(answer.code, ResponseCode::APPROVED);
        assert_eq!(answer.raw_code, "0");
        assert_eq!(answer.auth_id.as_deref(), Some("HB7788"));
        assert_eq!(balances(&answer), Some((81_450, 94_000)));
        assert_eq!(answer.message.as_deref(), Some("OK"));

        let sent = last_request(&server).await;
        let credentials = BASE64.encode("cardhub:demo-only-not-a-secret");
        assert_eq!(
            header(&sent, "authorization"),
            Some(format!("Basic {credentials}").as_str())
        );
        assert_eq!(
            header(&sent, "content-type"),
            Some("application/xml; charset=utf-8")
        );
        assert_eq!(header(&sent, "soapaction"), None);
        let body = String::from_utf8(sent.body).unwrap();
        assert!(body.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<HBRequest "));
    }

    #[tokio::test]
    async fn every_status_code_maps_to_de39() {
        let cases = [
            ("auth.101-insufficient-funds.xml", "101", "51"),
            ("auth.102-limit-exceeded.xml", "102", "61"),
            ("auth.103-account-locked.xml", "103", "62"),
            ("auth.104-card-lost.xml", "104", "41"),
            ("auth.105-card-stolen.xml", "105", "43"),
            ("auth.106-account-unknown.xml", "106", "14"),
            ("auth.107-not-allowed.xml", "107", "57"),
            ("auth.108-duplicate.xml", "108", "94"),
            ("auth.900-host-unavailable.xml", "900", "91"),
            ("auth.minus1-syntax-error.xml", "-1", "30"),
            ("revs.109-original-not-found.xml", "109", "25"),
        ];
        for (file, code, de39) in cases {
            let answer = sample_outcome(file).await.unwrap();
            assert_eq!(answer.code.as_str(), de39, "{file}");
            assert_eq!(answer.raw_code, code, "{file}");
            assert_eq!(answer.auth_id, None, "{file}");
        }
        let overdrawn = outcome(200, answer("auth.101-insufficient-funds.xml"))
            .await
            .unwrap();
        assert_eq!(balances(&overdrawn), Some((-1_240, -1_240)));
        assert_eq!(overdrawn.message.as_deref(), Some("NO COVER"));

        let unknown = answer("auth.ok.xml").replace(r#"code="0""#, r#"code="555""#);
        let answer = outcome(200, unknown).await.unwrap();
        assert_eq!(
            (answer.code.as_str(), answer.raw_code.as_str()),
            ("05", "555")
        );
    }

    #[tokio::test]
    async fn malformed_answers() {
        let ok = answer("auth.ok.xml");
        let cases = [
            ("not XML", "HOST DOWN".to_string()),
            ("truncated", ok[..ok.len() - 20].to_string()),
            (
                "no Status",
                ok.replace(r#"<Status code="0" text="OK"/>"#, ""),
            ),
            (
                "Status without code",
                ok.replace(r#"<Status code="0" text="OK"/>"#, r#"<Status text="OK"/>"#),
            ),
            (
                "no namespace",
                ok.replace(r#" xmlns="http://homebank.example/hbx/3""#, ""),
            ),
            (
                "a balance with a separator",
                ok.replace(r#"available="81450""#, r#"available="81.450""#),
            ),
        ];
        for (what, body) in cases {
            let err = outcome(200, body).await.unwrap_err();
            assert!(matches!(err, AccountError::Malformed(_)), "{what}: {err:?}");
        }
        // A well-formed answer with an error status is still an HTTP error.
        let err = outcome(500, ok).await.unwrap_err();
        assert_eq!(err, AccountError::HttpStatus(500));
    }

    #[tokio::test]
    async fn http_errors_late_answers_refusal_and_failover() {
        http_transport_outcomes(NAME, PATH, ACCOUNT, answer("auth.ok.xml")).await;
    }

    /// The answer to an authorization served as `bytes` with `content_type`.
    async fn served_as(bytes: Vec<u8>, content_type: &str) -> Result<AccountAnswer, AccountError> {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(bytes, content_type))
            .mount(&server)
            .await;
        adapter(NAME, &[format!("{}{PATH}", server.uri())], "")
            .call(
                Operation::Authorize,
                &request(ACCOUNT, Duration::from_secs(2)),
            )
            .await
    }

    /// The host answers in ISO-8859-1 (its samples declare it): the XML
    /// declaration or the HTTP charset says so.
    #[tokio::test]
    async fn latin1_answers_are_read_as_declared_or_as_the_charset_says() {
        let text = answer("auth.ok.xml").replace(r#"text="OK""#, r#"text="GENEHMIGT FÜR MÜLLER""#);
        let declared: Vec<u8> = text.chars().map(|c| u8::try_from(c).unwrap()).collect();
        let answer = served_as(declared.clone(), "text/xml").await.unwrap();
        assert_eq!(answer.message.as_deref(), Some("GENEHMIGT FÜR MÜLLER"));
        assert_eq!(answer.code, ResponseCode::APPROVED);

        let start = declared.iter().position(|&b| b == b'\n').unwrap() + 1;
        let undeclared = declared[start..].to_vec();
        let answer = served_as(undeclared.clone(), "text/xml; charset=ISO-8859-1")
            .await
            .unwrap();
        assert_eq!(answer.message.as_deref(), Some("GENEHMIGT FÜR MÜLLER"));
        let err = served_as(undeclared.clone(), "text/xml").await.unwrap_err();
        assert!(
            matches!(&err, AccountError::Malformed(why) if why.contains("not UTF-8")),
            "{err:?}"
        );
        let err = served_as(undeclared, "text/xml; charset=EBCDIC-CP-US")
            .await
            .unwrap_err();
        assert!(
            matches!(&err, AccountError::Malformed(why) if why.contains("\"EBCDIC-CP-US\"")),
            "{err:?}"
        );
    }

    /// The adapter file's content type, headers and a path per operation are
    /// what the host receives; a Latin-1 content type sends a Latin-1 body.
    #[tokio::test]
    async fn configured_content_type_headers_and_paths_are_sent() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_string(answer("auth.ok.xml")))
            .mount(&server)
            .await;
        let text = adapter_text(NAME)
            .replace(r#"encoding="UTF-8""#, r#"encoding="ISO-8859-1""#)
            .replace(
                "[operations.authorize]\n",
                "[operations.authorize]\npath = \"card/auth?v=3\"\nheaders = { X-HB-Func = \"AUTH\", X-HB-Client = \"CARDHUB-AUTH\" }\n",
            );
        let extra = r#"
[http]
content_type = "text/xml; charset=ISO-8859-1"
headers = { X-HB-Client = "CARDHUB", X-HB-Channel = "cards" }
"#;
        let a = edited_adapter(NAME, &text, &[format!("{}{PATH}", server.uri())], extra);

        let mut r = op_request(Operation::Authorize, ACCOUNT);
        r.merchant = Some("CAFÉ MÜNCHEN".into());
        a.call(Operation::Authorize, &r).await.unwrap();
        let sent = last_request(&server).await;
        assert_eq!(sent.url.path(), format!("{PATH}/card/auth"));
        assert_eq!(sent.url.query(), Some("v=3"));
        assert_eq!(
            header(&sent, "content-type"),
            Some("text/xml; charset=ISO-8859-1")
        );
        assert_eq!(header(&sent, "x-hb-func"), Some("AUTH"));
        assert_eq!(
            header(&sent, "x-hb-client"),
            Some("CARDHUB-AUTH"),
            "the operation's wins"
        );
        assert_eq!(header(&sent, "x-hb-channel"), Some("cards"));
        assert!(
            header(&sent, "authorization").is_some(),
            "basic auth still sent"
        );
        let body = &sent.body;
        assert!(body.starts_with(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
        let merchant = b" merchant=\"CAF\xc9 M\xdcNCHEN\" ";
        assert!(body.windows(merchant.len()).any(|w| w == merchant));

        let balance = op_request(Operation::BalanceInquiry, ACCOUNT);
        a.call(Operation::BalanceInquiry, &balance).await.unwrap();
        let sent = last_request(&server).await;
        assert_eq!(sent.url.path(), PATH, "no path: the endpoint URL");
        assert_eq!(header(&sent, "x-hb-func"), None);
        assert_eq!(header(&sent, "x-hb-client"), Some("CARDHUB"));

        let received = server.received_requests().await.unwrap().len();
        r.merchant = Some("5 € SHOP".into());
        let err = a.call(Operation::Authorize, &r).await.unwrap_err();
        assert_eq!(
            err,
            AccountError::Unsendable(
                "request body: '€' (U+20AC) cannot be written in ISO-8859-1".into()
            )
        );
        assert_eq!(server.received_requests().await.unwrap().len(), received);
    }

    fn normalised(body: &[u8]) -> String {
        blank_attribute(std::str::from_utf8(body).unwrap(), "replyBy")
    }

    #[tokio::test]
    async fn request_bodies_match_the_golden_files() {
        let server = MockServer::start().await;
        for op in Operation::ALL {
            let (func, file) = vendor(op);
            let root = format!(r#"version="3" func="{func}">"#);
            Mock::given(wiremock::matchers::path(PATH))
                .and(move |r: &Request| String::from_utf8_lossy(&r.body).contains(&root))
                .respond_with(ResponseTemplate::new(200).set_body_string(answer(file)))
                .mount(&server)
                .await;
        }
        let a = adapter(NAME, &[format!("{}{PATH}", server.uri())], "");
        for op in Operation::ALL {
            let answer = a.call(op, &op_request(op, ACCOUNT)).await.unwrap();
            assert_eq!(answer.code, ResponseCode::APPROVED, "{op:?}");
            assert!(answer.balances.is_some(), "{op:?}");
            let sent = last_request(&server).await;
            let body = normalised(&sent.body);
            if op != Operation::Advice {
                assert!(body.contains(r#" replyBy="…""#), "{body}");
            }
            golden(NAME, &format!("{}.request.xml", op.as_str()), &body);
        }
    }
}

// ---------------------------------------------------------- mainframe-fixed

mod mainframe_fixed {
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
            let host =
                Host::start(move |_: &str| Reply::After(Duration::ZERO, answer.clone())).await;
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
}
