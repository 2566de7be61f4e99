//! `cardhub iso decode | encode`: the codec from the command line, with card
//! data masked in everything it prints.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use cardhub_core::iso8583::dialect::{self, HeaderLayout};
use cardhub_core::iso8583::fields::Base24Header;
use cardhub_core::iso8583::{Dialect, FieldList, Message};

#[derive(Debug, Subcommand)]
pub enum IsoCommand {
    /// Decode a message given as hex, or a file: .hex/.txt hold hex text, others raw bytes.
    Decode {
        /// Hex string, a .hex/.txt file (hex), another file (raw bytes), or "-" (hex on stdin).
        input: String,
        #[command(flatten)]
        dialect: DialectArgs,
        /// Print the (masked) field list as JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Encode a message from a JSON or TOML field list file ("-" reads JSON from stdin).
    Encode {
        /// Field list: {"mti": "0100", "header": "...", "fields": {"2": "..."}}.
        input: String,
        #[command(flatten)]
        dialect: DialectArgs,
        /// Write raw bytes to this file instead of printing hex.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct DialectArgs {
    /// Dialect name (looked up in --dialects-dir, then among shipped ones) or a .toml path.
    #[arg(long, default_value = "base24")]
    dialect: String,
    /// Folder of dialect files.
    #[arg(long, default_value_os_t = dialect::default_dir())]
    dialects_dir: PathBuf,
}

impl DialectArgs {
    /// The dialect these arguments name.
    pub(crate) fn load(&self) -> Result<Dialect> {
        Ok(Dialect::find(&self.dialect, &self.dialects_dir)?)
    }
}

pub fn run(command: IsoCommand) -> Result<()> {
    match command {
        IsoCommand::Decode {
            input,
            dialect,
            json,
        } => decode(&input, &dialect.load()?, json),
        IsoCommand::Encode {
            input,
            dialect,
            out,
        } => encode(&input, &dialect.load()?, out.as_deref()),
    }
}

fn decode(input: &str, dialect: &Dialect, json: bool) -> Result<()> {
    let bytes = read_message_bytes(input)?;
    let msg = dialect
        .decode(&bytes)
        .with_context(|| format!("decoding {} bytes as {}", bytes.len(), dialect.name))?;
    let mut out = std::io::stdout().lock();
    if json {
        let list = FieldList::from_message(&msg, dialect, true);
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(());
    }
    writeln!(out, "dialect  {}", dialect.name)?;
    print_fields(&mut out, &msg, dialect)
}

/// Prints a message as a table — header, MTI, one line per field with its
/// name — with card data masked as the dialect says.
pub(crate) fn print_fields(out: &mut dyn Write, msg: &Message, dialect: &Dialect) -> Result<()> {
    let list = FieldList::from_message(msg, dialect, true);
    if let Some(h) = &list.header {
        let layout = dialect.header.as_ref().and_then(|s| s.layout);
        match (layout, msg.header().map(Base24Header::parse)) {
            (Some(HeaderLayout::Base24), Some(Ok(b24))) => writeln!(out, "header   {h}  ({b24})")?,
            _ => writeln!(out, "header   {h}")?,
        }
    }
    writeln!(out, "MTI      {}", list.mti)?;
    for (n, value) in &list.fields {
        let name = dialect.field(*n).map_or("", |s| s.name.as_str());
        writeln!(out, "{n:>5}  {name:<45} {value}")?;
    }
    Ok(())
}

fn encode(input: &str, dialect: &Dialect, out: Option<&Path>) -> Result<()> {
    let (text, is_toml) = if input == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        (s, false)
    } else {
        let s = std::fs::read_to_string(input).with_context(|| format!("reading {input}"))?;
        (s, input.ends_with(".toml"))
    };
    let list = if is_toml {
        FieldList::from_toml(&text)
    } else {
        FieldList::from_json(&text)
    }
    .with_context(|| format!("reading field list {input}"))?;
    let msg = list.to_message(dialect)?;
    let bytes = dialect
        .encode(&msg)
        .with_context(|| format!("encoding as {}", dialect.name))?;
    match out {
        Some(path) => {
            std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => writeln!(std::io::stdout(), "{}", hex::encode_upper(&bytes))?,
    }
    Ok(())
}

/// The message bytes an argument names: stdin (hex text), a `.hex` or `.txt`
/// file (hex text), any other file (raw bytes), or else the argument as hex.
fn read_message_bytes(input: &str) -> Result<Vec<u8>> {
    let path = Path::new(input);
    if input == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return parse_hex(&text).context("stdin is not hex");
    }
    if !path.is_file() {
        return parse_hex(input).with_context(|| format!("{input:?} is neither a file nor hex"));
    }
    let is_hex_text = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("hex") || e.eq_ignore_ascii_case("txt"));
    if is_hex_text {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {input}"))?;
        parse_hex(&text).with_context(|| format!("{input} is not hex"))
    } else {
        std::fs::read(path).with_context(|| format!("reading {input}"))
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.is_empty() {
        bail!("no hex digits");
    }
    Ok(hex::decode(&compact)?)
}
