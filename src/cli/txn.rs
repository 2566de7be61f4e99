//! `cardhub txn show ID`: the whole story of one transaction, from the
//! store, as JSON (card numbers masked).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::backoffice;
use crate::config::Config;
use crate::hub::txn_id::TxnId;
use crate::store::Store;

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
}

pub fn run(command: TxnCommand) -> Result<()> {
    match command {
        TxnCommand::Show { id, config } => {
            let txn_id: TxnId = id
                .parse()
                .with_context(|| format!("{id:?} is not a transaction id (16 hex digits)"))?;
            let config = Config::load(&config)?;
            let store = Store::open(&config.store_path)
                .with_context(|| format!("opening {}", config.store_path.display()))?;
            let Some(story) = backoffice::story(&store, txn_id)? else {
                bail!("no transaction {id} in the journal");
            };
            println!("{}", serde_json::to_string_pretty(&story)?);
            Ok(())
        }
    }
}
