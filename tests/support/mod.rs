//! Test support for hub tests: an account system implemented here (never in
//! `src/`), a hub started on real sockets with a real store in a temp dir,
//! and request builders.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cardhub_core::account::Balances;
use cardhub_core::account::{
    AccountAnswer, AccountError, AccountRequest, AccountSystem, Operation,
};
use cardhub_core::app;
use cardhub_core::cards::file;
use cardhub_core::config::Config;
use cardhub_core::hub::pipeline::Hub;
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::iso8583::{Dialect, Message};
use cardhub_core::link::frame::Framing;
use cardhub_core::link::{self, RunningLink};
use cardhub_core::store::{PostgresOptions, Store};
use cardhub_lab::sim::SimClient;
use futures::future::BoxFuture;

pub mod browser;
pub mod canonical_hub;
pub mod crash;
pub mod fleet;
pub mod pg;
pub mod prepaid;
pub mod prepaid_crash;
pub mod served;
pub mod web;

/// An HTTP client for the hub's API and the reference systems, with the
/// TLS set-up the hub's own adapters use.
pub fn http() -> reqwest::Client {
    let tls = cardhub_core::adapter::http::plain_http_tls().unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap()
}

/// A JSON API call with a bearer token: the status and the body (JSON, or
/// the text when it is not JSON).
pub async fn api_json(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    try_api_json(&http(), method, url, token, body.as_ref())
        .await
        .unwrap()
}

/// [`api_json`] through `client`, or the transport's error (the server
/// went away before it answered).
pub async fn try_api_json(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<&serde_json::Value>,
) -> Result<(u16, serde_json::Value), reqwest::Error> {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    ))
}

