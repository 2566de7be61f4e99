//! The prepaid ledger through its interfaces: the CLI (`cardhub prepaid …`)
//! sets up orderers, programmes and card accounts on the store, a real
//! `cardhub serve` answers the JSON API (`/api/prepaid/…`) and the switch,
//! and the CLI reads the same ledger while the hub runs.

#[path = "../support/mod.rs"]
mod support;

mod orders;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::canonical_hub::TOKEN;
use support::served::serve_dir;
use support::*;

/// Inactive prepaid cards of `city` (USD) and one of `town`.
const FIRST: &str = "4761739002010019";
const SECOND: &str = "4761739002010027";
const TOWN: &str = "4761739002010035";
/// The replacement of `FIRST`.
const NEW: &str = "4761739002010043";
/// A card number nothing registers.
const UNUSED: &str = "4761739002010050";

fn extra() -> String {
    format!(
        r#"
[api]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[prepaid]
default_max_balance = 50000
outbox = "outbox"

[[institution]]
id = "city"
name = "City prepaid"
mode = "prepaid"
"#
    )
}

/// `cardhub ARGS… --config DIR/cardhub.toml`.
fn cli(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .arg("--config")
        .arg(dir.join("cardhub.toml"))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(FIRST)
            && !String::from_utf8_lossy(&out.stderr).contains(FIRST),
        "a full PAN was printed"
    );
    out
}

fn cli_ok(dir: &Path, args: &[&str]) -> String {
    let out = cli(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The config, the cards imported, and through the CLI: orderers `city`
/// (programme max 300.00, cards P-1, P-2) and `town` (card T-1).
fn prepare_ledger() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("cardhub.toml"), config_text(&extra())).unwrap();
    std::fs::write(
        d.join("cards.csv"),
        format!(
            "pan,expiry,status,account,institution,currency,profile,product\n\
             {FIRST},3012,inactive,P-1,city,USD,prepaid,prepaid\n\
             {SECOND},3012,inactive,P-2,city,USD,prepaid,prepaid\n\
             {TOWN},3012,inactive,T-1,city,USD,prepaid,prepaid\n"
        ),
    )
    .unwrap();
    let cards = d.join("cards.csv");
    cli_ok(d, &["cards", "import", cards.to_str().unwrap()]);
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "add-orderer",
            "city",
            "--name",
            "City social office",
            "--funding-account",
            "NL00BANK0123456789",
        ],
    );
    assert!(out.contains("orderer city (City social office)"), "{out}");
    cli_ok(
        d,
        &[
            "prepaid",
            "add-orderer",
            "town",
            "--name",
            "Town hall",
            "--funding-account",
            "NL11",
        ],
    );
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "add-programme",
            "city-social",
            "--orderer",
            "city",
            "--kind",
            "social-client",
            "--currency",
            "USD",
            "--max-balance",
            "300.00",
        ],
    );
    assert!(
        out.contains("programme city-social social-client currency 840 max 30000"),
        "{out}"
    );
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "add-programme",
            "town-buy",
            "--orderer",
            "town",
            "--kind",
            "small-purchase",
            "--currency",
            "USD",
            "--daily-amount",
            "100.00",
            "--daily-count",
            "5",
        ],
    );
    assert!(out.contains("cards 0 daily amount 10000 count 5"), "{out}");
    for (account, programme) in [
        ("P-1", "city-social"),
        ("P-2", "city-social"),
        ("T-1", "town-buy"),
    ] {
        let out = cli_ok(
            d,
            &["prepaid", "open-card", account, "--programme", programme],
        );
        assert!(out.contains(&format!("card account {account} ")), "{out}");
    }
    let out = cli(
        d,
        &[
            "prepaid",
            "add-programme",
            "x",
            "--orderer",
            "nobody",
            "--kind",
            "social-client",
            "--currency",
            "USD",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no orderer \"nobody\""));
    // The ledger checks ids and names, whichever interface calls it.
    let out = cli(
        d,
        &[
            "prepaid",
            "add-orderer",
            "bad id",
            "--name",
            "x",
            "--funding-account",
            "y",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("id must be 1 to 64 letters, digits, - or _")
    );
    dir
}

