//! Card orders through the JSON API and the CLI: ordered, produced into the
//! outbox, delivered, activated by the first load; an order card replaced
//! and its replacement produced and PIN reordered.

use super::*;

/// The replacement of an ordered card.
const REPLACEMENT: &str = "4761739900000013";

#[tokio::test(flavor = "multi_thread")]
async fn cards_are_ordered_produced_delivered_and_activated() {
    let dir = prepare_ledger();
    let d = dir.path();
    let mut served = serve_dir(d).await;
    let api = served.api();

    let range = json!({"prefix": "47617391", "pan_length": 16, "validity_months": 24, "institution": "city", "profile": "prepaid"});
    let (status, body) = call(
        reqwest::Method::PUT,
        format!("{api}/api/prepaid/programmes/city-social/card-range"),
        Some(range),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let foreign = json!({"prefix": "47617391", "pan_length": 16, "validity_months": 24, "institution": "bank-a", "profile": "prepaid"});
    let (status, body) = call(
        reqwest::Method::PUT,
        format!("{api}/api/prepaid/programmes/city-social/card-range"),
        Some(foreign),
    )
    .await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("institution")),
        "{body}"
    );

    // Through the API: two personal cards; a repeat is the same order.
    let order = json!({"orderer": "city", "programme": "city-social", "count": 2, "holders": ["Anna Müller", "Jan de Vries"], "reference": "ORD-1"});
    let (status, body) = post(&api, "/api/prepaid/orders", order.clone()).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, body) = post(&api, "/api/prepaid/orders", order).await;
    assert_eq!(
        (status, body["id"].as_i64(), body["repeat"].clone()),
        (200, Some(id), json!(true))
    );
    let other =
        json!({"orderer": "town", "programme": "city-social", "count": 1, "reference": "ORD-X"});
    assert_eq!(post(&api, "/api/prepaid/orders", other).await.0, 422);

    // Delivered before produced is refused; the production file goes to the outbox.
    assert_eq!(
        post(
            &api,
            &format!("/api/prepaid/orders/{id}/delivered"),
            json!({})
        )
        .await
        .0,
        409
    );
    let (status, written) = post(
        &api,
        &format!("/api/prepaid/orders/{id}/production-file"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["records"], 2);
    let file = d.join("outbox").join(written["file"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&file).unwrap().len(),
        written["bytes"].as_u64().unwrap()
    );
    let (status, summary) = post(
        &api,
        &format!("/api/prepaid/orders/{id}/delivered"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, summary["state"].clone()),
        (200, json!("delivered")),
        "{summary}"
    );

    // The cards: inactive and empty until their first load, masked in every answer.
    let (_, shown) = get(&api, &format!("/api/prepaid/orders/{id}")).await;
    let cards = shown["cards"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    assert!(
        cards
            .iter()
            .all(|c| c["status"] == "inactive"
                && c["pan_masked"].as_str().unwrap().contains("******"))
    );
    let account = cards[0]["account"].as_str().unwrap().to_string();
    let (status, loaded) = post(
        &api,
        &format!("/api/prepaid/cards/{account}/loads"),
        load("L-ORD", 5_000),
    )
    .await;
    assert_eq!(status, 200, "{loaded}");
    assert_eq!(loaded["activated"].as_array().unwrap().len(), 1);
    let (_, listed) = get(&api, "/api/prepaid/orderers/city/orders").await;
    assert_eq!(
        (listed[0]["state"].clone(), listed[0]["loaded"].clone()),
        (json!("active"), json!(1))
    );

    // PIN reorder through the CLI (the number on stdin), mailer through the API.
    let out = cli_ok(d, &["prepaid", "show-order", &id.to_string()]);
    assert!(out.contains(" active: 2 personal card(s)"), "{out}");
    let (status, body) = post(&api, "/api/prepaid/pin-reorders", json!({"pan": FIRST})).await;
    assert_eq!(status, 422, "not issued by an order: {body}");
    assert_eq!(
        post(&api, "/api/prepaid/pin-mailers", json!({})).await.0,
        204,
        "PINs go with the cards"
    );
    // The production file's second detail record: its PAN at offset 17, 19 wide.
    let production = std::fs::read_to_string(&file).unwrap();
    let second = production.lines().nth(2).unwrap();
    let pan = second[17..36].trim().to_string();
    let mut reorder = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["prepaid", "reorder-pin", "-", "--config"])
        .arg(d.join("cardhub.toml"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(reorder.stdin.take().unwrap(), "{pan}").unwrap();
    let out = reorder.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success() && text.contains("requested") && !text.contains(&pan),
        "{text}"
    );
    let (status, mailer) = post(&api, "/api/prepaid/pin-mailers", json!({})).await;
    assert_eq!(
        (status, mailer["records"].clone()),
        (200, json!(1)),
        "{mailer}"
    );
    let mailed =
        std::fs::read_to_string(d.join("outbox").join(mailer["file"].as_str().unwrap())).unwrap();
    assert!(!mailed.contains(&pan), "the PIN mailer holds no full PAN");
    assert_eq!(
        post(&api, "/api/prepaid/pin-mailers", json!({})).await.0,
        204
    );

    // The loaded card lost: its replacement is an order of its own, produced
    // from the outbox, and gets PIN reorders; the lost card does not.
    let lost = production.lines().nth(1).unwrap()[17..36]
        .trim()
        .to_string();
    let replacement = json!({"reference": "R-ORD", "lost_pan": lost, "new_pan": REPLACEMENT,
        "new_expiry": "3112", "new_account": "ORD-1-R"});
    let (status, body) = post(&api, "/api/prepaid/replacements", replacement).await;
    assert_eq!(
        (status, body["balances"]["ledger"].clone()),
        (200, json!(5_000)),
        "{body}"
    );
    let renewed = body["order"].as_i64().unwrap();
    let (_, shown) = get(&api, &format!("/api/prepaid/orders/{renewed}")).await;
    assert_eq!(shown["reference"], format!("replace:{id}/1"), "{shown}");
    let (status, written) = post(
        &api,
        &format!("/api/prepaid/orders/{renewed}/production-file"),
        json!({}),
    )
    .await;
    assert_eq!(
        (status, written["records"].clone()),
        (200, json!(1)),
        "{written}"
    );
    let produced =
        std::fs::read_to_string(d.join("outbox").join(written["file"].as_str().unwrap())).unwrap();
    let record = produced.lines().nth(1).unwrap();
    assert_eq!(&record[17..36], format!("{REPLACEMENT:<19}"));
    assert_eq!(&record[66..92], format!("{:<26}", "ANNA MUELLER"));
    let (status, body) = post(
        &api,
        "/api/prepaid/pin-reorders",
        json!({"pan": REPLACEMENT}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&api, "/api/prepaid/pin-reorders", json!({"pan": lost})).await;
    assert_eq!(status, 422, "the lost card: {body}");
    let (status, mailer) = post(&api, "/api/prepaid/pin-mailers", json!({})).await;
    assert_eq!(
        (status, mailer["records"].clone()),
        (200, json!(1)),
        "{mailer}"
    );

    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
