//! `cardhub status`: one screen of the hub's health, read from its store —
//! institutions with their states, SAF depth and dead letters, the current
//! balance file, and the traffic of the last minute.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use jiff::Timestamp;

use cardhub_core::config::Config;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::standin::config::InstitutionMode;
use cardhub_core::standin::{balances, saf};

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Configuration file of the hub.
    #[arg(long, default_value = "cardhub.toml")]
    config: PathBuf,
}

pub fn run(args: StatusArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let store = config
        .open_store()
        .with_context(|| format!("opening {}", config.store_location()))?;
    let states: Vec<(String, String, i64)> = store.read(|c| {
        c.prepare_cached("SELECT institution, state, changed_us FROM institution_state")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect()
    })?;
    let depths = saf::depths(&store)?;
    let files = balances::current_files(&store)?;
    let now = Timestamp::now();
    let since = TxnId::at(now - std::time::Duration::from_secs(60));
    let traffic: Vec<(String, String, i64)> = store.read(move |c| {
        c.prepare_cached(
            "SELECT COALESCE(institution, '-'), decided_by, COUNT(*) FROM journal \
             WHERE txn_id >= ?1 AND entry = 'request' GROUP BY 1, 2 ORDER BY 1, 2",
        )?
        .query_map([since.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect()
    })?;

    writeln!(
        std::io::stdout(),
        "cardhub status at {}",
        now.strftime("%Y-%m-%d %H:%M:%S UTC")
    )?;
    writeln!(std::io::stdout())?;
    writeln!(
        std::io::stdout(),
        "{:<14} {:<13} {:<21} {:>8} {:>5}  balance file",
        "institution",
        "state",
        "since",
        "saf",
        "dead"
    )?;
    for inst in &config.institutions {
        let stored = states.iter().find(|s| s.0 == inst.id);
        let state = match (inst.mode, stored) {
            (InstitutionMode::OfflineOnly, _) => "offline-only",
            (_, Some(s)) => s.1.as_str(),
            (_, None) => "open",
        };
        let since = stored
            .and_then(|s| Timestamp::from_microsecond(s.2).ok())
            .map_or_else(
                || "-".into(),
                |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            );
        let (pending, dead) = depths
            .iter()
            .find(|d| d.0 == inst.id)
            .map_or((0, 0), |d| (d.1, d.2));
        let file = files.iter().find(|f| f.institution == inst.id).map_or_else(
            || "none".to_string(),
            |f| {
                let age = (now.as_microsecond() - f.as_of_us) / 3_600_000_000;
                format!("{} rows, as of {age} h ago", f.rows)
            },
        );
        writeln!(
            std::io::stdout(),
            "{:<14} {state:<13} {since:<21} {pending:>8} {dead:>5}  {file}",
            inst.id
        )?;
    }
    writeln!(std::io::stdout())?;
    writeln!(std::io::stdout(), "last minute")?;
    if traffic.is_empty() {
        writeln!(std::io::stdout(), "  no requests")?;
    }
    for (institution, decided_by, count) in traffic {
        writeln!(
            std::io::stdout(),
            "  {institution:<14} {decided_by:<15} {count:>8}"
        )?;
    }
    Ok(())
}