async fn call(method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    api_json(method, url, TOKEN, body).await
}

async fn get(api: &str, path: &str) -> (u16, Value) {
    call(reqwest::Method::GET, format!("{api}{path}"), None).await
}

async fn post(api: &str, path: &str, body: Value) -> (u16, Value) {
    call(reqwest::Method::POST, format!("{api}{path}"), Some(body)).await
}

/// How many entries of `action` the audit log has.
async fn audited(api: &str, action: &str) -> usize {
    let (status, page) = get(api, &format!("/api/audit?action={action}")).await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().len()
}

fn load(reference: &str, minor: u64) -> Value {
    json!({"reference": reference, "amount_minor": minor, "currency": "USD"})
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_and_the_cli_run_the_ledger() {
    let dir = prepare_ledger();
    let d = dir.path();
    let mut served = serve_dir(d).await;
    let api = served.api();

    // The first load activates the card, through the API as through the switch.
    let (status, body) = post(&api, "/api/prepaid/cards/P-1/loads", load("L-1", 10_000)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["balances"]["ledger"], 10_000);
    assert_eq!(body["activated"], json!(["476173******0019"]));
    assert_eq!(body["repeat"], false);
    let shown = cli_ok(d, &["cards", "show", FIRST]);
    assert!(shown.contains("status       active"), "{shown}");
    let c = client(&served.switch("base24")).await;
    assert_eq!(code_of(&c, &purchase(FIRST, 2_500, 1)).await, "00");

    // A repeat books nothing twice; a load past the maximum books nothing.
    let (status, body) = post(&api, "/api/prepaid/cards/P-1/loads", load("L-1", 10_000)).await;
    assert_eq!(
        (status, body["repeat"].clone()),
        (200, json!(true)),
        "{body}"
    );
    // Its reference with another amount, or onto another card: 409, nothing
    // booked, audited once, the other card still inactive.
    for (account, minor) in [("P-1", 5_000), ("P-2", 10_000)] {
        let path = format!("/api/prepaid/cards/{account}/loads");
        let (status, body) = post(&api, &path, load("L-1", minor)).await;
        assert_eq!(status, 409, "{account}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("\"L-1\""),
            "{body}"
        );
    }
    for (account, balance) in [("P-1", 10_000), ("P-2", 0)] {
        let (_, card) = get(&api, &format!("/api/prepaid/cards/{account}")).await;
        assert_eq!(card["balance"], balance, "{card}");
    }
    assert_eq!(audited(&api, "prepaid.load").await, 1);
    let shown = cli_ok(d, &["cards", "show", SECOND]);
    assert!(shown.contains("status       inactive"), "{shown}");
    let (status, body) = post(&api, "/api/prepaid/cards/P-1/loads", load("L-2", 25_000)).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("exceeds the maximum 30000"),
        "{body}"
    );
    let (_, card) = get(&api, "/api/prepaid/cards/P-1").await;
    assert_eq!(
        (card["balance"].clone(), card["available"].clone()),
        (json!(10_000), json!(7_500))
    );

    // Moves stay within one orderer.
    let moved = json!({"reference": "M-1", "amount_minor": 3_000, "currency": "USD", "from": "P-1", "to": "P-2"});
    let (status, body) = post(&api, "/api/prepaid/moves", moved.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["from"]["ledger"].clone(), body["to"]["ledger"].clone()),
        (json!(7_000), json!(3_000))
    );
    assert_eq!(body["repeat"], false);
    // Sent again (its answer lost): a repeat, booked and audited once.
    let (status, again) = post(&api, "/api/prepaid/moves", moved.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["from"], &again["to"], &again["repeat"]),
        (&body["from"], &body["to"], &json!(true))
    );
    // Its reference with another amount or other cards: 409, nothing moved.
    for (field, value) in [("amount_minor", json!(1_000)), ("to", json!("T-1"))] {
        let mut other = moved.clone();
        other[field] = value;
        let (status, body) = post(&api, "/api/prepaid/moves", other).await;
        assert_eq!(status, 409, "{field}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("\"M-1\""),
            "{body}"
        );
    }
    for (account, balance) in [("P-1", 7_000), ("P-2", 3_000), ("T-1", 0)] {
        let (_, card) = get(&api, &format!("/api/prepaid/cards/{account}")).await;
        assert_eq!(card["balance"], balance, "{card}");
    }
    assert_eq!(audited(&api, "prepaid.move").await, 1);
    let across = json!({"reference": "M-2", "amount_minor": 100, "currency": "USD", "from": "P-1", "to": "T-1"});
    assert_eq!(post(&api, "/api/prepaid/moves", across).await.0, 422);

    // A lost card replaced: balance and hold carried over, the old card lost.
    let replacement = json!({"reference": "R-1", "lost_pan": FIRST, "new_pan": NEW, "new_expiry": "3112", "new_account": "P-1b"});
    let (status, body) = post(&api, "/api/prepaid/replacements", replacement.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["card"], "476173******0043");
    assert_eq!(
        (
            body["balances"]["ledger"].clone(),
            body["balances"]["available"].clone()
        ),
        (json!(7_000), json!(4_500))
    );
    assert_eq!(body["repeat"], false);
    // Sent again (its answer lost): the same answer as a repeat, changing
    // nothing; the same reference for another new card is refused.
    let (status, again) = post(&api, "/api/prepaid/replacements", replacement.clone()).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["repeat"], true);
    for field in ["card", "account", "balances"] {
        assert_eq!(again[field], body[field], "{field}: {again}");
    }
    let mut other = replacement.clone();
    other["new_pan"] = json!(UNUSED);
    let (status, refused) = post(&api, "/api/prepaid/replacements", other).await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["error"].as_str().unwrap().contains("\"R-1\""),
        "{refused}"
    );
    assert!(!cli(d, &["cards", "show", UNUSED]).status.success());
    assert_eq!(audited(&api, "prepaid.replace").await, 1);
    let (_, statement) = get(&api, "/api/prepaid/cards/P-1b/statement?from=2000-01-01").await;
    assert_eq!(
        statement["lines"].as_array().unwrap().len(),
        1,
        "{statement}"
    );
    assert_eq!(statement["lines"][0]["kind"], "replace", "{statement}");
    assert_eq!(code_of(&c, &purchase(FIRST, 100, 2)).await, "41");
    assert_eq!(code_of(&c, &purchase(NEW, 100, 3)).await, "00");
    let (_, old) = get(&api, "/api/prepaid/cards/P-1").await;
    assert_eq!(
        (old["status"].clone(), old["replaced_by"].clone()),
        (json!("replaced"), json!("P-1b"))
    );

    // The orderer's view: pooled liability = its card balances.
    let (status, city) = get(&api, "/api/prepaid/orderers/city").await;
    assert_eq!(status, 200);
    assert_eq!(city["pooled_liability"], 10_000);
    let (_, cards) = get(&api, "/api/prepaid/orderers/city/cards").await;
    let balances: i64 = cards
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["balance"].as_i64().unwrap())
        .sum();
    assert_eq!(balances, 10_000);
    let (_, statement) = get(&api, "/api/prepaid/cards/P-2/statement?from=2000-01-01").await;
    let kinds: Vec<&str> = statement["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["move"]);
    let (status, body) = get(&api, "/api/prepaid/cards/P-2/statement?from=yesterday").await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("from")),
        "{body}"
    );

    // Refusals name what is wrong.
    assert_eq!(get(&api, "/api/prepaid/cards/nope").await.0, 404);
    let again = json!({"id": "city", "name": "x", "funding_account": "y"});
    assert_eq!(post(&api, "/api/prepaid/orderers", again).await.0, 409);
    let bad = json!({"id": "bad id", "name": "x", "funding_account": "y"});
    let (status, body) = post(&api, "/api/prepaid/orderers", bad).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("id")),
        "{body}"
    );
    let bad = json!({"reference": "M\u{7}", "amount_minor": 1, "currency": "USD", "from": "P-2", "to": "P-1b"});
    let (status, body) = post(&api, "/api/prepaid/moves", bad).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("reference")),
        "{body}"
    );
    let bad = json!({"id": "p", "orderer": "city", "kind": "gift", "currency": "USD"});
    let (status, body) = post(&api, "/api/prepaid/programmes", bad).await;
    assert_eq!(
        (status, body["field"].clone()),
        (422, json!("kind")),
        "{body}"
    );
    let (status, body) = get(&api, "/api/prepaid/audit").await;
    assert_eq!((status, body["breaches"].clone()), (200, json!([])));

    // The CLI reads and writes the ledger the hub serves.
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "statement",
            "--orderer",
            "city",
            "--from",
            "2000-01-01",
        ],
    );
    assert!(
        out.contains("\tload\tL-1\t") && out.contains("\treplace\tR-1\t"),
        "{out}"
    );
    let refused = cli(
        d,
        &[
            "prepaid",
            "load",
            "P-2",
            "--amount",
            "290.00",
            "--currency",
            "USD",
            "--reference",
            "L-3",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("exceeds the maximum"));
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "load",
            "T-1",
            "--amount",
            "12.50",
            "--currency",
            "USD",
            "--reference",
            "L-4",
        ],
    );
    assert!(
        out.contains("loaded 12.50 USD") && out.contains("activated by its first load"),
        "{out}"
    );
    let out = cli_ok(d, &["prepaid", "orderers", "town"]);
    assert!(out.contains("pooled liability 1250"), "{out}");
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "replace",
            FIRST,
            NEW,
            "--expiry",
            "3112",
            "--new-account",
            "P-1b",
            "--reference",
            "R-1",
        ],
    );
    assert!(
        out.contains("already replaced by 476173******0043 (card account P-1b)"),
        "{out}"
    );
    let move_again = [
        "prepaid",
        "move",
        "P-1",
        "P-2",
        "--amount",
        "30.00",
        "--currency",
        "USD",
        "--reference",
        "M-1",
    ];
    let out = cli_ok(d, &move_again);
    assert!(out.contains("already moved 30.00 USD"), "{out}");
    // The CLI's load is audited under its name; its repeats are not.
    let (_, page) = get(&api, "/api/audit?action=prepaid.load").await;
    let actors: Vec<_> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.iter().filter(|a| **a == "cli").count(), 1, "{page}");
    assert_eq!(actors.len(), 2, "{page}");
    assert_eq!(audited(&api, "prepaid.move").await, 1);
    assert_eq!(audited(&api, "prepaid.replace").await, 1);
    // The CLI refuses a reference reused with other details: exit 1, the
    // reason on stderr, nothing booked.
    let mut move_other = move_again;
    move_other[5] = "20.00";
    let load_other = [
        "prepaid",
        "load",
        "P-2",
        "--amount",
        "12.50",
        "--currency",
        "USD",
        "--reference",
        "L-4",
    ];
    for args in [&move_other[..], &load_other[..]] {
        let refused = cli(d, args);
        assert_eq!(refused.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&refused.stderr);
        assert!(err.contains("with other details"), "{args:?}: {err}");
    }
    let out = cli_ok(d, &["prepaid", "card", "P-2"]);
    assert!(out.contains("balance 3000 available"), "{out}");
    assert!(cli_ok(d, &["prepaid", "audit"]).contains("sound"));

    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn load_files_attestation_and_the_export() {
    let dir = prepare_ledger();
    let d = dir.path();
    let mut served = serve_dir(d).await;
    let api = served.api();
    let upload = |body: &'static str| {
        http()
            .post(format!("{api}/api/prepaid/load-files"))
            .bearer_auth(TOKEN)
            .header("content-type", "text/csv")
            .body(body)
            .send()
    };

    // One bad line refuses the file: every problem listed, nothing booked.
    let malformed = "reference,card_account,amount,currency\nF-1,P-1,12.5,USD\n";
    let body: Value =
        serde_json::from_str(&upload(malformed).await.unwrap().text().await.unwrap()).unwrap();
    assert_eq!(
        (
            body["problems"][0]["line"].clone(),
            body["problems"][0]["column"].clone()
        ),
        (json!(2), json!("amount")),
        "{body}"
    );
    let refused = "reference,card_account,amount,currency\nF-1,P-1,10.00,USD\nF-2,nope,1.00,USD\nF-3,P-2,400.00,USD\n";
    let response = upload(refused).await.unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "LOAD_FILE_REJECTED", "{body}");
    let lines: Vec<u64> = body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [3, 4], "{body}");
    assert_eq!(get(&api, "/api/prepaid/cards/P-1").await.1["balance"], 0);
    std::fs::write(d.join("refused.csv"), refused).unwrap();
    let out = cli(
        d,
        &[
            "prepaid",
            "load-file",
            d.join("refused.csv").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 problem(s); nothing booked"));

    let good = "reference,card_account,amount,currency\nF-1,P-1,10.00,USD\nF-2,T-1,50.00,USD\n";
    let response = upload(good).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(
        (
            body["booked"].clone(),
            body["activated"].as_array().unwrap().len()
        ),
        (json!(2), 2),
        "{body}"
    );

    // A small-purchase purchase, authorized and completed through the switch.
    let c = client(&served.switch("base24")).await;
    assert_eq!(code_of(&c, &purchase(TOWN, 2_000, 11)).await, "00");
    let mut completion = request("0220", "000000", TOWN, 2_000, 12);
    completion.set(39, "00");
    completion.set(90, support::prepaid::original("0100", 11));
    assert_eq!(code_of(&c, &completion).await, "00");
    let (_, open) = get(&api, "/api/prepaid/orderers/town/unattested").await;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");
    assert_eq!(
        (open[0]["state"].clone(), open[0]["amount_minor"].clone()),
        (json!("open"), json!(2_000))
    );
    let reference = open[0]["reference"].as_str().unwrap().to_string();

    let attest = json!({"verdict": "attested", "user": "caretaker", "comment": "cost centre 4711"});
    let (status, body) = post(
        &api,
        &format!("/api/prepaid/orderers/town/purchases/{reference}/attestation"),
        attest.clone(),
    )
    .await;
    assert_eq!(
        (status, body["state"].clone()),
        (200, json!("attested")),
        "{body}"
    );
    assert_eq!(
        get(&api, "/api/prepaid/orderers/town/unattested").await.1,
        json!([])
    );
    let (status, _) = post(
        &api,
        &format!("/api/prepaid/orderers/city/purchases/{reference}/attestation"),
        attest,
    )
    .await;
    assert_eq!(status, 404, "another orderer's purchase");
    let out = cli_ok(
        d,
        &[
            "prepaid",
            "dispute",
            "town",
            &reference,
            "--user",
            "auditor",
            "--reason",
            "private use",
        ],
    );
    assert!(out.contains("disputed"), "{out}");
    let (_, disputed) = get(&api, "/api/prepaid/orderers/town/unattested").await;
    assert_eq!(disputed[0]["comment"], "private use");

    // The export of today: the purchase marked, the same bytes again.
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let as_of = jiff::Timestamp::now().to_string();
    let export = |format: &'static str| {
        http()
            .get(format!(
                "{api}/api/prepaid/orderers/town/export?day={today}&format={format}&as_of={as_of}"
            ))
            .bearer_auth(TOKEN)
            .send()
    };
    let first = export("csv").await.unwrap().text().await.unwrap();
    assert!(
        first.contains(&reference) && first.contains("disputed"),
        "{first}"
    );
    assert_eq!(export("csv").await.unwrap().text().await.unwrap(), first);
    let fixed = export("fixed").await.unwrap();
    assert_eq!(fixed.status().as_u16(), 200);
    assert!(fixed.text().await.unwrap().contains(&reference));
    let (status, body) = get(&api, "/api/prepaid/orderers/town/export?day=06-12-2026").await;
    assert_eq!((status, body["field"].clone()), (422, json!("day")));
    let cli_export = cli_ok(
        d,
        &[
            "prepaid", "export", "town", "--day", &today, "--as-of", &as_of,
        ],
    );
    assert_eq!(cli_export, first);

    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
