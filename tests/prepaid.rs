//! Prepaid cards end to end: a switch-side client over real TCP, the hub
//! with its store, card registry and prepaid ledger; one institution in
//! mode `prepaid` served by the ledger, one whose ledger is cut off.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cardhub_core::account::AccountSystem;
use cardhub_core::app;
use cardhub_core::cards::card::CardStatus;
use cardhub_core::fleet::Holder;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::link;
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::export::ExportFormat;
use cardhub_core::prepaid::{Ledger, Merchant, PrepaidError};
use support::prepaid::{CITY, load, open_ledger, original};
use support::*;

/// Inactive prepaid cards (USD, the test requests' currency).
const FIRST: &str = "4761739002010019";
const SECOND: &str = "4761739002010027";
/// A prepaid card of the institution whose ledger is cut off.
const CUT_OFF: &str = "4761739002010035";

/// [`support::prepaid::CITY`], its ATM loads limited to a card range, and
/// a second prepaid institution.
fn extra() -> String {
    format!(
        r#"{CITY}load_prefixes = {{ atm = "4761739009" }}

[[institution]]
id = "city-down"
name = "City prepaid, ledger cut off"
mode = "prepaid"
"#
    )
}

/// A hub whose `city` cards are in the ledger (orderer, programme with
/// the default maximum of 300.00, one card account per card) and whose
/// `city-down` institution answers through a system that is unreachable.
async fn start_prepaid() -> TestHub {
    let (dir, config) = prepare(&extra()).await;
    let csv = dir.path().join("prepaid-cards.csv");
    std::fs::write(
        &csv,
        format!(
            "pan,expiry,status,account,institution,currency,profile,product\n\
             {FIRST},3012,inactive,P-1,city,USD,prepaid,prepaid\n\
             {SECOND},3012,inactive,P-2,city,USD,prepaid,prepaid\n\
             {CUT_OFF},3012,active,P-9,city-down,USD,prepaid,prepaid\n"
        ),
    )
    .unwrap();
    open_ledger(&config, &csv, &["P-1", "P-2"], None).await;
    let bank = Arc::new(TestBank::default());
    let down = Arc::new(TestBank::default());
    down.unreachable.store(true, Ordering::SeqCst);
    let systems: HashMap<String, Arc<dyn AccountSystem>> = HashMap::from([
        ("bank-a".to_string(), bank.clone() as Arc<dyn AccountSystem>),
        ("city-down".to_string(), down as Arc<dyn AccountSystem>),
    ]);
    let hub = Arc::new(app::open(&config, systems).unwrap());
    linked(dir, config, hub, bank).await
}

/// The rows of a query on the hub's store, each converted by `f`.
fn rows<T>(
    t: &TestHub,
    sql: &str,
    f: impl FnMut(&cardhub_core::store::sql::Row<'_>) -> cardhub_core::store::sql::Result<T>,
) -> Vec<T> {
    t.hub
        .store()
        .read(|c| c.prepare_cached(sql)?.query_map([], f)?.collect())
        .unwrap()
}

fn ledger_of(t: &TestHub) -> Ledger {
    Ledger::new(t.hub.store().clone(), &t.config.prepaid)
}

fn status(t: &TestHub, pan: &str) -> CardStatus {
    let pan = Pan::new(pan).unwrap();
    t.hub.cards().get(&pan).unwrap().unwrap().status
}

#[tokio::test]
async fn first_load_activates_then_purchase_over_max_and_over_balance() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;

    // Inactive: a purchase is refused before any load.
    assert_eq!(code_of(&c, &purchase(FIRST, 1_000, 1)).await, "62");

    // The first load: approved, booked, and the card active, durably.
    assert_eq!(code_of(&c, &load(FIRST, 20_000, 2)).await, "00");
    assert_eq!(status(&t, FIRST), CardStatus::Active);
    assert_eq!(ledger_of(&t).balance("P-1").unwrap().ledger, 20_000);

    // Now a purchase is authorized against the ledger: a hold.
    assert_eq!(code_of(&c, &purchase(FIRST, 5_000, 3)).await, "00");
    let after = ledger_of(&t).balance("P-1").unwrap();
    assert_eq!((after.available, after.ledger), (15_000, 20_000));

    // A load past the programme's maximum (300.00): 61, nothing booked.
    assert_eq!(code_of(&c, &load(FIRST, 10_001, 4)).await, "61");
    assert_eq!(ledger_of(&t).balance("P-1").unwrap().ledger, 20_000);

    // More than is available: 51.
    assert_eq!(code_of(&c, &purchase(FIRST, 15_001, 5)).await, "51");

    // A refused first load leaves the card inactive.
    assert_eq!(code_of(&c, &load(SECOND, 30_001, 6)).await, "61");
    assert_eq!(status(&t, SECOND), CardStatus::Inactive);

    let audit = ledger_of(&t).audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
    // The ledger decided, as the journal says.
    let deciders: Vec<(String, String)> = rows(
        &t,
        "SELECT response_code, decided_by FROM journal WHERE institution = 'city' AND stan <> '000001' ORDER BY stan",
        |r| Ok((r.get(0)?, r.get(1)?)),
    );
    assert!(
        deciders.iter().all(|(_, by)| by == "account_system"),
        "{deciders:?}"
    );
}

