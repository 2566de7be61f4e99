//! The canonical adapter (`adapters/canonical.toml`) against a wiremock
//! account system: approval, mapped declines, faults, HTTP errors, malformed
//! and late answers, refused connections, failover, and the request bodies
//! against golden files. Rendered requests are also written to
//! `target/rendered-requests/` for the WSDL check (`scripts/check-wsdl`).

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use cardhub_core::account::{AccountError, AccountRequest, AdviceDecision, Decider};
use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::file::Operation;
use cardhub_core::iso8583::fields::ResponseCode;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The canonical adapter pointed at `urls`.
fn adapter(urls: &[String], extra: &str) -> Adapter {
    let text = std::fs::read_to_string(repo().join("adapters/canonical.toml")).unwrap();
    let list = urls
        .iter()
        .map(|u| format!("{u:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let text = text.replace(
        r#"urls = ["http://127.0.0.1:8080/account-system"]"#,
        &format!("urls = [{list}]"),
    ) + extra;
    Adapter::from_toml(&text, &repo().join("adapters")).unwrap()
}

fn request(deadline_in: Duration) -> AccountRequest {
    support::account_request("A-1001", deadline_in)
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("fixtures/soap/canonical").join(name)).unwrap()
}

async fn server_answering(status: u16, body: String) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/account-system"))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

fn url(server: &MockServer) -> String {
    format!("{}/account-system", server.uri())
}

/// An `AuthorizeResponse` with a result code.
fn answer_with(code: &str) -> String {
    fixture("authorize-response.soap11.xml").replace(
        "<as:resultCode>000</as:resultCode>",
        &format!("<as:resultCode>{code}</as:resultCode>"),
    )
}

#[tokio::test]
async fn approval_with_auth_id_and_balances() {
    let server = server_answering(200, fixture("authorize-response.soap11.xml")).await;
    let a = adapter(&[url(&server)], "");
    let answer = a
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED);
    assert_eq!(answer.raw_code, "000");
    assert_eq!(answer.auth_id.as_deref(), Some("482913"));
    let b = answer.balances.unwrap();
    assert_eq!((b.available, b.ledger), (81_450, 94_000));
}

#[tokio::test]
async fn vendor_codes_map_to_de39() {
    let cases = [
        ("116", "51"),
        ("208", "41"),
        ("209", "43"),
        ("101", "54"),
        ("121", "61"),
        ("777", "05"),
    ];
    for (vendor, de39) in cases {
        let server = server_answering(200, answer_with(vendor)).await;
        let a = adapter(&[url(&server)], "");
        let answer = a
            .call(Operation::Authorize, &request(Duration::from_secs(2)))
            .await
            .unwrap();
        assert_eq!(answer.code.as_str(), de39, "vendor code {vendor}");
        assert_eq!(answer.raw_code, vendor);
    }
}

#[tokio::test]
async fn soap_faults_are_no_answer_unless_mapped() {
    let server = server_answering(500, fixture("authorize-fault.soap11.xml")).await;
    let a = adapter(&[url(&server)], "");
    let err = a
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap_err();
    let AccountError::Fault { code, .. } = &err else {
        panic!("expected a fault, got {err:?}");
    };
    let mapped = adapter(
        &[url(&server)],
        &format!("\n[faults.map]\n{code:?} = \"14\"\n"),
    );
    let answer = mapped
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(answer.code.as_str(), "14");
}

#[tokio::test]
async fn http_errors_malformed_and_late_answers() {
    let server = server_answering(500, "internal error".into()).await;
    let err = adapter(&[url(&server)], "")
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::HttpStatus(500));

    for body in ["<oops", "<as:Other xmlns:as='x'/>", "not xml at all"] {
        let server = server_answering(200, body.into()).await;
        let err = adapter(&[url(&server)], "")
            .call(Operation::Authorize, &request(Duration::from_secs(2)))
            .await
            .unwrap_err();
        assert!(matches!(err, AccountError::Malformed(_)), "{body}: {err:?}");
    }

    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_string(fixture("authorize-response.soap11.xml"))
                .set_delay(support::NEVER),
        )
        .mount(&slow)
        .await;
    let a = adapter(&[url(&slow)], "");
    let late = request(Duration::from_millis(300));
    let err = support::within_wait("a late answer", a.call(Operation::Authorize, &late))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::Timeout);
}

