//! The prepaid pages against a real `cardhub serve`: two orderers in the
//! ledger (`city` with cards P-1 and P-2, `town` with T-1), users added
//! with `cardhub users add`, `town`'s a small-purchase programme. One browser test (an orderer's user sees its
//! own cards, loads one, and cannot reach the other orderer's card by
//! editing the URL, nor through the JSON API with its token); the forms'
//! rules over plain HTTP. Screenshots go to `docs/web/` with
//! `UPDATE_SCREENSHOTS=1`.

mod support;

use std::collections::HashMap;

use cardhub_core::app;
use cardhub_core::config::Config;
use cardhub_core::prepaid::{Ledger, NewOrderer, ProgrammeKind};
use reqwest::Method;
use serde_json::{Value, json};
use support::canonical_hub::TOKEN;
use support::prepaid::{CITY, add_orderer, open_ledger, original};
use support::served::{Served, serve};
use support::web::{bare, form, http_session};
use support::{api_json, browser, cardhub_cli_ok, client, code_of, prepare, purchase, request};

/// Inactive prepaid USD cards: P-1 and P-2 of `city`, T-1 of `town`.
const CITY_1: &str = "4761739002010019";
const CITY_2: &str = "4761739002010027";
const TOWN_1: &str = "4761739002010035";

const PASSWORD: &str = "correct horse battery";
/// An orderer-user of `city`, one of `town`, a bank admin, a bank
/// operator, an auditor.
const OLGA: &str = "olga";
const TOM: &str = "tom";
const ADA: &str = "ada";
const BOB: &str = "bob";
const OTTO: &str = "otto";

/// The API, the ledger's default maximum of 300.00, the prepaid
/// institution.
fn extra() -> String {
    format!(
        r#"
[api]
listen = "127.0.0.1:0"
token = "{TOKEN}"
{CITY}"#
    )
}

struct World {
    served: Served,
    dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

async fn world() -> World {
    let (dir, config) = prepare(&extra()).await;
    let csv = dir.path().join("prepaid-cards.csv");
    std::fs::write(
        &csv,
        format!(
            "pan,expiry,status,account,institution,currency,profile,product\n\
             {CITY_1},3012,inactive,P-1,city,USD,prepaid,prepaid\n\
             {CITY_2},3012,inactive,P-2,city,USD,prepaid,prepaid\n\
             {TOWN_1},3012,inactive,T-1,city,USD,prepaid,prepaid\n"
        ),
    )
    .unwrap();
    open_ledger(&config, &csv, &["P-1", "P-2"], None).await;
    add_town(&config).await;
    let d = dir.path();
    for (name, role, tenant) in [
        (OLGA, "orderer-user", ["--orderer", "city"]),
        (TOM, "orderer-user", ["--orderer", "town"]),
        (ADA, "bank-admin", ["", ""]),
        (BOB, "bank-operator", ["--institution", "bank-a"]),
        (OTTO, "auditor", ["", ""]),
    ] {
        let mut args = vec!["users", "add", "--name", name, "--role", role];
        args.extend(tenant.iter().filter(|a| !a.is_empty()));
        args.push("--password-stdin");
        cardhub_cli_ok(d, &args, &format!("{PASSWORD}\n"));
    }
    let served = serve(
        &d.join("cardhub.toml"),
        &[],
        &d.join("hub.log"),
        &["base24"],
        true,
    )
    .await;
    World { served, dir }
}

/// Orderer `town` with card account T-1 of a small-purchase programme, on
/// the store (no hub open).
async fn add_town(config: &Config) {
    let hub = app::open(config, HashMap::new()).unwrap();
    let ledger = Ledger::new(hub.store().clone(), &config.prepaid);
    let town = NewOrderer {
        id: "town".into(),
        name: "Town hall".into(),
        funding_account: "NL11BANK0000000011".into(),
    };
    let programme = ("town-buy", ProgrammeKind::SmallPurchase);
    add_orderer(&ledger, town, programme, &["T-1"], None).await;
}

impl World {
    fn api(&self) -> String {
        self.served.api()
    }