/// `cardhub ARGS… --config DIR/cardhub.toml` with `stdin` as its input.
pub fn cardhub_cli(dir: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .arg("--config")
        .arg(dir.join("cardhub.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

/// [`cardhub_cli`] that must succeed: its standard output.
pub fn cardhub_cli_ok(dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = cardhub_cli(dir, args, stdin);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Undoes migration 0019 (the merchant's name) on a SQLite store, for tests
/// that rewind the schema to an older version (after
/// [`UNDO_SEARCH_TABLES`]).
pub const UNDO_MERCHANT_NAME: &str = "ALTER TABLE journal DROP COLUMN merchant_name;
    ALTER TABLE call_intents DROP COLUMN merchant_name;
    ALTER TABLE prepaid_holds DROP COLUMN merchant_name;
    ALTER TABLE prepaid_entries DROP COLUMN merchant_name;";

/// Undoes migration 0020 (the search tables by card and by account) on a
/// SQLite store, for tests that rewind the schema to an older version.
pub const UNDO_SEARCH_TABLES: &str = "DROP TRIGGER journal_unindexed_row;
    DROP TABLE journal_unindexed; DROP TABLE journal_by_card; DROP TABLE journal_by_account;
    CREATE INDEX journal_card ON journal (pan_hash, txn_id) WHERE pan_hash IS NOT NULL;
    CREATE INDEX journal_account ON journal (account, txn_id) WHERE account IS NOT NULL;";

pub const WAIT: Duration = Duration::from_secs(10);

/// A delay no test waits out: an answer this late reaches only a caller
/// that ignores its deadline, and [`within_wait`] fails that caller.
pub const NEVER: Duration = Duration::from_secs(3_600);

/// `call`'s outcome, or a panic naming `what` once [`WAIT`] has passed —
/// a call that waited for an answer delayed by [`NEVER`] instead of giving
/// up at its deadline.
pub async fn within_wait<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, call)
        .await
        .unwrap_or_else(|_| panic!("{what}: still waiting after {WAIT:?}, past its deadline"))
}

/// Cards of fixtures/cards/demo-cards.csv.
pub const ACTIVE_USD: &str = "4761739001010010";
pub const ACTIVE_USD_2: &str = "4761739001010028";
pub const LOST: &str = "4761739001010036";
pub const STOLEN: &str = "4761739001010044";
pub const BLOCKED: &str = "4761739001010051";
pub const EXPIRED: &str = "4761739001010069";
pub const INACTIVE_PREPAID: &str = "4761739001010077";
pub const ACTIVE_PREPAID_EUR: &str = "4761739001010085";
pub const UNKNOWN: &str = "4761739001019999";

/// One call the account system received.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: &'static str,
    pub transaction_id: String,
    pub original: Option<String>,
    pub account: String,
    pub amount: u64,
}

/// An account system for tests: balances per account (default 1,000.00),
/// approves within the balance, 51 beyond it; can be slowed, held or cut off.
#[derive(Default)]
pub struct TestBank {
    balances: Mutex<HashMap<String, i64>>,
    pub calls: Mutex<Vec<Call>>,
    pub delay_ms: AtomicU32,
    pub unreachable: AtomicBool,
    /// The call panics (a bug on cardhub's side of the boundary).
    pub panics: AtomicBool,
    /// While set, answers (already decided) wait for [`TestBank::release`].
    held: AtomicBool,
    released: tokio::sync::Notify,
}

impl TestBank {
    /// Holds every answer from now on until [`TestBank::release`].
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Lets the held answers (and later ones) go.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
        self.released.notify_waiters();
    }

    async fn until_released(&self) {
        loop {
            // Created before the check: a release in between still wakes it.
            let released = self.released.notified();
            if !self.held.load(Ordering::SeqCst) {
                return;
            }
            released.await;
        }
    }

    pub fn calls(&self, operation: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|c| c.operation == operation)
            .cloned()
            .collect()
    }

    pub fn balance(&self, account: &str) -> i64 {
        *self
            .balances
            .lock()
            .unwrap()
            .get(account)
            .unwrap_or(&100_000)
    }

    pub fn set_balance(&self, account: &str, minor: i64) {
        self.balances.lock().unwrap().insert(account.into(), minor);
    }

    fn answer(
        &self,
        operation: &'static str,
        r: &AccountRequest,
        change: impl FnOnce(i64) -> Option<i64>,
    ) -> BoxFuture<'_, Result<AccountAnswer, AccountError>> {
        self.calls.lock().unwrap().push(Call {
            operation,
            transaction_id: r.transaction_id.clone(),
            original: r.original_transaction_id.clone(),
            account: r.account.clone(),
            amount: r.amount.minor,
        });
        let outcome = if self.unreachable.load(Ordering::SeqCst) {
            Err(AccountError::Unreachable("connection refused".into()))
        } else {
            let mut balances = self.balances.lock().unwrap();
            let balance = balances.entry(r.account.clone()).or_insert(100_000);
            match change(*balance) {
                Some(new) => {
                    *balance = new;
                    Ok(answer("00", "OK", new))
                }
                None => Ok(answer("51", "NSF", *balance)),
            }
        };
        let delay = Duration::from_millis(u64::from(self.delay_ms.load(Ordering::SeqCst)));
        let panics = self.panics.load(Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            self.until_released().await;
            assert!(!panics, "the test bank's call panics");
            outcome
        })
    }
}

fn answer(code: &str, raw: &str, balance: i64) -> AccountAnswer {
    AccountAnswer {
        code: ResponseCode::new(code).unwrap(),
        raw_code: raw.into(),
        auth_id: (code == "00").then(|| "AB1234".to_string()),
        balances: Some(Balances {
            available: balance,
            ledger: balance,
        }),
        message: None,
    }
}

impl AccountSystem for TestBank {
    fn name(&self) -> &str {
        "test-bank"
    }

    fn call<'a>(
        &'a self,
        operation: Operation,
        r: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        let amount = r.amount.minor as i64;
        match operation {
            Operation::Authorize => {
                self.answer("authorize", r, |b| (b >= amount).then_some(b - amount))
            }
            Operation::Load => self.answer("load", r, |b| Some(b + amount)),
            Operation::Reverse => self.answer("reverse", r, |b| Some(b + amount)),
            Operation::Advice => self.answer("advice", r, Some),
            Operation::BalanceInquiry => self.answer("balance_inquiry", r, Some),
        }
    }
}