/// A first load at one instance, the holder's first purchase at another
/// right after: the second instance's card snapshot (refreshed every
/// second by `cardhub serve`, never here) still says inactive, yet the
/// purchase is authorized, from the card as the store has it.
#[tokio::test]
async fn a_card_activated_at_one_instance_pays_at_the_other_at_once() {
    let t = start_prepaid().await;
    let mut config = t.config.clone();
    config.fleet.instance = 1;
    let other = Arc::new(app::open(&config, HashMap::new()).unwrap());
    let other_link = link::start(&config.switches, &config.link, other.clone())
        .await
        .unwrap();
    let at_other = client(&other_link.local_addr("base24").unwrap().to_string()).await;
    let pan = Pan::new(FIRST).unwrap();
    assert_eq!(
        other.cards().lookup(&pan).unwrap().status,
        CardStatus::Inactive
    );

    assert_eq!(
        code_of(&client(&t.addr).await, &load(FIRST, 20_000, 1)).await,
        "00"
    );
    assert_eq!(code_of(&at_other, &purchase(FIRST, 5_000, 2)).await, "00");
    // Its snapshot has not moved: the store said active.
    assert_eq!(
        other.cards().lookup(&pan).unwrap().status,
        CardStatus::Inactive
    );
    let after = ledger_of(&t).balance("P-1").unwrap();
    assert_eq!((after.available, after.ledger), (15_000, 20_000));
    // A card inactive in the store too is still refused there.
    assert_eq!(code_of(&at_other, &purchase(SECOND, 1_000, 3)).await, "62");
}

#[tokio::test]
async fn prepaid_card_with_its_ledger_cut_off_is_declined_91_never_stood_in_for() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    assert_eq!(code_of(&c, &load(CUT_OFF, 1_000, 1)).await, "91");
    // Past the breaker's five failures the institution is unreachable:
    // still 91, still no stand-in.
    for stan in 2..=8 {
        assert_eq!(code_of(&c, &purchase(CUT_OFF, 1_000, stan)).await, "91");
    }
    let state = t.hub.institutions().get("city-down").unwrap().state();
    assert!(!state.is_online(), "{state}");

    let deciders: Vec<String> = rows(
        &t,
        "SELECT decided_by FROM journal WHERE institution = 'city-down'",
        |r| r.get(0),
    );
    assert_eq!(deciders, ["hub_rule"; 8]);
    let saf: Vec<i64> = rows(&t, "SELECT COUNT(*) FROM saf_queue", |r| r.get(0));
    assert_eq!(saf, [0], "no SAF item for a prepaid card");
    let shadow: Vec<i64> = rows(
        &t,
        "SELECT COUNT(*) FROM movements WHERE institution = 'city-down'",
        |r| r.get(0),
    );
    assert_eq!(shadow, [0], "no shadow balance for a prepaid card");
}

