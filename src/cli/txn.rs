//! `cardhub txn show ID`: the whole story of one transaction, from the
//! store, as JSON (card numbers masked). `cardhub txn search`: transactions
//! by card, account, terminal and the rest, newest first, a page at a time.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use cardhub_core::backoffice;
use cardhub_core::backoffice::search::{self, Criteria, Page};
use cardhub_core::cards::PanKeys;
use cardhub_core::config::Config;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::money::{Currency, Money};

#[derive(Debug, Subcommand)]
pub enum TxnCommand {
    /// The request, its decision, reversals, retransmissions, late answers,
    /// its shadow-balance movement and its store-and-forward deliveries.
    Show {
        /// cardhub's transaction id (16 hex digits).
        id: String,
        /// Configuration file of the hub.
        #[arg(long, default_value = "cardhub.toml")]
        config: PathBuf,
    },
    /// Transactions matching every criterion given, newest first.
    Search(Box<SearchArgs>),
}

/// `cardhub txn search`'s criteria (see `backoffice::search::Criteria`).
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    /// The full card number, or `-` to read it from standard input (keeps it
    /// out of the shell's history and the process list). Shown masked.
    #[arg(long)]
    card: Option<String>,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    institution: Option<String>,
    /// DE 41.
    #[arg(long)]
    terminal: Option<String>,
    /// DE 37.
    #[arg(long)]
    rrn: Option<String>,
    /// DE 11.
    #[arg(long)]
    stan: Option<String>,
    /// Earliest: RFC 3339 time or a UTC day (YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Latest: RFC 3339 time (exclusive) or a UTC day (included).
    #[arg(long)]
    to: Option<String>,
    /// DE 39 answered.
    #[arg(long = "code")]
    response_code: Option<String>,
    /// account_system, stand_in or hub_rule.
    #[arg(long)]
    decided_by: Option<String>,
    /// The next page: the `next page` id the previous one printed.
    #[arg(long)]
    before: Option<String>,
    /// Rows per page (1 to 500).
    #[arg(long, default_value_t = search::DEFAULT_LIMIT)]
    limit: u32,
    /// Print the page as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Configuration file of the hub.
    #[arg(long, default_value = "cardhub.toml")]
    config: PathBuf,
}

pub fn run(command: TxnCommand) -> Result<()> {
    match command {
        TxnCommand::Show { id, config } => {
            let txn_id: TxnId = id
                .parse()
                .with_context(|| format!("{id:?} is not a transaction id (16 hex digits)"))?;
            let config = Config::load(&config)?;
            let store = config
                .open_store()
                .with_context(|| format!("opening {}", config.store_location()))?;
            let Some(story) = backoffice::story(&store, txn_id)? else {
                bail!("no transaction {id} in the journal");
            };
            writeln!(
                std::io::stdout(),
                "{}",
                serde_json::to_string_pretty(&story)?
            )?;
            Ok(())
        }
        TxnCommand::Search(args) => search(*args),
    }
}

fn search(args: SearchArgs) -> Result<()> {
    let card = match args.card.as_deref() {
        Some("-") => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the card number from standard input")?;
            Some(line.trim().to_string())
        }
        other => other.map(str::to_string),
    };
    let criteria = Criteria {
        card,
        account: args.account,
        institution: args.institution,
        terminal: args.terminal,
        rrn: args.rrn,
        stan: args.stan,
        from: args.from,
        to: args.to,
        response_code: args.response_code,
        decided_by: args.decided_by,
        before: args.before,
        limit: Some(args.limit),
    };
    let config = Config::load(&args.config)?;
    let keys = PanKeys::from_config(&config.security)?;
    let query = criteria.compile(|pan| keys.hash(pan)).map_err(|e| {
        let flag = match e.field {
            "response_code" => "code".to_string(),
            field => field.replace('_', "-"),
        };
        anyhow::anyhow!("--{flag}: {}", e.reason)
    })?;
    let store = config
        .open_store()
        .with_context(|| format!("opening {}", config.store_location()))?;
    let page = query.run(&store)?;
    if args.json {
        writeln!(
            std::io::stdout(),
            "{}",
            serde_json::to_string_pretty(&page)?
        )?;
    } else {
        write!(std::io::stdout(), "{}", table(&page))?;
    }
    Ok(())
}

/// A page as a fixed-width table, amounts in major units of their currency.
fn table(page: &Page) -> String {
    let mut out = format!(
        "{:<16}  {:<27}  {:<4}  {:<19}  {:>14}  {:<3}  {:<2}  {:<14}  {:<11}  {:<12}  {:<8}  {:<12}  {}\n",
        "TXN ID",
        "RECEIVED",
        "MTI",
        "CARD",
        "AMOUNT",
        "CUR",
        "RC",
        "DECIDED BY",
        "INSTITUTION",
        "ACCOUNT",
        "TERMINAL",
        "RRN",
        "STAN"
    );
    for t in &page.transactions {
        let (amount, currency) = match Currency::from_numeric(t.currency) {
            Ok(c) => (
                Money::new(t.amount_minor.unsigned_abs(), c).to_decimal(),
                c.code.to_string(),
            ),
            Err(_) => (t.amount_minor.to_string(), t.currency.to_string()),
        };
        out.push_str(&format!(
            "{:<16}  {:<27}  {:<4}  {:<19}  {:>14}  {:<3}  {:<2}  {:<14}  {:<11}  {:<12}  {:<8}  {:<12}  {}\n",
            t.txn_id,
            t.received_at,
            t.mti,
            t.card.as_deref().unwrap_or("-"),
            amount,
            currency,
            t.response_code,
            t.decided_by,
            t.institution.as_deref().unwrap_or("-"),
            t.account.as_deref().unwrap_or("-"),
            t.terminal.as_deref().unwrap_or("-"),
            t.rrn.as_deref().unwrap_or("-"),
            t.stan.as_deref().unwrap_or("-"),
        ));
    }
    out.push_str(&match &page.next_before {
        Some(next) => format!(
            "{} shown; next page: --before {next}\n",
            page.transactions.len()
        ),
        None => format!("{} shown; no more\n", page.transactions.len()),
    });
    out
}
