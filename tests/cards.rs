//! The card registry against real files: the demo and bad card files, a
//! store in a temporary folder, the `cardhub cards` commands as a user runs
//! them, and the promise that no clear PAN reaches the database file.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::LazyLock;

use cardhub_core::access::Actor;
use cardhub_core::backoffice::search_index;
use cardhub_core::cards::config::Catalog;
use cardhub_core::cards::{
    CardError, CardRegistry, CardStatus, ChangedBy, ImportReport, PanKeys, Product, file,
};
use cardhub_core::config::Config;
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::store::sql;
use futures::executor::block_on;

/// Every PAN of the demo file, with its status there.
const DEMO: [(&str, CardStatus); 8] = [
    ("4761739001010010", CardStatus::Active),
    ("4761739001010028", CardStatus::Active),
    ("4761739001010036", CardStatus::Lost),
    ("4761739001010044", CardStatus::Stolen),
    ("4761739001010051", CardStatus::Blocked),
    ("4761739001010069", CardStatus::Expired),
    ("4761739001010077", CardStatus::Inactive),
    ("4761739001010085", CardStatus::Active),
];

/// The CLI's actor, as the audit log names it.
static CLI: LazyLock<Actor> = LazyLock::new(Actor::cli);

/// A change by the CLI, no reason given.
fn by() -> ChangedBy<'static> {
    ChangedBy {
        actor: &CLI,
        reason: None,
    }
}

fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn pan(digits: &str) -> Pan {
    Pan::new(digits).unwrap()
}

