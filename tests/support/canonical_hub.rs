//! A hub whose bank-a calls its account system through the canonical
//! adapter (adapters/canonical.toml aimed at a given URL), with the hub's API,
//! a drop folder, a quick breaker and quick replay: for the stand-in tests
//! (wiremock as the account system) and the WSDL vendor test (node-soap).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cardhub_core::api;
use cardhub_core::app;
use cardhub_core::config::Config;
use cardhub_core::fleet::Holder;
use cardhub_core::hub::pipeline::Hub;
use cardhub_core::link::{self, RunningLink};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const TOKEN: &str = "stand-in-test-token-0123";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo().join("fixtures/soap/canonical").join(name)).unwrap()
}

/// A hub whose bank-a goes through the canonical adapter to `bank_url`,
/// with an API, a drop folder, quick breaker and replay settings.
pub struct StandInHub {
    pub hub: Arc<Hub>,
    pub link: RunningLink,
    pub switch: String,
    pub api: String,
    pub dir: tempfile::TempDir,
}

pub async fn start_hub(bank_url: &str, switch_timeout_ms: u64) -> StandInHub {
    let (dir, _) = super::prepare("").await;
    let config = write_config(
        dir.path(),
        bank_url,
        switch_timeout_ms,
        "127.0.0.1:0",
        "127.0.0.1:0",
    );
    let (hub, _adapters) = app::open_with_adapters(&config).unwrap();
    let hub = Arc::new(hub);
    let link = link::start(&config.switches, &config.link, hub.clone())
        .await
        .unwrap();
    app::spawn_background(
        &hub,
        &config,
        &Holder::new(config.fleet.instance),
        link.shutdown_token(),
    );
    let running = api::server::start(
        config.api.as_ref().unwrap(),
        hub.clone(),
        config.institutions.clone().into(),
        &config.prepaid,
        link.stats_source(),
        link.shutdown_token(),
    )
    .await
    .unwrap();
    StandInHub {
        hub,
        switch: link.local_addr("base24").unwrap().to_string(),
        link,
        api: format!("http://{}", running.addr),
        dir,
    }
}

/// Writes the canonical adapter (to `bank_url`) and the hub's config into
/// a prepared directory: bank-a online through it, with an API, a drop
/// folder, a quick breaker and quick replay.
pub fn write_config(
    dir: &Path,
    bank_url: &str,
    switch_timeout_ms: u64,
    switch: &str,
    api: &str,
) -> Config {
    let adapters = dir.join("adapters");
    std::fs::create_dir_all(&adapters).unwrap();
    std::fs::create_dir_all(dir.join("drop")).unwrap();
    let canonical = std::fs::read_to_string(repo().join("adapters/canonical.toml"))
        .unwrap()
        .replace(
            "http://127.0.0.1:8080/account-system",
            &format!("{bank_url}/account-system"),
        );
    std::fs::write(adapters.join("canonical.toml"), canonical).unwrap();
    let text = super::config_text_in(dir, &format!(
        "switch_timeout_ms = {switch_timeout_ms}\n\n[api]\nlisten = \"{api}\"\ntoken = \"{TOKEN}\"\n"
    ))
    .replace("address = \"127.0.0.1:0\"", &format!("address = \"{switch}\""))
    .replace(
        "id = \"bank-a\"\nname = \"Bank A\"\nmode = \"online\"",
        "id = \"bank-a\"\nname = \"Bank A\"\nmode = \"online\"\nadapter = \"canonical\"\n\
         drop_folder = \"drop\"\n\
         balances = { format = \"csv\", account = \"account\", available = \"available\", currency = \"currency\", as_of_line = \"#as_of=\" }\n\
         stand_in = { floor_limit = 200000, reserve_ms = 300 }\n\
         breaker = { failures = 3, window_secs = 30, probe_interval_ms = 100 }\n\
         saf = { concurrency = 4, max_attempts = 3, backoff_initial_ms = 20, backoff_max_ms = 100 }",
    );
    let text = format!("adapters_dir = \"adapters\"\n{text}");
    std::fs::write(dir.join("cardhub.toml"), text).unwrap();
    Config::load(&dir.join("cardhub.toml")).unwrap()
}

impl StandInHub {
    pub async fn upload(&self, csv: &str) -> (u16, serde_json::Value) {
        let response = super::http()
            .post(format!("{}/api/institutions/bank-a/balances", self.api))
            .bearer_auth(TOKEN)
            .body(csv.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_str(&response.text().await.unwrap()).unwrap(),
        )
    }

    pub async fn status_notify(&self, state: &str) -> String {
        let body = fixture("status-notify-request.soap11.xml").replace("CLOSING", state);
        let response = super::http()
            .post(format!("{}/soap/hub", self.api))
            .bearer_auth(TOKEN)
            .header("content-type", "text/xml; charset=utf-8")
            .header("SOAPAction", "\"urn:cardhub:hub:v1#StatusNotify\"")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.text().await.unwrap()
    }

    pub fn state(&self) -> &'static str {
        self.hub
            .institutions()
            .get("bank-a")
            .unwrap()
            .state()
            .as_str()
    }

    /// The newest journaled request's response code and reason, for a
    /// failing assertion to say why the hub answered as it did.
    pub fn last_decision(&self) -> String {
        self.hub
            .store()
            .read(|c| {
                c.query_row(
                    "SELECT response_code || ': ' || reason FROM journal \
                     WHERE entry = 'request' ORDER BY txn_id DESC LIMIT 1",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap_or_else(|e| format!("journal not readable: {e}"))
    }

    /// Journal rows: (txn id as hex, response code, decided by) of requests.
    pub fn journal(&self, sql_filter: &str) -> Vec<(String, String, String)> {
        let sql = format!(
            "SELECT txn_id, response_code, decided_by FROM journal \
             WHERE entry = 'request' AND {sql_filter} ORDER BY txn_id"
        );
        self.hub
            .store()
            .read(|c| {
                c.prepare_cached(&sql)?
                    .query_map([], |r| {
                        Ok((format!("{:016X}", r.get::<i64>(0)?), r.get(1)?, r.get(2)?))
                    })?
                    .collect()
            })
            .unwrap()
    }
}

pub fn balances_csv(as_of: &str, rows: &[(&str, &str)]) -> String {
    let mut csv = format!("#as_of={as_of}\naccount,available,currency\n");
    for (account, amount) in rows {
        csv.push_str(&format!("{account},{amount},USD\n"));
    }
    csv
}

pub fn hours_ago(h: i64) -> String {
    (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(h)).to_string()
}

pub async fn wait_for<F: Fn() -> bool>(what: &str, condition: F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mounts the canonical account system's answers: every authorization
/// approved, advices and reversals acknowledged, balance inquiries answered.
pub async fn mount_bank(server: &MockServer, authorize_delay: Duration) {
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
pub async fn told(server: &MockServer, element: &str) -> Vec<(String, Option<String>)> {
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
pub async fn wait_told(
    bank: &MockServer,
    element: &str,
    n: usize,
) -> Vec<(String, Option<String>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let seen = told(bank, element).await;
        if seen.len() >= n || tokio::time::Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn http_get(api: &str, path: &str) -> String {
    super::http()
        .get(format!("{api}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

pub async fn api_post(api: &str, path: &str, body: reqwest::Body) -> u16 {
    super::http()
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

impl StandInHub {
    pub async fn get(&self, path: &str) -> serde_json::Value {
        serde_json::from_str(&http_get(&self.api, path).await).unwrap()
    }

    pub async fn post(&self, path: &str) -> u16 {
        api_post(&self.api, path, reqwest::Body::from("")).await
    }
}
