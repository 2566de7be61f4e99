//! The web application in a real headless Chromium (WebDriver, see
//! `tests/support/browser.rs`) against a real `cardhub serve`: the
//! canonical adapter to an account system on wiremock, the switch
//! simulator on the link, users added with `cardhub users add`. One hub
//! and at most one browser session per test (the machine has few cores).
//! Screenshots go to `docs/web/` for `docs/web.md` with
//! `UPDATE_SCREENSHOTS=1` (else under the target folder). The session and CSRF
//! rules are also checked over plain HTTP, header by header.

mod support;

use std::path::Path;
use std::time::Duration;

use support::browser::{self, Browser};
use support::canonical_hub::{TOKEN, balances_csv, hours_ago, mount_bank, write_config};
use support::served::{Served, serve};
use support::web::{bare, form, http_login, http_session, location, set_cookie, value};
use support::{
    ACTIVE_USD, ACTIVE_USD_2, api_json, cardhub_cli_ok, client, code_of, http, prepare, purchase,
};
use wiremock::MockServer;

/// A served hub: bank-a online through the canonical adapter (wiremock
/// approves everything), with the demo cards.
struct World {
    served: Served,
    _bank: MockServer,
    dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

/// Users of every test hub (`cardhub users add`).
const ADMIN: &str = "ada";
const AUDITOR: &str = "otto";
const PASSWORD: &str = "correct horse battery";

/// Adds a user with the CLI, the password on standard input.
fn add_user(dir: &Path, name: &str, role: &str) {
    cardhub_cli_ok(
        dir,
        &[
            "users",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
}

async fn world() -> World {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let (dir, _) = prepare("").await;
    write_config(dir.path(), &bank.uri(), 5_000, "127.0.0.1:0", "127.0.0.1:0");
    add_user(dir.path(), ADMIN, "bank-admin");
    add_user(dir.path(), AUDITOR, "auditor");
    let served = serve(
        &dir.path().join("cardhub.toml"),
        &[],
        &dir.path().join("hub.log"),
        &["base24"],
        true,
    )
    .await;
    World {
        served,
        _bank: bank,
        dir,
    }
}

impl World {
    fn api(&self) -> String {
        self.served.api()
    }

    /// Uploads bank-a's balances of the demo accounts through the API.
    async fn upload_balances(&self) {
        let csv = balances_csv(&hours_ago(1), &[("A-1001", "2500.00"), ("A-1002", "80.00")]);
        let response = http()
            .post(format!("{}/api/institutions/bank-a/balances", self.api()))
            .bearer_auth(TOKEN)
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    }

    /// `count` purchases through the switch link, each answered `code`.
    async fn purchases(&self, count: u32, first_stan: u32, code: &str) {
        let c = client(&self.served.switch("base24")).await;
        for stan in first_stan..first_stan + count {
            let pan = if stan % 2 == 0 {
                ACTIVE_USD
            } else {
                ACTIVE_USD_2
            };
            assert_eq!(code_of(&c, &purchase(pan, 1_250, stan)).await, code);
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("hub.log")).unwrap_or_default()
    }
}

/// No full card number anywhere in what the browser holds.
async fn assert_masked(browser: &Browser) {
    let source = browser.source().await;
    for pan in [ACTIVE_USD, ACTIVE_USD_2] {
        assert!(!source.contains(pan), "a full PAN is on the page");
    }
}

/// Logs `name` in through the login form and waits for the dashboard.
async fn log_in(browser: &Browser, api: &str, name: &str) {
    browser.log_in(api, name, PASSWORD).await;
}

fn number(text: &str) -> u64 {
    text.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text:?} does not start with a number"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_moves_live_and_every_page_shows_the_hub() {
    let world = world().await;
    world.upload_balances().await;
    let browser = browser::start().await;
    let api = world.api();

    log_in(&browser, &api, ADMIN).await;
    assert_eq!(browser.text("h1").await, "Dashboard");
    let before = number(&browser.text("#total").await);
    // A mark on this page: a reload would lose it.
    browser
        .client
        .execute("window.cardhubMark = 'kept'; return null;", vec![])
        .await
        .unwrap();
    world.purchases(6, 1, "00").await;
    let after = browser
        .wait_for_text("#total", |t| number(t) >= before + 6)
        .await;
    assert_eq!(number(&after), before + 6);
    let mark = browser
        .client
        .execute("return window.cardhubMark || null;", vec![])
        .await
        .unwrap();
    assert_eq!(mark, "kept", "the page was reloaded instead of updated");
    let approvals = browser
        .wait_for_text("#approvals", |t| number(t) >= 6)
        .await;
    assert!(approvals.contains("100.0 %"), "{approvals}");
    let bank_a = browser.text("#live tbody tr").await;
    assert!(
        bank_a.contains("bank-a") && bank_a.contains("open"),
        "{bank_a}"
    );
    browser.screenshot("dashboard").await;

    browser.open(&format!("{api}/transactions")).await;
    browser.fill("#card", ACTIVE_USD).await;
    browser.click_away("form.search button[type=submit]").await;
    let heading = browser.text("#results-heading").await;
    assert_eq!(heading, "3 transactions of the card searched");
    assert!(
        browser
            .text("table.results")
            .await
            .contains("476173******0010")
    );
    assert_masked(&browser).await;
    browser.screenshot("search").await;

    browser.click_away("table.results tbody a").await;
    let title = browser.text("h1").await;
    assert!(title.starts_with("Transaction "), "{title}");
    let story = browser.text("dl.story").await;
    assert!(
        story.contains("12.50 USD") && story.contains("account_system"),
        "{story}"
    );
    assert_masked(&browser).await;
    browser.screenshot("story").await;

    browser.open(&format!("{api}/institutions")).await;
    let bank_a = browser.text("#bank-a").await;
    assert!(
        bank_a.contains("open") && bank_a.contains("2 rows as of"),
        "{bank_a}"
    );
    browser.screenshot("institutions").await;

    browser.open(&format!("{api}/saf?state=dead")).await;
    assert_eq!(
        browser.text("#items-heading").await,
        "0 items (dead letters)"
    );
    assert!(
        !world.log().contains(ACTIVE_USD),
        "a full PAN in the hub's log"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_log_in_close_an_institution_with_a_reason_and_log_out() {
    let world = world().await;
    let browser = browser::start().await;
    let api = world.api();

    // Every page sends a browser without a session to the login form.
    browser.open(&format!("{api}/institutions")).await;
    assert_eq!(browser.text("h1").await, "Log in");
    browser.fill("#name", ADMIN).await;
    browser.fill("#password", "not the password").await;
    browser.click_away("main form button[type=submit]").await;
    assert_eq!(
        browser.text("#problem").await,
        "wrong user name or password"
    );
    assert_eq!(browser.text("h1").await, "Log in");
    assert_eq!(
        browser
            .find("#name")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some(ADMIN)
    );
    browser.screenshot("login").await;

    log_in(&browser, &api, ADMIN).await;
    browser.open(&format!("{api}/institutions")).await;
    // A forged token: the form is refused and nothing changes.
    browser
        .client
        .execute(
            "document.querySelector('#bank-a form input[name=csrf]').value = '00'.repeat(32); \
             return null;",
            vec![],
        )
        .await
        .unwrap();
    browser.fill("#reason-bank-a", "forged").await;
    browser.click_away("#bank-a form button").await;
    assert_eq!(browser.text("h1").await, "Forbidden");
    browser.open(&format!("{api}/institutions")).await;
    assert_eq!(browser.text("#bank-a .state").await, "open");

    let select = browser.find("#state-bank-a").await;
    select.select_by_value("closed").await.unwrap();
    browser.fill("#reason-bank-a", "end of day at Bank A").await;
    browser.click_away("#bank-a form button").await;
    assert_eq!(browser.text("#changed").await, "bank-a is now closed.");
    assert_eq!(browser.text("#bank-a .state").await, "closed");
    let latest = browser.text("#events-heading + table tbody tr").await;
    assert!(
        latest.contains("open → closed")
            && latest.contains("web")
            && latest.contains("end of day at Bank A"),
        "{latest}"
    );
    browser.screenshot("institution-closed").await;
    let (status, listed) = api_get(&api, "/api/institutions").await;
    assert_eq!(status, 200);
    assert_eq!(listed["institutions"][0]["state"], "closed");
    let (_, audit) = api_get(&api, "/api/audit?action=institution.state").await;
    assert_eq!(audit["entries"][0]["actor"], ADMIN, "{audit}");

    browser.click_away("header form button").await;
    assert_eq!(browser.text("h1").await, "Log in");
    browser.open(&format!("{api}/")).await;
    assert_eq!(
        browser.text("h1").await,
        "Log in",
        "the session outlived its logout"
    );

    // An auditor reads and changes nothing: no form.
    log_in(&browser, &api, AUDITOR).await;
    browser.open(&format!("{api}/institutions")).await;
    assert!(
        !browser
            .source()
            .await
            .contains("/institutions/bank-a/state")
    );
}

/// `GET` of the JSON API with the machine token.
async fn api_get(api: &str, path: &str) -> (u16, serde_json::Value) {
    api_json(reqwest::Method::GET, format!("{api}{path}"), TOKEN, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_cookies_and_csrf_hold_over_plain_http() {
    let world = world().await;
    let api = world.api();
    let client = bare();

    // No session: every page redirects to the login form.
    for path in [
        "/",
        "/live",
        "/transactions",
        "/institutions",
        "/saf",
        "/transactions/0000000000000001",
    ] {
        let response = client.get(format!("{api}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(location(&response), "/login", "{path}");
    }
    let response = client
        .get(format!("{api}/"))
        .header("cookie", "cardhub_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(location(&response), "/login");
    assert!(
        set_cookie(&response, "cardhub_session")
            .unwrap()
            .contains("Max-Age=0")
    );

    // The login form's own token: missing or forged, the login is refused.
    let page = client.get(format!("{api}/login")).send().await.unwrap();
    let login_cookie = value(&set_cookie(&page, "cardhub_login").unwrap());
    for (cookie, field) in [
        ("", login_cookie.as_str()),
        (login_cookie.as_str(), ""),
        (login_cookie.as_str(), "00"),
    ] {
        let response = client
            .post(format!("{api}/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("cardhub_login={cookie}"))
            .body(form(&[
                ("name", ADMIN),
                ("password", PASSWORD),
                ("csrf", field),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
        assert!(set_cookie(&response, "cardhub_session").is_none());
    }
    let wrong = http_login(&api, ADMIN, "not the password", None).await;
    assert_eq!(wrong.status(), 401);
    assert!(set_cookie(&wrong, "cardhub_session").is_none());

    // The session cookie's flags.
    let response = http_login(&api, ADMIN, PASSWORD, None).await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    let header = set_cookie(&response, "cardhub_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(header.contains(flag), "{header}");
    }
    assert!(!header.contains("Secure"), "Secure on plain HTTP: {header}");
    let page = client.get(format!("{api}/login")).send().await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        policy.contains("default-src 'self'") && policy.contains("frame-ancestors 'none'"),
        "{policy}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let first = value(&header);
    assert_eq!(first.len(), 64);

    // Session fixation: the session a browser brings to a login is ended;
    // the new one is another.
    let again = http_login(&api, ADMIN, PASSWORD, Some(&first)).await;
    let second = value(&set_cookie(&again, "cardhub_session").unwrap());
    assert_ne!(first, second);
    let stale = client
        .get(format!("{api}/"))
        .header("cookie", format!("cardhub_session={first}"))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 303, "a pre-login session is still accepted");
    let planted = http_login(&api, ADMIN, PASSWORD, Some("planted-by-someone-else")).await;
    assert_ne!(
        value(&set_cookie(&planted, "cardhub_session").unwrap()),
        "planted-by-someone-else"
    );

    // CSRF: a change with a missing or forged token is refused, nothing changes.
    let (session, csrf) = http_session(&api, ADMIN, PASSWORD).await;
    for token in [None, Some("00".repeat(32)), Some(csrf[..63].to_string())] {
        let mut fields = vec![("state", "closed"), ("reason", "forged")];
        if let Some(t) = &token {
            fields.push(("csrf", t));
        }
        let response = client
            .post(format!("{api}/institutions/bank-a/state"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", format!("cardhub_session={session}"))
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{token:?}");
    }
    let (_, listed) = api_get(&api, "/api/institutions").await;
    assert_eq!(listed["institutions"][0]["state"], "open");
    let search = client
        .post(format!("{api}/transactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("cardhub_session={session}"))
        .body(form(&[("card", ACTIVE_USD)]))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 403);

    // An auditor's change is refused even with its token.
    let (auditor, auditor_csrf) = http_session(&api, AUDITOR, PASSWORD).await;
    let refused = client
        .post(format!("{api}/institutions/bank-a/state"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("cardhub_session={auditor}"))
        .body(form(&[
            ("state", "closed"),
            ("reason", "x"),
            ("csrf", &auditor_csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let (_, listed) = api_get(&api, "/api/institutions").await;
    assert_eq!(listed["institutions"][0]["state"], "open");

    // With its token the change is made, and a logout ends the session.
    let done = client
        .post(format!("{api}/institutions/bank-a/state"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("cardhub_session={session}"))
        .body(form(&[
            ("state", "closing"),
            ("reason", "end of day"),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 303);
    let (_, listed) = api_get(&api, "/api/institutions").await;
    assert_eq!(listed["institutions"][0]["state"], "closing");
    let out = client
        .post(format!("{api}/logout"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", format!("cardhub_session={session}"))
        .body(form(&[("csrf", &csrf)]))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&out), "/login");
    let after = client
        .get(format!("{api}/"))
        .header("cookie", format!("cardhub_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 303);
    assert!(
        !world.log().contains(PASSWORD),
        "a password in the hub's log"
    );
}