#[tokio::test]
async fn completion_advice_captures_and_reversals_release_or_undo() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let ledger = ledger_of(&t);
    assert_eq!(code_of(&c, &load(FIRST, 20_000, 1)).await, "00");

    // Authorized 50.00, completed (0220) for 40.00: the rest is released.
    assert_eq!(code_of(&c, &purchase(FIRST, 5_000, 2)).await, "00");
    let mut completion = request("0220", "000000", FIRST, 4_000, 3);
    completion.set(39, "00");
    completion.set(90, original("0100", 2));
    // Without DE 43 of its own: the capture keeps the authorization's.
    completion.remove(43);
    assert_eq!(code_of(&c, &completion).await, "00");
    let b = ledger.balance("P-1").unwrap();
    assert_eq!((b.available, b.ledger), (16_000, 16_000));
    let shop = "CARDHUB SIM CORNER SHOP  AMSTERDAM    NL";
    let names: Vec<Option<String>> = rows(
        &t,
        "SELECT merchant_name FROM journal WHERE stan IN ('000002', '000003') ORDER BY stan",
        |r| r.get(0),
    );
    assert_eq!(
        names,
        [Some(shop.to_string()), None],
        "DE 43 journaled, trimmed"
    );
    let export = ledger
        .export_day(
            support::prepaid::ORDERER,
            jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date(),
            ExportFormat::Csv,
            jiff::Timestamp::now().as_microsecond(),
        )
        .unwrap();
    let export = String::from_utf8(export).unwrap();
    let capture = export.lines().find(|l| l.contains(",capture,")).unwrap();
    assert!(capture.contains(&format!(",{shop},-4000,USD,")), "{export}");

    // An authorization reversed (0400): its hold is released.
    assert_eq!(code_of(&c, &purchase(FIRST, 3_000, 4)).await, "00");
    assert_eq!(ledger.balance("P-1").unwrap().available, 13_000);
    let mut reversal = request("0400", "000000", FIRST, 3_000, 5);
    reversal.set(90, original("0100", 4));
    assert_eq!(code_of(&c, &reversal).await, "00");
    assert_eq!(ledger.balance("P-1").unwrap().available, 16_000);

    // The load partly reversed (0420, actual amount 150.00): 50.00 undone.
    let mut partial = request("0420", "210000", FIRST, 20_000, 6);
    partial.set(90, original("0200", 1));
    partial.set(95, "000000015000000000015000C00000000C00000000");
    assert_eq!(code_of(&c, &partial).await, "00");
    let b = ledger.balance("P-1").unwrap();
    assert_eq!((b.available, b.ledger), (11_000, 11_000));
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
}

