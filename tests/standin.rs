//! Stand-in and store-and-forward end to end, on real sockets: the switch
//! simulator on the link, the hub's API and SOAP service over HTTP, the
//! canonical adapter against an account system on wiremock that counts
//! what it is told, balance files uploaded and dropped into a folder.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use support::canonical_hub::{
    StandInHub, TOKEN, balances_csv, fixture, hours_ago, http, start_hub, wait_for, write_config,
};
use support::{ACTIVE_USD, ACTIVE_USD_2, WAIT, cash, client, purchase};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Mounts the canonical account system's answers: every authorization
/// approved, advices and reversals acknowledged, balance inquiries answered.
async fn mount_bank(server: &MockServer, authorize_delay: Duration) {
    let answers = [
        ("<as:Authorize ", "authorize-response.soap11.xml"),
        ("<as:Advice ", "advice-response.soap11.xml"),
        ("<as:Reverse ", "reverse-response.soap11.xml"),
        ("<as:BalanceInquiry ", "balance-inquiry-response.soap11.xml"),
    ];
    for (element, file) in answers {
        let mut answer = ResponseTemplate::new(200)
            .insert_header("content-type", "text/xml; charset=utf-8")
            .set_body_string(fixture(file));
        if element == "<as:Authorize " {
            answer = answer.set_delay(authorize_delay);
        }
        Mock::given(method("POST"))
            .and(body_string_contains(element))
            .respond_with(answer)
            .mount(server)
            .await;
    }
}

/// The transaction ids (and original ids) the account system was sent for
/// one operation, in arrival order.
async fn told(server: &MockServer, element: &str) -> Vec<(String, Option<String>)> {
    let between = |body: &str, tag: &str| {
        let open = format!("<as:{tag}>");
        let start = body.find(&open)? + open.len();
        let end = body[start..].find("</as:")? + start;
        Some(body[start..end].to_string())
    };
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter(|body| body.contains(element))
        .map(|body| {
            (
                between(&body, "transactionId").unwrap_or_default(),
                between(&body, "originalTransactionId"),
            )
        })
        .collect()
}

/// What the account system was told for one operation, once it has been
/// told at least `n` times (or after 10 s, for the assertion to show).
async fn wait_told(bank: &MockServer, element: &str, n: usize) -> Vec<(String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = told(bank, element).await;
        if seen.len() >= n || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The SAF items once none is pending — each delivered or dead, nothing
/// left for replay to send (or after 20 s, for the assertion to show).
async fn settled_saf(hub: &StandInHub) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let listed = hub.get("/api/saf").await;
        let items = listed["items"].as_array().unwrap().clone();
        let settled = items.iter().all(|i| i["state"] != "pending");
        if settled || tokio::time::Instant::now() > deadline {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn code(c: &cardhub::sim::SimClient, message: &cardhub::iso8583::Message) -> String {
    let (answer, _) = c.request(message, WAIT).await.unwrap();
    answer.response_code().unwrap().as_str().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_stands_in_within_the_shadow_balance_and_replays_in_order_once() {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    let (status, applied) = hub
        .upload(&balances_csv(
            &hours_ago(1),
            &[("A-1001", "700.00"), ("A-1002", "50.00")],
        ))
        .await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["rows"], 2);

    let answer = hub.status_notify("CLOSING").await;
    assert!(answer.contains("CLOSING"), "{answer}");
    assert_eq!(hub.state(), "closing");

    let c = client(&hub.switch).await;
    // ATM 500 then POS 300 against 700: the second is declined 51, not 91.
    assert_eq!(code(&c, &cash(ACTIVE_USD, 50_000, 1)).await, "00");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 30_000, 2)).await, "51");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 20_000, 3)).await, "00");
    assert_eq!(code(&c, &purchase(ACTIVE_USD_2, 4_000, 4)).await, "00");
    assert!(
        told(&bank, "<as:Authorize ").await.is_empty(),
        "nothing online while closing"
    );
    assert!(
        told(&bank, "<as:Advice ").await.is_empty(),
        "no replay while closing"
    );

    let stood_in = hub.journal("decided_by = 'stand_in' AND response_code = '00'");
    assert_eq!(stood_in.len(), 3);
    let declined = hub.journal("decided_by = 'stand_in' AND response_code = '51'");
    assert_eq!(declined.len(), 1);

    hub.status_notify("OPEN").await;
    let expected: Vec<String> = stood_in.iter().map(|r| r.0.clone()).collect();
    let delivered = wait_told(&bank, "<as:Advice ", expected.len()).await;
    // Replay may run accounts side by side, but each account in order.
    let ids: Vec<String> = delivered.iter().map(|d| d.0.clone()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "exactly the stand-in approvals");
    let a1001: Vec<&String> = ids.iter().filter(|id| **id != expected[2]).collect();
    assert_eq!(
        a1001,
        vec![&expected[0], &expected[1]],
        "in order per account"
    );
    // Once every item is delivered replay has nothing left to send: what
    // the account system was told by then is all it is told.
    let items = settled_saf(&hub).await;
    assert!(items.iter().all(|i| i["state"] == "delivered"), "{items:?}");
    assert_eq!(told(&bank, "<as:Advice ").await.len(), 3, "each once");
    // Open again: online.
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, 5)).await, "00");
    assert_eq!(told(&bank, "<as:Authorize ").await.len(), 1);
    hub.link.shutdown().await;
}

