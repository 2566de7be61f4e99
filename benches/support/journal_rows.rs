//! Generated journal rows shared by the benchmarks (`search`, `wal`): a
//! deterministic mix of cards, accounts, terminals, codes and deciders, each
//! row built as the hub builds it and written with `journal::insert`.

#![allow(dead_code)] // each benchmark uses part of it

use cardhub_core::account::Balances;
use cardhub_core::cards::{PanHash, PanKeys};
use cardhub_core::iso8583::fields::{Pan, ResponseCode};
use cardhub_core::journal::decision::{DecidedBy, Decision};
use cardhub_core::journal::keys::SwitchKeys;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::journal::{Entry, JournalEntry};
use jiff::Timestamp;

pub const CARDS: u64 = 200_000;
pub const INSTITUTIONS: u64 = 8;
pub const TERMINALS: u64 = 50_000;
pub const DAYS: i64 = 180;

/// A cheap, well-mixed pseudo-random function (splitmix64).
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The card of row `i`.
pub fn card_of(i: u64) -> u64 {
    mix(i) % CARDS
}

/// The terminal of row `i`.
pub fn terminal_of(i: u64) -> u64 {
    (mix(i) >> 16) % TERMINALS
}

pub fn pan(card: u64) -> Pan {
    Pan::new(&format!("476173{card:010}")).expect("16 digits")
}

pub fn keys() -> PanKeys {
    PanKeys::from_bytes([0x11; 32], [0x22; 32])
}

/// The row `i` of `rows` spread over the last [`DAYS`] days before `end`.
pub fn row(i: u64, rows: u64, end: Timestamp, hashes: &[PanHash]) -> JournalEntry {
    let span_ms = DAYS * 86_400_000;
    let at_ms = end.as_millisecond() - span_ms + (i as i64 * span_ms) / rows as i64;
    let r = mix(i);
    let card = card_of(i);
    let (code, decided_by) = match (r >> 32) % 100 {
        0..=84 => ("00", DecidedBy::AccountSystem),
        85..=89 => ("51", DecidedBy::AccountSystem),
        90..=94 => ("00", DecidedBy::StandIn),
        95..=96 => ("91", DecidedBy::StandIn),
        _ => ("05", DecidedBy::HubRule),
    };
    let atm = (r >> 40).is_multiple_of(5);
    let institution = format!("bank-{}", card % INSTITUTIONS);
    JournalEntry {
        txn_id: TxnId((at_ms << 20) | (i as i64 & 0xFFFFF)),
        entry: Entry::Request,
        received_at_us: at_ms * 1_000,
        business_day: Timestamp::from_millisecond(at_ms)
            .expect("in range")
            .to_string()[..10]
            .to_string(),
        switch: "base24".into(),
        mti: if atm { "0200" } else { "0100" }.into(),
        is_repeat: false,
        kind: if atm { "cash" } else { "purchase" },
        channel: if atm { "atm" } else { "pos" },
        pan_hash: Some(hashes[card as usize].0.to_vec()),
        pan_masked: Some(pan(card).masked()),
        account: Some(format!("ACC{card:09}")),
        institution: Some(institution.clone()),
        amount_minor: ((r >> 8) % 50_000 + 100) as i64,
        currency: 978,
        keys: SwitchKeys {
            mti: "0100".parse().expect("MTI"),
            // The row's second (rows are at least a second apart over
            // 10,000,000 rows): the switch keys stay unique.
            transmission_time: Timestamp::from_millisecond(at_ms)
                .expect("in range")
                .strftime("%m%d%H%M%S")
                .to_string(),
            stan: format!("{:06}", i % 999_999 + 1),
            acquirer: "4761739".into(),
            terminal: format!("T{:07}", terminal_of(i)),
            rrn: format!("{i:012}"),
        },
        merchant: Some("000012345678901".into()),
        merchant_name: Some("CORNER SHOP              AMSTERDAM    NL".into()),
        mcc: Some(5411),
        decision: Decision {
            code: ResponseCode::new(code).expect("code"),
            auth_id: (code == "00").then(|| "A12345".into()),
            balances: Some(Balances {
                available: 100_000,
                ledger: 100_000,
            }),
            decided_by,
            reason: "generated".into(),
            adapter: (decided_by == DecidedBy::AccountSystem).then(|| "canonical".into()),
            raw_code: None,
        },
        counted_minor: 0,
        counted_count: 0,
        original_txn_id: None,
        latency_us: 900,
    }
}
