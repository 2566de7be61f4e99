//! `legacy-soap12` (CoreBank, SOAP 1.2, WS-Security PasswordDigest) against wiremock.

use super::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cardhub_core::xml::{Document, Limits};
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