/// An advice is delivered only when the answer maps to success: 909 (96)
/// is retried until 000 comes; 913 (94, "duplicate": nothing booked) makes
/// the item a dead letter at once, its code shown by the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_successful_answer_delivers_an_advice() {
    let bank = MockServer::start().await;
    let advice = |code: &str| {
        ResponseTemplate::new(200)
            .insert_header("content-type", "text/xml; charset=utf-8")
            .set_body_string(fixture("advice-response.soap11.xml").replace(
                "<as:resultCode>000</as:resultCode>",
                &format!("<as:resultCode>{code}</as:resultCode>"),
            ))
    };
    let on = |account: &str| body_string_contains(format!("<as:account>{account}</as:account>"));
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .and(on("A-1001"))
        .respond_with(advice("909"))
        .up_to_n_times(2)
        .mount(&bank)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .and(on("A-1002"))
        .respond_with(advice("913"))
        .mount(&bank)
        .await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    hub.upload(&balances_csv(
        &hours_ago(1),
        &[("A-1001", "700.00"), ("A-1002", "50.00")],
    ))
    .await;
    hub.status_notify("CLOSING").await;
    let c = client(&hub.switch).await;
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    assert_eq!(code(&c, &purchase(ACTIVE_USD_2, 1_000, 2)).await, "00");
    hub.status_notify("OPEN").await;

    let items = settled_saf(&hub).await;
    let of = |account: &str| {
        items
            .iter()
            .find(|i| i["account"] == account)
            .unwrap_or_else(|| panic!("{account}: {items:?}"))
            .clone()
    };
    let retried = of("A-1001");
    assert_eq!(retried["state"], "delivered", "{retried}");
    assert_eq!(retried["attempts"], 3, "{retried}");
    assert_eq!(retried["last_code"], "00 (000)", "{retried}");
    let dead = of("A-1002");
    assert_eq!(dead["state"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 1, "{dead}");
    assert_eq!(dead["last_code"], "94 (913)", "{dead}");
    assert!(
        dead["last_error"].as_str().unwrap().contains("94 (913)"),
        "{dead}"
    );
    assert_eq!(told(&bank, "<as:Advice ").await.len(), 4, "3 + 1 attempts");
    hub.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_resumes_after_the_account_system_fails_in_the_middle() {
    let bank = MockServer::start().await;
    // The second advice fails twice before it is taken.
    let advices_seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = advices_seen.clone();
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .respond_with(move |_: &wiremock::Request| {
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if (1..3).contains(&n) {
                ResponseTemplate::new(500).set_body_string("temporarily broken")
            } else {
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/xml; charset=utf-8")
                    .set_body_string(fixture("advice-response.soap11.xml"))
            }
        })
        .with_priority(1)
        .mount(&bank)
        .await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    hub.upload(&balances_csv(&hours_ago(1), &[("A-1001", "5000.00")]))
        .await;
    hub.status_notify("CLOSED").await;
    let c = client(&hub.switch).await;
    for stan in 1..=4 {
        assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, stan)).await, "00");
    }
    let expected: Vec<String> = hub
        .journal("decided_by = 'stand_in'")
        .into_iter()
        .map(|r| r.0)
        .collect();
    hub.status_notify("OPEN").await;
    wait_for("replay to finish", || {
        advices_seen.load(std::sync::atomic::Ordering::SeqCst) >= 6
    })
    .await;
    let items = settled_saf(&hub).await;
    assert!(items.iter().all(|i| i["state"] == "delivered"), "{items:?}");
    let delivered = told(&bank, "<as:Advice ").await;
    let ids: Vec<&str> = delivered.iter().map(|d| d.0.as_str()).collect();
    // 1st delivered; 2nd tried 3 times (2 failures); then 3rd and 4th: in order.
    let e: Vec<&str> = expected.iter().map(String::as_str).collect();
    assert_eq!(ids, vec![e[0], e[1], e[1], e[1], e[2], e[3]]);
    hub.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_answer_is_reconciled_after_stand_in() {
    let bank = MockServer::start().await;
    // Approves — but only after the switch's deadline.
    mount_bank(&bank, Duration::from_millis(1_500)).await;
    let hub = start_hub(&bank.uri(), 1_000).await;
    let c = client(&hub.switch).await;
    // No balance file: stand-in cannot approve and declines 91 in time.
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 2_000, 1)).await, "91");
    let original = hub.journal("stan = '000001'")[0].clone();
    assert_eq!(original.2, "stand_in");
    // The late approval is reversed, after the advice of the decline.
    let reversals = wait_told(&bank, "<as:Reverse ", 1).await;
    assert_eq!(reversals.len(), 1, "one reversal of the late approval");
    assert_eq!(reversals[0].1.as_deref(), Some(original.0.as_str()));
    let advices = told(&bank, "<as:Advice ").await;
    assert_eq!(advices.len(), 1);
    // The final decision is told by an advice of its own that names the
    // Authorize (an account system drops a repeated id as a duplicate).
    assert_ne!(advices[0].0, original.0, "the advice has an id of its own");
    assert_eq!(advices[0].1.as_deref(), Some(original.0.as_str()));
    let authorizations = told(&bank, "<as:Authorize ").await;
    assert_eq!(authorizations, [(original.0.clone(), None)]);
    let order: Vec<String> = bank
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .filter_map(|b| {
            ["<as:Advice ", "<as:Reverse "]
                .into_iter()
                .find(|e| b.contains(e))
                .map(str::to_string)
        })
        .collect();
    assert_eq!(order, vec!["<as:Advice ", "<as:Reverse "]);
    hub.link.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_balance_file_is_rejected_whole_and_the_old_balances_stay() {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    let good = balances_csv(&hours_ago(2), &[("A-1001", "100.00"), ("A-1002", "20.00")]);
    assert_eq!(hub.upload(&good).await.0, 200);
    let (status, again) = hub.upload(&good).await;
    assert_eq!(
        (status, again["unchanged"].as_bool()),
        (200, Some(true)),
        "same file: no-op"
    );

    let bad = balances_csv(&hours_ago(1), &[("A-1001", "900.00"), ("A-1002", "12.x0")]);
    let (status, refused) = hub.upload(&bad).await;
    assert_eq!(status, 422, "{refused}");
    assert_eq!(refused["problems"][0]["line"], 4, "{refused}");
    assert_eq!(refused["problems"][0]["column"], "available", "{refused}");

    let older = balances_csv(&hours_ago(3), &[("A-1001", "900.00")]);
    assert_eq!(
        hub.upload(&older).await.0,
        409,
        "older than the current file"
    );

    // The drop folder: a bad file moves to rejected/ with its report.
    let drop = hub.dir.path().join("drop");
    std::fs::write(drop.join("eod.csv"), &bad).unwrap();
    wait_for("the dropped file to be rejected", || {
        std::fs::read_dir(drop.join("rejected")).is_ok_and(|d| d.count() == 2)
    })
    .await;
    let report = std::fs::read_dir(drop.join("rejected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".errors.txt"))
        .unwrap();
    let report = std::fs::read_to_string(report).unwrap();
    assert!(report.contains("line 4"), "{report}");

    // Still the first file's 100.00: 150.00 does not fit, 90.00 does.
    hub.status_notify("CLOSED").await;
    let c = client(&hub.switch).await;
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 15_000, 1)).await, "51");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 9_000, 2)).await, "00");

    // A good dropped file is applied and moves to processed/.
    let newer = balances_csv(&hours_ago(0), &[("A-1001", "1000.00")]);
    std::fs::write(drop.join("eod2.csv"), &newer).unwrap();
    wait_for("the dropped file to be processed", || {
        std::fs::read_dir(drop.join("processed")).is_ok_and(|d| d.count() == 1)
    })
    .await;
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 15_000, 3)).await, "00");

    // SubmitBalances over SOAP: a bad file is refused with its line, a good one taken.
    let as_of = jiff::Timestamp::now().to_string();
    let bad = balances_csv(&as_of, &[("A-1001", "1.00"), ("A-1002", "-x")]);
    let answer = hub.submit_balances(&as_of, &bad).await;
    assert!(answer.contains("<hub:line>4</hub:line>"), "{answer}");
    let good = balances_csv(&as_of, &[("A-1001", "1.00"), ("A-1002", "2.00")]);
    let answer = hub.submit_balances(&as_of, &good).await;
    assert!(answer.contains("<hub:records>2</hub:records>"), "{answer}");
    assert_eq!(
        code(&c, &purchase(ACTIVE_USD, 200, 4)).await,
        "51",
        "1.00 left now"
    );
    hub.link.shutdown().await;
}

