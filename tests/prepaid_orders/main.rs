//! Prepaid card orders against a real store file: orders of personal and
//! impersonal cards, idempotent repeats, the order states, the production
//! and PIN mailer files read back by an independent Python reader
//! (`fixtures/prepaid/read_card_files.py`, standard library only), PIN
//! reorders, replacements of lost order cards produced and PIN mailed as
//! order cards, and no clear PAN in the store, the logs or a PIN mailer.

#[path = "../support/mod.rs"]
mod support;

mod replacements;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use cardhub_core::cards::config::Catalog;
use cardhub_core::cards::{CardRegistry, CardStatus, PanKeys, Product};
use cardhub_core::iso8583::fields::{Expiry, Pan};
use cardhub_core::money::{Currency, Money};
use cardhub_core::prepaid::config::PrepaidConfig;
use cardhub_core::prepaid::orders::{CardRange, NewOrder, OrderError, OrderState};
use cardhub_core::prepaid::{Ledger, NewOrderer, NewProgramme, PinDelivery, ProgrammeKind};
use serde_json::Value;
use tempfile::TempDir;

const PREFIX: &str = "476173";

struct Hub {
    dir: TempDir,
    ledger: Ledger,
    cards: CardRegistry,
}

impl Hub {
    /// Orders `order`'s cards; the order's id.
    async fn order(&self, order: NewOrder) -> i64 {
        self.ledger
            .order_cards(&self.cards, order)
            .await
            .unwrap()
            .id
    }

    /// Writes order `id`'s production file as `name` in the test's folder;
    /// the independent reader's view of it.
    async fn produce(&self, id: i64, name: &str) -> Value {
        let path = self.dir.path().join(name);
        self.ledger
            .write_production_file(&self.cards, id, &path)
            .await
            .unwrap();
        read_back("production", &path)
    }

    /// Writes the PIN mailer file of every pending PIN as `name` in the
    /// test's folder; the reader's view of it, none when nothing was pending.
    async fn mail_pins(&self, name: &str) -> Option<Value> {
        let path = self.dir.path().join(name);
        let written = self.ledger.write_pin_mailer_file(&path).await.unwrap();
        written.map(|_| read_back("mailer", &path))
    }
}

