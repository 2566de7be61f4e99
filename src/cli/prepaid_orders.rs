//! `cardhub prepaid …` for card orders: a programme's card range, orders
//! and their states, the card production and PIN mailer files, PIN
//! reorders — each one call of the ledger's order service
//! (`cardhub_core::prepaid::orders`), as the API makes it. Files are
//! written to the path given, as new files, mode 0600.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::ConfigArg;
use super::cards::read_pan;
use super::prepaid::open;
use cardhub_core::config::Config;
use cardhub_core::prepaid::orders::{CardRange, NewOrder, OrderSummary};
use cardhub_core::standin::config::InstitutionMode;

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Set the card range a programme issues ordered cards from.
    SetCardRange {
        programme: String,
        /// BIN and issuer digits every PAN starts with (6 to 11 digits).
        #[arg(long)]
        prefix: String,
        /// Digits of a PAN, check digit included.
        #[arg(long, default_value_t = 16)]
        pan_length: u8,
        /// Months from the order to the card's expiry month.
        #[arg(long, default_value_t = 36)]
        validity_months: u8,
        /// The `[[institution]]` (mode `prepaid`) the cards belong to.
        #[arg(long)]
        institution: String,
        /// The cards' `[limits.<profile>]`.
        #[arg(long)]
        profile: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Order cards: registered inactive and empty, card accounts opened.
    Order {
        #[arg(long)]
        orderer: String,
        #[arg(long)]
        programme: String,
        #[arg(long)]
        count: u32,
        /// Personal cards: a file with one holder name per line (UTF-8).
        #[arg(long)]
        holders: Option<PathBuf>,
        /// Idempotency key and stem of the card accounts.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List an orderer's card orders.
    Orders {
        orderer: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show an order and its cards (masked).
    ShowOrder {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write an order's card production file (full PANs, for the producer).
    ProductionFile {
        order: i64,
        /// The new file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Record that an order's cards reached the orderer.
    Delivered {
        order: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Send a card's PIN again (in the next PIN mailer file).
    ReorderPin {
        /// The card number, or `-` to read it from standard input.
        pan: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write the next PIN mailer file: every pending PIN request.
    PinMailer {
        /// The new file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn execute(command: OrderCommand, out: &mut impl Write) -> Result<()> {
    match command {
        OrderCommand::SetCardRange {
            programme,
            prefix,
            pan_length,
            validity_months,
            institution,
            profile,
            config,
        } => {
            let loaded = Config::load(&config.config)?;
            if !loaded
                .institutions
                .iter()
                .any(|i| i.id == institution && i.mode == InstitutionMode::Prepaid)
            {
                bail!("--institution {institution:?} is not configured with mode \"prepaid\"");
            }
            let (ledger, _) = open(&config)?;
            let range = CardRange {
                prefix,
                pan_length,
                validity_months,
                institution,
                profile,
            };
            ledger.set_card_range(&programme, range).await?;
            writeln!(out, "programme {programme}: card range set")?;
        }
        OrderCommand::Order {
            orderer,
            programme,
            count,
            holders,
            reference,
            config,
        } => {
            let holders = holders
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                        .map(|text| text.lines().map(str::to_string).collect::<Vec<_>>())
                })
                .transpose()?;
            let (ledger, cards) = open(&config)?;
            let order = NewOrder {
                orderer,
                programme,
                count,
                holders,
                reference,
            };
            let ordered = ledger.order_cards(&cards, order).await?;
            let what = if ordered.repeat {
                "ordered before"
            } else {
                "ordered"
            };
            writeln!(out, "order {}: {what}", ordered.id)?;
        }
        OrderCommand::Orders { orderer, config } => {
            let (ledger, _) = open(&config)?;
            ledger.orderer(&orderer)?;
            for order in ledger.orders(&orderer)? {
                print_summary(out, &order)?;
            }
        }
        OrderCommand::ShowOrder { id, config } => {
            let (ledger, cards) = open(&config)?;
            let order = ledger.order(&cards, id)?;
            print_summary(out, &order.summary)?;
            for c in order.cards {
                let status = c.status.map_or("unregistered", |s| s.as_str());
                let loaded = if c.loaded { " loaded" } else { "" };
                writeln!(
                    out,
                    "  {:>5} {} {} expiry {} {status}{loaded} {}",
                    c.sequence,
                    c.pan_masked,
                    c.account,
                    c.expiry,
                    c.holder.unwrap_or_default()
                )?;
            }
        }
        OrderCommand::ProductionFile {
            order,
            out: path,
            config,
        } => {
            let (ledger, cards) = open(&config)?;
            let written = ledger.write_production_file(&cards, order, &path).await?;
            writeln!(
                out,
                "{}: production file of order {order}, {} card(s), {} bytes",
                path.display(),
                written.records,
                written.bytes
            )?;
        }
        OrderCommand::Delivered { order, config } => {
            let (ledger, _) = open(&config)?;
            print_summary(out, &ledger.mark_delivered(order).await?)?;
        }
        OrderCommand::ReorderPin { pan, config } => {
            let pan = read_pan(&pan)?;
            let (ledger, cards) = open(&config)?;
            let request = ledger.reorder_pin(&cards, &pan).await?;
            let what = if request.repeat {
                "pending already"
            } else {
                "requested"
            };
            writeln!(
                out,
                "card {}: PIN {} {what}",
                pan.masked(),
                request.reference
            )?;
        }
        OrderCommand::PinMailer { out: path, config } => {
            let (ledger, _) = open(&config)?;
            match ledger.write_pin_mailer_file(&path).await? {
                Some(written) => writeln!(
                    out,
                    "{}: PIN mailer {}, {} PIN(s)",
                    path.display(),
                    written.id,
                    written.records
                )?,
                None => writeln!(out, "no PIN request pending: no file written")?,
            }
        }
    }
    Ok(())
}

fn print_summary(out: &mut impl Write, o: &OrderSummary) -> Result<()> {
    let kind = if o.personal { "personal" } else { "impersonal" };
    writeln!(
        out,
        "order {} {} {}: {} {kind} card(s) of {} for {}, {} loaded",
        o.id, o.reference, o.state, o.count, o.programme, o.orderer, o.loaded
    )?;
    Ok(())
}
