//! Roles and tenants on the JSON API of a real `cardhub serve`: user tokens
//! issued with `cardhub users token issue` act with their user's role and
//! tenant. An orderer's user gets 404 on another orderer's cards (as if
//! they did not exist) and 403 on the bank's routes, and nothing changes;
//! a bank operator sees and changes only its institutions; every change is
//! in the audit log with its actor and address.

mod support;

use std::path::Path;

use serde_json::{Value, json};
use support::served::serve_dir;
use support::*;

const TOKEN: &str = "roles-test-machine-token-0123";
const PASSWORD: &str = "correct horse battery";
/// A card of orderer `city` (account C-1) and one of `town` (T-1).
const CITY_PAN: &str = "4761739002010019";
const TOWN_PAN: &str = "4761739002010027";

fn run(dir: &Path, args: &[&str]) -> String {
    cardhub_cli_ok(dir, args, "")
}

/// Adds user `name` with `role_args` and returns a fresh API token of it.
fn user_with_token(dir: &Path, name: &str, role_args: &[&str]) -> String {
    let mut args = vec!["users", "add", "--name", name, "--password-stdin"];
    args.extend_from_slice(role_args);
    cardhub_cli_ok(dir, &args, &format!("{PASSWORD}\n"));
    let out = run(dir, &["users", "token", "issue", name, "--label", "test"]);
    out.split_whitespace()
        .find(|w| w.starts_with("cht_"))
        .unwrap_or_else(|| panic!("no token in {out}"))
        .to_string()
}

/// Two orderers with a card each, and users: a `town` orderer user, a
/// bank-a operator, an auditor. Their tokens, in that order.
fn prepare(dir: &Path) -> [String; 3] {
    let extra = format!(
        "[api]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\n[[institution]]\nid = \"city\"\n\
         name = \"City prepaid\"\nmode = \"prepaid\"\n"
    );
    std::fs::write(dir.join("cardhub.toml"), config_text_in(dir, &extra)).unwrap();
    std::fs::write(
        dir.join("cards.csv"),
        format!(
            "pan,expiry,status,account,institution,currency,profile,product\n\
             {CITY_PAN},3012,inactive,C-1,city,USD,prepaid,prepaid\n\
             {TOWN_PAN},3012,inactive,T-1,city,USD,prepaid,prepaid\n"
        ),
    )
    .unwrap();
    let cards = dir.join("cards.csv");
    run(dir, &["cards", "import", cards.to_str().unwrap()]);
    for (orderer, programme, kind, account) in [
        ("city", "city-social", "social-client", "C-1"),
        ("town", "town-buy", "small-purchase", "T-1"),
    ] {
        run(
            dir,
            &[
                "prepaid",
                "add-orderer",
                orderer,
                "--name",
                orderer,
                "--funding-account",
                "NL00",
            ],
        );
        run(
            dir,
            &[
                "prepaid",
                "add-programme",
                programme,
                "--orderer",
                orderer,
                "--kind",
                kind,
                "--currency",
                "USD",
            ],
        );
        run(
            dir,
            &["prepaid", "open-card", account, "--programme", programme],
        );
    }
    [
        user_with_token(dir, "tom", &["--role", "orderer-user", "--orderer", "town"]),
        user_with_token(
            dir,
            "olga",
            &["--role", "bank-operator", "--institution", "bank-a"],
        ),
        user_with_token(dir, "ada", &["--role", "auditor"]),
    ]
}

async fn call(
    api: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    api_json(method, format!("{api}{path}"), token, body).await
}

fn load(reference: &str) -> Value {
    json!({"reference": reference, "amount_minor": 1_000, "currency": "USD"})
}