/// The PANs of a production file's records.
fn pans_of(production: &Value) -> Vec<Pan> {
    production["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| Pan::new(d["pan"].as_str().unwrap()).unwrap())
        .collect()
}

fn eur(minor: u64) -> Money {
    Money::new(minor, Currency::from_numeric(978).unwrap())
}

/// A store with orderer `city` ("Gemeente Düren") and two programmes:
/// `city-social` (PIN by mailer) and `city-small` (PIN with the card), both
/// issuing from the range 476173.
async fn hub() -> Hub {
    let dir = tempfile::Builder::new()
        .prefix("prepaid-orders")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let store = support::open_store(dir.path());
    let ledger = Ledger::new(store.clone(), &PrepaidConfig::default());
    let keys = PanKeys::from_bytes([1; 32], [2; 32]);
    let cards = CardRegistry::open(store, keys, Catalog::new(["city"], ["prepaid"])).unwrap();
    ledger
        .create_orderer(NewOrderer {
            id: "city".into(),
            name: "Gemeente Düren".into(),
            funding_account: "NL00BANK0123456789".into(),
        })
        .await
        .unwrap();
    for (id, kind, pin) in [
        (
            "city-social",
            ProgrammeKind::SocialClient,
            PinDelivery::Separately,
        ),
        (
            "city-small",
            ProgrammeKind::SmallPurchase,
            PinDelivery::WithCard,
        ),
    ] {
        ledger
            .create_programme(NewProgramme {
                id: id.into(),
                orderer: "city".into(),
                kind,
                currency: Currency::from_numeric(978).unwrap(),
                max_balance: Some(50_000),
                pin_delivery: pin,
                daily: Default::default(),
            })
            .await
            .unwrap();
        ledger.set_card_range(id, range()).await.unwrap();
    }
    Hub { dir, ledger, cards }
}

fn range() -> CardRange {
    CardRange {
        prefix: PREFIX.into(),
        pan_length: 16,
        validity_months: 36,
        institution: "city".into(),
        profile: "prepaid".into(),
    }
}

fn personal(reference: &str, holders: &[&str]) -> NewOrder {
    NewOrder {
        orderer: "city".into(),
        programme: "city-social".into(),
        count: holders.len() as u32,
        holders: Some(holders.iter().map(|h| h.to_string()).collect()),
        reference: reference.into(),
    }
}

fn impersonal(reference: &str, count: u32) -> NewOrder {
    NewOrder {
        orderer: "city".into(),
        programme: "city-small".into(),
        count,
        holders: None,
        reference: reference.into(),
    }
}

/// The independent reader's view of a producer's file.
fn read_back(kind: &str, path: &Path) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/prepaid/read_card_files.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(kind)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reader refused {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn bytes_of_dir(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            all.extend(std::fs::read(path).unwrap());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn personal_and_impersonal_orders_register_inactive_empty_cards_once() {
    let hub = hub().await;
    let first = hub
        .ledger
        .order_cards(
            &hub.cards,
            personal("SOC-1", &["Zoë Ågren", "Jan de Vries", "Ana"]),
        )
        .await
        .unwrap();
    assert!(!first.repeat);
    let again = hub
        .ledger
        .order_cards(
            &hub.cards,
            personal("SOC-1", &["Zoë Ågren", "Jan de Vries", "Ana"]),
        )
        .await
        .unwrap();
    assert_eq!((again.id, again.repeat), (first.id, true));
    let second = hub
        .ledger
        .order_cards(&hub.cards, impersonal("SMALL-1", 2))
        .await
        .unwrap();
    assert_ne!(second.id, first.id);
    // The same reference for another order is refused.
    let clash = hub
        .ledger
        .order_cards(&hub.cards, impersonal("SOC-1", 5))
        .await
        .unwrap_err();
    assert!(matches!(clash, OrderError::ReferenceConflict { order, .. } if order == first.id));

    let order = hub.ledger.order(&hub.cards, first.id).unwrap();
    assert_eq!(order.summary.state, OrderState::Ordered);
    assert_eq!((order.summary.count, order.summary.loaded), (3, 0));
    assert!(order.summary.personal);
    assert_eq!(order.cards.len(), 3);
    let holders: Vec<_> = order
        .cards
        .iter()
        .map(|c| c.holder.clone().unwrap())
        .collect();
    assert_eq!(holders, ["Zoë Ågren", "Jan de Vries", "Ana"]);
    let now = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    let expiry =
        Expiry::parse(&format!("{:02}{:02}", (now.year() + 3) % 100, now.month())).unwrap();
    for (i, card) in order.cards.iter().enumerate() {
        assert_eq!(card.sequence as usize, i + 1);
        assert_eq!(card.account, format!("SOC-1-{:05}", i + 1));
        assert_eq!(card.status, Some(CardStatus::Inactive));
        assert_eq!(card.expiry, expiry);
        assert!(card.pan_masked.starts_with(PREFIX) && card.pan_masked.contains("******"));
        assert!(!card.loaded);
        let balances = hub.ledger.balance(&card.account).unwrap();
        assert_eq!((balances.available, balances.ledger), (0, 0));
    }
    // PANs follow the range: serials 1.. then 4, 5 for the next order.
    let small = hub.ledger.order(&hub.cards, second.id).unwrap();
    let last4: Vec<_> = order
        .cards
        .iter()
        .chain(&small.cards)
        .map(|c| c.pan_masked[12..].to_string())
        .collect();
    let expected: Vec<_> = (1..=5).map(|s| pan(s).last4().to_string()).collect();
    assert_eq!(last4, expected);
    let registered = hub.cards.get(&pan(4)).unwrap().unwrap();
    assert_eq!(registered.status, CardStatus::Inactive);
    assert_eq!(registered.product, Product::Prepaid);
    assert_eq!(
        (registered.institution.as_str(), registered.profile.as_str()),
        ("city", "prepaid")
    );
    assert_eq!(registered.account, "SMALL-1-00001");

    let list = hub.ledger.orders("city").unwrap();
    assert_eq!(
        list.iter().map(|o| o.id).collect::<Vec<_>>(),
        [first.id, second.id]
    );
    assert!(hub.ledger.audit().unwrap().is_empty());
}

/// The PAN at a serial of the test range (the reader checks the Luhn digit
/// independently).
fn pan(serial: u32) -> Pan {
    let body = format!("{PREFIX}{serial:09}");
    (0..10)
        .map(|d| Pan::new(&format!("{body}{d}")).unwrap())
        .find(Pan::luhn_ok)
        .unwrap()
}

#[tokio::test]
async fn refused_orders_change_nothing() {
    let hub = hub().await;
    // A PAN of the range registered by someone else is skipped, not reused.
    hub.ledger
        .order_cards(&hub.cards, impersonal("A", 1))
        .await
        .unwrap();
    let cases = [
        (personal("B", &["Иван Петров"]), "holders[0]"),
        (personal("C", &["A", ""]), "holders[1]"),
        (impersonal("bad ref", 1), "reference"),
        (impersonal("D", 0), "count"),
    ];
    for (order, needle) in cases {
        let err = hub.ledger.order_cards(&hub.cards, order).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let mut other = impersonal("E", 1);
    other.orderer = "school".into();
    assert!(matches!(
        hub.ledger.order_cards(&hub.cards, other).await.unwrap_err(),
        OrderError::NotOrderersProgramme { .. }
    ));
    // An institution the configuration does not know: refused by the
    // registry, and the ledger has no card account of it.
    let mut unknown = range();
    unknown.institution = "nowhere".into();
    hub.ledger
        .set_card_range("city-small", unknown)
        .await
        .unwrap();
    let err = hub
        .ledger
        .order_cards(&hub.cards, impersonal("F", 2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(hub.ledger.balance("F-00001").is_err());
    hub.ledger
        .set_card_range("city-small", range())
        .await
        .unwrap();
    // Still serial 2 next: nothing of the refused orders was kept.
    let g = hub
        .ledger
        .order_cards(&hub.cards, impersonal("G", 1))
        .await
        .unwrap();
    let order = hub.ledger.order(&hub.cards, g.id).unwrap();
    assert_eq!(&order.cards[0].pan_masked[12..], pan(2).last4());
    assert_eq!(hub.ledger.orders("city").unwrap().len(), 2);
}

#[tokio::test]
async fn states_move_forward_only_and_the_production_file_reads_back() {
    let hub = hub().await;
    let id = hub
        .ledger
        .order_cards(
            &hub.cards,
            personal("SOC-2", &["Zoë Ågren", "Jürgen Öztürk"]),
        )
        .await
        .unwrap()
        .id;
    let early = hub.ledger.mark_delivered(id).await.unwrap_err();
    assert!(matches!(
        early,
        OrderError::IllegalTransition {
            state: OrderState::Ordered,
            to: OrderState::Delivered,
            ..
        }
    ));

    let path = hub.dir.path().join("production-1.txt");
    let written = hub
        .ledger
        .write_production_file(&hub.cards, id, &path)
        .await
        .unwrap();
    assert_eq!(written.records, 2);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let order = hub.ledger.order(&hub.cards, id).unwrap();
    assert_eq!(order.summary.state, OrderState::Produced);
    // Never over an existing file; again elsewhere: the same bytes.
    assert!(matches!(
        hub.ledger
            .write_production_file(&hub.cards, id, &path)
            .await
            .unwrap_err(),
        OrderError::File { .. }
    ));
    let again = hub.dir.path().join("production-1-again.txt");
    hub.ledger
        .write_production_file(&hub.cards, id, &again)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let file = read_back("production", &path);
    let header = &file["header"];
    assert_eq!(header["order"], id);
    assert_eq!(header["reference"], "SOC-2");
    assert_eq!(header["programme"], "city-social");
    assert_eq!(header["orderer_name"], "GEMEENTE DUEREN");
    assert_eq!(header["personal"], "P");
    assert_eq!(header["count"], 2);
    let details = file["details"].as_array().unwrap();
    let names: Vec<_> = details
        .iter()
        .map(|d| d["holder_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ZOE AAGREN", "JUERGEN OEZTUERK"]);
    for (d, card) in details.iter().zip(&order.cards) {
        assert_eq!(d["sequence"], card.sequence);
        assert_eq!(d["expiry"], card.expiry.to_string());
        assert_eq!(d["orderer_name"], "GEMEENTE DUEREN");
        assert_eq!(d["pin_delivery"], "M");
        assert!(d["pin_request"].as_str().unwrap().starts_with("PIN"));
        // The file's PAN is the registered card of that account.
        let pan = Pan::new(d["pan"].as_str().unwrap()).unwrap();
        assert_eq!(pan.masked(), card.pan_masked);
        assert_eq!(hub.cards.get(&pan).unwrap().unwrap().account, card.account);
    }

    let delivered = hub.ledger.mark_delivered(id).await.unwrap();
    assert_eq!(delivered.state, OrderState::Delivered);
    assert!(delivered.delivered_at_us.is_some());
    assert!(matches!(
        hub.ledger
            .write_production_file(&hub.cards, id, &hub.dir.path().join("late"))
            .await
            .unwrap_err(),
        OrderError::IllegalTransition {
            state: OrderState::Delivered,
            ..
        }
    ));
    // The first load makes the order active.
    hub.ledger
        .load("L1", &order.cards[1].account, eur(1_000))
        .await
        .unwrap();
    let active = hub.ledger.order(&hub.cards, id).unwrap();
    assert_eq!(active.summary.state, OrderState::Active);
    assert_eq!(active.summary.loaded, 1);
    assert!(active.cards[1].loaded && !active.cards[0].loaded);
    assert_eq!(
        hub.ledger.mark_delivered(id).await.unwrap().state,
        OrderState::Active
    );
    // An impersonal order with PINs in the card letter.
    let small = hub.order(impersonal("SMALL-2", 1)).await;
    let file = hub.produce(small, "production-2.txt").await;
    assert_eq!(file["header"]["personal"], "I");
    assert_eq!(file["details"][0]["holder_name"], "");
    assert_eq!(file["details"][0]["pin_delivery"], "C");
}

#[tokio::test]
async fn pin_mailers_and_reorders_carry_masked_pans_only() {
    let hub = hub().await;
    let id = hub.order(personal("SOC-3", &["Ana", "Bo", "Cy"])).await;
    let small = hub.order(impersonal("SMALL-3", 1)).await;
    // Nothing pending before production.
    assert!(hub.mail_pins("m0").await.is_none());
    let pans = pans_of(&hub.produce(id, "production.txt").await);
    hub.produce(small, "p2").await;

    let first = hub.dir.path().join("mailer-1.txt");
    let written = hub
        .ledger
        .write_pin_mailer_file(&first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        written.records, 3,
        "the with-card programme's card has no mailer record"
    );
    assert_eq!(
        std::fs::metadata(&first).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let mailer = read_back("mailer", &first);
    let details = mailer["details"].as_array().unwrap();
    let holders: Vec<_> = details
        .iter()
        .map(|d| d["holder_name"].as_str().unwrap())
        .collect();
    assert_eq!(holders, ["ANA", "BO", "CY"]);
    assert!(details.iter().all(|d| d["kind"] == "N" && d["order"] == id));
    let bytes = std::fs::read(&first).unwrap();
    for pan in &pans {
        assert!(!contains(&bytes, pan.expose()));
    }
    assert_eq!(hub.ledger.pin_mailer_file(written.id).unwrap(), bytes);
    // Taken: the next mailer has nothing.
    assert!(hub.mail_pins("m2").await.is_none());

    let card = &pans[1];
    let reorder = hub.ledger.reorder_pin(&hub.cards, card).await.unwrap();
    let repeat = hub.ledger.reorder_pin(&hub.cards, card).await.unwrap();
    assert_eq!((repeat.id, repeat.repeat), (reorder.id, true));
    let mailer = hub.mail_pins("mailer-2.txt").await.unwrap();
    let d = &mailer["details"][0];
    assert_eq!(
        (d["kind"].as_str(), d["sequence"].as_u64()),
        (Some("R"), Some(2))
    );
    assert_eq!(d["pin_request"], reorder.reference.as_str());
    assert_eq!(d["masked_pan"], card.masked());

    // Lost, stolen, closed and replaced cards get no PIN.
    let cli = cardhub_core::access::Actor::cli();
    let by = cardhub_core::cards::ChangedBy {
        actor: &cli,
        reason: Some("reported stolen"),
    };
    hub.cards
        .set_status(&hub.cards.card_ref(card), CardStatus::Stolen, by)
        .await
        .unwrap();
    let err = hub.ledger.reorder_pin(&hub.cards, card).await.unwrap_err();
    assert!(matches!(err, OrderError::PinReorderRefused { .. }));
    assert!(
        err.to_string().contains("stolen") && !err.to_string().contains(card.expose()),
        "{err}"
    );
}

/// Log lines, captured.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_clear_pan_in_the_store_or_the_logs() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    // Global, not scoped: a scoped subscriber misses callsites that other
    // tests' threads registered first (their interest is cached as none).
    // The other tests' lines land here too; this test's PANs are checked.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let hub = hub().await;
    let id = hub.order(personal("SOC-4", &["Ana", "Bo"])).await;
    let pans = pans_of(&hub.produce(id, "production.txt").await);
    hub.mail_pins("mailer.txt").await;
    hub.ledger.reorder_pin(&hub.cards, &pans[0]).await.unwrap();
    std::fs::remove_file(hub.dir.path().join("production.txt")).unwrap();

    let logged = logs.0.lock().unwrap().clone();
    assert!(
        contains(&logged, "prepaid cards ordered"),
        "nothing captured"
    );
    assert!(contains(&logged, "PIN reorder requested"));
    let stored = bytes_of_dir(hub.dir.path());
    for pan in &pans {
        assert!(!contains(&logged, pan.expose()), "a clear PAN was logged");
        assert!(
            !contains(&stored, pan.expose()),
            "a clear PAN is in the store or a file"
        );
    }
}