/// Whether this run puts the hubs of the tests that can run on either
/// back end on PostgreSQL (`CARDHUB_TEST_POSTGRES=1`, set by `scripts/test`
/// for its PostgreSQL pass) instead of an SQLite file.
pub fn on_postgres() -> bool {
    std::env::var_os("CARDHUB_TEST_POSTGRES").is_some_and(|v| v == "1")
}

/// The `[store]` keys of a test hub whose files are in `dir`: `hub.db`
/// there, or, when [`on_postgres`], a database of its own on the tests'
/// PostgreSQL cluster, named after `dir` (created on first use).
pub fn store_keys(dir: &Path) -> String {
    if !on_postgres() {
        return "path = \"hub.db\"".into();
    }
    format!("url = \"{}\"", database_of(dir))
}

/// The store of a test whose files are in `dir`, opened as [`store_keys`]
/// chooses: `dir/hub.db`, or `dir`'s own PostgreSQL database.
pub fn open_store(dir: &Path) -> Store {
    if on_postgres() {
        Store::open_postgres(&database_of(dir), PostgresOptions::default()).unwrap()
    } else {
        Store::open(&dir.join("hub.db")).unwrap()
    }
}

/// The URL of the PostgreSQL database of the test whose files are in `dir`
/// (created on first use).
fn database_of(dir: &Path) -> String {
    let name: String = dir
        .file_name()
        .expect("a temp dir")
        .to_string_lossy()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut created = CREATED.lock().unwrap();
    match created
        .iter()
        .find(|u| u.ends_with(&format!("/store_{name}")))
    {
        Some(url) => url.clone(),
        None => {
            let url = pg::database(&name);
            created.push(url.clone());
            url
        }
    }
}

/// [`config_text`] for a hub whose files are in `dir`, its store chosen by
/// [`store_keys`].
pub fn config_text_in(dir: &Path, extra: &str) -> String {
    config_text(extra).replace("path = \"hub.db\"", &store_keys(dir))
}

/// The config of a test hub: demo keys, small ATM limits, two institutions.
pub fn config_text(extra: &str) -> String {
    format!(
        r#"
[store]
path = "hub.db"

[security]
pan_hash_key = "37cbfeb75e35b442706f6c70d0dd6f96f0afc0a67508122f4711ba8a25b47eb4"
pan_encryption_key = "23921b6f5cc3ceecf2768da2954e2d863a1c725acc3b20b464da401a98e35307"

[limits.standard]
atm = {{ per_transaction = 50000, daily_amount = 60000, daily_count = 3 }}
pos = {{ per_transaction = 500000, daily_amount = 100000000000, daily_count = 1000000 }}

[limits.prepaid]
atm = {{ per_transaction = 0, daily_amount = 0, daily_count = 0 }}
pos = {{ per_transaction = 20000, daily_amount = 50000, daily_count = 20 }}

[[institution]]
id = "bank-a"
name = "Bank A"
mode = "online"

[[institution]]
id = "bank-b"
name = "Bank B"
mode = "online"

[[switch]]
name = "base24"
role = "listen"
address = "127.0.0.1:0"
header = "ISO006000070"
{extra}
"#
    )
}

/// A hub on real sockets with its store in a temp dir; bank-a is `bank`,
/// bank-b has no account system.
pub struct TestHub {
    pub link: RunningLink,
    pub hub: Arc<Hub>,
    pub addr: String,
    pub config: Config,
    pub bank: Arc<TestBank>,
    pub dir: tempfile::TempDir,
}

/// Writes the config into a temp dir and imports the demo cards.
pub async fn prepare(extra: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cardhub.toml");
    std::fs::write(&path, config_text_in(dir.path(), extra)).unwrap();
    let config = Config::load(&path).unwrap();
    let hub = app::open(&config, HashMap::new()).unwrap();
    let cards = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cards/demo-cards.csv");
    let rows = file::read(&cards, &config.catalog()).unwrap();
    hub.cards().import(rows).await.unwrap();
    (dir, config)
}

/// Starts a hub over an existing prepared directory.
pub async fn start_in(dir: tempfile::TempDir, config: Config, bank: Arc<TestBank>) -> TestHub {
    let systems: HashMap<String, Arc<dyn AccountSystem>> =
        HashMap::from([("bank-a".to_string(), bank.clone() as Arc<dyn AccountSystem>)]);
    let hub = Arc::new(app::open(&config, systems).unwrap());
    linked(dir, config, hub, bank).await
}