#[tokio::test]
async fn a_lost_card_is_replaced_in_one_step_with_its_balance() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let ledger = ledger_of(&t);
    assert_eq!(code_of(&c, &load(FIRST, 20_000, 1)).await, "00");
    assert_eq!(code_of(&c, &purchase(FIRST, 5_000, 2)).await, "00");

    let replacement = "4761739002010043";
    let (old, new) = (Pan::new(FIRST).unwrap(), Pan::new(replacement).unwrap());
    let expiry = cardhub_core::iso8583::fields::Expiry::parse("3112").unwrap();
    let (cards, lost, ledger_ref) = (t.hub.cards(), &old, &ledger);
    let replace = |new: Pan| async move {
        (ledger_ref.replace_lost_card(cards, "REPLACE-1", lost, &new, expiry, "P-1b")).await
    };
    let first = replace(new.clone()).await.unwrap();
    let card = &first.card;
    assert_eq!(
        (card.status, card.account.as_str(), first.repeat),
        (CardStatus::Active, "P-1b", false)
    );
    let balances = first.balances;
    assert_eq!((balances.available, balances.ledger), (15_000, 20_000));
    assert_eq!(status(&t, FIRST), CardStatus::Lost);

    // Sent again (its answer lost): the same card and balances, a repeat.
    let again = replace(new.clone()).await.unwrap();
    assert!(again.repeat);
    assert_eq!((&again.card, again.balances), (&first.card, first.balances));
    // The same reference for another new card, unknown or registered:
    // refused, nothing changed.
    let unknown = "4761739002010050";
    let second = status(&t, SECOND);
    for other in [unknown, SECOND] {
        let clash = replace(Pan::new(other).unwrap()).await.unwrap_err();
        assert!(
            matches!(&clash, PrepaidError::ReferenceConflict { reference } if reference == "REPLACE-1"),
            "{clash}"
        );
    }
    assert!(
        t.hub
            .cards()
            .get(&Pan::new(unknown).unwrap())
            .unwrap()
            .is_none()
    );
    assert_eq!(status(&t, SECOND), second);
    assert_eq!(ledger.balance("P-1b").unwrap(), balances);

    // A replacement PAN already registered: refused, nothing changed.
    let again = ledger
        .replace_lost_card(
            t.hub.cards(),
            "REPLACE-2",
            &new,
            &Pan::new(SECOND).unwrap(),
            expiry,
            "P-x",
        )
        .await;
    assert!(again.is_err());
    assert_eq!(status(&t, replacement), CardStatus::Active);

    // The old card is refused; the new one spends the carried balance.
    assert_eq!(code_of(&c, &purchase(FIRST, 100, 3)).await, "41");
    let mut m = purchase(replacement, 15_000, 4);
    m.set(14, "3112");
    assert_eq!(code_of(&c, &m).await, "00");
    assert_eq!(ledger.balance("P-1b").unwrap().available, 0);
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_identical_replacements_at_once_replace_once() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let ledger = ledger_of(&t);
    assert_eq!(code_of(&c, &load(FIRST, 20_000, 1)).await, "00");
    let (old, new) = (
        Pan::new(FIRST).unwrap(),
        Pan::new("4761739002010043").unwrap(),
    );
    let expiry = cardhub_core::iso8583::fields::Expiry::parse("3112").unwrap();
    let replace = || ledger.replace_lost_card(t.hub.cards(), "R-TWICE", &old, &new, expiry, "P-1b");
    let (a, b) = tokio::join!(replace(), replace());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        [a.repeat, b.repeat].iter().filter(|r| !**r).count(),
        1,
        "exactly one replaced"
    );
    assert_eq!((&a.card, a.balances), (&b.card, b.balances));
    assert_eq!(ledger.balance("P-1b").unwrap().ledger, 20_000);
    let audit = ledger.audit().unwrap();
    assert!(audit.is_empty(), "{audit:#?}");
}

#[tokio::test]
async fn the_background_work_expires_stale_holds() {
    let t = start_prepaid().await;
    let ledger = ledger_of(&t);
    let usd = Currency::from_numeric(840).unwrap();
    let money = |minor| cardhub_core::money::Money::new(minor, usd);
    ledger.load("L-1", "P-1", money(1_000)).await.unwrap();
    let past = jiff::Timestamp::now().as_microsecond() - 1;
    ledger
        .hold("H-1", "P-1", money(600), past, &Merchant::default())
        .await
        .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    app::spawn_background(
        &t.hub,
        &t.config,
        &Holder::new(t.config.fleet.instance),
        shutdown.clone(),
    );
    wait_until("the stale hold expired", || {
        rows(
            &t,
            "SELECT state FROM prepaid_holds WHERE reference = 'H-1'",
            |r| r.get::<String>(0),
        ) == ["expired"]
    })
    .await;
    shutdown.cancel();
}

#[tokio::test]
async fn a_load_terminal_loads_only_its_card_range() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let mut atm_load = load(FIRST, 5_000, 71);
    atm_load.set_header(Some(b"ISO016000070".to_vec()));
    assert_eq!(code_of(&c, &atm_load).await, "57");
    assert_eq!(status(&t, FIRST), CardStatus::Inactive);
    assert_eq!(ledger_of(&t).balance("P-1").unwrap().ledger, 0);
    // POS load terminals have no prefix configured: any card of the institution.
    assert_eq!(code_of(&c, &load(FIRST, 5_000, 72)).await, "00");
    assert_eq!(ledger_of(&t).balance("P-1").unwrap().ledger, 5_000);
}

