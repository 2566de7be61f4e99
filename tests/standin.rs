//! Stand-in and store-and-forward end to end, on real sockets: the switch
//! simulator on the link, the hub's API and SOAP service over HTTP, the
//! canonical adapter against an account system on wiremock that counts
//! what it is told, balance files uploaded and dropped into a folder.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::canonical_hub::{
    StandInHub, TOKEN, balances_csv, fixture, hours_ago, mount_bank, start_hub, told, wait_for,
    wait_told,
};
use support::{ACTIVE_USD, ACTIVE_USD_2, cash, client, code_of, http, purchase};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 50_000, 1)).await, "00");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 30_000, 2)).await, "51");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 20_000, 3)).await, "00");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD_2, 4_000, 4)).await, "00");
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 5)).await, "00");
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD_2, 1_000, 2)).await, "00");
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
        assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, stan)).await, "00");
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 2_000, 1)).await, "91");
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
    let code = code_of(&c, &purchase(ACTIVE_USD, 15_000, 1)).await;
    assert_eq!(code, "51", "{}", hub.last_decision());
    let code = code_of(&c, &purchase(ACTIVE_USD, 9_000, 2)).await;
    assert_eq!(code, "00", "{}", hub.last_decision());

    // A good dropped file is applied and moves to processed/.
    let newer = balances_csv(&hours_ago(0), &[("A-1001", "1000.00")]);
    std::fs::write(drop.join("eod2.csv"), &newer).unwrap();
    wait_for("the dropped file to be processed", || {
        std::fs::read_dir(drop.join("processed")).is_ok_and(|d| d.count() == 1)
    })
    .await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 15_000, 3)).await, "00");

    // SubmitBalances over SOAP: a bad file is refused with its line, a good one taken.
    let as_of = jiff::Timestamp::now().to_string();
    let bad = balances_csv(&as_of, &[("A-1001", "1.00"), ("A-1002", "-x")]);
    let answer = hub.submit_balances(&as_of, &bad).await;
    assert!(answer.contains("<hub:line>4</hub:line>"), "{answer}");
    let good = balances_csv(&as_of, &[("A-1001", "1.00"), ("A-1002", "2.00")]);
    let answer = hub.submit_balances(&as_of, &good).await;
    assert!(answer.contains("<hub:records>2</hub:records>"), "{answer}");
    assert_eq!(
        code_of(&c, &purchase(ACTIVE_USD, 200, 4)).await,
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
    drop(bank); // the account system dies

    // Refused connections: stand-in answers, and after three the breaker opens.
    for stan in 2..=4 {
        assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, stan)).await, "00");
    }
    assert_eq!(hub.state(), "unreachable");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 5)).await, "00");
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
    let transitions: i64 = hub
        .hub
        .store()
        .read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM institution_events WHERE source IN ('breaker', 'probe')",
                [],
                |r| r.get(0),
            )
        })
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
                "post" | "put" => http()
                    .request(method.to_uppercase().parse().unwrap(), &url)
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 1_000, 1)).await, "00");
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
        assert_eq!(code_of(&c, &purchase(card, 1_000, stan)).await, "00");
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
    use cardhub_lab::refsys::{self, Mode, RefSys, accounts, ledger::Ledger};
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
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 10_000, 1)).await, "00");
    assert_eq!(hub.journal("stan = '000001'")[0].2, "account_system");

    // End of day: no balance file at all — stand-in works from the balance
    // the account system returned online (900.00).
    hub.status_notify("CLOSING").await;
    state.set_mode(refsys::Switches {
        mode: Mode::Closed,
        delay_ms: None,
    });
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 60_000, 2)).await, "00");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 40_000, 3)).await, "51");
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
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 30_001, 4)).await, "51");
    assert_eq!(hub.journal("stan = '000004'")[0].2, "account_system");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 30_000, 5)).await, "00");
    stop.cancel();
    hub.link.shutdown().await;
}

/// `/readyz` is 503 while the store takes no write (another process holds
/// its write lock past the readiness deadline), and 200 again once it does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_store_takes_no_write() {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let hub = start_hub(&bank.uri(), 5_000).await;
    let ready = || async {
        let r = http()
            .get(format!("{}/readyz", hub.api))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    assert_eq!(ready().await.0, 200);
    let blocker = rusqlite::Connection::open(hub.dir.path().join("hub.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let (status, body) = ready().await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.starts_with("store: no read and write within"),
        "{body}"
    );
    blocker.execute_batch("COMMIT").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while ready().await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
