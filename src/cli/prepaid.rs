//! `cardhub prepaid …`: the prepaid ledger from the command line —
//! orderers, programmes, card accounts, loads, balance moves, lost-card
//! replacement, statements and the audit. Every command is one call of the
//! ledger's service layer (`cardhub_core::prepaid::Ledger`), the same the
//! JSON API makes, on the store of `--config` (a running hub sees the
//! change at once). Amounts are decimal in the currency's units (`12.50`),
//! never floats; card numbers are printed masked and `-` reads one from
//! standard input.

use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::ConfigArg;
use super::cards::read_pan;
use super::prepaid_files::{self, FileCommand};
use super::prepaid_orders::{self, OrderCommand};
use cardhub_core::access::{Access, Actor};
use cardhub_core::account::Balances;
use cardhub_core::app;
use cardhub_core::cards::CardRegistry;
use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::Expiry;
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::{
    CardAccount, DailyLimits, Ledger, LostCard, NewOrderer, NewProgramme, Orderer, PinDelivery,
    ProgrammeKind, Subject, Teller, period,
};

#[derive(Debug, Subcommand)]
pub enum PrepaidCommand {
    /// Register an orderer (the tenant that owns the money) and its pooled account.
    AddOrderer {
        /// Its id (letters, digits, `-`, `_`).
        id: String,
        /// Printed on every card.
        #[arg(long)]
        name: String,
        /// The bank account it funds its cards from.
        #[arg(long)]
        funding_account: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Register a programme of an orderer.
    AddProgramme {
        id: String,
        #[arg(long)]
        orderer: String,
        /// `social-client` or `small-purchase`.
        #[arg(long)]
        kind: String,
        /// ISO 4217 code (`EUR` or `978`).
        #[arg(long)]
        currency: String,
        /// Maximum balance per card, decimal (`1500.00`); default: `[prepaid] default_max_balance`.
        #[arg(long)]
        max_balance: Option<String>,
        /// PINs `with-card` or `separately`.
        #[arg(long, default_value = "with-card")]
        pin_delivery: String,
        /// Per-card daily limit on purchases and cash, decimal; default: none.
        #[arg(long)]
        daily_amount: Option<String>,
        /// Per-card daily number of purchases and cash; default: none.
        #[arg(long)]
        daily_count: Option<u32>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Open the (empty) card account of a registered prepaid card.
    OpenCard {
        /// The card registry's `account` of the card.
        account: String,
        #[arg(long)]
        programme: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List orderers, or show one with its programmes and cards.
    Orderers {
        /// The orderer to show; none: list every orderer.
        id: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Show a card account and its balances.
    Card {
        account: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Load a card; its first load activates it. Refused past the programme's maximum.
    Load {
        account: String,
        #[command(flatten)]
        amount: AmountArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Move balance between two cards of one orderer.
    Move {
        /// The card account paying.
        from: String,
        /// The card account receiving.
        to: String,
        #[command(flatten)]
        amount: AmountArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Replace a lost card: the old card becomes lost, the new card is
    /// registered active and takes the balance and holds, in one step.
    Replace {
        /// The lost card's number, or `-` (standard input, first line).
        lost_pan: String,
        /// The new card's number, or `-` (standard input, next line).
        new_pan: String,
        /// The new card's expiry, YYMM.
        #[arg(long)]
        expiry: String,
        /// The new card's card account.
        #[arg(long)]
        new_account: String,
        /// Idempotency key: a repeat books nothing twice.
        #[arg(long)]
        reference: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// A card's or an orderer's postings over a period.
    Statement {
        #[command(flatten)]
        subject: SubjectArg,
        /// RFC 3339 time or day (YYYY-MM-DD, from its start); default: the beginning.
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 time or day (to its end); default: now.
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Check every invariant of the ledger against its postings (exit 1 on a breach).
    Audit {
        #[command(flatten)]
        config: ConfigArg,
    },
    #[command(flatten)]
    Orders(OrderCommand),
    #[command(flatten)]
    Files(FileCommand),
}

/// An amount and its idempotency key.
#[derive(Debug, Args)]
pub struct AmountArg {
    /// Decimal in the currency's units (`25.00`).
    #[arg(long)]
    amount: String,
    /// ISO 4217 code (`EUR` or `978`).
    #[arg(long)]
    currency: String,
    /// Idempotency key: a repeat books nothing twice.
    #[arg(long)]
    reference: String,
}

impl AmountArg {
    fn money(&self) -> Result<Money> {
        decimal(&self.amount, &self.currency)
    }
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SubjectArg {
    /// A card account.
    #[arg(long)]
    card: Option<String>,
    /// An orderer (its cards and pooled account).
    #[arg(long)]
    orderer: Option<String>,
}

pub fn run(command: PrepaidCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(execute(command))
}

async fn execute(command: PrepaidCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        PrepaidCommand::AddOrderer {
            id,
            name,
            funding_account,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            let orderer = NewOrderer {
                id: id.clone(),
                name,
                funding_account,
            };
            ledger.create_orderer(orderer).await?;
            print_orderer(&mut out, &ledger.orderer(&id)?)?;
        }
        PrepaidCommand::AddProgramme {
            id,
            orderer,
            kind,
            currency,
            max_balance,
            pin_delivery,
            daily_amount,
            daily_count,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            let kind = ProgrammeKind::parse(&kind)?;
            let pin_delivery = PinDelivery::parse(&pin_delivery)?;
            let currency_code = currency.clone();
            let minor = |text: Option<String>| {
                text.map(|m| decimal(&m, &currency_code).map(|m| m.minor))
                    .transpose()
            };
            let (max_balance, daily_amount) = (minor(max_balance)?, minor(daily_amount)?);
            let programme = NewProgramme {
                id,
                orderer: orderer.clone(),
                kind,
                currency: parse_currency(&currency)?,
                max_balance,
                pin_delivery,
                daily: DailyLimits {
                    amount: daily_amount,
                    count: daily_count,
                },
            };
            ledger.create_programme(programme).await?;
            print_orderer(&mut out, &ledger.orderer(&orderer)?)?;
        }
        PrepaidCommand::OpenCard {
            account,
            programme,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            ledger.open_card(&account, &programme).await?;
            print_card(&mut out, &ledger.card_account(&account)?)?;
        }
        PrepaidCommand::Orderers { id, config } => {
            let (ledger, _) = open(&config)?;
            match id {
                Some(id) => {
                    print_orderer(&mut out, &ledger.orderer(&id)?)?;
                    for card in ledger.card_accounts(&id)? {
                        print_card(&mut out, &card)?;
                    }
                }
                None => {
                    for orderer in ledger.orderers()? {
                        print_orderer(&mut out, &orderer)?;
                    }
                }
            }
        }
        PrepaidCommand::Card { account, config } => {
            let (ledger, _) = open(&config)?;
            print_card(&mut out, &ledger.card_account(&account)?)?;
        }
        PrepaidCommand::Load {
            account,
            amount,
            config,
        } => {
            let money = amount.money()?;
            let (booked, activated) = AsCli::open(&config)?
                .teller()
                .load(&amount.reference, &account, money)
                .await?;
            let what = if booked.repeat {
                "already booked"
            } else {
                "loaded"
            };
            writeln!(out, "{account}: {what} {money} (entry {})", booked.id)?;
            print_balances(&mut out, &account, booked.balances)?;
            for card in activated {
                writeln!(out, "card {} activated by its first load", card.pan_masked)?;
            }
        }
        PrepaidCommand::Move {
            from,
            to,
            amount,
            config,
        } => {
            let money = amount.money()?;
            let moved = AsCli::open(&config)?
                .teller()
                .move_balance(&amount.reference, &from, &to, money)
                .await?;
            let what = if moved.repeat {
                "already moved"
            } else {
                "moved"
            };
            writeln!(out, "{what} {money} from {from} to {to}")?;
            print_balances(&mut out, &from, moved.from)?;
            print_balances(&mut out, &to, moved.to)?;
        }
        PrepaidCommand::Replace {
            lost_pan,
            new_pan,
            expiry,
            new_account,
            reference,
            config,
        } => {
            let (old, new) = (read_pan(&lost_pan)?, read_pan(&new_pan)?);
            let expiry = Expiry::parse(&expiry).context("--expiry must be YYMM")?;
            let as_cli = AsCli::open(&config)?;
            let replaced = as_cli
                .teller()
                .replace_lost(LostCard {
                    reference: &reference,
                    lost: &old,
                    new: &new,
                    new_expiry: expiry,
                    new_account: &new_account,
                })
                .await?;
            let (card, what) = (
                &replaced.card,
                if replaced.repeat { "already " } else { "" },
            );
            writeln!(
                out,
                "card {} lost; {what}replaced by {} (card account {})",
                old.masked(),
                card.pan_masked,
                card.account
            )?;
            if let Some((order, _)) = as_cli.ledger.order_of_card(&card.account)? {
                writeln!(
                    out,
                    "replacement order {order}: its production file with `cardhub prepaid production-file {order}`"
                )?;
            }
            print_balances(&mut out, &card.account, replaced.balances)?;
        }
        PrepaidCommand::Statement {
            subject,
            from,
            to,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            let subject = match (subject.card, subject.orderer) {
                (Some(card), _) => Subject::Card(card),
                (None, Some(orderer)) => Subject::Orderer(orderer),
                (None, None) => bail!("--card or --orderer is required"),
            };
            let (from_us, to_us) = period(from.as_deref(), to.as_deref())?;
            writeln!(out, "entry\tbooked at\tkind\treference\taccount\tamount")?;
            for line in ledger.statement(&subject, from_us, to_us)? {
                let at = jiff::Timestamp::from_microsecond(line.booked_at_us)
                    .map_or_else(|_| line.booked_at_us.to_string(), |t| t.to_string());
                writeln!(
                    out,
                    "{}\t{at}\t{}\t{}\t{} {}\t{}",
                    line.entry,
                    line.kind,
                    line.reference,
                    line.account_kind,
                    line.account,
                    line.amount
                )?;
            }
        }
        PrepaidCommand::Orders(command) => prepaid_orders::execute(command, &mut out).await?,
        PrepaidCommand::Files(command) => prepaid_files::execute(command, &mut out).await?,
        PrepaidCommand::Audit { config } => {
            let (ledger, _) = open(&config)?;
            let breaches = ledger.audit()?;
            for breach in &breaches {
                writeln!(out, "{breach}")?;
            }
            if !breaches.is_empty() {
                bail!("{} breach(es) of the ledger's invariants", breaches.len());
            }
            writeln!(out, "the ledger is sound: every invariant holds")?;
        }
    }
    Ok(())
}

/// The prepaid ledger, card registry and audit log of `--config`, on one
/// store, for changes made as the CLI (audited under that name).
struct AsCli {
    ledger: Ledger,
    cards: CardRegistry,
    access: Access,
    cli: Actor,
}

impl AsCli {
    fn open(config: &ConfigArg) -> Result<AsCli> {
        let loaded = Config::load(&config.config)?;
        let (ledger, cards, access) = app::open_prepaid(&loaded).with_context(|| {
            format!("opening the prepaid ledger of {}", loaded.store_location())
        })?;
        Ok(AsCli {
            ledger,
            cards,
            access,
            cli: Actor::cli(),
        })
    }

    fn teller(&self) -> Teller<'_> {
        Teller {
            ledger: &self.ledger,
            cards: &self.cards,
            access: &self.access,
            actor: &self.cli,
        }
    }
}

/// The prepaid ledger and card registry of `--config`, on one store.
pub(super) fn open(config: &ConfigArg) -> Result<(Ledger, CardRegistry)> {
    let AsCli { ledger, cards, .. } = AsCli::open(config)?;
    Ok((ledger, cards))
}

fn parse_currency(code: &str) -> Result<Currency> {
    Currency::parse(code).with_context(|| format!("--currency {code:?}"))
}

fn decimal(amount: &str, currency: &str) -> Result<Money> {
    Money::parse_decimal(amount, parse_currency(currency)?)
        .with_context(|| format!("amount {amount:?}"))
}

fn print_orderer(out: &mut impl Write, o: &Orderer) -> Result<()> {
    writeln!(
        out,
        "orderer {} ({}), funding account {}, pooled liability {}",
        o.id, o.name, o.funding_account, o.pooled_liability
    )?;
    for p in &o.programmes {
        let limit = |v: Option<i64>| v.map_or_else(|| "none".to_string(), |v| v.to_string());
        writeln!(
            out,
            "  programme {} {} currency {} max {} PIN {} cards {} daily amount {} count {}",
            p.id,
            p.kind,
            p.currency,
            p.max_balance,
            p.pin_delivery,
            p.cards,
            limit(p.daily_amount),
            limit(p.daily_count)
        )?;
    }
    Ok(())
}

fn print_card(out: &mut impl Write, c: &CardAccount) -> Result<()> {
    let replaced = c
        .replaced_by
        .as_deref()
        .map(|r| format!(" by {r}"))
        .unwrap_or_default();
    writeln!(
        out,
        "card account {} programme {} {}{replaced} currency {} balance {} available {}",
        c.account, c.programme, c.status, c.currency, c.balance, c.available
    )?;
    Ok(())
}

fn print_balances(out: &mut impl Write, account: &str, b: Balances) -> Result<()> {
    writeln!(
        out,
        "{account}: balance {} available {}",
        b.ledger, b.available
    )?;
    Ok(())
}
