//! The bank's operations pages (cards, the audit log) against a real
//! `cardhub serve` (bank-a online through the canonical adapter on
//! wiremock, the demo cards of bank-a and bank-b, users added with
//! `cardhub users add`): one browser test in a real headless Chromium
//! (`tests/support/browser.rs`), the tenant and role rules over plain HTTP.
//! Screenshots go to `docs/web/` with `UPDATE_SCREENSHOTS=1`.

mod support;

use std::time::Duration;

use support::browser;
use support::canonical_hub::{TOKEN, balances_csv, hours_ago, mount_bank, write_config};
use support::served::{Served, serve};
use support::web::{SignedIn, bare, http_login};
use support::{ACTIVE_USD, api_json, cardhub_cli_ok, client, code_of, prepare, purchase};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A served hub with the demo cards and a user of each bank role.
struct World {
    served: Served,
    bank: MockServer,
    dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.served.child.kill();
        let _ = self.served.child.wait();
    }
}

const ADMIN: &str = "ada";
/// A bank operator of bank-a only.
const OPERATOR: &str = "opal";
const AUDITOR: &str = "otto";
const PASSWORD: &str = "correct horse battery";

/// bank-a's active card and bank-b's blocked one (demo cards), masked.
const CARD_A: &str = "476173******0010";
const CARD_B: &str = "476173******0051";

async fn world() -> World {
    let bank = MockServer::start().await;
    mount_bank(&bank, Duration::ZERO).await;
    let (dir, _) = prepare("").await;
    write_config(dir.path(), &bank.uri(), 5_000, "127.0.0.1:0", "127.0.0.1:0");
    for (name, role, tenant) in [
        (ADMIN, "bank-admin", None),
        (OPERATOR, "bank-operator", Some("bank-a")),
        (AUDITOR, "auditor", None),
    ] {
        let mut args = vec![
            "users",
            "add",
            "--name",
            name,
            "--role",
            role,
            "--password-stdin",
        ];
        if let Some(institution) = tenant {
            args.extend(["--institution", institution]);
        }
        cardhub_cli_ok(dir.path(), &args, &format!("{PASSWORD}\n"));
    }
    let served = serve(
        &dir.path().join("cardhub.toml"),
        &[],
        &dir.path().join("hub.log"),
        &["base24"],
        true,
    )
    .await;
    World { served, bank, dir }
}

