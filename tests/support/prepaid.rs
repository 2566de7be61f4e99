//! Prepaid set-up shared by the prepaid tests: the ledger's orderer,
//! programme and card accounts created on a hub's store before it serves,
//! and the BASE24 requests of prepaid flows.

use std::collections::HashMap;
use std::path::Path;

use cardhub_core::app;
use cardhub_core::cards::file;
use cardhub_core::config::Config;
use cardhub_core::iso8583::Message;
use cardhub_core::money::Currency;
use cardhub_core::prepaid::{Ledger, NewOrderer, NewProgramme, PinDelivery, ProgrammeKind};

use super::request;

/// A prepaid institution, "city", served by the ledger (its cards' daily
/// limits are the `prepaid` profile's), and the default maximum balance.
pub const CITY: &str = r#"
[prepaid]
default_max_balance = 30000

[[institution]]
id = "city"
name = "City prepaid"
mode = "prepaid"
"#;

/// The orderer and programme [`open_ledger`] creates.
pub const ORDERER: &str = "city";
pub const PROGRAMME: &str = "city-social";

/// Imports the card file `csv` into the store of `config` and creates the
/// ledger's side: orderer [`ORDERER`], its USD programme [`PROGRAMME`]
/// (maximum `max_balance`, or `[prepaid] default_max_balance`) and one card
/// account per name in `accounts`. The store is closed again on return, so
/// a hub (in this process or a `cardhub serve` child) can open it.
pub async fn open_ledger(config: &Config, csv: &Path, accounts: &[&str], max_balance: Option<u64>) {
    let hub = app::open(config, HashMap::new()).unwrap();
    let rows = file::read(csv, &config.catalog()).unwrap();
    hub.cards().import(rows).await.unwrap();
    let ledger = Ledger::new(hub.store().clone(), &config.prepaid);
    let orderer = NewOrderer {
        id: ORDERER.into(),
        name: "City social office".into(),
        funding_account: "NL00BANK0123456789".into(),
    };
    let programme = (PROGRAMME, ProgrammeKind::SocialClient);
    add_orderer(&ledger, orderer, programme, accounts, max_balance).await;
}

/// Creates `orderer`, its USD programme `programme` of its kind
/// (maximum `max_balance`, or `[prepaid] default_max_balance`) and one card
/// account per name in `accounts` (cards of the registry).
pub async fn add_orderer(
    ledger: &Ledger,
    orderer: NewOrderer,
    (programme, kind): (&str, ProgrammeKind),
    accounts: &[&str],
    max_balance: Option<u64>,
) {
    let id = orderer.id.clone();
    ledger.create_orderer(orderer).await.unwrap();
    ledger
        .create_programme(NewProgramme {
            id: programme.into(),
            orderer: id,
            kind,
            currency: Currency::from_numeric(840).unwrap(),
            max_balance,
            pin_delivery: PinDelivery::WithCard,
            daily: Default::default(),
        })
        .await
        .unwrap();
    for account in accounts {
        ledger.open_card(account, programme).await.unwrap();
    }
}

/// A load (0200, processing code 21) of `amount` onto `pan`.
pub fn load(pan: &str, amount: u64, stan: u32) -> Message {
    request("0200", "210000", pan, amount, stan)
}

/// DE 90 naming the original `mti` with `stan` (the test requests' other
/// original data elements).
pub fn original(mti: &str, stan: u32) -> String {
    format!("{mti}{stan:06}11220302010000476173900000000000")
}
