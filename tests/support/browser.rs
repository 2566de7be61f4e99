//! A real headless Chromium driven over WebDriver (fantoccini): Debian's
//! `chromedriver` (installed by `scripts/browser-env`) started on a port it
//! picks itself (`--port=0`, read back from its own output, so no port is
//! chosen here and raced for), one browser session per [`Browser`], and
//! screenshots: into `docs/web/` for `docs/web.md` with
//! `UPDATE_SCREENSHOTS=1`, else under the target folder (a test run leaves
//! the work tree as it was).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::oneshot;

use super::WAIT;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A chromedriver process and one headless Chromium session on it; the
/// process is killed on drop (the session ends with it).
pub struct Browser {
    pub client: Client,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromedriver and a headless Chromium session (1280×900).
/// Panics with what to run when chromedriver is missing.
pub async fn start() -> Browser {
    assert!(
        std::path::Path::new(CHROMEDRIVER).exists(),
        "{CHROMEDRIVER} is missing: run scripts/browser-env (as root) first"
    );
    let mut driver = Command::new(CHROMEDRIVER)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = driver.stdout.take().unwrap();
    let (port_tx, port_rx) = oneshot::channel();
    // Reads the port, then drains chromedriver's output for its whole life.
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line
                .split_once("started successfully on port ")
                .and_then(|(_, rest)| rest.trim_end_matches('.').parse::<u16>().ok());
            if let Some(port) = port
                && let Some(tx) = port_tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = tokio::time::timeout(WAIT, port_rx)
        .await
        .expect("chromedriver did not say its port")
        .expect("chromedriver exited");
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--window-size=1280,900", "--disable-dev-shm-usage",
                     "--no-first-run", "--disable-extensions"],
        }),
    );
    let client = ClientBuilder::new(HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");
    Browser { client, driver }
}

impl Browser {
    /// Opens `url` and waits for its `<main>`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.unwrap();
        self.find("main").await;
    }

    /// The element matching `css`, waited for up to [`WAIT`].
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css:?} on the page: {e}"))
    }

    /// The text of the element matching `css` (found again when the page
    /// replaced it in between, as the dashboard's refresh does).
    pub async fn text(&self, css: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) => assert!(
                    tokio::time::Instant::now() < deadline,
                    "{css:?} cannot be read: {e}"
                ),
            }
        }
    }

    /// Clicks the button matching `css` and waits until the browser has
    /// left the page (a form posted, a link followed).
    pub async fn click_away(&self, css: &str) {
        let old = self.find("html").await;
        self.find(css).await.click().await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        while old.tag_name().await.is_ok() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "clicking {css:?} did not leave the page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.find("main").await;
    }

    /// Types `value` into the field matching `css` (cleared first).
    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// The whole page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Polls until `css`'s text satisfies `condition` (at most [`WAIT`]);
    /// returns that text.
    pub async fn wait_for_text(&self, css: &str, condition: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let text = self.text(css).await;
            if condition(&text) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{css:?} still reads {text:?} after {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Logs `name` in through the login form at `api` and waits for the
    /// page it leads to, which names the user.
    pub async fn log_in(&self, api: &str, name: &str, password: &str) {
        self.open(&format!("{api}/login")).await;
        self.fill("#name", name).await;
        self.fill("#password", password).await;
        self.click_away("main form button[type=submit]").await;
        assert_eq!(self.text("#me").await, name);
    }

    /// Saves a PNG of the viewport as `NAME.png`: in `docs/web/` with
    /// `UPDATE_SCREENSHOTS=1`, else in the target folder's `screenshots/`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/web")
        } else {
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }
}