impl StandInHub {
    /// SubmitBalances (SOAP 1.1) of a CSV file; the answer's body.
    async fn submit_balances(&self, as_of: &str, csv: &str) -> String {
        use base64::Engine;
        let content = base64::engine::general_purpose::STANDARD.encode(csv);
        let body = fixture("submit-balances-request.soap11.xml")
            .replace("2025-11-22T05:30:00Z", as_of)
            .replace(
                "YWNjb3VudCxhdmFpbGFibGUsbGVkZ2VyLGN1cnJlbmN5CkEtMTAwMSwxMDAwMDAsMTAwMDAwLDg0MApBLTEwMDIsOTk1MCw5OTUwLDg0MAo=",
                &content,
            );
        http()
            .post(format!("{}/soap/hub", self.api))
            .bearer_auth(TOKEN)
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"urn:cardhub:hub:v1#SubmitBalances\"")
            .body(body)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_when_the_account_system_dies_and_the_probe_reopens_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bank = MockServer::builder().listener(listener).start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&format!("http://{addr}"), 5_000).await;
    hub.upload(&balances_csv(&hours_ago(1), &[("A-1001", "500.00")]))
        .await;
    let c = client(&hub.switch).await;
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    drop(bank); // the account system dies

    // Refused connections: stand-in answers, and after three the breaker opens.
    for stan in 2..=4 {
        assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, stan)).await, "00");
    }
    assert_eq!(hub.state(), "unreachable");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, 5)).await, "00");
    let stood_in: Vec<String> = hub
        .journal("decided_by = 'stand_in'")
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(stood_in.len(), 4);

    // Back on the same address: the probe reopens, replay follows.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let bank = MockServer::builder().listener(listener).start().await;
    mount_bank(&bank, Duration::ZERO).await;
    wait_for("the probe to reopen bank-a", || hub.state() == "open").await;
    let delivered = wait_told(&bank, "<as:Advice ", 4).await;
    assert_eq!(delivered.len(), 4, "{delivered:?}");
    // The three asked online (refused) are told by advices of their own
    // naming them; the fourth, never asked (breaker open), under its own id.
    for (told, stood_in) in delivered.iter().zip(&stood_in).take(3) {
        assert_ne!(&told.0, stood_in);
        assert_eq!(told.1.as_ref(), Some(stood_in));
    }
    assert_eq!(delivered[3], (stood_in[3].clone(), None));
    let transitions: i64 = rusqlite::Connection::open(hub.dir.path().join("hub.db"))
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM institution_events WHERE source IN ('breaker', 'probe')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        transitions, 2,
        "unreachable by the breaker, open by the probe"
    );
    hub.link.shutdown().await;
}