    /// A card account as the JSON API shows it to the bank.
    async fn card(&self, account: &str) -> Value {
        let url = format!("{}/api/prepaid/cards/{account}", self.api());
        let (status, body) = api_json(Method::GET, url, TOKEN, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Loads `account` through the JSON API with the machine token.
    async fn load(&self, account: &str, reference: &str, minor: u64) {
        let url = format!("{}/api/prepaid/cards/{account}/loads", self.api());
        let body = json!({"reference": reference, "amount_minor": minor, "currency": "USD"});
        let (status, body) = api_json(Method::POST, url, TOKEN, Some(body)).await;
        assert_eq!(status, 200, "{body}");
    }

    /// A user token of `name`, issued with the CLI.
    fn token(&self, name: &str) -> String {
        let out = cardhub_cli_ok(
            self.dir.path(),
            &["users", "token", "issue", name, "--label", "test"],
            "",
        );
        let re = regex::Regex::new(r"cht_[0-9a-f]{64}").unwrap();
        re.find(&out).expect("a token").as_str().to_string()
    }

    /// POSTs a form as the session `session`: the status and the body.
    async fn post(&self, session: &str, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = bare()
            .post(format!("{}{path}", self.api()))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("cardhub_session={session}"))
            .body(form(fields))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        match response.headers().get("location") {
            Some(to) => (status, to.to_str().unwrap().to_string()),
            None => (status, response.text().await.unwrap()),
        }
    }

    /// GETs a page as the session `session`: the status and the body.
    async fn get(&self, session: &str, path: &str) -> (u16, String) {
        let response = bare()
            .get(format!("{}{path}", self.api()))
            .header("cookie", format!("cardhub_session={session}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }
}

fn assert_no_pan(page: &str) {
    for pan in [CITY_1, CITY_2, TOWN_1] {
        assert!(!page.contains(pan), "a full PAN is on the page");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orderer_user_loads_its_own_card_and_cannot_reach_another_orderers() {
    let world = world().await;
    let api = world.api();
    let browser = browser::start().await;

    // The login leads an orderer's user to its own orderer's cards.
    browser.log_in(&api, OLGA, PASSWORD).await;
    assert_eq!(browser.text("h1").await, "City social office");
    let cards = browser.text("table.cards").await;
    assert!(
        cards.contains("476173******0019") && cards.contains("476173******0027"),
        "{cards}"
    );
    assert!(!cards.contains("T-1") && !cards.contains("0035"), "{cards}");
    assert!(!browser.source().await.contains("href=\"/institutions\""));
    browser.screenshot("prepaid-orderer").await;

    // A load typed in dollars is booked in cents; the statement shows it.
    browser.click_away("#card-P-1 a").await;
    assert_eq!(browser.text("h1").await, "Card 476173******0019");
    browser.fill("#load-amount", "123.45").await;
    browser.click_away("#load button[type=submit]").await;
    assert_eq!(browser.text("#done").await, "The load is booked.");
    assert_eq!(browser.text("#ledger").await, "123.45 USD");
    assert_eq!(browser.text("#available").await, "123.45 USD");
    let statement = browser.text("table.statement").await;
    assert!(
        statement.contains("load") && statement.contains("123.45 USD"),
        "{statement}"
    );
    assert_no_pan(&browser.source().await);
    browser.screenshot("prepaid-card").await;
    assert_eq!(world.card("P-1").await["balance"], 12_345);

    // Another orderer's card and orderer by URL: not found, as if absent.
    world.load("T-1", "T-LOAD", 5_000).await;
    for path in ["/prepaid/cards/T-1", "/prepaid/orderers/town"] {
        browser.open(&format!("{api}{path}")).await;
        assert_eq!(browser.text("h1").await, "Not Found", "{path}");
    }
    assert_eq!(world.card("T-1").await["balance"], 5_000);

    // The same through the JSON API with the user's own token.
    let token = world.token(OLGA);
    let (status, _) = api_json(
        Method::GET,
        format!("{api}/api/prepaid/cards/T-1"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let load = json!({"reference": "STEAL", "amount_minor": 100, "currency": "USD"});
    let url = format!("{api}/api/prepaid/cards/T-1/loads");
    let (status, _) = api_json(Method::POST, url, &token, Some(load)).await;
    assert_eq!(status, 404);
    let (status, own) = api_json(
        Method::GET,
        format!("{api}/api/prepaid/cards/P-1"),
        &token,
        None,
    )
    .await;
    assert_eq!((status, own["balance"].clone()), (200, json!(12_345)));
    assert_eq!(world.card("T-1").await["balance"], 5_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prepaid_forms_hold_csrf_tenants_and_exact_amounts_over_plain_http() {
    let world = world().await;
    let (olga, csrf) = http_session(&world.api(), OLGA, PASSWORD).await;

    // A forged or missing CSRF token changes nothing.
    for token in ["", &"00".repeat(32)] {
        let fields = [("amount", "10.00"), ("reference", "L-F"), ("csrf", token)];
        let (status, _) = world.post(&olga, "/prepaid/cards/P-1/load", &fields).await;
        assert_eq!(status, 403, "{token:?}");
    }
    assert_eq!(world.card("P-1").await["balance"], 0);

    // Amounts are parsed exactly: more decimals than the currency has are
    // refused, nothing booked; "0.05" is 5 cents.
    for bad in ["1.234", "1,00", "-1", "1e2"] {
        let fields = [("amount", bad), ("reference", "L-B"), ("csrf", &csrf)];
        let (status, page) = world.post(&olga, "/prepaid/cards/P-1/load", &fields).await;
        assert_eq!(status, 422, "{bad}");
        assert!(page.contains("is not an amount in USD"), "{page}");
    }
    let fields = [("amount", "0.05"), ("reference", "L-1"), ("csrf", &csrf)];
    let (status, to) = world.post(&olga, "/prepaid/cards/P-1/load", &fields).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/prepaid/cards/P-1?done=loaded")
    );
    assert_eq!(world.card("P-1").await["balance"], 5);
    // The same form posted again (a double click, a reload): a repeat,
    // said so, nothing booked again; its reference with another amount:
    // 409, nothing booked.
    let (status, to) = world.post(&olga, "/prepaid/cards/P-1/load", &fields).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/prepaid/cards/P-1?done=repeated")
    );
    let (_, page) = world.get(&olga, &to).await;
    assert!(page.contains("nothing was booked again"), "{page}");
    let other = [("amount", "0.06"), ("reference", "L-1"), ("csrf", &csrf)];
    let (status, page) = world.post(&olga, "/prepaid/cards/P-1/load", &other).await;
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("was booked for another operation"), "{page}");
    assert_eq!(world.card("P-1").await["balance"], 5);
    // The ledger's refusal, with its reason: past the maximum of 300.00.
    let fields = [("amount", "300.00"), ("reference", "L-2"), ("csrf", &csrf)];
    let (status, page) = world.post(&olga, "/prepaid/cards/P-1/load", &fields).await;
    assert_eq!(status, 422);
    assert!(page.contains("exceeds the maximum 30000"), "{page}");
    assert_eq!(world.card("P-1").await["balance"], 5);

    // A move from another orderer's card: 404, nothing moves.
    world.load("T-1", "T-LOAD", 5_000).await;
    let fields = [
        ("from", "T-1"),
        ("to", "P-1"),
        ("amount", "10.00"),
        ("reference", "M-X"),
        ("csrf", &csrf),
    ];
    let (status, page) = world.post(&olga, "/prepaid/moves", &fields).await;
    assert_eq!(status, 404, "{page}");
    assert_eq!(world.card("T-1").await["balance"], 5_000);
    assert_eq!(world.card("P-1").await["balance"], 5);

    // A move between its own cards is booked and audited as the user.
    let fields = [
        ("from", "P-1"),
        ("to", "P-2"),
        ("amount", "0.02"),
        ("reference", "M-1"),
        ("csrf", &csrf),
    ];
    let (status, _) = world.post(&olga, "/prepaid/moves", &fields).await;
    assert_eq!(status, 303);
    assert_eq!(world.card("P-2").await["balance"], 2);
    let (status, to) = world.post(&olga, "/prepaid/moves", &fields).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/prepaid/orderers/city?done=repeated")
    );
    assert_eq!(world.card("P-2").await["balance"], 2);
    let url = format!("{}/api/audit?action=prepaid.move", world.api());
    let (_, audit) = api_json(Method::GET, url, TOKEN, None).await;
    assert_eq!(audit["entries"][0]["actor"], OLGA, "{audit}");

    // A lost card replaced: the numbers posted, the page shows them masked.
    let fields = [
        ("lost_pan", CITY_2),
        ("new_pan", "4761739002010043"),
        ("new_expiry", "3112"),
        ("new_account", "P-2b"),
        ("reference", "R-1"),
        ("csrf", &csrf),
    ];
    let (status, to) = world.post(&olga, "/prepaid/replacements", &fields).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/prepaid/cards/P-2b?done=replaced")
    );
    let (status, to) = world.post(&olga, "/prepaid/replacements", &fields).await;
    assert_eq!(
        (status, to.as_str()),
        (303, "/prepaid/cards/P-2b?done=repeated")
    );
    let (status, page) = world.get(&olga, "/prepaid/cards/P-2b?done=replaced").await;
    assert_eq!(status, 200);
    assert!(page.contains("476173******0043"), "{page}");
    assert_no_pan(&page);
    assert!(!page.contains("4761739002010043"));
    assert_eq!(world.card("P-2b").await["balance"], 2);

    // Town's user replacing city's card: 404, nothing changed.
    let (tom, tom_csrf) = http_session(&world.api(), TOM, PASSWORD).await;
    let fields = [
        ("lost_pan", CITY_1),
        ("new_pan", "4761739002010050"),
        ("new_expiry", "3112"),
        ("new_account", "P-1b"),
        ("reference", "R-2"),
        ("csrf", &tom_csrf),
    ];
    let (status, _) = world.post(&tom, "/prepaid/replacements", &fields).await;
    assert_eq!(status, 404);
    assert_eq!(world.card("P-1").await["status"], "open");

    // Card orders: the bank sets the programme's card range, the user
    // orders 3 cards and sees the order; town's user may not order for city.
    let range = json!({"prefix": "4761739003", "pan_length": 16, "validity_months": 36,
        "institution": "city", "profile": "prepaid"});
    let url = format!(
        "{}/api/prepaid/programmes/city-social/card-range",
        world.api()
    );
    let (status, body) = api_json(Method::PUT, url, TOKEN, Some(range)).await;
    assert_eq!(status, 200, "{body}");
    let order = |csrf| {
        [
            ("orderer", "city"),
            ("programme", "city-social"),
            ("count", "3"),
            ("reference", "O-1"),
            ("csrf", csrf),
        ]
    };
    assert_eq!(
        world
            .post(&tom, "/prepaid/orders", &order(&tom_csrf))
            .await
            .0,
        404
    );
    let fields = order(&csrf);
    let (status, page) = world.post(&olga, "/prepaid/orders", &fields).await;
    assert_eq!(status, 303, "{page}");
    let (_, page) = world
        .get(&olga, "/prepaid/orderers/city?done=ordered")
        .await;
    let orders = &page[page.find("table class=\"orders\"").expect("the orders")..];
    assert!(
        orders.contains("O-1") && orders.contains("<td class=\"state\">ordered</td>"),
        "{orders}"
    );
    assert_no_pan(&page);
    let url = format!("{}/api/prepaid/orderers/city/orders", world.api());
    let (_, listed) = api_json(Method::GET, url, TOKEN, None).await;
    assert_eq!(
        (listed[0]["count"].clone(), listed[0]["state"].clone()),
        (json!(3), json!("ordered"))
    );

    // A PIN reorder: refused with the reason for a card not from an order,
    // 404 for the other orderer's user.
    let fields = [("pan", CITY_1), ("orderer", "city"), ("csrf", &csrf)];
    let (status, page) = world.post(&olga, "/prepaid/pin-reorders", &fields).await;
    assert_eq!(status, 422);
    assert!(page.contains("no PIN reorder"), "{page}");
    assert_no_pan(&page);
    let fields = [("pan", CITY_1), ("orderer", "town"), ("csrf", &tom_csrf)];
    assert_eq!(
        world.post(&tom, "/prepaid/pin-reorders", &fields).await.0,
        404
    );

    // The bank admin picks any orderer from the list; a bank operator has
    // no prepaid pages.
    let (ada, _) = http_session(&world.api(), ADA, PASSWORD).await;
    let (status, page) = world.get(&ada, "/prepaid").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("/prepaid/orderers/city") && page.contains("/prepaid/orderers/town"),
        "{page}"
    );
    let (status, page) = world.get(&ada, "/prepaid/orderers/town").await;
    assert_eq!(status, 200);
    assert!(page.contains("476173******0035"), "{page}");
    // The accounting export of today: a CSV attachment, for the bank only.
    let day = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .to_string();
    let path = format!("/prepaid/orderers/city/export?day={day}");
    let response = bare()
        .get(format!("{}{path}", world.api()))
        .header("cookie", format!("cardhub_session={ada}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"city-{day}.csv\"").as_str()
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = response.text().await.unwrap();
    assert!(csv.contains("L-1") && csv.contains("M-1"), "{csv}");
    assert_no_pan(&csv);
    assert_eq!(world.get(&olga, &path).await.0, 403);
    let bad = "/prepaid/orderers/city/export?day=2026-13-01";
    assert_eq!(world.get(&ada, bad).await.0, 422);
    // A small purchase on town's card, authorized and completed through
    // the switch, waits for attestation; city's user cannot reach it.
    let c = client(&world.served.switch("base24")).await;
    assert_eq!(code_of(&c, &purchase(TOWN_1, 2_000, 11)).await, "00");
    let mut completion = request("0220", "000000", TOWN_1, 2_000, 12);
    completion.set(39, "00");
    completion.set(90, original("0100", 11));
    assert_eq!(code_of(&c, &completion).await, "00");
    let (status, queue) = world.get(&tom, "/prepaid/orderers/town/attestation").await;
    assert_eq!(status, 200);
    let re = regex::Regex::new(r#"/prepaid/orderers/town/purchases/([^/"]+)/attestation"#).unwrap();
    let reference = re.captures(&queue).expect("a purchase to attest")[1].to_string();
    assert!(queue.contains("20.00 USD"), "{queue}");
    let path = format!("/prepaid/orderers/town/purchases/{reference}/attestation");
    let fields = [
        ("verdict", "attested"),
        ("comment", "stolen?"),
        ("csrf", &csrf),
    ];
    assert_eq!(world.post(&olga, &path, &fields).await.0, 404);
    let fields = [("verdict", "maybe"), ("comment", "x"), ("csrf", &tom_csrf)];
    assert_eq!(world.post(&tom, &path, &fields).await.0, 422);
    let fields = [
        ("verdict", "attested"),
        ("comment", "cost centre 4711"),
        ("csrf", &tom_csrf),
    ];
    let (status, _) = world.post(&tom, &path, &fields).await;
    assert_eq!(status, 303);
    let (_, queue) = world
        .get(&tom, "/prepaid/orderers/town/attestation?done=attested")
        .await;
    assert!(
        queue.contains("The purchase is attested.")
            && queue.contains("Every purchase is attested."),
        "{queue}"
    );
    let url = format!("{}/api/audit?action=prepaid.attestation", world.api());
    let (_, audit) = api_json(Method::GET, url, TOKEN, None).await;
    assert_eq!(audit["entries"].as_array().unwrap().len(), 1, "{audit}");
    assert_eq!(audit["entries"][0]["actor"], TOM, "{audit}");

    // An auditor reads every orderer's pages, with no form; a posted load
    // is refused even with its token.
    let (otto, otto_csrf) = http_session(&world.api(), OTTO, PASSWORD).await;
    let (status, page) = world.get(&otto, "/prepaid/cards/T-1").await;
    assert_eq!(status, 200);
    assert!(!page.contains("/prepaid/cards/T-1/load"), "{page}");
    let fields = [
        ("amount", "1.00"),
        ("reference", "L-O"),
        ("csrf", &otto_csrf),
    ];
    let (status, _) = world.post(&otto, "/prepaid/cards/T-1/load", &fields).await;
    assert_eq!(status, 403);
    // 50.00 loaded, 20.00 spent.
    assert_eq!(world.card("T-1").await["balance"], 3_000);
    let (bob, _) = http_session(&world.api(), BOB, PASSWORD).await;
    assert_eq!(world.get(&bob, "/prepaid").await.0, 403);
}
