//! `homebank-xml` (proprietary XML over HTTP, basic auth) against wiremock.

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