#[tokio::test(flavor = "multi_thread")]
async fn an_orderer_user_reaches_only_its_own_orderer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [tom, _, ada] = prepare(d);
    let mut served = serve_dir(d).await;
    let api = served.api();
    let (status, _) = call(
        &api,
        TOKEN,
        "POST",
        "/api/prepaid/cards/C-1/loads",
        Some(load("bank-1")),
    )
    .await;
    assert_eq!(status, 200);

    // Another orderer's card, statement, orderer, load, move, replacement,
    // PIN, order: not found, as if it did not exist.
    let foreign = [
        ("GET", "/api/prepaid/cards/C-1", None),
        ("GET", "/api/prepaid/cards/C-1/statement", None),
        ("GET", "/api/prepaid/orderers/city", None),
        ("GET", "/api/prepaid/orderers/city/cards", None),
        ("GET", "/api/prepaid/orderers/city/statement", None),
        ("GET", "/api/prepaid/orderers/city/orders", None),
        ("POST", "/api/prepaid/cards/C-1/loads", Some(load("tom-1"))),
        (
            "POST",
            "/api/prepaid/moves",
            Some(json!({
            "reference": "tom-2", "amount_minor": 500, "currency": "USD",
            "from": "C-1", "to": "T-1"})),
        ),
        (
            "POST",
            "/api/prepaid/moves",
            Some(json!({
            "reference": "tom-3", "amount_minor": 500, "currency": "USD",
            "from": "T-1", "to": "C-1"})),
        ),
        (
            "POST",
            "/api/prepaid/replacements",
            Some(json!({
            "reference": "tom-4", "lost_pan": CITY_PAN, "new_pan": "4761739002010043",
            "new_expiry": "3012", "new_account": "C-9"})),
        ),
        (
            "POST",
            "/api/prepaid/pin-reorders",
            Some(json!({"pan": CITY_PAN})),
        ),
        (
            "POST",
            "/api/prepaid/orders",
            Some(json!({
            "orderer": "city", "programme": "city-social", "count": 1, "reference": "tom-5"})),
        ),
    ];
    for (method, path, body) in foreign {
        let (status, answer) = call(&api, &tom, method, path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
        assert!(!answer.to_string().contains(CITY_PAN), "{answer}");
    }
    // The bank's routes: forbidden.
    let orderer = json!({"id": "tom", "name": "Tom's", "funding_account": "NL00"});
    for (method, path, body) in [
        ("GET", "/api/institutions", None),
        ("POST", "/api/institutions/bank-a/saf/pause", None),
        ("GET", "/api/audit", None),
        ("POST", "/api/prepaid/orderers", Some(orderer)),
        ("GET", "/api/prepaid/audit", None),
    ] {
        let (status, answer) = call(&api, &tom, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert_eq!(answer["code"], "FORBIDDEN");
    }
    // Its own orderer, and only it, in the list; its own card: served.
    let (status, answer) = call(&api, &tom, "GET", "/api/prepaid/orderers", None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["orderers"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(answer["orderers"][0]["id"], "town");
    let (status, answer) = call(
        &api,
        &tom,
        "POST",
        "/api/prepaid/cards/T-1/loads",
        Some(load("tom-6")),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(&api, &tom, "GET", "/api/prepaid/orderers/town/cards", None).await;
    assert_eq!(status, 200, "{answer}");

    // A purchase of its own card, attested: recorded as tom's, whatever
    // the body says.
    let c = client(&served.switch("base24")).await;
    assert_eq!(code_of(&c, &purchase(TOWN_PAN, 500, 1)).await, "00");
    let mut completion = request("0220", "000000", TOWN_PAN, 500, 2);
    completion.set(39, "00");
    completion.set(90, support::prepaid::original("0100", 1));
    assert_eq!(code_of(&c, &completion).await, "00");
    let (_, open) = call(
        &api,
        &tom,
        "GET",
        "/api/prepaid/orderers/town/unattested",
        None,
    )
    .await;
    let reference = open[0]["reference"].as_str().unwrap().to_string();
    let attest = json!({"verdict": "attested", "user": "someone-else", "comment": "groceries"});
    let path = format!("/api/prepaid/orderers/town/purchases/{reference}/attestation");
    let (status, answer) = call(&api, &tom, "POST", &path, Some(attest)).await;
    assert_eq!(
        (status, answer["user"].clone()),
        (200, json!("tom")),
        "{answer}"
    );

    // Nothing of city's changed; the audit log has the bank's load and tom's.
    let (_, card) = call(&api, TOKEN, "GET", "/api/prepaid/cards/C-1", None).await;
    assert_eq!(card["balance"], 1_000, "{card}");
    let (status, page) = call(&api, &ada, "GET", "/api/audit?action=prepaid.load", None).await;
    assert_eq!(status, 200, "{page}");
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{page}");
    assert_eq!(entries[0]["actor"], "tom");
    assert_eq!(entries[0]["role"], "orderer-user");
    assert_eq!(entries[0]["object_id"], "T-1");
    assert_eq!(entries[0]["source"], "127.0.0.1");
    assert_eq!(entries[1]["actor"], "api-token");
    assert_eq!(entries[1]["object_id"], "C-1");
    // The auditor reads, and changes nothing.
    let (status, _) = call(
        &api,
        &ada,
        "POST",
        "/api/prepaid/cards/T-1/loads",
        Some(load("ada-1")),
    )
    .await;
    assert_eq!(status, 403);
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bank_operator_reaches_only_its_institutions_and_tokens_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let [_, olga, ada] = prepare(d);
    let mut served = serve_dir(d).await;
    let api = served.api();

    let (status, list) = call(&api, &olga, "GET", "/api/institutions", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["institutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["bank-a"]);
    let (status, _) = call(
        &api,
        &olga,
        "POST",
        "/api/institutions/bank-b/saf/pause",
        None,
    )
    .await;
    assert_eq!(status, 404);
    let closing = json!({"state": "closing", "reason": "end of day"});
    let (status, _) = call(
        &api,
        &olga,
        "POST",
        "/api/institutions/bank-b/state",
        Some(closing.clone()),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(&api, &olga, "GET", "/api/saf?institution=bank-b", None).await;
    assert_eq!(status, 403);
    let (status, answer) = call(
        &api,
        &olga,
        "POST",
        "/api/institutions/bank-a/state",
        Some(closing),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, _) = call(&api, &olga, "GET", "/api/prepaid/cards/C-1", None).await;
    assert_eq!(status, 403);

    let (_, page) = call(&api, &ada, "GET", "/api/audit?actor=olga", None).await;
    let entries = page["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(entries[0]["action"], "institution.state");
    assert_eq!(entries[0]["object_id"], "bank-a");
    assert_eq!(entries[0]["before"], r#"{"state":"open"}"#);

    // A wrong token, a revoked one, a disabled user's: 401.
    let (status, _) = call(&api, "cht_not-a-token", "GET", "/api/institutions", None).await;
    assert_eq!(status, 401);
    run(d, &["users", "disable", "olga"]);
    let (status, _) = call(&api, &olga, "GET", "/api/institutions", None).await;
    assert_eq!(status, 401);
    run(d, &["users", "enable", "olga"]);
    let (status, _) = call(&api, &olga, "GET", "/api/institutions", None).await;
    assert_eq!(status, 200);
    let listed = run(d, &["users", "token", "list", "olga"]);
    let id = listed.split_whitespace().next().unwrap().to_string();
    run(d, &["users", "token", "revoke", &id]);
    let (status, _) = call(&api, &olga, "GET", "/api/institutions", None).await;
    assert_eq!(status, 401);
    served.child.kill().unwrap();
    served.child.wait().unwrap();
}
