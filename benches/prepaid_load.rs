//! Load-file import of the prepaid ledger: `cargo bench --bench prepaid_load`.
//!
//! Opens a fresh store with `PREPAID_CARDS` card accounts (default 10,000),
//! each also registered `inactive` in the card registry, writes a load file
//! of `PREPAID_LOAD_LINES` lines (default 1,000,000) spread round the
//! cards, and times `Ledger::import_load_file`: parsing, every check, one
//! transaction with an entry and three postings a line, the balance
//! columns, the activation of every card, the fsync. Then it imports the
//! same file again (every line a repeat, nothing booked) and checks the
//! ledger with `Ledger::audit`. Without `--bench` (as `cargo test
//! --benches` runs it) it uses 10,000 lines.

use std::time::Instant;

use cardhub_core::cards::config::Catalog;
use cardhub_core::cards::file::CardRow;
use cardhub_core::cards::{CardRegistry, CardStatus, PanKeys, Product};
use cardhub_core::iso8583::fields::{Expiry, Pan};
use cardhub_core::money::Currency;
use cardhub_core::prepaid::config::PrepaidConfig;
use cardhub_core::prepaid::{Ledger, NewOrderer, NewProgramme, PinDelivery, ProgrammeKind};
use cardhub_core::store::Store;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number"))
    })
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let lines = env_usize("PREPAID_LOAD_LINES", if full { 1_000_000 } else { 10_000 });
    let card_count = env_usize("PREPAID_CARDS", 10_000);
    let dir = tempfile::Builder::new()
        .prefix("bench-prepaid-load")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let store = Store::open(&dir.path().join("hub.db")).unwrap();
    let ledger = Ledger::new(store.clone(), &PrepaidConfig::default());
    let eur = Currency::from_numeric(978).unwrap();
    ledger
        .create_orderer(NewOrderer {
            id: "city".into(),
            name: "City".into(),
            funding_account: "NL00BANK0123456789".into(),
        })
        .await
        .unwrap();
    ledger
        .create_programme(NewProgramme {
            id: "city-social".into(),
            orderer: "city".into(),
            kind: ProgrammeKind::SocialClient,
            currency: eur,
            max_balance: Some(i64::MAX as u64),
            pin_delivery: PinDelivery::WithCard,
            daily: Default::default(),
        })
        .await
        .unwrap();
    for chunk in (0..card_count).collect::<Vec<_>>().chunks(500) {
        let opened = chunk.iter().map(|i| {
            let ledger = ledger.clone();
            async move { ledger.open_card(&format!("P-{i:07}"), "city-social").await }
        });
        for done in futures::future::join_all(opened).await {
            done.unwrap();
        }
    }
    let keys = PanKeys::from_bytes([7; 32], [9; 32]);
    let cards = CardRegistry::new(store, keys, Catalog::new(["city"], ["prepaid"]));
    let rows = (0..card_count)
        .map(|i| CardRow {
            line: i as u64 + 2,
            pan: Pan::new(&format!("4761739{i:09}")).unwrap(),
            expiry: Expiry::parse("3012").unwrap(),
            status: CardStatus::Inactive,
            account: format!("P-{i:07}"),
            institution: "city".into(),
            currency: eur,
            profile: "prepaid".into(),
            product: Product::Prepaid,
        })
        .collect();
    cards.import(rows).await.unwrap();

    let mut file = String::with_capacity(lines * 40 + 64);
    file.push_str("reference,card_account,amount,currency\n");
    for n in 0..lines {
        let card = n % card_count;
        file.push_str(&format!(
            "LF-{n:09},P-{card:07},{}.{:02},EUR\n",
            1 + n % 50,
            n % 100
        ));
    }
    println!(
        "prepaid load file: {lines} lines, {} bytes, {card_count} cards",
        file.len()
    );

    let started = Instant::now();
    let report = ledger
        .import_load_file(&cards, file.as_bytes())
        .await
        .unwrap();
    let first = started.elapsed();
    assert_eq!(report.booked as usize, lines);
    assert_eq!(report.activated.len(), card_count.min(lines));
    println!(
        "import: {:.2} s ({:.0} lines/s), booked {}, activated {}",
        first.as_secs_f64(),
        lines as f64 / first.as_secs_f64(),
        report.booked,
        report.activated.len()
    );

    let started = Instant::now();
    let again = ledger
        .import_load_file(&cards, file.as_bytes())
        .await
        .unwrap();
    let second = started.elapsed();
    assert_eq!((again.booked, again.repeats as usize), (0, lines));
    println!(
        "re-import (all repeats): {:.2} s ({:.0} lines/s)",
        second.as_secs_f64(),
        lines as f64 / second.as_secs_f64()
    );
    let breaches = ledger.audit().unwrap();
    assert!(breaches.is_empty(), "{breaches:?}");
}