/// The fixture config with its store in `dir` (`support::store_keys`:
/// `hub.db`, or a PostgreSQL database in the PostgreSQL pass), written as
/// `dir/cardhub.toml`.
fn config_in(dir: &Path) -> (PathBuf, Config) {
    let text = std::fs::read_to_string(fixture("fixtures/config/cards.toml")).unwrap();
    let text: String = text
        .lines()
        .map(|line| {
            if line.starts_with("path = ") {
                support::store_keys(dir)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = dir.join("cardhub.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    (path, config)
}

fn registry(config: &Config) -> CardRegistry {
    let store = config.open_store().unwrap();
    let keys = PanKeys::from_config(&config.security).unwrap();
    CardRegistry::open(store, keys, config.catalog()).unwrap()
}

fn read_file(config: &Config, path: &str) -> Result<Vec<file::CardRow>, CardError> {
    file::read(&fixture(path), &config.catalog())
}

#[tokio::test]
async fn demo_file_imports_once_and_every_card_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = registry(&config);
    assert!(cards.is_empty());

    let rows = read_file(&config, "fixtures/cards/demo-cards.csv").unwrap();
    let report = cards.import(rows).await.unwrap();
    assert_eq!(
        report,
        ImportReport {
            added: 8,
            updated: 0,
            unchanged: 0
        }
    );
    assert_eq!(cards.len(), 8);
    for (digits, status) in DEMO {
        let card = cards.lookup(&pan(digits)).expect(digits);
        assert_eq!(card.status, status, "{digits}");
        assert_eq!(card.pan_masked, pan(digits).masked());
        assert_eq!(cards.get(&pan(digits)).unwrap().as_ref(), Some(&*card));
    }
    let prepaid = cards.lookup(&pan("4761739001010077")).unwrap();
    assert_eq!(
        (
            prepaid.product,
            prepaid.profile.as_str(),
            prepaid.institution.as_str()
        ),
        (Product::Prepaid, "prepaid", "bank-b")
    );
    assert_eq!(prepaid.currency.code, "EUR");
    assert!(cards.lookup(&pan("4761739001010093")).is_none());

    // Again: nothing changes, not even the version other processes watch.
    let version = cards.version();
    let rows = read_file(&config, "fixtures/cards/demo-cards.csv").unwrap();
    let report = cards.import(rows).await.unwrap();
    assert_eq!((report.added, report.updated, report.unchanged), (0, 0, 8));
    assert_eq!(cards.version(), version);
    assert!(!cards.refresh_if_changed().unwrap());

    // A fresh process sees the same cards.
    drop(cards);
    let reopened = registry(&config);
    assert_eq!(reopened.len(), 8);
    assert_eq!(reopened.version(), version);
}

#[tokio::test]
async fn changed_rows_are_updated_and_the_snapshot_follows() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = registry(&config);
    cards
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();
    let changed = dir.path().join("changed.csv");
    std::fs::write(
        &changed,
        "pan,expiry,status,account,institution,currency,profile\n\
         4761739001010010,3012,active,A-1001,bank-a,USD,standard\n\
         4761739001010028,2812,active,A-1002,bank-a,USD,standard\n\
         4761739001010093,2812,active,A-1009,bank-a,USD,standard\n",
    )
    .unwrap();
    let rows = file::read(&changed, &config.catalog()).unwrap();
    let report = cards.import(rows).await.unwrap();
    assert_eq!((report.added, report.updated, report.unchanged), (1, 1, 1));
    assert_eq!(
        cards.lookup(&pan("4761739001010010")).unwrap().expiry.year,
        30
    );
    assert!(cards.lookup(&pan("4761739001010093")).is_some());
    assert_eq!(cards.len(), 9);
}

#[tokio::test]
async fn bad_file_is_rejected_whole_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = registry(&config);
    cards
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();
    let version = cards.version();

    let Err(CardError::File { total, errors, .. }) =
        read_file(&config, "fixtures/cards/bad-cards.csv")
    else {
        panic!("the bad file was accepted");
    };
    let found: Vec<(u64, Option<&str>)> = errors
        .iter()
        .map(|e| (e.line, e.column.as_deref()))
        .collect();
    assert_eq!(
        found,
        [
            (4, Some("pan")),
            (5, Some("expiry")),
            (6, Some("status")),
            (6, Some("institution")),
            (7, Some("currency")),
            (7, Some("profile")),
            (8, Some("pan")),
            (9, None),
        ],
        "{errors:#?}"
    );
    assert_eq!(total, errors.len());
    let shown: String = errors.iter().map(ToString::to_string).collect();
    assert!(shown.contains("already on line 3"), "{shown}");
    assert!(!shown.contains("4761739001010011") && !shown.contains("4761739001010093"));

    // Nothing was applied: not the good first line, not the version.
    assert!(cards.lookup(&pan("4761739001010093")).is_none());
    assert!(cards.get(&pan("4761739001010093")).unwrap().is_none());
    assert!(!cards.refresh_if_changed().unwrap());
    assert_eq!(cards.version(), version);
    assert_eq!(cards.len(), 8);
}

#[tokio::test]
async fn the_database_never_holds_a_clear_pan() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = registry(&config);
    cards
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();
    let first = pan("4761739001010010");
    cards
        .set_status(&cards.card_ref(&first), CardStatus::Blocked, by())
        .await
        .unwrap();
    cards.unblock(&cards.card_ref(&first), by()).await.unwrap();
    cards
        .set_profile(&cards.card_ref(&first), "prepaid", by())
        .await
        .unwrap();

    let mut files = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("hub.db") {
            continue;
        }
        files += 1;
        let bytes = std::fs::read(&path).unwrap();
        for (digits, _) in DEMO {
            assert!(
                !bytes.windows(digits.len()).any(|w| w == digits.as_bytes()),
                "{name} holds the clear PAN {}",
                pan(digits)
            );
        }
        // The masked form is there: the check above would find digits if they were.
        if name.ends_with("-wal") {
            assert!(bytes.windows(16).any(|w| w == b"476173******0010"));
        }
    }
    assert!(files >= 2, "expected the database and its WAL");
}

#[tokio::test]
async fn single_card_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = registry(&config);
    cards
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();

    let lost = pan("4761739001010036");
    let err = cards
        .unblock(&cards.card_ref(&lost), by())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("476173******0036 is lost, not blocked"),
        "{err}"
    );
    let blocked = pan("4761739001010051");
    assert_eq!(
        cards
            .unblock(&cards.card_ref(&blocked), by())
            .await
            .unwrap()
            .status,
        CardStatus::Active
    );
    assert_eq!(cards.lookup(&blocked).unwrap().status, CardStatus::Active);

    let err = cards
        .set_profile(&cards.card_ref(&blocked), "gold", by())
        .await
        .unwrap_err();
    assert!(matches!(err, CardError::UnknownProfile { .. }), "{err}");
    let unknown = pan("4761739001010093");
    let err = cards
        .set_status(&cards.card_ref(&unknown), CardStatus::Closed, by())
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "card 476173******0093 is not registered");

    // Setting what is already so writes nothing.
    let version = cards.version();
    cards
        .set_status(&cards.card_ref(&lost), CardStatus::Lost, by())
        .await
        .unwrap();
    assert_eq!(cards.version(), version);
}