#[tokio::test]
async fn the_api_requires_its_token_and_lists_dead_letters() {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    let response = http()
        .get(format!("{}/api/institutions", hub.api))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let listed = hub.get("/api/institutions").await;
    assert_eq!(listed["institutions"][0]["id"], "bank-a");
    assert_eq!(listed["institutions"][0]["state"], "open");
    let refused = http()
        .post(format!("{}/api/institutions/bank-a/state", hub.api))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"state": "unreachable"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        422,
        "unreachable is detected, not signalled"
    );

    // The OpenAPI document needs no token, and every route in it is served.
    let doc = http()
        .get(format!("{}/openapi.json", hub.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 10, "{doc}");
    for (path, methods) in paths {
        let url = format!(
            "{}{}",
            hub.api,
            path.replace("{id}", "bank-a").replace("{seq}", "999999")
        );
        for method in methods.as_object().unwrap().keys() {
            let request = match method.as_str() {
                "get" => http().get(&url),
                "post" => http()
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
                other => panic!("{path}: method {other} not tested"),
            };
            let response = request.bearer_auth(TOKEN).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            assert!(
                !(status == 404 && body.is_empty()),
                "{method} {path}: no such route"
            );
        }
    }

    // Health, readiness and metrics need no token; the metrics parse.
    let c = client(&hub.switch).await;
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    for path in ["/healthz", "/readyz"] {
        let r = http()
            .get(format!("{}{path}", hub.api))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let text = http()
        .get(format!("{}/metrics", hub.api))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples: Vec<(&str, f64)> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("series and value");
            (series, value.parse().expect("a number"))
        })
        .collect();
    let value = |series: &str| samples.iter().find(|s| s.0 == series).map(|s| s.1);
    assert_eq!(
        value(
            "cardhub_requests_total{mti=\"0100\",code=\"00\",decided_by=\"account_system\",institution=\"bank-a\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value("cardhub_institution_state{institution=\"bank-a\",state=\"open\"}"),
        Some(1.0)
    );
    assert_eq!(
        value("cardhub_saf_pending{institution=\"bank-a\"}"),
        Some(0.0)
    );
    assert_eq!(value("cardhub_saf_dead{institution=\"bank-a\"}"), Some(0.0));
    assert_eq!(
        value("cardhub_hub_seconds_count{mti=\"0100\"}"),
        Some(1.0),
        "{text}"
    );
    assert!(
        samples.iter().any(|s| s.0.starts_with(
            "cardhub_adapter_call_seconds_count{institution=\"bank-a\",outcome=\"answered\"}"
        ) && s.1 == 1.0),
        "{text}"
    );
    hub.link.shutdown().await;
}

