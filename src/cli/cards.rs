//! `cardhub cards …`: import card files, show and change cards. Every PAN is
//! printed masked. A PAN argument of `-` is read from standard input, which
//! keeps it out of the shell history and the process list.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::ConfigArg;
use cardhub_core::access::Actor;
use cardhub_core::app;
use cardhub_core::cards::card::{Card, CardStatus};
use cardhub_core::cards::{CardError, CardRegistry, ChangedBy, PanKeys, file};
use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::Pan;

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
    Block(ChangeArg),
    /// Unblock a blocked card (back to `active`).
    Unblock(ChangeArg),
    /// Set a card's status: active, inactive, blocked, lost, stolen, expired, closed.
    SetStatus {
        #[command(flatten)]
        card: ChangeArg,
        /// The new status. Checked by cardhub, not the argument parser, so a
        /// card number given here by mistake is not echoed in clear.
        status: String,
    },
    /// Give a card another limits profile (a `[limits.<name>]` of the config).
    SetLimits {
        #[command(flatten)]
        card: ChangeArg,
        profile: String,
    },
    /// Move every stored card (and the journal's card hashes) from the PAN
    /// keys of `--config` to those of `--new-config`, in one transaction.
    /// Stop the hub first; start it again on the new config.
    Rekey {
        /// The configuration with the new keys (`[security]`), same store.
        #[arg(long)]
        new_config: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Args)]
pub struct CardArg {
    /// Card number, or `-` to read it from standard input.
    pan: String,
    #[command(flatten)]
    config: ConfigArg,
}

/// A card to change, and why (for the audit log, actor `cli`).
#[derive(Debug, Args)]
pub struct ChangeArg {
    #[command(flatten)]
    card: CardArg,
    /// Why the card is changed, written to the audit log.
    #[arg(long)]
    reason: Option<String>,
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
            CardsCommand::Block(change) => {
                let (registry, card) = change.card.open()?;
                let card = registry.card_ref(&card);
                print_card(
                    &registry
                        .set_status(&card, CardStatus::Blocked, change.by(&Actor::cli()))
                        .await?,
                )
            }
            CardsCommand::Unblock(change) => {
                let (registry, card) = change.card.open()?;
                let card = registry.card_ref(&card);
                print_card(&registry.unblock(&card, change.by(&Actor::cli())).await?)
            }
            CardsCommand::SetStatus {
                card: change,
                status,
            } => {
                let status: CardStatus = status.parse()?;
                let (registry, card) = change.card.open()?;
                let card = registry.card_ref(&card);
                print_card(
                    &registry
                        .set_status(&card, status, change.by(&Actor::cli()))
                        .await?,
                )
            }
            CardsCommand::SetLimits {
                card: change,
                profile,
            } => {
                let (registry, card) = change.card.open()?;
                let card = registry.card_ref(&card);
                print_card(
                    &registry
                        .set_profile(&card, &profile, change.by(&Actor::cli()))
                        .await?,
                )
            }
            CardsCommand::Rekey { new_config, config } => rekey(&config.config, &new_config).await,
        }
    })
}

/// Checks the whole file, then applies it in one write; prints every bad line.
async fn import(path: &Path, config: &Path) -> Result<()> {
    let (registry, config) = open_registry(config)?;
    let rows = match file::read(path, &config.catalog()) {
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
    writeln!(std::io::stdout(), "{}: {report}", path.display())?;
    Ok(())
}

/// Re-keys the store of `config` to the keys of `new_config`, refusing
/// while a hub answers on the config's API address.
async fn rekey(config: &Path, new_config: &Path) -> Result<()> {
    let current = Config::load(config)?;
    let new = Config::load(new_config)?;
    if current.store_location() != new.store_location() {
        bail!(
            "{} uses the store {}, {} the store {}: re-keying moves one store",
            config.display(),
            current.store_location(),
            new_config.display(),
            new.store_location()
        );
    }
    if let Some(api) = &current.api
        && let Some(addr) = api.listen.parse().ok()
        && std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
            .is_ok()
    {
        bail!(
            "a hub answers at {}: stop it before re-keying (it would no longer find its cards)",
            api.listen
        );
    }
    let new_keys = PanKeys::from_config(&new.security)
        .with_context(|| format!("the new keys ({})", new_config.display()))?;
    let store = current
        .open_store()
        .with_context(|| format!("opening the store {}", current.store_location()))?;
    let registry = CardRegistry::new(
        store.clone(),
        PanKeys::from_config(&current.security)?,
        current.catalog(),
    );
    if let Err(e @ CardError::KeyMismatch { .. }) = registry.check_keys() {
        let moved = CardRegistry::new(store, new_keys, new.catalog());
        if moved.check_keys().is_ok() {
            bail!(
                "the store is already under the keys of {}: start the hub on it",
                new_config.display()
            );
        }
        return Err(e.into());
    }
    let report = registry.rekey(&new_keys).await?;
    writeln!(std::io::stdout(), "{report}")?;
    Ok(())
}

impl ChangeArg {
    /// The audit log's who and why.
    fn by<'a>(&'a self, actor: &'a Actor) -> ChangedBy<'a> {
        ChangedBy {
            actor,
            reason: self.reason.as_deref(),
        }
    }
}

impl CardArg {
    /// The registry of the config and the card number argument.
    fn open(&self) -> Result<(CardRegistry, Pan)> {
        let pan = read_pan(&self.pan)?;
        let (registry, _) = open_registry(&self.config.config)?;
        Ok((registry, pan))
    }
}

/// The registry of a configuration, read without a snapshot (the CLI reads
/// and writes single cards in the store).
fn open_registry(config: &Path) -> Result<(CardRegistry, Config)> {
    let config = Config::load(config)?;
    let registry = app::open_card_registry(&config)
        .with_context(|| format!("opening the cards of {}", config.store_location()))?;
    Ok((registry, config))
}

/// A card number from the argument, or from the first line of stdin for `-`.
/// Errors never repeat the digits.
pub(super) fn read_pan(arg: &str) -> Result<Pan> {
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