/// Changes written at once commit in one order and come back in another;
/// each is in the snapshot when its call returns all the same (the hub
/// answers a first load only once the card it activated is looked up
/// active).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_are_each_in_the_snapshot_when_they_return() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let cards = std::sync::Arc::new(registry(&config));
    cards
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();
    for round in 0..40 {
        let status = [CardStatus::Blocked, CardStatus::Active][round % 2];
        let changes: Vec<_> = DEMO
            .iter()
            .map(|(digits, _)| {
                let cards = cards.clone();
                tokio::spawn(async move {
                    let card = pan(digits);
                    cards
                        .set_status(&cards.card_ref(&card), status, by())
                        .await
                        .unwrap();
                    // Looked up the moment the change returns.
                    cards.lookup(&card).unwrap().status
                })
            })
            .collect();
        for (change, (digits, _)) in changes.into_iter().zip(DEMO) {
            assert_eq!(change.await.unwrap(), status, "round {round}: {digits}");
        }
    }
    assert!(
        !cards.refresh_if_changed().unwrap(),
        "the snapshot is current"
    );
}

#[tokio::test]
async fn a_change_through_another_handle_shows_after_refresh() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let hub = registry(&config);
    hub.import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();

    // Another store handle on the same file, as the CLI process would open it.
    let admin = registry(&config);
    let card = pan("4761739001010010");
    admin
        .set_status(&admin.card_ref(&card), CardStatus::Stolen, by())
        .await
        .unwrap();

    assert_eq!(hub.lookup(&card).unwrap().status, CardStatus::Active);
    assert!(hub.refresh_if_changed().unwrap());
    assert_eq!(hub.lookup(&card).unwrap().status, CardStatus::Stolen);
    assert!(!hub.refresh_if_changed().unwrap());
}

#[tokio::test]
async fn wrong_keys_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    registry(&config)
        .import(read_file(&config, "fixtures/cards/demo-cards.csv").unwrap())
        .await
        .unwrap();
    let store = config.open_store().unwrap();
    let right = PanKeys::from_config(&config.security).unwrap();
    let other_hash = PanKeys::from_bytes([9; 32], [0; 32]);
    // Same encryption key, other hash key: detected on the hash.
    let mut security = config.security.clone();
    security.pan_hash_key = Some("11".repeat(32));
    let wrong_hash = PanKeys::from_config(&security).unwrap();
    let catalog = config.catalog();
    for (keys, name) in [
        (other_hash, "pan_encryption_key"),
        (wrong_hash, "pan_hash_key"),
    ] {
        let err = CardRegistry::open(store.clone(), keys, catalog.clone()).unwrap_err();
        assert!(
            matches!(err, CardError::KeyMismatch { key } if key == name),
            "{err}"
        );
    }
    assert!(CardRegistry::open(store, right, catalog).is_ok());
}