/// `cardhub serve` on a prepared directory, its log in `hub.log`, up and
/// answering; with the bound switch address and the API's URL (the config
/// binds port 0 for both, so a restart moves them). The CLI's config,
/// `cli.toml`, is the hub's with the API's bound address, for the commands
/// that call the API.
async fn spawn_hub(dir: &Path) -> (std::process::Child, String, String) {
    let config = dir.join("cardhub.toml");
    let served =
        support::served::serve(&config, &[], &dir.join("hub.log"), &["base24"], true).await;
    let (switch, api) = (served.switch("base24"), served.api());
    let text = std::fs::read_to_string(&config).unwrap();
    let listen = "listen = \"127.0.0.1:0\"";
    assert_eq!(text.matches(listen).count(), 1, "{text}");
    let bound = api.strip_prefix("http://").unwrap();
    let cli = text.replace(listen, &format!("listen = \"{bound}\""));
    std::fs::write(dir.join("cli.toml"), cli).unwrap();
    (served.child, switch, api)
}

/// Runs `cardhub ARGS --config DIR/cli.toml` (see [`spawn_hub`]); panics
/// with its output when it fails.
fn cli(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .arg("--config")
        .arg(dir.join("cli.toml"))
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{args:?}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

async fn http_get(api: &str, path: &str) -> String {
    http()
        .get(format!("{api}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn api_post(api: &str, path: &str, body: reqwest::Body) -> u16 {
    http()
        .post(format!("{api}{path}"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn db_rows(dir: &Path, sql: &str) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(dir.join("hub.db")).unwrap();
    let mut stmt = db.prepare(sql).unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// `kill -9` while an Authorize is under way at a slow account system that
/// applies it: at restart the call is journaled (96, outcome unknown) and a
/// Reverse queued for it, delivered once the call cannot still be under
/// way; the account system undoes the hold, and the switch's 0420 finds the
/// original instead of an orphan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cut_by_kill_9_is_reversed_after_restart() {
    use cardhub::refsys::{self, Mode, RefSys, Switches, accounts, ledger::Ledger};
    let mut ledger = Ledger::open(None).unwrap();
    let opening = accounts::parse(b"account,available,currency\nA-1001,1000.00,USD\n").unwrap();
    ledger.open_accounts(&opening).unwrap();
    // Applies at once, answers 4 s later: after the hub is killed.
    let vendor = RefSys::new(ledger, Mode::Slow, 4_000);
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = refsys::spawn("127.0.0.1:0".parse().unwrap(), vendor.clone(), stop.clone())
        .await
        .unwrap();
    let (dir, _) = support::prepare("").await;
    let any = "127.0.0.1:0";
    write_config(dir.path(), &format!("http://{addr}"), 5_000, any, any);
    let (mut child, switch, _) = spawn_hub(dir.path()).await;
    let c = client(&switch).await;
    let pending =
        tokio::spawn(async move { c.request(&purchase(ACTIVE_USD, 10_000, 1), WAIT).await });
    wait_for("the Authorize to be applied", || {
        vendor.stats().requests.get("authorize") == Some(&1)
    })
    .await;
    child.kill().unwrap(); // SIGKILL, mid-call
    child.wait().unwrap();
    assert!(
        pending.await.unwrap().is_err(),
        "no answer left the killed hub"
    );
    assert!(
        db_rows(dir.path(), "SELECT txn_id, stan FROM journal").is_empty(),
        "nothing decided before the kill"
    );
    vendor.set_mode(Switches {
        mode: Mode::Open,
        delay_ms: Some(0),
    });

    let (mut child, switch, api) = spawn_hub(dir.path()).await;
    let original = db_rows(
        dir.path(),
        "SELECT printf('%016X', txn_id), response_code || ' ' || reason FROM journal WHERE stan = '000001'",
    );
    assert_eq!(original.len(), 1, "{original:?}");
    assert!(original[0].1.starts_with("96 ") && original[0].1.contains("outcome unknown"));
    // The switch's reversal advice finds the original (declined: nothing more to undo).
    let c = client(&switch).await;
    let mut reversal = support::request("0420", "000000", ACTIVE_USD, 10_000, 2);
    reversal.set(90, "010000000111220302010000476173900000000000");
    assert_eq!(code(&c, &reversal).await, "00");
    let rows = db_rows(
        dir.path(),
        "SELECT entry, printf('%016X', original_txn_id) FROM journal WHERE stan = '000002'",
    );
    assert_eq!(rows, [("request".to_string(), original[0].0.clone())]);
    // The Reverse, under an id of its own, waits out the late-answer window.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let item = loop {
        let listed: serde_json::Value =
            serde_json::from_str(&http_get(&api, "/api/saf?state=delivered").await).unwrap();
        if let Some(item) = listed["items"].as_array().and_then(|i| i.first()).cloned() {
            break item;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reversal delivered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(item["operation"], "reverse", "{item}");
    assert_eq!(item["txn_id"], original[0].0.as_str(), "{item}");
    assert_ne!(item["request_id"], item["txn_id"], "{item}");
    // 400: the account system found the hold and released it.
    assert_eq!(item["last_code"], "00 (400)", "{item}");
    assert_eq!(vendor.stats().requests.get("reverse"), Some(&1));
    child.kill().unwrap();
    child.wait().unwrap();
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_lost_or_told_twice_across_kill_9() {
    let bank = MockServer::start().await;
    // Slow advices: replay is still running when the hub is killed.
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "text/xml; charset=utf-8")
                .set_body_string(fixture("advice-response.soap11.xml"))
                .set_delay(Duration::from_millis(20)),
        )
        .with_priority(1)
        .mount(&bank)
        .await;
    mount_bank(&bank, Duration::ZERO).await;
    let (dir, _) = support::prepare("").await;
    let any = "127.0.0.1:0";
    write_config(dir.path(), &bank.uri(), 5_000, any, any);
    let (mut child, switch, api) = spawn_hub(dir.path()).await;
    // Through the CLI: the balance file uploaded, the state set in the store.
    let csv = balances_csv(
        &hours_ago(1),
        &[("A-1001", "1000000.00"), ("A-1002", "1000000.00")],
    );
    std::fs::write(dir.path().join("balances.csv"), csv).unwrap();
    cli(
        dir.path(),
        &["balances", "upload", "bank-a", "balances.csv"],
    );
    cli(
        dir.path(),
        &[
            "institutions",
            "set-state",
            "bank-a",
            "closed",
            "--reason",
            "end of day",
        ],
    );
    let mut waited = 0;
    while !http_get(&api, "/api/institutions")
        .await
        .contains("\"state\":\"closed\"")
    {
        assert!(waited < 200, "the hub did not pick up the CLI's state");
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }

    // Stand-in traffic, and kill -9 in the middle of it.
    let c = Arc::new(client(&switch).await);
    let approved = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let mut workers = Vec::new();
    for w in 0..8u32 {
        let (c, approved) = (c.clone(), approved.clone());
        workers.push(tokio::spawn(async move {
            let card = if w % 2 == 0 { ACTIVE_USD } else { ACTIVE_USD_2 };
            for i in 0.. {
                let stan = 1 + w * 50_000 + i;
                let Ok((answer, _)) = c.request(&purchase(card, 100, stan), WAIT).await else {
                    break;
                };
                if answer.response_code().is_ok_and(|code| code.is_approval()) {
                    approved.lock().unwrap().insert(format!("{stan:06}"));
                }
            }
        }));
    }
    // Killed once the switch has seen approvals enough, under full load.
    support::wait_until("50 approvals", || approved.lock().unwrap().len() >= 50).await;
    child.kill().unwrap();
    child.wait().unwrap();
    for w in workers {
        w.await.unwrap();
    }
    let approved = approved.lock().unwrap().clone();
    assert!(
        approved.len() > 20,
        "only {} approvals before the kill",
        approved.len()
    );

    // After restart: every approval the switch saw is journaled and queued.
    let (mut child, _, api) = spawn_hub(dir.path()).await;
    let stood_in = db_rows(
        dir.path(),
        "SELECT stan, printf('%016X', txn_id) FROM journal WHERE decided_by = 'stand_in' \
         AND response_code = '00' AND entry = 'request' ORDER BY txn_id",
    );
    let journaled: std::collections::HashSet<String> =
        stood_in.iter().map(|r| r.0.clone()).collect();
    assert!(
        approved.is_subset(&journaled),
        "an approval the switch saw is not journaled"
    );
    let mut queued: Vec<String> = db_rows(
        dir.path(),
        "SELECT printf('%016X', txn_id), state FROM saf_queue",
    )
    .into_iter()
    .map(|q| q.0)
    .collect();
    queued.sort();
    let ids: Vec<String> = stood_in.iter().map(|r| r.1.clone()).collect();
    assert_eq!(queued, ids, "each approval queued once");

    // Reopen, and kill -9 again while replay runs.
    let open = r#"{"state": "open"}"#;
    assert_eq!(
        api_post(&api, "/api/institutions/bank-a/state", open.into()).await,
        200
    );
    let mut waited = 0;
    while told(&bank, "<as:Advice ").await.len() < ids.len() / 4 && waited < 500 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partly = told(&bank, "<as:Advice ").await.len();
    assert!(
        partly < ids.len(),
        "replay finished before the kill; nothing was tested"
    );

    let (mut child, _, _) = spawn_hub(dir.path()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !db_rows(
        dir.path(),
        "SELECT CAST(seq AS TEXT), state FROM saf_queue WHERE state != 'delivered'",
    )
    .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "replay did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shown = cli(dir.path(), &["txn", "show", &ids[0]]);
    assert!(
        shown.contains("\"decided_by\": \"stand_in\"")
            && shown.contains("\"state\": \"delivered\""),
        "{shown}"
    );
    assert!(
        !shown.contains("4761739001010010"),
        "card number in clear: {shown}"
    );
    let status = cli(dir.path(), &["status"]);
    assert!(
        status.contains("bank-a") && status.contains("stand_in"),
        "{status}"
    );
    let listed = cli(
        dir.path(),
        &["saf", "list", "--state", "delivered", "--limit", "5"],
    );
    assert_eq!(listed.lines().count(), 6, "header and five items: {listed}");
    child.kill().unwrap();
    child.wait().unwrap();

    // The account system was told every stand-in approval; a repeat is only
    // an advice that was in flight at the kill (it drops it by its id).
    let advised: Vec<String> = told(&bank, "<as:Advice ")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    let mut distinct = advised.clone();
    distinct.sort();
    distinct.dedup();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        distinct, expected,
        "every stand-in approval told, nothing else"
    );
    let repeats = advised.len() - distinct.len();
    assert!(
        repeats <= 2,
        "{repeats} repeats: more than the two in flight at the kill"
    );
    // Per account, first deliveries in the order the decisions were made durable.
    for account in ["A-1001", "A-1002"] {
        let mine: Vec<String> = db_rows(
            dir.path(),
            &format!(
                "SELECT printf('%016X', txn_id), account FROM saf_queue \
                 WHERE account = '{account}' ORDER BY seq"
            ),
        )
        .into_iter()
        .map(|r| r.0)
        .collect();
        let mut firsts: Vec<&String> = Vec::new();
        for id in advised.iter().filter(|id| mine.contains(id)) {
            if !firsts.contains(&id) {
                firsts.push(id);
            }
        }
        assert_eq!(
            firsts,
            mine.iter().collect::<Vec<_>>(),
            "{account} in order"
        );
    }
}

impl StandInHub {
    async fn get(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&http_get(&self.api, path).await).unwrap()
    }

    async fn post(&self, path: &str) -> u16 {
        api_post(&self.api, path, reqwest::Body::from("")).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_item_holds_back_only_its_account_and_a_pause_really_stops() {
    let bank = MockServer::start().await;
    // Every advice for A-1001 fails; A-1002's are taken.
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .and(body_string_contains("<as:account>A-1001</as:account>"))
        .respond_with(ResponseTemplate::new(500).set_body_string("account locked"))
        .with_priority(2)
        .named("poison")
        .mount(&bank)
        .await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    hub.upload(&balances_csv(
        &hours_ago(1),
        &[("A-1001", "500.00"), ("A-1002", "500.00")],
    ))
    .await;
    hub.status_notify("CLOSED").await;
    let c = client(&hub.switch).await;
    for (stan, card) in [
        (1, ACTIVE_USD),
        (2, ACTIVE_USD_2),
        (3, ACTIVE_USD),
        (4, ACTIVE_USD_2),
    ] {
        assert_eq!(code(&c, &purchase(card, 1_000, stan)).await, "00");
    }
    hub.status_notify("OPEN").await;

    // A-1002 flows; A-1001's first item dies after 3 attempts, its second waits.
    let mut dead = serde_json::Value::Null;
    for _ in 0..500 {
        dead = hub.get("/api/saf?state=dead").await;
        if dead["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dead_item = &dead["items"][0];
    assert_eq!(dead_item["account"], "A-1001", "{dead}");
    assert_eq!(dead_item["attempts"], 3, "{dead}");
    assert_eq!(dead_item["last_error"], "HTTP status 500", "{dead}");
    let a1002: Vec<String> = told(&bank, "<as:Advice ")
        .await
        .into_iter()
        .map(|a| a.0)
        .collect();
    let journal = hub.journal("decided_by = 'stand_in'");
    assert!(
        a1002.contains(&journal[1].0) && a1002.contains(&journal[3].0),
        "A-1002 flows"
    );
    let pending = hub.get("/api/saf?state=pending").await;
    assert_eq!(pending["items"].as_array().unwrap().len(), 1, "{pending}");
    assert_eq!(
        pending["items"][0]["waits_behind"], dead_item["seq"],
        "{pending}"
    );
    assert_eq!(pending["items"][0]["txn_id"], journal[2].0.as_str());

    // Paused, the fixed account system gets nothing, even after a re-queue.
    assert_eq!(hub.post("/api/institutions/bank-a/saf/pause").await, 200);
    bank.reset().await;
    mount_bank(&bank, Duration::ZERO).await;
    let seq = dead_item["seq"].as_i64().unwrap();
    assert_eq!(hub.post(&format!("/api/saf/{seq}/requeue")).await, 200);
    assert_eq!(
        hub.post(&format!("/api/saf/{seq}/requeue")).await,
        404,
        "no longer dead"
    );
    // A check that something does not happen needs a window: nothing marks
    // "replay looked and held back" (the item stays pending either way).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        told(&bank, "<as:Advice ").await.is_empty(),
        "paused replay sent something"
    );

    assert_eq!(hub.post("/api/institutions/bank-a/saf/resume").await, 200);
    let delivered = wait_told(&bank, "<as:Advice ", 2).await;
    let ids: Vec<String> = delivered.into_iter().map(|a| a.0).collect();
    assert_eq!(
        ids,
        vec![journal[0].0.clone(), journal[2].0.clone()],
        "A-1001 in order"
    );
    hub.link.shutdown().await;
}

/// End of day against the reference account system (a real SOAP server with
/// its own ledger) instead of wiremock: online, then stand-in from the
/// balance it last returned, then replay — and its ledger agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_day_against_the_reference_account_system() {
    use cardhub::refsys::{self, Mode, RefSys, accounts, ledger::Ledger};
    let mut ledger = Ledger::open(None).unwrap();
    let opening = accounts::parse(b"account,available,currency\nA-1001,1000.00,USD\n").unwrap();
    ledger.open_accounts(&opening).unwrap();
    let state = RefSys::new(ledger, Mode::Open, 0);
    let stop = tokio_util::sync::CancellationToken::new();
    let addr = refsys::spawn("127.0.0.1:0".parse().unwrap(), state.clone(), stop.clone())
        .await
        .unwrap();
    let hub = start_hub(&format!("http://{addr}"), 5_000).await;
    let c = client(&hub.switch).await;
    // Online: the account system approves and returns the balance after.
    assert_eq!(code(&c, &cash(ACTIVE_USD, 10_000, 1)).await, "00");
    assert_eq!(hub.journal("stan = '000001'")[0].2, "account_system");

    // End of day: no balance file at all — stand-in works from the balance
    // the account system returned online (900.00).
    hub.status_notify("CLOSING").await;
    state.set_mode(refsys::Switches {
        mode: Mode::Closed,
        delay_ms: None,
    });
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 60_000, 2)).await, "00");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 40_000, 3)).await, "51");
    assert_eq!(
        state.stats().requests.get("authorize"),
        Some(&1),
        "nothing online while closing"
    );

    // Reopen: the stand-in approval is replayed once, and applied.
    state.set_mode(refsys::Switches {
        mode: Mode::Open,
        delay_ms: None,
    });
    hub.status_notify("OPEN").await;
    wait_for("the advice to be delivered", || {
        state.stats().requests.get("advice").copied() == Some(1)
    })
    .await;
    // The whole story of the stand-in approval: hold, and its advice
    // delivered (recorded by the hub once the answer is in).
    let stood_in = hub.journal("stan = '000002'")[0].0.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let story = loop {
        let story = hub.get(&format!("/api/transactions/{stood_in}")).await;
        if story["deliveries"][0]["state"] == "delivered" || tokio::time::Instant::now() > deadline
        {
            break story;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(story["transaction"]["decided_by"], "stand_in", "{story}");
    assert_eq!(story["transaction"]["card"], "476173******0010", "{story}");
    assert_eq!(story["movement"]["kind"], "hold", "{story}");
    assert_eq!(story["movement"]["approved_by"], "stand_in", "{story}");
    assert_eq!(story["deliveries"][0]["operation"], "advice", "{story}");
    assert_eq!(story["deliveries"][0]["state"], "delivered", "{story}");
    // The account system's ledger now has 1000 - 100 - 600 = 300.00 left:
    // 300.01 is declined online, 300.00 approved.
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 30_001, 4)).await, "51");
    assert_eq!(hub.journal("stan = '000004'")[0].2, "account_system");
    assert_eq!(code(&c, &purchase(ACTIVE_USD, 30_000, 5)).await, "00");
    stop.cancel();
    hub.link.shutdown().await;
}
