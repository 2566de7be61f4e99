//! `cardhub cards …`: import card files, show and change cards. Every PAN is
//! printed masked. A PAN argument of `-` is read from standard input, which
//! keeps it out of the shell history and the process list.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use crate::cards::card::{Card, CardStatus};
use crate::cards::config::Catalog;
use crate::cards::{CardError, CardRegistry, PanKeys, file};
use crate::config::Config;
use crate::iso8583::fields::Pan;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum CardsCommand {
    /// Import a card file (CSV) whole: every line is checked first, and one
    /// bad line rejects the file with nothing changed.
    Import {
        /// The card file.
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show a card (masked).
    Show(CardArg),
    /// Block a card (status `blocked`).
    Block(CardArg),
    /// Unblock a blocked card (back to `active`).
    Unblock(CardArg),
    /// Set a card's status: active, inactive, blocked, lost, stolen, expired, closed.
    SetStatus {
        #[command(flatten)]
        card: CardArg,
        /// The new status. Checked by cardhub, not the argument parser, so a
        /// card number given here by mistake is not echoed in clear.
        status: String,
    },
    /// Give a card another limits profile (a `[limits.<name>]` of the config).
    SetLimits {
        #[command(flatten)]
        card: CardArg,
        profile: String,
    },
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Configuration file (store, PAN keys, institutions, limits profiles).
    #[arg(long, default_value = "cardhub.toml")]
    config: PathBuf,
}

#[derive(Debug, Args)]
pub struct CardArg {
    /// Card number, or `-` to read it from standard input.
    pan: String,
    #[command(flatten)]
    config: ConfigArg,
}

pub fn run(command: CardsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        match command {
            CardsCommand::Import { file, config } => import(&file, &config.config).await,
            CardsCommand::Show(card) => {
                let (registry, pan) = card.open()?;
                match registry.get(&pan)? {
                    Some(found) => print_card(&found),
                    None => Err(CardError::UnknownCard { card: pan.masked() }.into()),
                }
            }
            CardsCommand::Block(card) => {
                let (registry, pan) = card.open()?;
                print_card(&registry.set_status(&pan, CardStatus::Blocked).await?)
            }
            CardsCommand::Unblock(card) => {
                let (registry, pan) = card.open()?;
                print_card(&registry.unblock(&pan).await?)
            }
            CardsCommand::SetStatus { card, status } => {
                let status: CardStatus = status.parse()?;
                let (registry, pan) = card.open()?;
                print_card(&registry.set_status(&pan, status).await?)
            }
            CardsCommand::SetLimits { card, profile } => {
                let (registry, pan) = card.open()?;
                print_card(&registry.set_profile(&pan, &profile).await?)
            }
        }
    })
}

/// Checks the whole file, then applies it in one write; prints every bad line.
async fn import(path: &Path, config: &Path) -> Result<()> {
    let (registry, config) = open_registry(config)?;
    let rows = match file::read(path, &Catalog::from_config(&config)) {
        Ok(rows) => rows,
        Err(CardError::File {
            path,
            total,
            errors,
        }) => {
            let mut err = std::io::stderr().lock();
            for e in &errors {
                writeln!(err, "{e}")?;
            }
            if total > errors.len() {
                writeln!(err, "… and {} more", total - errors.len())?;
            }
            bail!("{}: {total} error(s); nothing imported", path.display());
        }
        Err(e) => return Err(e.into()),
    };
    let report = registry.import(rows).await?;
    println!("{}: {report}", path.display());
    Ok(())
}

impl CardArg {
    /// The registry of the config and the card number argument.
    fn open(&self) -> Result<(CardRegistry, Pan)> {
        let pan = read_pan(&self.pan)?;
        let (registry, _) = open_registry(&self.config.config)?;
        Ok((registry, pan))
    }
}

/// The store and keys of a configuration, as a registry without a snapshot
/// (the CLI reads and writes single cards in the store).
pub(super) fn open_registry(config: &Path) -> Result<(CardRegistry, Config)> {
    let config = Config::load(config)?;
    let keys = PanKeys::from_config(&config.security)?;
    let store = Store::open(&config.store_path)
        .with_context(|| format!("opening the store {}", config.store_path.display()))?;
    let registry = CardRegistry::new(store, keys, Catalog::from_config(&config));
    registry.check_keys()?;
    Ok((registry, config))
}

/// A card number from the argument, or from the first line of stdin for `-`.
/// Errors never repeat the digits.
fn read_pan(arg: &str) -> Result<Pan> {
    let mut line = String::new();
    let text = if arg == "-" {
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the card number from standard input")?;
        line.trim()
    } else {
        arg.trim()
    };
    Pan::new(text).map_err(|_| {
        anyhow::anyhow!(
            "card number must be 12 to 19 digits, got {} characters",
            text.chars().count()
        )
    })
}

fn print_card(card: &Card) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "card         {}", card.pan_masked)?;
    writeln!(out, "status       {}", card.status)?;
    writeln!(out, "expiry       {}", card.expiry)?;
    writeln!(out, "product      {}", card.product)?;
    writeln!(out, "account      {}", card.account)?;
    writeln!(out, "institution  {}", card.institution)?;
    writeln!(
        out,
        "currency     {} ({})",
        card.currency.code, card.currency.numeric
    )?;
    writeln!(out, "limits       {}", card.profile)?;
    Ok(())
}