/// Runs `cardhub` with `stdin` as standard input.
fn cardhub(args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_imports_blocks_and_shows_cards_masked() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = config_in(dir.path());
    let config = config.to_str().unwrap();
    let demo = fixture("fixtures/cards/demo-cards.csv");
    let bad = fixture("fixtures/cards/bad-cards.csv");
    let mut printed = String::new();
    let mut run = |args: &[&str], stdin: &str| {
        let (ok, out, err) = cardhub(args, stdin);
        printed.push_str(&out);
        printed.push_str(&err);
        (ok, out, err)
    };

    let (ok, out, err) = run(
        &[
            "cards",
            "import",
            demo.to_str().unwrap(),
            "--config",
            config,
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("added 8, updated 0, unchanged 0"), "{out}");

    let (ok, _, err) = run(
        &["cards", "import", bad.to_str().unwrap(), "--config", config],
        "",
    );
    assert!(!ok);
    assert!(
        err.contains("line 4, column pan: card number 476173******0011 fails the Luhn check"),
        "{err}"
    );
    assert!(err.contains("line 9: 3 fields, the header has 8"), "{err}");
    assert!(err.contains("8 error(s); nothing imported"), "{err}");

    let (ok, out, err) = run(
        &[
            "cards",
            "block",
            "4761739001010010",
            "--reason",
            "holder called",
            "--config",
            config,
        ],
        "",
    );
    assert!(ok, "{err}");
    assert!(out.contains("status       blocked"), "{out}");
    // Audited by the registry, actor `cli`, the card masked.
    let (ok, out, err) = run(
        &[
            "users",
            "audit",
            "--action",
            "card.status",
            "--config",
            config,
        ],
        "",
    );
    assert!(ok, "{err}");
    for want in [
        "cli",
        "476173******0010",
        r#""status":"active""#,
        r#""status":"blocked""#,
        "holder called",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }

    // The PAN from standard input keeps it out of the process list.
    let (ok, out, err) = run(
        &["cards", "show", "-", "--config", config],
        "4761739001010010\n",
    );
    assert!(ok, "{err}");
    for want in [
        "card         476173******0010",
        "status       blocked",
        "account      A-1001",
        "currency     USD (840)",
        "limits       standard",
    ] {
        assert!(out.contains(want), "{want:?} missing in:\n{out}");
    }

    let (ok, out, err) = run(
        &[
            "cards",
            "set-limits",
            "4761739001010010",
            "prepaid",
            "--config",
            config,
        ],
        "",
    );
    assert!(ok && out.contains("limits       prepaid"), "{out}{err}");
    let (ok, out, err) = run(
        &["cards", "unblock", "4761739001010010", "--config", config],
        "",
    );
    assert!(ok && out.contains("status       active"), "{out}{err}");
    let (ok, out, err) = run(
        &[
            "cards",
            "set-status",
            "4761739001010010",
            "lost",
            "--config",
            config,
        ],
        "",
    );
    assert!(ok && out.contains("status       lost"), "{out}{err}");

    let (ok, _, err) = run(
        &[
            "cards",
            "set-status",
            "4761739001010010",
            "frozen",
            "--config",
            config,
        ],
        "",
    );
    assert!(
        !ok && err.contains("unknown card status \"frozen\""),
        "{err}"
    );
    // Arguments swapped: the card number is not echoed by the status error.
    let (ok, _, err) = run(
        &[
            "cards",
            "set-status",
            "lost",
            "4761739001010028",
            "--config",
            config,
        ],
        "",
    );
    assert!(!ok && err.contains("476173******0028"), "{err}");
    let (ok, _, err) = run(
        &["cards", "show", "4761739001010093", "--config", config],
        "",
    );
    assert!(
        !ok && err.contains("card 476173******0093 is not registered"),
        "{err}"
    );
    let (ok, _, err) = run(&["cards", "show", "4761-7390", "--config", config], "");
    assert!(
        !ok && err.contains("12 to 19 digits") && !err.contains("4761-7390"),
        "{err}"
    );

    for digits in DEMO
        .map(|(d, _)| d)
        .into_iter()
        .chain(["4761739001010011", "4761739001010093"])
    {
        assert!(
            !printed.contains(digits),
            "a full PAN was printed:\n{printed}"
        );
    }
}

/// A field a card file line may hold: good values, card numbers anywhere,
/// junk.
fn field() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        Just("4761739001010010".to_string()),
        "[0-9]{10,22}",
        prop::sample::select(vec![
            "2812", "active", "lost", "bank-a", "bank-z", "EUR", "978", "standard", "prepaid",
            "debit", "", "\"a,b\"", "#",
        ])
        .prop_map(str::to_string),
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ]
}

proptest::proptest! {
    /// Any text gives rows or line errors, never a panic, and no message
    /// holds 12 digits in a row (a card number) unmasked.
    #[test]
    fn card_file_errors_never_show_a_card_number(
        header in proptest::sample::subsequence(
            vec!["pan", "expiry", "status", "account", "institution", "currency", "profile", "product", "pan", "x"],
            0..=10,
        ),
        lines in proptest::collection::vec(proptest::collection::vec(field(), 0..10), 0..6),
        raw in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
    ) {
        let catalog = Catalog::new(["bank-a"], ["standard", "prepaid"]);
        let mut text = header.join(",");
        for line in &lines {
            text.push('\n');
            text.push_str(&line.join(","));
        }
        let mut bytes = text.into_bytes();
        for input in [bytes.clone(), { bytes.extend_from_slice(&raw); bytes }] {
            let outcome = file::parse(&input[..], Path::new("p.csv"), &catalog, file::FileLimits::default());
            if let Err(e) = outcome {
                let mut shown = e.to_string();
                if let CardError::File { errors, .. } = &e {
                    shown.extend(errors.iter().map(|l| format!("{l}\n")));
                }
                let longest = shown
                    .split(|c: char| !c.is_ascii_digit())
                    .map(str::len)
                    .max()
                    .unwrap_or(0);
                proptest::prop_assert!(longest < 12, "{}", shown);
            }
        }
    }
}

/// A journal row of a card (by its hash) as the hub writes it, the columns
/// re-keying and search read; the rest plain.
fn journal_row(conn: &sql::Connection, n: i64, hash: &[u8]) -> sql::Result<()> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    conn.execute(
        "INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, \
         is_repeat, kind, channel, pan_hash, pan_masked, amount_minor, currency, \
         response_code, decided_by, latency_us) \
         VALUES (?1, 'request', ?2, '2026-12-04', 'base24', '0100', 0, 'purchase', 'pos', \
         ?3, '476173******0010', 2500, 840, '00', 'stand_in', 900)",
        cardhub_core::params![(now_ms << 20) | n, now_ms * 1000, hash],
    )
    .map(|_| ())
}

