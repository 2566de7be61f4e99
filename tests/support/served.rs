//! `cardhub serve` as a child process on the ports it chose: its config
//! binds port 0, it runs with `--log-json`, and its bound addresses are
//! read from its own log lines (the link's `listening` per switch, the
//! API's `API listening (…)`). No port is picked by the test and handed
//! over, which would race every other process for it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tokio::sync::mpsc;

use super::WAIT;

/// A running `cardhub serve` and where it listens.
pub struct Served {
    pub child: Child,
    /// Bound address per `[[switch]]` name.
    pub switches: HashMap<String, String>,
    /// The API's base URL (`http://…`), when the config has an `[api]`.
    pub api: Option<String>,
}

impl Served {
    /// The bound address of `switch`.
    pub fn switch(&self, switch: &str) -> String {
        self.switches[switch].clone()
    }

    /// The API's base URL.
    pub fn api(&self) -> String {
        self.api.clone().expect("the config has an [api]")
    }
}

/// An address one log line reports bound.
enum Bound {
    Switch(String, String),
    Api(String),
}

fn bound(line: &str) -> Option<Bound> {
    let line: serde_json::Value = serde_json::from_str(line).ok()?;
    let fields = &line["fields"];
    let addr = fields["addr"].as_str()?.to_string();
    match fields["message"].as_str()? {
        "listening" => Some(Bound::Switch(fields["switch"].as_str()?.to_string(), addr)),
        m if m.starts_with("API listening") => Some(Bound::Api(addr)),
        _ => None,
    }
}

/// [`serve`] of `DIR/cardhub.toml`, logging to `DIR/hub.log`, with the
/// `base24` switch and the API.
pub async fn serve_dir(dir: &Path) -> Served {
    serve(
        &dir.join("cardhub.toml"),
        &[],
        &dir.join("hub.log"),
        &["base24"],
        true,
    )
    .await
}

/// Starts `cardhub --log-json serve --config CONFIG ARGS…`, its log
/// appended to `log`, and waits (at most [`WAIT`]) until it has reported
/// the address of every switch in `switches` and, with `api`, the API's.
/// Panics, pointing at the log, when it exits or stays silent instead.
pub async fn serve(
    config: &Path,
    args: &[&str],
    log: &Path,
    switches: &[&str],
    api: bool,
) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["--log-json", "serve", "--config"])
        .arg(config)
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let (reported, mut reports) = mpsc::unbounded_channel();
    // Drains the log for the child's whole life: a full pipe would stall it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(file, "{line}");
            if let Some(address) = bound(&line) {
                let _ = reported.send(address);
            }
        }
    });
    let mut served = Served {
        child,
        switches: HashMap::new(),
        api: None,
    };
    let all_reported = tokio::time::timeout(WAIT, async {
        while !switches.iter().all(|s| served.switches.contains_key(*s))
            || (api && served.api.is_none())
        {
            match reports.recv().await {
                Some(Bound::Switch(name, addr)) => {
                    served.switches.insert(name, addr);
                }
                Some(Bound::Api(addr)) => served.api = Some(format!("http://{addr}")),
                None => return false, // the log ended: the child exited
            }
        }
        true
    })
    .await;
    if !matches!(all_reported, Ok(true)) {
        let _ = served.child.kill();
        let _ = served.child.wait();
        panic!(
            "cardhub serve did not report where it listens; see {}",
            log.display()
        );
    }
    served
}
