//! The hub on loopback with the reference account system as bank-a's, the
//! setup `cardhub demo` and `cardhub bench` share: the configuration (demo
//! keys, the canonical adapter pointed at the reference system), the API
//! token, an HTTP client for the API and test-range card numbers.

use std::path::Path;

use anyhow::{Context, Result, bail};
use reqwest::Method;

use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::store::write_private;

/// The API's bearer token in loopback configs (public in the repository).
pub const TOKEN: &str = "demo-token-public-in-the-repository";

/// The canonical adapter as shipped; its URL is replaced by the reference system's.
const ADAPTER: &str = include_str!("../../../adapters/canonical.toml");

/// What a loopback configuration is made of.
pub struct Setup<'a> {
    /// Base URL of bank-a's account system (`http://host:port`).
    pub bank_url: &'a str,
    /// The API's address (`127.0.0.1:0` for any free port).
    pub api: &'a str,
    /// The switch listener's address.
    pub switch: &'a str,
    /// The card file, written as `cards.csv` beside the config.
    pub cards: &'a str,
    /// The store: a PostgreSQL database's URL, or `None` for SQLite's
    /// `demo.db` beside the config.
    pub store_url: Option<&'a str>,
    /// More TOML appended after the `[[switch]]` table (further tables, such
    /// as another `[limits.<name>]` profile).
    pub extra: &'a str,
}

/// Writes the card file, the canonical adapter and the config into `dir`
/// (which must exist) and loads the config: bank-a online through the
/// canonical adapter, bank-b offline-only (balance files alone), the API
/// with [`TOKEN`], one BASE24 listener.
///
/// # Errors
///
/// A file cannot be written, or the config does not load.
pub fn write_config(dir: &Path, setup: &Setup) -> Result<Config> {
    std::fs::create_dir_all(dir.join("adapters"))?;
    // Card numbers and keys: readable by the owner alone.
    write_private(&dir.join("cards.csv"), setup.cards.as_bytes())?;
    let adapter = ADAPTER.replace("http://127.0.0.1:8080", setup.bank_url);
    std::fs::write(dir.join("adapters/canonical.toml"), adapter)?;
    let Setup {
        api, switch, extra, ..
    } = setup;
    // Debug quoting escapes `"` and `\` as a TOML basic string does.
    let store = match setup.store_url {
        Some(url) => format!("url = {url:?}"),
        None => "path = \"demo.db\"".into(),
    };
    let text = format!(
        r##"adapters_dir = "adapters"
[store]
{store}
# DEMO KEYS — public in the repository, they protect nothing.
[security]
pan_hash_key = "37cbfeb75e35b442706f6c70d0dd6f96f0afc0a67508122f4711ba8a25b47eb4"
pan_encryption_key = "23921b6f5cc3ceecf2768da2954e2d863a1c725acc3b20b464da401a98e35307"
[limits.standard]
atm = {{ per_transaction = 50000, daily_amount = 100000, daily_count = 10 }}
pos = {{ per_transaction = 500000, daily_amount = 1000000, daily_count = 50 }}
[limits.prepaid]
atm = {{ per_transaction = 0, daily_amount = 0, daily_count = 0 }}
pos = {{ per_transaction = 20000, daily_amount = 50000, daily_count = 20 }}
[api]
listen = "{api}"
token = "{TOKEN}"
[[institution]]
id = "bank-a"
name = "Bank A"
mode = "online"
adapter = "canonical"
balances = {{ format = "csv", account = "account", available = "available", currency = "currency", as_of_line = "#as_of=" }}
breaker = {{ probe_interval_ms = 200 }}
saf = {{ backoff_initial_ms = 50, backoff_max_ms = 1000 }}
[[institution]]
id = "bank-b"
name = "Bank B (prepaid programs, never online)"
mode = "offline-only"
balances = {{ format = "csv", account = "account", available = "available", currency = "currency", as_of_line = "#as_of=" }}
[[switch]]
name = "base24"
role = "listen"
address = "{switch}"
header = "ISO006000070"
{extra}"##
    );
    write_private(&dir.join("cardhub.toml"), text.as_bytes())?;
    Ok(Config::load(&dir.join("cardhub.toml"))?)
}

/// An HTTP client for the loopback API and the reference system (plain HTTP).
///
/// # Errors
///
/// The client cannot be built.
pub fn http_client() -> Result<reqwest::Client> {
    let tls = cardhub_core::adapter::http::plain_http_tls()?;
    Ok(reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()?)
}

/// POSTs `body` to `url` with [`TOKEN`]; the answer's text.
///
/// # Errors
///
/// The request fails, or the answer is not a success (its text in the error).
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    content_type: &str,
    body: String,
) -> Result<String> {
    send(http, Method::POST, url, Some((content_type, body))).await
}

/// Sends a `method` request to `url` with [`TOKEN`] and, when given, a body
/// of its content type; the answer's text.
///
/// # Errors
///
/// The request fails, or the answer is not a success (its text in the error).
pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    body: Option<(&str, String)>,
) -> Result<String> {
    let mut request = http.request(method, url).bearer_auth(TOKEN);
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    let response = request.send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("{url}: {status}: {text}");
    }
    Ok(text)
}

/// A test-range card number: `body` and the digit that makes the Luhn
/// check pass.
///
/// # Errors
///
/// `body` is not 11 to 18 digits.
pub fn luhn_pan(body: &str) -> Result<Pan> {
    (0..10)
        .filter_map(|d| Pan::new(&format!("{body}{d}")).ok())
        .find(Pan::luhn_ok)
        .with_context(|| format!("no card number of {} digits", body.len() + 1))
}