#[test]
fn rekeying_moves_cards_and_journal_to_the_new_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let (old_path, config) = config_in(dir.path());
    let old = old_path.to_str().unwrap();
    let new_path = dir.path().join("cardhub.new.toml");
    let new = new_path.to_str().unwrap();
    let text = std::fs::read_to_string(&old_path).unwrap();
    let keys = PanKeys::from_config(&config.security).unwrap();
    let old_hash_key = config.security.pan_hash_key.clone().unwrap();
    let old_encryption_key = config.security.pan_encryption_key.clone().unwrap();
    std::fs::write(
        &new_path,
        text.replace(&old_hash_key, &"a1".repeat(32))
            .replace(&old_encryption_key, &"b2".repeat(32)),
    )
    .unwrap();
    let demo = fixture("fixtures/cards/demo-cards.csv");
    let (ok, _, err) = cardhub(
        &["cards", "import", demo.to_str().unwrap(), "--config", old],
        "",
    );
    assert!(ok, "{err}");
    // Two rows of a registered card, one of a card never registered; one
    // of the card's rows is in the search tables already, one waits.
    let card = keys.hash(&pan("4761739001010010"));
    let other = keys.hash(&pan("4000001234567899"));
    let store = config.open_store().unwrap();
    block_on(store.write(move |c| {
        journal_row(c, 1, &card.0)?;
        journal_row(c, 3, &other.0)?;
        search_index::catch_up(c)?;
        journal_row(c, 2, &card.0)
    }))
    .unwrap();
    drop(store);

    // A hub answering on the config's API address: refused, nothing moved.
    let hub = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let api = format!(
        "\n[api]\nlisten = \"{}\"\ntoken = \"a-test-token-of-some-length\"\n",
        hub.local_addr().unwrap()
    );
    for path in [&old_path, &new_path] {
        let mut text = std::fs::read_to_string(path).unwrap();
        text.push_str(&api);
        std::fs::write(path, text).unwrap();
    }
    let rekey = ["cards", "rekey", "--config", old, "--new-config", new];
    let (ok, _, err) = cardhub(&rekey, "");
    assert!(!ok);
    assert!(err.contains("a hub answers at 127.0.0.1:"), "{err}");
    drop(hub);

    let (ok, out, err) = cardhub(&rekey, "");
    assert!(ok, "{err}");
    assert!(
        out.contains("8 card(s) and 2 journal row(s) moved to the new keys"),
        "{out}"
    );

    // The new config finds the cards and their transactions; the old one
    // is refused; a second run says it is done.
    let (ok, out, err) = cardhub(
        &["cards", "show", "-", "--config", new],
        "4761739001010010\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("account      A-1001"), "{out}");
    let (ok, out, err) = cardhub(
        &["txn", "search", "--card", "-", "--json", "--config", new],
        "4761739001010010\n",
    );
    assert!(ok, "{err}");
    let page: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(page["transactions"].as_array().unwrap().len(), 2, "{out}");
    let (ok, _, err) = cardhub(
        &["cards", "show", "-", "--config", old],
        "4761739001010010\n",
    );
    assert!(!ok);
    assert!(
        err.contains("does not match the key the stored cards were written with"),
        "{err}"
    );
    let (ok, _, err) = cardhub(&rekey, "");
    assert!(!ok);
    assert!(
        err.contains("the store is already under the keys of"),
        "{err}"
    );
    let (ok, _, err) = cardhub(
        &["cards", "rekey", "--config", new, "--new-config", new],
        "",
    );
    assert!(!ok);
    assert!(err.contains("the new keys are the current ones"), "{err}");

    // Every registered card opens with the new keys; the unregistered
    // card's row keeps the old hash (no PAN to hash again).
    let store = config.open_store().unwrap();
    let new_config = Config::load(&new_path).unwrap();
    let registry = CardRegistry::open(
        store.clone(),
        PanKeys::from_config(&new_config.security).unwrap(),
        new_config.catalog(),
    )
    .unwrap();
    for (digits, status) in DEMO {
        assert_eq!(registry.lookup(&pan(digits)).unwrap().status, status);
    }
    let old_hashes: i64 = store
        .read(|c| {
            c.query_row(
                "SELECT count(*) FROM journal WHERE pan_hash = ?1",
                [&keys.hash(&pan("4000001234567899")).0[..]],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(old_hashes, 1);
}
