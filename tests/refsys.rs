//! The reference account system (`cardhub reference-account-system`) served
//! on a real socket and called through cardhub's canonical adapter, as the
//! hub calls any vendor's system; and its answers written to
//! `target/rendered-requests/refsys/` for `scripts/check-wsdl`.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::account::{AccountError, AccountRequest, AccountSystem, AdviceDecision, Decider};
use cardhub_core::account::{Balances, Kind};
use cardhub_core::adapter::registry::{AdapterHandle, Adapters};
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_lab::refsys::{self, Mode, RefSys, Stats, Switches, accounts, ledger::Ledger};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

const ACCOUNTS: &str = "account,available,currency\nA-1001,940.00,USD\nB-2002,50.00,840\n";
const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// account-system.wsdl's target namespace; its actions are `NS#Operation`.
const NS: &str = "urn:cardhub:account-system:v1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running reference account system and the canonical adapter aimed at it.
struct Bank {
    addr: SocketAddr,
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
    async fn start(transport: &str) -> Bank {
        let mut ledger = Ledger::open(None).unwrap();
        ledger
            .open_accounts(&accounts::parse(ACCOUNTS.as_bytes()).unwrap())
            .unwrap();
        let stop = CancellationToken::new();
        let state = RefSys::new(ledger, Mode::Open, 0);
        let addr = refsys::spawn("127.0.0.1:0".parse().unwrap(), state, stop.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let toml = std::fs::read_to_string(repo().join("adapters/canonical.toml"))
            .unwrap()
            .replace(
                "http://127.0.0.1:8080/account-system",
                &format!("http://{addr}/account-system"),
            )
            .replace(
                "transport = \"soap11\"",
                &format!("transport = \"{transport}\""),
            );
        std::fs::write(dir.path().join("canonical.toml"), toml).unwrap();
        let adapters = Arc::new(Adapters::load(dir.path()).unwrap());
        let handle = adapters.handle("canonical").unwrap();
        Bank {
            addr,
            handle,
            stop,
            _dir: dir,
        }
    }

    async fn set(&self, mode: Mode, delay_ms: Option<u64>) {
        let url = format!("http://{}/admin/mode", self.addr);
        let body = serde_json::to_vec(&Switches { mode, delay_ms }).unwrap();
        let response = support::http()
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    async fn stats(&self) -> Stats {
        let url = format!("http://{}/admin/stats", self.addr);
        let response = support::http().get(url).send().await.unwrap();
        let body = response.bytes().await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    /// Posts a raw envelope; returns status, Content-Type and body.
    /// Posts a request for the WSDL operation `op` (its action in the
    /// SOAPAction header, as every SOAP 1.1 client sends one).
    async fn post(&self, xml: &str, content_type: &str, op: &str) -> (u16, String, String) {
        self.post_with_action(xml, content_type, &format!("\"{NS}#{op}\""))
            .await
    }

    async fn post_with_action(
        &self,
        xml: &str,
        content_type: &str,
        soap_action: &str,
    ) -> (u16, String, String) {
        let response = support::http()
            .post(format!("http://{}/account-system", self.addr))
            .header("content-type", content_type)
            .header("SOAPAction", soap_action)
            .body(xml.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let ct = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, ct, response.text().await.unwrap())
    }
}

fn request(id: &str, account: &str, amount: u64) -> AccountRequest {
    let mut r = support::account_request(account, Duration::from_secs(2));
    r.transaction_id = id.into();
    r.amount.minor = amount;
    r
}

fn balances(available: i64, ledger: i64) -> Option<Balances> {
    Some(Balances { available, ledger })
}

#[tokio::test]
async fn approves_declines_and_answers_a_repeat_without_applying_it_twice() {
    let bank = Bank::start("soap11").await;
    let first = bank
        .handle
        .authorize(&request("T1", "A-1001", 12550))
        .await
        .unwrap();
    assert_eq!(
        (first.code, first.raw_code.as_str()),
        (ResponseCode::APPROVED, "000")
    );
    assert_eq!(first.balances, balances(81450, 94000), "a purchase is held");
    assert!(first.auth_id.as_ref().is_some_and(|id| id.len() == 6));

    let again = bank
        .handle
        .authorize(&request("T1", "A-1001", 12550))
        .await
        .unwrap();
    assert_eq!(again, first, "a repeat gets the first answer");
    let inquiry = request("T2", "A-1001", 0);
    let now = bank.handle.balance_inquiry(&inquiry).await.unwrap();
    assert_eq!(now.balances, balances(81450, 94000), "applied once");

    let poor = bank
        .handle
        .authorize(&request("T3", "B-2002", 12550))
        .await
        .unwrap();
    assert_eq!((poor.code.as_str(), poor.raw_code.as_str()), ("51", "116"));
    assert_eq!((poor.auth_id, poor.balances), (None, balances(5000, 5000)));
    let unknown = bank
        .handle
        .authorize(&request("T4", "Z-9", 100))
        .await
        .unwrap();
    assert_eq!(
        (unknown.code.as_str(), unknown.raw_code.as_str()),
        ("14", "111")
    );

    let stats = bank.stats().await;
    assert_eq!(stats.requests["authorize"], 4);
    assert_eq!(stats.requests["balance_inquiry"], 1);
    assert_eq!(
        (stats.repeats, stats.faults, stats.distinct_transaction_ids),
        (1, 0, 4)
    );
}

#[tokio::test]
async fn reverses_all_or_part_and_knows_unknown_originals() {
    let bank = Bank::start("soap11").await;
    bank.handle
        .authorize(&request("P1", "A-1001", 12550))
        .await
        .unwrap();
    let mut cash = request("C1", "A-1001", 10000);
    cash.kind = Kind::Cash;
    let done = bank.handle.authorize(&cash).await.unwrap();
    assert_eq!(done.balances, balances(71450, 84000), "cash is debited");

    let mut part = request("R1", "A-1001", 2550);
    part.original_transaction_id = Some("P1".into());
    let undone = bank.handle.reverse(&part).await.unwrap();
    assert_eq!(
        (undone.code, undone.raw_code.as_str()),
        (ResponseCode::APPROVED, "400")
    );
    assert_eq!(undone.balances, balances(74000, 84000));
    assert_eq!(bank.handle.reverse(&part).await.unwrap(), undone, "repeat");

    let mut all = request("R2", "A-1001", 10000);
    all.original_transaction_id = Some("C1".into());
    let undone = bank.handle.reverse(&all).await.unwrap();
    assert_eq!(
        undone.balances,
        balances(84000, 94000),
        "the debit is credited back"
    );

    let mut lost = request("R3", "A-1001", 100);
    lost.original_transaction_id = Some("NEVER".into());
    let answer = bank.handle.reverse(&lost).await.unwrap();
    assert_eq!(
        (answer.code.as_str(), answer.raw_code.as_str()),
        ("25", "480")
    );
    assert_eq!(answer.balances, balances(84000, 94000));
}

#[tokio::test]
async fn applies_a_stand_in_advice_once() {
    let bank = Bank::start("soap11").await;
    let mut advice = request("ADV1", "A-1001", 6000);
    advice.kind = Kind::Cash;
    advice.original_transaction_id = Some("LOST".into());
    advice.decision = Some(AdviceDecision {
        code: ResponseCode::APPROVED,
        decided_by: Decider::StandIn,
        reason: "closed for end of day; approved within the shadow balance".into(),
    });
    let ack = bank.handle.advice(&advice).await.unwrap();
    assert_eq!(
        (ack.code, ack.raw_code.as_str()),
        (ResponseCode::APPROVED, "000")
    );
    assert_eq!(ack.balances, balances(88000, 88000));
    assert_eq!(bank.handle.advice(&advice).await.unwrap(), ack, "repeat");

    // A Reverse finds the advice by the original's id.
    let mut undo = request("R1", "A-1001", 6000);
    undo.original_transaction_id = Some("LOST".into());
    let undone = bank.handle.reverse(&undo).await.unwrap();
    assert_eq!(undone.balances, balances(94000, 94000));

    // The account system approved T1 itself: the advice changes nothing.
    bank.handle
        .authorize(&request("T1", "A-1001", 100))
        .await
        .unwrap();
    let mut late = advice.clone();
    late.transaction_id = "ADV2".into();
    late.original_transaction_id = Some("T1".into());
    let ack = bank.handle.advice(&late).await.unwrap();
    assert_eq!(ack.balances, balances(93900, 94000));

    // A declined decision is acknowledged and applies nothing.
    let mut declined = advice.clone();
    declined.transaction_id = "ADV3".into();
    declined.original_transaction_id = None;
    declined.decision.as_mut().unwrap().code = ResponseCode::new("51").unwrap();
    let ack = bank.handle.advice(&declined).await.unwrap();
    assert_eq!(ack.balances, balances(93900, 94000));
}

#[tokio::test]
async fn closed_faults_online_requests_but_serves_the_rest() {
    let bank = Bank::start("soap11").await;
    bank.set(Mode::Closed, None).await;
    let err = bank
        .handle
        .authorize(&request("T1", "A-1001", 100))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AccountError::Fault { code, .. } if code == "907"),
        "{err:?}"
    );
    assert!(err.is_unavailability(), "cardhub stands in");
    let inquiry = bank
        .handle
        .balance_inquiry(&request("T2", "A-1001", 0))
        .await
        .unwrap();
    assert_eq!(inquiry.balances, balances(94000, 94000), "nothing applied");

    bank.set(Mode::Fail, None).await;
    let err = bank
        .handle
        .balance_inquiry(&request("T3", "A-1001", 0))
        .await
        .unwrap_err();
    assert_eq!(err, AccountError::HttpStatus(500));

    bank.set(Mode::Open, None).await;
    let answer = bank
        .handle
        .authorize(&request("T1", "A-1001", 100))
        .await
        .unwrap();
    assert_eq!(answer.code, ResponseCode::APPROVED, "a fault is not stored");
    let stats = bank.stats().await;
    assert_eq!(
        (stats.mode, stats.faults, stats.repeats),
        (Mode::Open, 2, 0)
    );
}

#[tokio::test]
async fn slow_answers_miss_a_short_deadline() {
    let bank = Bank::start("soap11").await;
    bank.set(Mode::Slow, Some(600)).await;
    let mut hurried = request("T1", "A-1001", 100);
    hurried.deadline = tokio::time::Instant::now() + Duration::from_millis(150);
    let err = bank.handle.authorize(&hurried).await.unwrap_err();
    assert_eq!(err, AccountError::Timeout);
    let stats = bank.stats().await;
    assert_eq!((stats.mode, stats.delay_ms), (Mode::Slow, 600));
    // The late request was still applied, as a real late system would.
    let patient = bank
        .handle
        .authorize(&request("T1", "A-1001", 100))
        .await
        .unwrap();
    assert_eq!(patient.balances, balances(93900, 94000));
    assert_eq!(bank.stats().await.repeats, 1);
}

#[tokio::test]
async fn soap_12_is_answered_in_12() {
    let bank = Bank::start("soap12").await;
    let answer = bank
        .handle
        .authorize(&request("T1", "A-1001", 12550))
        .await
        .unwrap();
    assert_eq!(answer.balances, balances(81450, 94000));

    let xml = std::fs::read_to_string(
        repo().join("fixtures/soap/canonical/authorize-request.soap12.xml"),
    )
    .unwrap();
    let (status, ct, body) = bank
        .post(&xml, "application/soap+xml; charset=utf-8", "Authorize")
        .await;
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/soap+xml"), "{ct}");
    assert!(
        body.contains(SOAP12) && body.contains("<as:result>APPROVED</as:result>"),
        "{body}"
    );

    let (status, _, body) = bank
        .post("<nope/>", "application/soap+xml", "Authorize")
        .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("soap:Sender") && body.contains("<as:code>904</as:code>"),
        "{body}"
    );
}