/// A load from the switch sent again (a retransmission: the same keys and
/// content) is answered as the first and booked once. The ledger keys it
/// by cardhub's transaction id: sent to the ledger again with the same
/// card and amount it is a repeat, with another amount it is refused.
#[tokio::test]
async fn a_retransmitted_load_is_booked_once() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let ledger = ledger_of(&t);
    for _ in 0..2 {
        assert_eq!(code_of(&c, &load(FIRST, 7_000, 91)).await, "00");
    }
    assert_eq!(ledger.balance("P-1").unwrap().ledger, 7_000);
    let references: Vec<String> = rows(
        &t,
        "SELECT reference FROM prepaid_entries WHERE kind = 'load'",
        |r| r.get(0),
    );
    assert_eq!(references.len(), 1, "{references:?}");
    let usd = |minor| Money::new(minor, Currency::from_numeric(840).unwrap());
    let again = ledger.load(&references[0], "P-1", usd(7_000)).await;
    assert!(again.unwrap().repeat);
    let other = ledger.load(&references[0], "P-1", usd(100)).await;
    assert!(
        matches!(other, Err(PrepaidError::ReferenceConflict { .. })),
        "{other:?}"
    );
    assert_eq!(ledger.balance("P-1").unwrap().ledger, 7_000);
}

#[tokio::test]
async fn a_financial_purchase_is_posted_at_once_and_reversible() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    let ledger = ledger_of(&t);
    assert_eq!(code_of(&c, &load(FIRST, 10_000, 81)).await, "00");
    // 0200: approved means final. Posted now, nothing left set aside
    // that could expire back onto the card.
    assert_eq!(
        code_of(&c, &request("0200", "000000", FIRST, 3_000, 82)).await,
        "00"
    );
    let b = ledger.balance("P-1").unwrap();
    assert_eq!((b.available, b.ledger), (7_000, 7_000));
    let far = jiff::Timestamp::now().as_microsecond() + 400 * 86_400_000_000;
    assert_eq!(ledger.expire_holds(far).await.unwrap(), 0);
    assert_eq!(ledger.balance("P-1").unwrap().ledger, 7_000);
    // Over the balance: 51, nothing posted.
    assert_eq!(
        code_of(&c, &request("0200", "000000", FIRST, 7_001, 83)).await,
        "51"
    );
    // Its reversal credits it back.
    let mut reversal = request("0400", "000000", FIRST, 3_000, 84);
    reversal.set(90, original("0200", 82));
    assert_eq!(code_of(&c, &reversal).await, "00");
    let b = ledger.balance("P-1").unwrap();
    assert_eq!((b.available, b.ledger), (10_000, 10_000));
    assert!(ledger.audit().unwrap().is_empty());
}

/// A hold whose store job commits only after the call's deadline passed
/// (the store's writer busy until then): the decision row written with the
/// hold is the answer, never a 91 the journal contradicts, and the hold is
/// not reversed.
#[tokio::test]
async fn a_hold_booked_after_the_deadline_is_answered_as_journaled() {
    let t = start_prepaid().await;
    let c = client(&t.addr).await;
    assert_eq!(code_of(&c, &load(FIRST, 20_000, 2)).await, "00");

    let busy = t.config.switches[0].budget() + Duration::from_millis(300);
    let store = t.hub.store().clone();
    let blocker = tokio::spawn(async move {
        store
            .write(move |_| {
                std::thread::sleep(busy);
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(code_of(&c, &purchase(FIRST, 5_000, 3)).await, "00");
    blocker.await.unwrap().unwrap();

    let held = ledger_of(&t).balance("P-1").unwrap();
    assert_eq!((held.available, held.ledger), (15_000, 20_000));
    let journaled: Vec<(String, String, String)> = rows(
        &t,
        "SELECT entry, response_code, decided_by FROM journal WHERE stan = '000003' ORDER BY txn_id",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    );
    assert_eq!(
        journaled,
        [("request".into(), "00".into(), "account_system".into())]
    );
    let reversals: Vec<i64> = rows(&t, "SELECT COUNT(*) FROM saf_queue", |r| r.get(0));
    assert_eq!(reversals, [0], "the answered hold is not reversed");
}
