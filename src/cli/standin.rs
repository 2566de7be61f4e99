//! `cardhub institutions …`, `cardhub saf …` and `cardhub balances …`:
//! institution states, the store-and-forward queue and balance files.
//!
//! State changes and queue changes are written to the store the running hub
//! uses; it picks them up within a second. Balance files are uploaded to the
//! running hub's API (its `[api]` section), with a progress bar.

use std::io::Read;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::Timestamp;

use super::ConfigArg;
use cardhub_core::config::Config;
use cardhub_core::standin::saf;
use cardhub_core::standin::state::{self, InstitutionState, Source};

#[derive(Debug, Subcommand)]
pub enum InstitutionsCommand {
    /// List institutions with their states.
    List(ConfigArg),
    /// Signal a state: open, closing or closed (as StatusNotify would).
    SetState {
        institution: String,
        state: String,
        /// Why, for the journal of transitions.
        #[arg(long, default_value = "set by an operator")]
        reason: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum SafCommand {
    /// List queue items (dead letters with `--state dead`).
    List {
        #[arg(long)]
        institution: Option<String>,
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Put a dead letter back into the queue with fresh attempts.
    Requeue {
        seq: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Stop an institution's replay (deliveries in progress finish).
    Pause {
        institution: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Let an institution's replay run again.
    Resume {
        institution: String,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum BalancesCommand {
    /// Upload a balance file to the running hub (applied whole or refused whole).
    Upload {
        institution: String,
        file: PathBuf,
        /// The file's as-of time (RFC 3339), when the file does not carry one.
        #[arg(long)]
        as_of: Option<Timestamp>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub fn run_institutions(command: InstitutionsCommand) -> Result<()> {
    match command {
        InstitutionsCommand::List(config) => {
            let (config, store) = config.open()?;
            let stored = store.read(|c| {
                c.prepare_cached("SELECT institution, state, reason, changed_us, saf_paused FROM institution_state")?
                    .query_map([], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<String>(2)?, r.get::<i64>(3)?, r.get::<bool>(4)?)))?
                    .collect::<cardhub_core::store::sql::Result<Vec<_>>>()
            })?;
            writeln!(
                std::io::stdout(),
                "{:<16} {:<13} {:<7} {:<25} reason",
                "institution",
                "state",
                "paused",
                "since"
            )?;
            for inst in &config.institutions {
                let row = stored.iter().find(|r| r.0 == inst.id);
                let state = match (inst.mode, row) {
                    (cardhub_core::standin::config::InstitutionMode::OfflineOnly, _) => {
                        "offline-only"
                    }
                    (_, Some(r)) => r.1.as_str(),
                    (_, None) => "open",
                };
                let since = row
                    .and_then(|r| Timestamp::from_microsecond(r.3).ok())
                    .map_or_else(|| "-".to_string(), |t| t.to_string());
                let paused = row.is_some_and(|r| r.4);
                let reason = row.map_or("", |r| r.2.as_str());
                writeln!(
                    std::io::stdout(),
                    "{:<16} {state:<13} {paused:<7} {since:<25} {reason}",
                    inst.id
                )?;
            }
            Ok(())
        }
        InstitutionsCommand::SetState {
            institution,
            state,
            reason,
            config,
        } => {
            let (config, store) = config.open()?;
            let Some(inst) = config.institutions.iter().find(|i| i.id == institution) else {
                bail!("unknown institution {institution:?}");
            };
            let to: InstitutionState = state.parse()?;
            state::set_state_in_store(&store, inst, to, Source::Cli, &reason)?;
            writeln!(
                std::io::stdout(),
                "{institution}: {to} (the running hub applies it within a second)"
            )?;
            Ok(())
        }
    }
}

pub fn run_saf(command: SafCommand) -> Result<()> {
    match command {
        SafCommand::List {
            institution,
            state,
            limit,
            config,
        } => {
            let (_, store) = config.open()?;
            let filter = saf::Filter {
                institution,
                state,
                after: None,
                limit: Some(limit),
            };
            writeln!(
                std::io::stdout(),
                "{:>8} {:<12} {:<14} {:<8} {:<26} {:<9} {:>3} {:<10} why",
                "seq",
                "institution",
                "account",
                "op",
                "txn id",
                "state",
                "try",
                "code"
            )?;
            for (item, behind) in saf::list(&store, &filter)? {
                let why = match (behind, &item.last_error) {
                    (Some(seq), _) => format!("waits behind {seq}"),
                    (None, Some(e)) => e.clone(),
                    (None, None) => String::new(),
                };
                writeln!(
                    std::io::stdout(),
                    "{:>8} {:<12} {:<14} {:<8} {:<26} {:<9} {:>3} {:<10} {why}",
                    item.seq,
                    item.institution,
                    item.account,
                    item.operation,
                    item.txn_id,
                    item.state,
                    item.attempts,
                    item.last_code.as_deref().unwrap_or("-")
                )?;
            }
            Ok(())
        }
        SafCommand::Requeue { seq, config } => {
            let (_, store) = config.open()?;
            if !store.write_blocking(move |c| saf::requeue(c, seq))? {
                bail!("no dead letter {seq}");
            }
            writeln!(std::io::stdout(), "{seq}: back in the queue")?;
            Ok(())
        }
        SafCommand::Pause {
            institution,
            config,
        } => set_paused(&config, &institution, true),
        SafCommand::Resume {
            institution,
            config,
        } => set_paused(&config, &institution, false),
    }
}

fn set_paused(config: &ConfigArg, institution: &str, paused: bool) -> Result<()> {
    let (config, store) = config.open()?;
    if !config.institutions.iter().any(|i| i.id == institution) {
        bail!("unknown institution {institution:?}");
    }
    state::set_paused_in_store(&store, institution, paused, Source::Cli)?;
    writeln!(
        std::io::stdout(),
        "{institution}: SAF replay {}",
        if paused { "paused" } else { "resumed" }
    )?;
    Ok(())
}

pub fn run_balances(command: BalancesCommand) -> Result<()> {
    match command {
        BalancesCommand::Upload {
            institution,
            file,
            as_of,
            config,
        } => upload(&config.config, &institution, &file, as_of),
    }
}

/// Streams a file to the hub's API with a progress bar.
fn upload(config: &Path, institution: &str, file: &Path, as_of: Option<Timestamp>) -> Result<()> {
    let config = Config::load(config)?;
    let Some(api) = config.api else {
        bail!("the configuration has no [api] section: there is no API to upload to");
    };
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    let bar = ProgressBar::new(size).with_style(
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let reader = bar.wrap_read(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    );
    let url = format!(
        "http://{}/api/institutions/{institution}/balances",
        api.listen
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let (status, body) = runtime.block_on(async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(4);
        std::thread::spawn(move || {
            let mut reader = reader;
            loop {
                let mut chunk = vec![0; 256 * 1024];
                match reader.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        chunk.truncate(n);
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        break;
                    }
                }
            }
        });
        let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
        let tls = cardhub_core::adapter::http::plain_http_tls()?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .context("building the HTTP client")?;
        let mut request = client.post(&url).bearer_auth(&api.token).body(body);
        if let Some(t) = as_of {
            request = request.header("X-As-Of", t.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("uploading to {url}"))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        anyhow::Ok((status, text))
    })?;
    bar.finish();
    let body: serde_json::Value =
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    if !status.is_success() {
        let mut message = body["error"]
            .as_str()
            .unwrap_or("upload refused")
            .to_string();
        for p in body["problems"].as_array().into_iter().flatten() {
            message.push_str(&format!(
                "\n  line {}{}: {}",
                p["line"],
                p["column"]
                    .as_str()
                    .map(|c| format!(", column {c}"))
                    .unwrap_or_default(),
                p["reason"].as_str().unwrap_or_default()
            ));
        }
        bail!("{status}: {message}");
    }
    if body["unchanged"].as_bool() == Some(true) {
        writeln!(
            std::io::stdout(),
            "{institution}: the same file was already applied; nothing changed"
        )?;
    } else {
        writeln!(
            std::io::stdout(),
            "{institution}: {} balances as of {} applied",
            body["rows"],
            body["as_of"].as_str().unwrap_or("?")
        )?;
    }
    Ok(())
}

/// The chunks of a channel as a stream.
fn tokio_stream_from(
    rx: tokio::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}