/// A local port nothing listens on.
fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/account-system")
}

#[tokio::test]
async fn refused_connections_and_failover() {
    let err = adapter(&[closed_port_url()], "")
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert!(matches!(err, AccountError::Unreachable(_)), "{err:?}");

    let server = server_answering(200, fixture("authorize-response.soap11.xml")).await;
    let answer = adapter(&[closed_port_url(), url(&server)], "")
        .call(Operation::Authorize, &request(Duration::from_secs(2)))
        .await
        .unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED);
}

/// The body the server received, with the (time-dependent) deadline blanked.
fn normalised(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).into_owned();
    match (text.find("<as:deadline>"), text.find("</as:deadline>")) {
        (Some(a), Some(b)) => format!("{}<as:deadline>…{}", &text[..a], &text[b..]),
        _ => text,
    }
}

#[tokio::test]
async fn request_bodies_match_the_golden_files_and_the_wsdl() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(header(
            "SOAPAction",
            "\"urn:cardhub:account-system:v1#Authorize\"",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_string(fixture("authorize-response.soap11.xml")),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string(answer_with("000")))
        .mount(&server)
        .await;
    let a = adapter(&[url(&server)], "");
    let golden_dir = repo().join("fixtures/adapters/canonical");
    let rendered_dir = repo().join("target/rendered-requests");
    std::fs::create_dir_all(&rendered_dir).unwrap();
    for op in Operation::ALL {
        let mut r = request(Duration::from_secs(2));
        if matches!(op, Operation::Reverse | Operation::Advice) {
            r.original_transaction_id = Some("0193A2B4C5D50007".into());
        }
        if op == Operation::Advice {
            r.decision = Some(AdviceDecision {
                code: ResponseCode::APPROVED,
                decided_by: Decider::StandIn,
                reason: "institution closed for end of day".into(),
            });
        }
        let _ = a.call(op, &r).await;
        let body = a.render(op, &r).unwrap();
        std::fs::write(
            rendered_dir.join(format!("canonical-{}.xml", op.as_str())),
            &body,
        )
        .unwrap();
        let received = server.received_requests().await.unwrap();
        let last: &Request = received.last().unwrap();
        let got = normalised(&last.body);
        let golden = golden_dir.join(format!("{}.request.xml", op.as_str()));
        if std::env::var_os("CARDHUB_BLESS").is_some() {
            std::fs::create_dir_all(&golden_dir).unwrap();
            std::fs::write(&golden, &got).unwrap();
        }
        let expected = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (CARDHUB_BLESS=1 writes it)", golden.display()));
        assert_eq!(got, expected, "{}", Path::new(&golden).display());
    }
}

#[tokio::test]
async fn the_clear_pan_is_sent_only_when_the_file_allows_it() {
    let text = std::fs::read_to_string(repo().join("adapters/canonical.toml"))
        .unwrap()
        .replace("<as:card>{card}</as:card>", "<as:card>{pan}</as:card>");
    let refused = Adapter::from_toml(&text, &repo().join("adapters"))
        .err()
        .unwrap();
    let all = refused.problems().join("\n");
    assert!(all.contains("send_clear_pan"), "{all}");

    let allowed = format!("send_clear_pan = true\n{text}");
    let a = Adapter::from_toml(&allowed, &repo().join("adapters")).unwrap();
    let mut r = request(Duration::from_secs(2));
    r.clear_pan = Some(cardhub_core::iso8583::fields::Pan::new("4761739001010010").unwrap());
    let body = a.render(Operation::Authorize, &r).unwrap();
    assert!(
        body.contains("<as:card>4761739001010010</as:card>"),
        "{body}"
    );
}