impl SignedIn {
    /// Uploads `file` through bank `id`'s balance file form (multipart):
    /// the status and the page.
    async fn upload(&self, id: &str, file: &str) -> (u16, String) {
        let boundary = "cardhub-test-boundary";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"balances.csv\"\r\n\
             Content-Type: text/csv\r\n\r\n{file}\r\n--{boundary}--\r\n",
            self.csrf
        );
        let response = bare()
            .post(format!("{}/balances/{id}", self.api))
            .header("cookie", &self.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The links to card pages a search by account finds.
    async fn cards_of(&self, account: &str) -> Vec<String> {
        let (status, _, page) = self.post("/cards", &[("account", account)]).await;
        assert_eq!(status, 200, "{page}");
        card_links(&page)
    }
}

/// The card pages a results page links to.
fn card_links(page: &str) -> Vec<String> {
    let re = regex::Regex::new(r#"href="(/cards/[0-9a-f]{64})""#).unwrap();
    re.captures_iter(page).map(|c| c[1].to_string()).collect()
}

/// The audit log's `card.status` entries, newest first (the JSON API).
async fn card_audit(api: &str) -> Vec<serde_json::Value> {
    audited(api, "card.status").await
}

/// The audit log's entries of `action`, newest first (the JSON API).
async fn audited(api: &str, action: &str) -> Vec<serde_json::Value> {
    let (status, body) = api_get(api, &format!("/api/audit?action={action}")).await;
    assert_eq!(status, 200, "{body}");
    body["entries"].as_array().unwrap().clone()
}

/// `GET` of the JSON API with the machine token.
async fn api_get(api: &str, path: &str) -> (u16, serde_json::Value) {
    api_json(reqwest::Method::GET, format!("{api}{path}"), TOKEN, None).await
}

/// bank-a's balance file as `GET /api/institutions` shows it (rows, as-of).
async fn bank_a_balances(api: &str) -> (serde_json::Value, serde_json::Value) {
    let (status, listed) = api_get(api, "/api/institutions").await;
    assert_eq!(status, 200, "{listed}");
    let a = &listed["institutions"][0];
    assert_eq!(a["id"], "bank-a");
    (a["balances_rows"].clone(), a["balances_as_of"].clone())
}

/// A balance file with two bad lines: an amount and a currency.
fn broken_balances() -> String {
    format!(
        "#as_of={}\naccount,available,currency\nA-1001,12.x0,USD\nA-1002,80.00,XXX\nA-1003,5.00,USD\n",
        hours_ago(1)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_files_are_applied_whole_or_refused_with_every_line_error() {
    let world = world().await;
    let api = world.served.api();
    let admin = SignedIn::log_in(&api, ADMIN, PASSWORD).await;
    let operator = SignedIn::log_in(&api, OPERATOR, PASSWORD).await;
    let auditor = SignedIn::log_in(&api, AUDITOR, PASSWORD).await;

    // A form for each institution with a balance format the user may change.
    let (status, page) = operator.get("/balances").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"action="/balances/bank-a""#), "{page}");
    let (_, page) = auditor.get("/balances").await;
    assert!(!page.contains(r#"action="/balances/"#), "{page}");

    // Refused whole: every line error shown, nothing changed.
    let before = bank_a_balances(&api).await;
    let (status, page) = operator.upload("bank-a", &broken_balances()).await;
    assert_eq!(status, 422, "{page}");
    assert!(
        page.contains("the file was refused; nothing changed"),
        "{page}"
    );
    for line in [
        "<td>3</td><td>available</td>",
        "<td>4</td><td>currency</td>",
    ] {
        assert!(page.contains(line), "{line} missing in {page}");
    }
    assert_eq!(bank_a_balances(&api).await, before);
    let refused = audited(&api, "balances.upload").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (&refused[0]["actor"], &refused[0]["outcome"]),
        (&serde_json::json!(OPERATOR), &serde_json::json!("failed"))
    );

    // Others' institutions and roles that change nothing are refused.
    let good = balances_csv(&hours_ago(1), &[("A-1001", "2500.00"), ("A-1002", "80.00")]);
    let (status, _) = operator.upload("bank-b", &good).await;
    assert_eq!(status, 404);
    let (status, _) = auditor.upload("bank-a", &good).await;
    assert_eq!(status, 403);
    let forged = SignedIn {
        csrf: "00".repeat(32),
        ..SignedIn::log_in(&api, ADMIN, PASSWORD).await
    };
    let (status, _) = forged.upload("bank-a", &good).await;
    assert_eq!(status, 403);
    assert_eq!(bank_a_balances(&api).await, before);
    assert_eq!(audited(&api, "balances.upload").await.len(), 1);

    // Applied whole.
    let (status, page) = admin.upload("bank-a", &good).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("bank-a: 2 rows applied, as of"), "{page}");
    assert_eq!(bank_a_balances(&api).await.0, 2);
    assert_eq!(audited(&api, "balances.upload").await[0]["outcome"], "done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cards_keep_to_their_institution_and_auditors_change_nothing() {
    let world = world().await;
    let api = world.served.api();
    let admin = SignedIn::log_in(&api, ADMIN, PASSWORD).await;
    let operator = SignedIn::log_in(&api, OPERATOR, PASSWORD).await;
    let auditor = SignedIn::log_in(&api, AUDITOR, PASSWORD).await;

    // Found by BIN and last 4 digits, or by account; shown masked only.
    let (status, _, page) = admin
        .post("/cards", &[("bin", "476173"), ("last4", "0010")])
        .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(CARD_A) && !page.contains("4761739001010010"));
    let [card_a] = card_links(&page).try_into().unwrap();
    assert_eq!(
        admin.cards_of("A-1001").await,
        std::slice::from_ref(&card_a)
    );
    let [card_b] = admin.cards_of("B-2001").await.try_into().unwrap();
    // Half a card number is no search.
    let (status, _, page) = admin.post("/cards", &[("bin", "476173")]).await;
    assert_eq!(status, 422);
    assert!(
        page.contains("give the first 6 and the last 4 digits"),
        "{page}"
    );
    let (status, _, _) = admin
        .post("/cards", &[("bin", "4761739001010010"), ("last4", "0010")])
        .await;
    assert_eq!(status, 422);

    // The operator of bank-a finds its cards, and no card of bank-b.
    assert_eq!(
        operator.cards_of("A-1001").await,
        std::slice::from_ref(&card_a)
    );
    assert!(operator.cards_of("B-2001").await.is_empty());
    let (status, _, page) = operator
        .post("/cards", &[("bin", "476173"), ("last4", "0051")])
        .await;
    assert_eq!(status, 200);
    assert!(card_links(&page).is_empty() && !page.contains(CARD_B));
    let (status, _) = operator.get(&card_b).await;
    assert_eq!(status, 404);
    for change in [
        vec![("change", "unblock"), ("reason", "holder found it")],
        vec![
            ("change", "profile"),
            ("profile", "prepaid"),
            ("reason", "x"),
        ],
    ] {
        let (status, _, _) = operator.post(&card_b, &change).await;
        assert_eq!(status, 404, "{change:?}");
    }
    let (_, page) = admin.get(&card_b).await;
    assert!(page.contains(r#"<dd id="status">blocked</dd>"#), "{page}");
    assert!(page.contains(r#"<dd id="profile">standard</dd>"#), "{page}");

    // The auditor reads the card; no form, and a posted change is refused.
    let (status, page) = auditor.get(&card_a).await;
    assert_eq!(status, 200);
    assert!(page.contains(CARD_A) && !page.contains(r#"name="change""#));
    for change in [
        vec![("change", "block"), ("reason", "looks odd")],
        vec![
            ("change", "profile"),
            ("profile", "prepaid"),
            ("reason", "x"),
        ],
    ] {
        let (status, _, _) = auditor.post(&card_a, &change).await;
        assert_eq!(status, 403, "{change:?}");
    }
    let (_, page) = admin.get(&card_a).await;
    assert!(page.contains(r#"<dd id="status">active</dd>"#), "{page}");
    assert!(card_audit(&api).await.is_empty());

    // The operator changes its own card: a reason is needed, a forged
    // token is refused, then blocked, audited before and after.
    let (status, _, _) = operator
        .post(&card_a, &[("change", "block"), ("reason", " ")])
        .await;
    assert_eq!(status, 422);
    let forged = SignedIn {
        csrf: "00".repeat(32),
        ..SignedIn::log_in(&api, OPERATOR, PASSWORD).await
    };
    let (status, _, _) = forged
        .post(&card_a, &[("change", "block"), ("reason", "forged")])
        .await;
    assert_eq!(status, 403);
    assert!(card_audit(&api).await.is_empty());
    let (status, to, _) = operator
        .post(&card_a, &[("change", "block"), ("reason", "holder called")])
        .await;
    assert_eq!(
        (status, to.as_str()),
        (303, &*format!("{card_a}?changed=1"))
    );
    let (_, page) = operator.get(&to).await;
    assert!(
        page.contains(&format!("Card {CARD_A} is now blocked")),
        "{page}"
    );
    let entries = card_audit(&api).await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["actor"], OPERATOR);
    assert_eq!(entries[0]["object_id"], CARD_A);
    assert_eq!(
        entries[0]["before"],
        r#"{"profile":"standard","status":"active"}"#
    );
    assert_eq!(
        entries[0]["after"],
        r#"{"profile":"standard","reason":"holder called","status":"blocked"}"#
    );

    // An unknown profile changes nothing.
    let (status, _, _) = operator
        .post(
            &card_a,
            &[("change", "profile"), ("profile", "gold"), ("reason", "x")],
        )
        .await;
    assert_eq!(status, 422);
    let (status, _, _) = operator
        .post(
            &card_a,
            &[
                ("change", "profile"),
                ("profile", "prepaid"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(status, 303);
    let (_, page) = operator.get(&card_a).await;
    assert!(page.contains(r#"<dd id="profile">prepaid</dd>"#), "{page}");

    // The audit log page: bank admins and auditors only, searched.
    let (status, _) = operator.get("/audit").await;
    assert_eq!(status, 403);
    let (status, page) = auditor.get("/audit?action=card.status").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("1 entries") && page.contains("holder called"),
        "{page}"
    );
    let (_, page) = auditor.get(&format!("/audit?actor={OPERATOR}")).await;
    assert!(
        page.contains("4 entries"),
        "two logins and two changes: {page}"
    );
    let (_, page) = auditor
        .get("/audit?object_id=476173******0010&to=2001-01-01")
        .await;
    assert!(page.contains("0 entries"), "{page}");
    let (status, page) = admin.get("/audit?from=yesterday").await;
    assert_eq!(status, 422);
    assert!(page.contains("From: "), "{page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_blocks_a_card_with_a_reason_and_the_audit_log_shows_it() {
    let world = world().await;
    let api = world.served.api();
    let browser = browser::start().await;

    log_in(&browser, &api, OPERATOR).await;
    assert!(!browser.source().await.contains(r#"href="/audit""#));

    browser.open(&format!("{api}/cards")).await;
    browser.fill("#bin", "476173").await;
    browser.fill("#last4", "0010").await;
    browser.click_away("main form.search button").await;
    assert_eq!(browser.text("#results-heading").await, "1 cards");
    browser.screenshot("cards").await;
    browser.click_away("table.results a").await;
    assert_eq!(browser.text("#status").await, "active");
    browser
        .fill("#status-reason", "holder reported it missing")
        .await;
    browser.click_away("#status-form button").await;
    assert_eq!(
        browser.text("#changed").await,
        format!("Card {CARD_A} is now blocked, limits profile standard.")
    );
    assert_eq!(browser.text("#status").await, "blocked");
    browser.screenshot("card-blocked").await;
    assert!(!browser.source().await.contains("4761739001010010"));

    // A broken balance file is refused with its line errors; nothing changes.
    let before = bank_a_balances(&api).await;
    let file = world.dir.path().join("broken-balances.csv");
    std::fs::write(&file, broken_balances()).unwrap();
    browser.click_away(r#"nav a[href="/balances"]"#).await;
    browser
        .find("#file-bank-a")
        .await
        .send_keys(file.to_str().unwrap())
        .await
        .unwrap();
    browser.click_away("#upload-bank-a button").await;
    assert_eq!(
        browser.text("#refused-heading").await,
        "bank-a: the file was refused; nothing changed"
    );
    let errors = browser.text("table.line-errors tbody").await;
    assert!(
        errors.contains("3") && errors.contains("available") && errors.contains("currency"),
        "{errors}"
    );
    browser.screenshot("balances-refused").await;
    assert_eq!(bank_a_balances(&api).await, before);

    // The auditor finds the change in the audit log.
    browser.click_away("header form button").await;
    log_in(&browser, &api, AUDITOR).await;
    browser.click_away(r#"nav a[href="/audit"]"#).await;
    browser
        .find("#action")
        .await
        .select_by_value("card.status")
        .await
        .unwrap();
    browser.click_away("main form.search button").await;
    assert_eq!(browser.text("#entries-heading").await, "1 entries");
    let row = browser.text("table.audit tbody tr").await;
    for want in [
        OPERATOR,
        "bank-operator",
        "card.status",
        CARD_A,
        r#""status":"active""#,
        r#""status":"blocked""#,
        "holder reported it missing",
        "done",
    ] {
        assert!(row.contains(want), "{want:?} missing in {row}");
    }
    browser.screenshot("audit").await;
}

/// Logs `name` in through the login form.
async fn log_in(browser: &browser::Browser, api: &str, name: &str) {
    browser.open(&format!("{api}/login")).await;
    browser.fill("#name", name).await;
    browser.fill("#password", PASSWORD).await;
    browser.click_away("main form button[type=submit]").await;
    assert_eq!(browser.text("#me").await, name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_requeued_by_whom_may_change_them() {
    let world = world().await;
    let api = world.served.api();
    let admin = SignedIn::log_in(&api, ADMIN, PASSWORD).await;
    let operator = SignedIn::log_in(&api, OPERATOR, PASSWORD).await;
    let auditor = SignedIn::log_in(&api, AUDITOR, PASSWORD).await;

    // A stand-in approval whose advice the account system refuses until
    // it dies (3 attempts).
    Mock::given(method("POST"))
        .and(body_string_contains("<as:Advice "))
        .respond_with(ResponseTemplate::new(500).set_body_string("account locked"))
        .with_priority(2)
        .mount(&world.bank)
        .await;
    let csv = balances_csv(&hours_ago(1), &[("A-1001", "500.00")]);
    assert_eq!(admin.upload("bank-a", &csv).await.0, 200);
    let closed = [("state", "closed"), ("reason", "night")];
    assert_eq!(
        admin.post("/institutions/bank-a/state", &closed).await.0,
        303
    );
    let switch = client(&world.served.switch("base24")).await;
    assert_eq!(
        code_of(&switch, &purchase(ACTIVE_USD, 1_000, 1)).await,
        "00"
    );
    let open = [("state", "open"), ("reason", "morning")];
    assert_eq!(admin.post("/institutions/bank-a/state", &open).await.0, 303);
    let mut dead = serde_json::Value::Null;
    for _ in 0..500 {
        dead = api_get(&api, "/api/saf?state=dead").await.1;
        if dead["items"].as_array().is_some_and(|i| !i.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seq = dead["items"][0]["seq"].as_i64().expect("a dead letter");
    let requeue = format!("/saf/{seq}/requeue");

    // The page offers it to those who may change bank-a, not the auditor.
    let (_, page) = operator.get("/saf?state=dead").await;
    assert!(page.contains(&format!(r#"action="{requeue}""#)), "{page}");
    let (_, page) = auditor.get("/saf?state=dead").await;
    assert!(page.contains(&format!("<td>{seq}</td>")) && !page.contains(&requeue));
    let (status, _, _) = auditor.post(&requeue, &[]).await;
    assert_eq!(status, 403);
    let forged = SignedIn {
        csrf: "00".repeat(32),
        ..SignedIn::log_in(&api, OPERATOR, PASSWORD).await
    };
    assert_eq!(forged.post(&requeue, &[]).await.0, 403);
    assert!(audited(&api, "saf.requeue").await.is_empty());

    // Re-queued (pending again), audited; a second time it is no dead letter.
    let (status, to, _) = operator.post(&requeue, &[]).await;
    assert_eq!(status, 303);
    assert!(to.starts_with("/saf?state="), "{to}");
    let entries = audited(&api, "saf.requeue").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (&entries[0]["actor"], &entries[0]["object_id"]),
        (
            &serde_json::json!(OPERATOR),
            &serde_json::json!(seq.to_string())
        )
    );
    assert_eq!(operator.post(&requeue, &[]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_change_their_own_password_after_giving_the_current_one() {
    let world = world().await;
    let api = world.served.api();
    let auditor = SignedIn::log_in(&api, AUDITOR, PASSWORD).await;
    let new = "a much longer passphrase";
    let change = |current: &'static str, new: &'static str, repeat: &'static str| {
        [("current", current), ("new", new), ("repeat", repeat)]
    };

    let (status, page) = auditor.get("/password").await;
    assert_eq!(status, 200);
    assert!(page.contains(r#"type="password" id="current""#), "{page}");
    for (fields, why) in [
        (
            change("wrong password!", new, new),
            "the current password is wrong",
        ),
        (change(PASSWORD, new, "a much longer passphrasE"), "differ"),
        (change(PASSWORD, "short", "short"), "a password has 12"),
    ] {
        let (status, _, page) = auditor.post("/password", &fields).await;
        assert_eq!(status, 422, "{why}");
        assert!(page.contains(why), "{why} missing in {page}");
    }
    let forged = SignedIn {
        csrf: "00".repeat(32),
        ..SignedIn::log_in(&api, AUDITOR, PASSWORD).await
    };
    assert_eq!(
        forged
            .post("/password", &change(PASSWORD, new, new))
            .await
            .0,
        403
    );
    assert_eq!(
        http_login(&api, AUDITOR, PASSWORD, None).await.status(),
        303
    );

    let (status, _, page) = auditor.post("/password", &change(PASSWORD, new, new)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Your password was changed."), "{page}");
    assert_eq!(http_login(&api, AUDITOR, new, None).await.status(), 303);
    assert_ne!(
        http_login(&api, AUDITOR, PASSWORD, None).await.status(),
        303
    );
    let entries = audited(&api, "user.set-password").await;
    let outcomes: Vec<&str> = entries
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["done", "failed"]);
}
