//! The hub's SOAP service (`POST /soap/hub`) and the balance upload over
//! real HTTP: every fault code a request can reach, each with its SOAP fault
//! code and HTTP status; SubmitBalances in a configured format and with
//! `asOf` only; the WSDL's soapAction values against what the service takes.
//! Store failures are real: a trigger in the hub's database refuses the
//! write.

mod support;

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cardhub_core::api;
use cardhub_core::app;
use cardhub_core::xml::{Document, Limits};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "hub-api-test-token-0123";
const HUB: &str = "urn:cardhub:hub:v1";
const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const CT11: &str = "text/xml; charset=utf-8";
/// The largest SOAP request these hubs read.
const SOAP_MAX: usize = 8192;

/// bank-a: CSV balance files with an as-of line; bank-b: fixed-width
/// (`fixtures/balances/formats.toml`'s); bank-c: offline-only, no balances.
fn extra() -> String {
    format!(
        "\n[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\nsoap_max_bytes = {SOAP_MAX}\n\n\
         [[institution]]\nid = \"bank-c\"\nname = \"Bank C\"\nmode = \"offline-only\"\n"
    )
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `[fixed]` table of `fixtures/balances/formats.toml` as bank-b's
/// `[institution.balances]`.
fn fixed_format() -> String {
    let formats = std::fs::read_to_string(repo().join("fixtures/balances/formats.toml")).unwrap();
    let start = formats.find("[fixed]").unwrap();
    let end = formats.find("# bank-a as XML").unwrap();
    formats[start..end].replace("[fixed", "[institution.balances")
}

struct ApiHub {
    url: String,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for ApiHub {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start() -> ApiHub {
    let text = support::config_text(&extra())
        .replace(
            "id = \"bank-a\"\nname = \"Bank A\"\nmode = \"online\"",
            "id = \"bank-a\"\nname = \"Bank A\"\nmode = \"online\"\n\
             balances = { format = \"csv\", account = \"account\", available = \"available\", currency = \"currency\", as_of_line = \"#as_of=\" }",
        )
        .replace(
            "id = \"bank-b\"\nname = \"Bank B\"\nmode = \"online\"",
            &format!("id = \"bank-b\"\nname = \"Bank B\"\nmode = \"online\"\n{}", fixed_format()),
        );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cardhub.toml");
    std::fs::write(&path, text).unwrap();
    let config = cardhub_core::config::Config::load(&path).unwrap();
    let hub = Arc::new(app::open(&config, Default::default()).unwrap());
    let shutdown = CancellationToken::new();
    let running = api::server::start(
        config.api.as_ref().unwrap(),
        hub,
        config.institutions.clone().into(),
        &config.prepaid,
        cardhub_core::link::LinkStats::default(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    ApiHub {
        url: format!("http://{}", running.addr),
        dir,
        shutdown,
    }
}

/// What came back: HTTP status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    /// The fault's SOAP code (`soap:Client`, `soap:Sender`, …) and its
    /// `HubFault/code`; `None` when the answer is no fault.
    fn fault(&self) -> Option<(String, String)> {
        let doc = Document::parse(self.body.as_bytes(), &Limits::default()).ok()?;
        let root = doc.root();
        let (env, _) = doc.name(root);
        let body = doc.child(root, env, "Body")?;
        let fault = doc.child(body, env, "Fault")?;
        let (soap_code, detail) = if env == SOAP11 {
            let code = doc.child(fault, "", "faultcode")?;
            (doc.trimmed_text(code), doc.child(fault, "", "detail")?)
        } else {
            let code = doc.child(fault, env, "Code")?;
            let value = doc.child(code, env, "Value")?;
            (doc.trimmed_text(value), doc.child(fault, env, "Detail")?)
        };
        let hub_fault = doc.child(detail, HUB, "HubFault")?;
        let code = doc.child(hub_fault, HUB, "code")?;
        Some((soap_code.to_owned(), doc.trimmed_text(code).to_owned()))
    }
}

impl ApiHub {
    async fn soap(&self, body: &str, content_type: &str, action: Option<&str>) -> Answer {
        let mut request = support::http()
            .post(format!("{}/soap/hub", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", content_type)
            .body(body.to_owned());
        if let Some(action) = action {
            request = request.header("SOAPAction", action);
        }
        let response = request.send().await.unwrap();
        Answer {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    /// Asserts `body` (SOAP 1.1) is answered with a fault: SOAP code, HubFault code, HTTP 500.
    async fn assert_fault(&self, body: &str, action: Option<&str>, soap_code: &str, code: &str) {
        let answer = self.soap(body, CT11, action).await;
        assert_eq!(
            (answer.status, answer.fault()),
            (500, Some((soap_code.to_owned(), code.to_owned()))),
            "{}",
            answer.body
        );
    }

    /// Makes the hub's store refuse every write to `table` (a real SQLite error).
    fn break_table(&self, table: &str) {
        let db = rusqlite::Connection::open(self.dir.path().join("hub.db")).unwrap();
        db.execute_batch(&format!(
            "CREATE TRIGGER no_insert_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, 'disk refused'); END;\
             CREATE TRIGGER no_update_{table} BEFORE UPDATE ON {table} BEGIN SELECT RAISE(ABORT, 'disk refused'); END;"
        ))
        .unwrap();
    }

    /// `balances_as_of` of an institution in `GET /api/institutions`.
    async fn balances_as_of(&self, id: &str) -> Option<String> {
        let text = support::http()
            .get(format!("{}/api/institutions", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        let inst = list["institutions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap();
        inst["balances_as_of"].as_str().map(str::to_owned)
    }
}

fn envelope11(body: &str) -> String {
    format!(
        r#"<soap:Envelope xmlns:soap="{SOAP11}" xmlns:hub="{HUB}"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    )
}

fn status_notify(institution: &str, state: &str) -> String {
    envelope11(&format!(
        "<hub:StatusNotify><hub:institution>{institution}</hub:institution><hub:state>{state}</hub:state>\
         <hub:time>2025-11-22T05:45:00Z</hub:time></hub:StatusNotify>"
    ))
}

fn submit_balances(institution: &str, as_of: &str, format: &str, file: &[u8]) -> String {
    envelope11(&format!(
        "<hub:SubmitBalances><hub:institution>{institution}</hub:institution><hub:asOf>{as_of}</hub:asOf>\
         <hub:fileName>balances</hub:fileName><hub:format>{format}</hub:format>\
         <hub:content>{}</hub:content></hub:SubmitBalances>",
        BASE64.encode(file)
    ))
}

const CSV: &str = "account,available,currency\nA-1001,1500.00,USD\nA-1002,250.75,840\n";

fn sample(name: &str) -> String {
    std::fs::read_to_string(repo().join("fixtures/soap/canonical").join(name)).unwrap()
}

#[tokio::test]
async fn every_request_fault_code_is_reached_over_http() {
    let hub = start().await;
    let ok = status_notify("bank-a", "CLOSED");
    let cases: Vec<(String, Option<&str>, &str, &str)> = vec![
        (
            submit_balances("bank-a", "2026-11-21T22:00:00Z", "csv", &[b'A'; SOAP_MAX]),
            None,
            "soap:Client",
            "REQUEST_TOO_LARGE",
        ),
        ("<soap:Envelope".into(), None, "soap:Client", "MALFORMED_XML"),
        (format!(r#"<x xmlns="{HUB}"/>"#), None, "soap:Client", "NOT_SOAP"),
        (
            r#"<e:Envelope xmlns:e="urn:soap:next"><e:Body/></e:Envelope>"#.into(),
            None,
            "soap:VersionMismatch",
            "VERSION_MISMATCH",
        ),
        (
            ok.replace(
                "<soap:Body>",
                r#"<soap:Header><t:Trace xmlns:t="urn:t" soap:mustUnderstand="1"/></soap:Header><soap:Body>"#,
            ),
            None,
            "soap:MustUnderstand",
            "MUST_UNDERSTAND",
        ),
        (
            envelope11("<hub:Refund/>"),
            None,
            "soap:Client",
            "UNKNOWN_OPERATION",
        ),
        (
            ok.clone(),
            Some("\"urn:cardhub:hub:v1#SubmitBalances\""),
            "soap:Client",
            "ACTION_MISMATCH",
        ),
        (
            ok.replace("<hub:time>2025-11-22T05:45:00Z</hub:time>", ""),
            None,
            "soap:Client",
            "INVALID_MESSAGE",
        ),
        (
            status_notify("bank-x", "OPEN"),
            None,
            "soap:Client",
            "UNKNOWN_INSTITUTION",
        ),
        (
            submit_balances("bank-x", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes()),
            None,
            "soap:Client",
            "UNKNOWN_INSTITUTION",
        ),
        (
            status_notify("bank-c", "CLOSED"),
            None,
            "soap:Client",
            "OFFLINE_ONLY",
        ),
        (
            submit_balances("bank-c", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes()),
            None,
            "soap:Client",
            "BALANCES_NOT_CONFIGURED",
        ),
        (
            submit_balances("bank-a", "2026-11-21T22:00:00Z", "fixed", CSV.as_bytes()),
            None,
            "soap:Client",
            "UNKNOWN_FORMAT",
        ),
        (
            submit_balances("bank-b", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes()),
            None,
            "soap:Client",
            "UNKNOWN_FORMAT",
        ),
    ];
    for (body, action, soap_code, code) in cases {
        hub.assert_fault(&body, action, soap_code, code).await;
    }
    let answer = hub.soap(&ok, "application/json", None).await;
    assert_eq!(
        answer.fault(),
        Some(("soap:Client".into(), "UNSUPPORTED_MEDIA_TYPE".into())),
        "{}",
        answer.body
    );
    // SOAP 1.2: a Sender fault is HTTP 400.
    let v12 = sample("status-notify-request.soap12.xml").replace("bank-a", "bank-x");
    let answer = hub.soap(&v12, "application/soap+xml", None).await;
    assert_eq!(
        (answer.status, answer.fault()),
        (
            400,
            Some(("soap:Sender".into(), "UNKNOWN_INSTITUTION".into()))
        ),
        "{}",
        answer.body
    );
    // The hub kept serving: a good signal is answered.
    let answer = hub.soap(&ok, CT11, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body.contains("<hub:state>CLOSED</hub:state>"));
}

#[tokio::test]
async fn an_older_file_and_store_failures_are_their_own_faults() {
    let hub = start().await;
    let newer = submit_balances("bank-a", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes());
    let answer = hub.soap(&newer, CT11, None).await;
    assert!(
        answer.body.contains("<hub:records>2</hub:records>"),
        "{}",
        answer.body
    );
    let older = CSV.replace("1500.00", "1.00");
    let older = submit_balances("bank-a", "2026-11-21T21:00:00Z", "csv", older.as_bytes());
    hub.assert_fault(&older, None, "soap:Client", "OLDER_THAN_CURRENT")
        .await;

    hub.break_table("institution_state");
    let signal = status_notify("bank-a", "CLOSED");
    hub.assert_fault(&signal, None, "soap:Server", "STATE_NOT_RECORDED")
        .await;
    hub.break_table("balance_files");
    let later = submit_balances("bank-a", "2026-11-21T23:00:00Z", "csv", CSV.as_bytes());
    hub.assert_fault(&later, None, "soap:Server", "BALANCES_NOT_STORED")
        .await;
    // SOAP 1.2: a Receiver fault is HTTP 500 too.
    let v12 = sample("status-notify-request.soap12.xml");
    let answer = hub.soap(&v12, "application/soap+xml", None).await;
    assert_eq!(
        (answer.status, answer.fault()),
        (
            500,
            Some(("soap:Receiver".into(), "STATE_NOT_RECORDED".into()))
        ),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn submit_balances_uses_the_configured_format_and_the_as_of_it_names() {
    let hub = start().await;
    // bank-b's files are fixed-width: taken when the request says "fixed".
    let fixed = std::fs::read(repo().join("fixtures/balances/fixed-good.txt")).unwrap();
    let body = submit_balances("bank-b", "2026-11-21T22:00:00Z", "fixed", &fixed);
    let answer = hub.soap(&body, CT11, None).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(
        answer.body.contains("<hub:records>4</hub:records>"),
        "{}",
        answer.body
    );

    // bank-a's format wants an as-of line; asOf alone is enough.
    let body = submit_balances("bank-a", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes());
    let answer = hub.soap(&body, CT11, None).await;
    assert!(
        answer.body.contains("<hub:records>2</hub:records>"),
        "{}",
        answer.body
    );
    assert_eq!(
        hub.balances_as_of("bank-a").await.as_deref(),
        Some("2026-11-21T22:00:00Z")
    );
    // A file whose own as-of differs from asOf is rejected, naming line 1.
    let with_line = format!("#as_of=2026-11-22T01:00:00Z\n{CSV}");
    let body = submit_balances(
        "bank-a",
        "2026-11-22T02:00:00Z",
        "csv",
        with_line.as_bytes(),
    );
    let answer = hub.soap(&body, CT11, None).await;
    assert_eq!(
        (answer.status, answer.fault()),
        (200, None),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains("<hub:line>1</hub:line>")
            && answer
                .body
                .contains("differs from the one supplied with the file"),
        "{}",
        answer.body
    );
    assert_eq!(
        hub.balances_as_of("bank-a").await.as_deref(),
        Some("2026-11-21T22:00:00Z"),
        "the previous balances stay"
    );
}

#[tokio::test]
async fn the_json_upload_answers_with_the_same_codes() {
    let hub = start().await;
    let upload = |id: &'static str, body: String| {
        let url = format!("{}/api/institutions/{id}/balances", hub.url);
        async move {
            let response = support::http()
                .post(url)
                .bearer_auth(TOKEN)
                .header("x-as-of", "2026-11-21T22:00:00Z")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_str(&response.text().await.unwrap()).unwrap();
            (status, body["code"].as_str().map(str::to_owned))
        }
    };
    let code = |c: &str| Some(c.to_owned());
    assert_eq!(
        upload("bank-x", CSV.into()).await,
        (404, code("UNKNOWN_INSTITUTION"))
    );
    assert_eq!(
        upload("bank-c", CSV.into()).await,
        (422, code("BALANCES_NOT_CONFIGURED"))
    );
    assert_eq!(
        upload("bank-a", CSV.replace("250.75", "x")).await,
        (422, code("BALANCES_REJECTED"))
    );
    assert_eq!(upload("bank-a", CSV.into()).await.0, 200);
}

/// `(operation, soapAction)` of every binding operation in wsdl/hub.wsdl.
fn wsdl_actions() -> Vec<(String, String)> {
    let wsdl = std::fs::read(repo().join("wsdl/hub.wsdl")).unwrap();
    let doc = Document::parse(&wsdl, &Limits::default()).unwrap();
    let wsdl_ns = "http://schemas.xmlsoap.org/wsdl/";
    let mut actions = Vec::new();
    for binding in doc.children(doc.root()) {
        if doc.name(binding) != (wsdl_ns, "binding") {
            continue;
        }
        for op in doc.children(binding) {
            if doc.name(op) != (wsdl_ns, "operation") {
                continue;
            }
            let name = doc.attribute(op, None, "name").unwrap();
            for soap_op in doc.children(op) {
                if doc.name(soap_op).1 == "operation" {
                    let action = doc.attribute(soap_op, None, "soapAction").unwrap();
                    actions.push((name.to_owned(), action.to_owned()));
                }
            }
        }
    }
    actions
}

#[tokio::test]
async fn the_service_accepts_exactly_the_wsdl_soap_actions() {
    let actions = wsdl_actions();
    // Two bindings (SOAP 1.1 and 1.2), two operations each.
    assert_eq!(actions.len(), 4, "{actions:?}");
    let hub = start().await;
    let request = |operation: &str| match operation {
        "StatusNotify" => status_notify("bank-a", "OPEN"),
        "SubmitBalances" => {
            submit_balances("bank-a", "2026-11-21T22:00:00Z", "csv", CSV.as_bytes())
        }
        other => panic!("hub.wsdl has an operation the test does not know: {other}"),
    };
    for (operation, action) in &actions {
        let body = request(operation);
        // SOAP 1.1: the SOAPAction header, quoted as WSDL 1.1 clients send it.
        let answer = hub.soap(&body, CT11, Some(&format!("\"{action}\""))).await;
        assert_eq!(
            (answer.status, answer.fault()),
            (200, None),
            "{action}: {}",
            answer.body
        );
        // SOAP 1.2: the Content-Type's action parameter.
        let v12 = body
            .replace(SOAP11, SOAP12)
            .replace("soap:", "env:")
            .replace("xmlns:soap=", "xmlns:env=");
        let ct = format!("application/soap+xml; charset=utf-8; action=\"{action}\"");
        let answer = hub.soap(&v12, &ct, None).await;
        assert_eq!(
            (answer.status, answer.fault()),
            (200, None),
            "{action}: {}",
            answer.body
        );
        // Any other operation's action, or one not in the WSDL, is refused.
        let foreign = format!("urn:cardhub:hub:v2#{operation}");
        let mut others: Vec<&str> = actions
            .iter()
            .filter(|(op, _)| op != operation)
            .map(|(_, a)| a.as_str())
            .collect();
        others.push(&foreign);
        for wrong in others {
            hub.assert_fault(&body, Some(wrong), "soap:Client", "ACTION_MISMATCH")
                .await;
        }
    }
}
