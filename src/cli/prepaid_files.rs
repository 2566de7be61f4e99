//! `cardhub prepaid …` for files and attestation: import a load file (all
//! or nothing, every bad line printed), write an orderer's accounting
//! export of a day, attest or dispute a small-purchase purchase, list the
//! purchases not attested — each one call of the ledger's service layer,
//! as the API makes it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::ConfigArg;
use super::prepaid::open;
use cardhub_core::prepaid::attestation::AttestationEvent;
use cardhub_core::prepaid::export::ExportFormat;
use cardhub_core::prepaid::load_file::LoadFileError;

#[derive(Debug, Subcommand)]
pub enum FileCommand {
    /// Import a load file (CSV): every line checked, then all booked or none.
    LoadFile {
        file: PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Write an orderer's accounting export of one UTC day.
    Export {
        orderer: String,
        /// The UTC day, YYYY-MM-DD.
        #[arg(long)]
        day: String,
        /// `csv` or `fixed` (fixed width).
        #[arg(long, default_value = "csv")]
        format: String,
        /// RFC 3339: the ledger as it stood then (default: now); the same
        /// value gives the same bytes.
        #[arg(long)]
        as_of: Option<String>,
        /// The file to write; default: standard output.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Attest a small-purchase purchase: its purpose or cost centre.
    Attest {
        orderer: String,
        /// The purchase's reference (its capture's transaction id).
        reference: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        purpose: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Dispute a small-purchase purchase, with a reason.
    Dispute {
        orderer: String,
        reference: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List an orderer's purchases not attested (open or disputed).
    Unattested {
        orderer: String,
        /// Only those booked at least this many days ago.
        #[arg(long, default_value_t = 0)]
        older_than_days: u32,
        #[command(flatten)]
        config: ConfigArg,
    },
}

pub async fn execute(command: FileCommand, out: &mut impl Write) -> Result<()> {
    match command {
        FileCommand::LoadFile { file, config } => {
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let (ledger, cards) = open(&config)?;
            match ledger.import_load_file(&cards, &bytes).await {
                Ok(report) => {
                    let totals: Vec<String> =
                        report.totals.iter().map(ToString::to_string).collect();
                    writeln!(
                        out,
                        "{}: {} line(s), {} booked, {} booked before; total {}",
                        file.display(),
                        report.lines,
                        report.booked,
                        report.repeats,
                        totals.join(", ")
                    )?;
                    for card in report.activated {
                        writeln!(out, "card {card} activated by its first load")?;
                    }
                }
                Err(LoadFileError::Refused { problems, more }) => {
                    let mut err = std::io::stderr().lock();
                    for p in &problems {
                        writeln!(err, "{}: {p}", file.display())?;
                    }
                    if more > 0 {
                        writeln!(err, "… and {more} more")?;
                    }
                    bail!(
                        "{}: {} problem(s); nothing booked",
                        file.display(),
                        problems.len() + more
                    );
                }
                Err(e) => return Err(e.into()),
            }
        }
        FileCommand::Export {
            orderer,
            day,
            format,
            as_of,
            out: path,
            config,
        } => {
            let day: jiff::civil::Date = day.parse().context("--day must be YYYY-MM-DD")?;
            let format = match format.as_str() {
                "csv" => ExportFormat::Csv,
                "fixed" => ExportFormat::FixedWidth,
                other => bail!("--format {other:?} is neither csv nor fixed"),
            };
            let as_of = match as_of {
                None => jiff::Timestamp::now(),
                Some(t) => t.parse().context("--as-of must be an RFC 3339 time")?,
            };
            let (ledger, _) = open(&config)?;
            let file = ledger.export_day(&orderer, day, format, as_of.as_microsecond())?;
            match path {
                Some(path) => {
                    std::fs::write(&path, &file)
                        .with_context(|| format!("writing {}", path.display()))?;
                    writeln!(
                        out,
                        "{}: export of {orderer} for {day}, {} bytes",
                        path.display(),
                        file.len()
                    )?;
                }
                None => out.write_all(&file)?,
            }
        }
        FileCommand::Attest {
            orderer,
            reference,
            user,
            purpose,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            print_event(
                out,
                &ledger.attest(&orderer, &reference, &user, &purpose).await?,
            )?;
        }
        FileCommand::Dispute {
            orderer,
            reference,
            user,
            reason,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            print_event(
                out,
                &ledger.dispute(&orderer, &reference, &user, &reason).await?,
            )?;
        }
        FileCommand::Unattested {
            orderer,
            older_than_days,
            config,
        } => {
            let (ledger, _) = open(&config)?;
            let now = jiff::Timestamp::now().as_microsecond();
            for p in ledger.unattested(&orderer, older_than_days, now)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    p.reference,
                    p.card_account,
                    p.amount,
                    p.merchant.unwrap_or_default(),
                    p.merchant_name.unwrap_or_default(),
                    p.state.as_str(),
                    p.comment.unwrap_or_default()
                )?;
            }
        }
    }
    Ok(())
}

fn print_event(out: &mut impl Write, e: &AttestationEvent) -> Result<()> {
    writeln!(
        out,
        "{} {} by {}: {}",
        e.reference,
        e.state.as_str(),
        e.user,
        e.comment
    )?;
    Ok(())
}
