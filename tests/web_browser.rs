//! The web application in a real headless Chromium (WebDriver, see
//! `tests/support/browser.rs`) against a real `cardhub serve`: the
//! canonical adapter to an account system on wiremock, the switch
//! simulator on the link. One hub and one browser session per test (the
//! machine has few cores). Screenshots go to `docs/web/` for `docs/web.md`.

mod support;

use std::time::Duration;

use support::browser::{self, Browser};
use support::canonical_hub::{TOKEN, balances_csv, hours_ago, mount_bank, write_config};
use support::served::{Served, serve};
use support::{ACTIVE_USD, ACTIVE_USD_2, client, code_of, http, prepare, purchase};
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

async fn world() -> World {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let (dir, _) = prepare("").await;
    write_config(dir.path(), &bank.uri(), 5_000, "127.0.0.1:0", "127.0.0.1:0");
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

    browser.open(&format!("{api}/")).await;
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
    browser
        .find("form.search button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
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

    browser
        .find("table.results tbody a")
        .await
        .click()
        .await
        .unwrap();
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