/// A request whose SOAPAction is not the WSDL binding's gets a Client fault
/// and changes nothing, as from a server generated from the WSDL.
#[tokio::test]
async fn a_wrong_soap_action_is_a_client_fault() {
    let bank = Bank::start("soap11").await;
    let xml = std::fs::read_to_string(
        repo().join("fixtures/soap/canonical/authorize-request.soap11.xml"),
    )
    .unwrap();
    for action in [
        format!("\"{NS}/Authorize\""),
        format!("\"{NS}#Load\""),
        "".into(),
    ] {
        let (status, _, body) = bank.post_with_action(&xml, "text/xml", &action).await;
        assert_eq!(status, 500, "{action}: {body}");
        assert!(
            body.contains("<faultcode>soap:Client</faultcode>")
                && body.contains(&format!("{NS}#Authorize")),
            "{action}: {body}"
        );
    }
    let (status, _, body) = bank.post(&xml, "text/xml", "Authorize").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("<as:result>APPROVED</as:result>"), "{body}");
}

/// Posts every canonical request sample (and its SOAP 1.2 twin) and writes
/// the answers, a decline and the closed faults to
/// `target/rendered-requests/refsys/`, named like the samples, for
/// `scripts/check-wsdl`.
#[tokio::test]
async fn renders_answers_for_check_wsdl() {
    let out = repo().join("target/rendered-requests/refsys");
    std::fs::create_dir_all(&out).unwrap();
    let samples = repo().join("fixtures/soap/canonical");
    let ops = [
        ("authorize", "Authorize"),
        ("load", "Load"),
        ("reverse", "Reverse"),
        ("advice", "Advice"),
        ("balance-inquiry", "BalanceInquiry"),
    ];
    for (version, ns, ct) in [
        ("11", SOAP11, "text/xml; charset=utf-8"),
        ("12", SOAP12, "application/soap+xml"),
    ] {
        let bank = Bank::start("soap11").await;
        for (op, element) in ops {
            let xml = std::fs::read_to_string(samples.join(format!("{op}-request.soap11.xml")))
                .unwrap()
                .replace(SOAP11, ns);
            let (status, _, body) = bank.post(&xml, ct, element).await;
            assert_eq!(status, 200, "{op}: {body}");
            std::fs::write(out.join(format!("{op}-response.soap{version}.xml")), body).unwrap();
        }
        let poor = std::fs::read_to_string(samples.join("authorize-request.soap11.xml"))
            .unwrap()
            .replace(SOAP11, ns)
            .replace("01KANDF3XR3T5V7W9X1Z2A3B4C", "DECLINE1")
            .replace(">12550<", ">99999999<");
        let (_, _, body) = bank.post(&poor, ct, "Authorize").await;
        assert!(
            body.contains("<as:resultCode>116</as:resultCode>"),
            "{body}"
        );
        std::fs::write(
            out.join(format!("authorize-declined.soap{version}.xml")),
            body,
        )
        .unwrap();
        bank.set(Mode::Closed, None).await;
        let (status, _, body) = bank.post(&poor, ct, "Authorize").await;
        assert_eq!(status, 500);
        std::fs::write(out.join(format!("authorize-fault.soap{version}.xml")), body).unwrap();
    }
}