/// The test hub of `hub` (opened on `config`, files in `dir`, `bank` its
/// account system), its switch link started.
pub async fn linked(
    dir: tempfile::TempDir,
    config: Config,
    hub: Arc<Hub>,
    bank: Arc<TestBank>,
) -> TestHub {
    let link = link::start(&config.switches, &config.link, hub.clone())
        .await
        .unwrap();
    let addr = link.local_addr("base24").unwrap().to_string();
    TestHub {
        link,
        hub,
        addr,
        config,
        bank,
        dir,
    }
}

pub async fn start(extra: &str) -> TestHub {
    let (dir, config) = prepare(extra).await;
    start_in(dir, config, Arc::new(TestBank::default())).await
}

/// A signed-on switch-side client.
pub async fn client(addr: &str) -> SimClient {
    let dialect = Arc::new(Dialect::shipped("base24").unwrap().unwrap());
    let c = SimClient::connect(addr, dialect, Framing::TwoByte, Some("ISO006000070".into()))
        .await
        .unwrap();
    c.sign_on().await.unwrap();
    c
}

/// A BASE24 request: `mti`, processing code, PAN, amount, STAN; POS header
/// unless the processing code is cash (ATM header).
pub fn request(mti: &str, processing: &str, pan: &str, amount: u64, stan: u32) -> Message {
    cardhub_lab::sim::template::base24_request(
        mti.parse().unwrap(),
        processing,
        pan,
        amount,
        stan,
        "840",
    )
}

pub fn purchase(pan: &str, amount: u64, stan: u32) -> Message {
    request("0100", "000000", pan, amount, stan)
}

pub fn cash(pan: &str, amount: u64, stan: u32) -> Message {
    request("0200", "011000", pan, amount, stan)
}

/// A 125.50 USD POS purchase on `account`, as the hub asks an account
/// system (the adapter tests' and benchmarks' sample request).
pub fn account_request(account: &str, deadline_in: Duration) -> AccountRequest {
    AccountRequest {
        transaction_id: "0193A2B4C5D60001".into(),
        institution: "bank-a".into(),
        account: account.into(),
        card: "476173******0010".into(),
        kind: cardhub_core::account::Kind::Purchase,
        financial: false,
        channel: cardhub_core::account::Channel::Pos,
        amount: cardhub_core::money::Money::new(
            12550,
            cardhub_core::money::Currency::from_numeric(840).unwrap(),
        ),
        terminal: "TERM0042".into(),
        merchant: Some("000012345678901".into()),
        merchant_name: None,
        transmission_time: "1122091405".into(),
        rrn: "532609123456".into(),
        original_transaction_id: None,
        decision: None,
        clear_pan: None,
        listen_until: None,
        decision_row: None,
        deadline: tokio::time::Instant::now() + deadline_in,
    }
}

/// Polls `condition` every 10 ms until it holds; panics naming `what`
/// after [`WAIT`].
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    within_wait(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Sends a request and returns the answer's DE 39.
pub async fn code_of(c: &SimClient, m: &Message) -> String {
    let (answer, _) = c.request(m, WAIT).await.unwrap();
    answer.response_code().unwrap().to_string()
}

/// Creates table `t (id, name)` by `create`, inserts rows `a` and `b`
/// through `Statement::insert`: the ids it answered, and the ids the table
/// holds for them.
pub fn inserted_ids(store: &Store, create: &'static str) -> ((i64, i64), (i64, i64)) {
    let answered = store
        .write_blocking(move |c| {
            c.execute_batch(create)?;
            let mut insert = c.prepare_insert("INSERT INTO t (name) VALUES (?1)")?;
            Ok((insert.insert(["a"])?, insert.insert(["b"])?))
        })
        .unwrap();
    let held = store
        .read(|c| {
            let id =
                |name: &str| c.query_row("SELECT id FROM t WHERE name = ?1", [name], |r| r.get(0));
            Ok((id("a")?, id("b")?))
        })
        .unwrap();
    (answered, held)
}
