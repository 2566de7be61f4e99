//! `cardhub demo --once --api 127.0.0.1:0`: the whole story runs on
//! loopback, on free ports only (it runs beside a demo someone left
//! running), and its summary adds up — counts by outcome (at each of the
//! four adapters, and at the prepaid institution), every stand-in approval
//! told to the account system, and the prepaid chapters' answers, export
//! and audit.

use std::process::Command;

#[test]
fn the_demo_tells_its_story_and_everything_stood_in_is_told() {
    let out = Command::new(env!("CARGO_BIN_EXE_cardhub"))
        .args(["demo", "--once", "--api", "127.0.0.1:0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |institution: &str, decided_by: &str, code: &str| -> Option<u32> {
        text.lines().find_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols.len() == 4 && cols[..3] == [institution, decided_by, code])
                .then(|| cols[3].parse().unwrap())
        })
    };
    assert_eq!(count("bank-a", "account_system", "00"), Some(2), "{text}");
    assert_eq!(count("bank-a", "account_system", "51"), Some(1), "{text}");
    assert_eq!(count("bank-a", "hub_rule", "41"), Some(1), "{text}");
    assert_eq!(count("bank-a", "stand_in", "00"), Some(1), "{text}");
    assert_eq!(count("bank-a", "stand_in", "51"), Some(1), "{text}");
    assert_eq!(count("bank-b", "stand_in", "00"), Some(1), "{text}");
    // One approval and one decline at each vendor adapter's demo server.
    for bank in ["bank-c", "bank-d", "bank-e"] {
        assert_eq!(
            count(bank, "account_system", "00"),
            Some(1),
            "{bank}: {text}"
        );
        assert_eq!(
            count(bank, "account_system", "51"),
            Some(1),
            "{bank}: {text}"
        );
    }
    assert!(
        text.contains("SAF: 1 advice(s) delivered for 1 stand-in approval(s) at bank-a — all told"),
        "{text}"
    );
    assert!(text.contains("malformed 0100 (DE 41 cut short)"), "{text}");
    // The prepaid chapters: cardhub's own ledger decides for city's cards.
    assert_eq!(count("city", "account_system", "00"), Some(3), "{text}");
    assert_eq!(count("city", "account_system", "61"), Some(1), "{text}");
    for code in ["41", "62"] {
        assert_eq!(count("city", "hub_rule", code), Some(1), "{code}: {text}");
    }
    let answered = |what: &str, answer: &str| {
        text.lines()
            .any(|l| l.trim_start().starts_with(what) && l.contains(answer))
    };
    for (what, answer) in [
        ("POS purchase 10.00 EUR, 476173******", "→ 0110 62"),
        ("first load 100.00 EUR", "→ 0210 00"),
        ("the card in the registry (API)", "→ active"),
        ("its completion (0220)", "→ 0230 00"),
        ("load 90.00 EUR", "→ 0210 61"),
        ("move 20.00 EUR", "→ available 50.00 EUR and 20.00 EUR"),
        ("card 1 lost: replaced", "available 50.00 EUR"),
        ("POS purchase 10.00 EUR on the lost card", "→ 0110 41"),
        ("POS purchase 25.00 EUR on its replacement", "→ 0110 00"),
        (
            "production file written into the outbox: production-",
            "2 card record(s)",
        ),
        ("ledger audit", "sound"),
    ] {
        assert!(answered(what, answer), "{what} {answer}: {text}");
    }
    // The day's export: load, capture (named by the simulator's DE 43), the
    // move's two sides, the replacement's two.
    let export: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("accounting export of"))
        .skip(2)
        .take_while(|l| l.starts_with("    20"))
        .collect();
    let kinds: Vec<(&str, &str)> = export
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.trim().split(',').collect();
            (cols[4], cols[8])
        })
        .collect();
    let names: Vec<&str> = export
        .iter()
        .filter_map(|l| l.trim().split(',').nth(7).filter(|n| !n.is_empty()))
        .collect();
    assert_eq!(
        names,
        ["CARDHUB SIM CORNER SHOP  AMSTERDAM    NL"],
        "{text}"
    );
    assert_eq!(
        kinds,
        [
            ("load", "10000"),
            ("capture", "-3000"),
            ("move", "-2000"),
            ("move", "2000"),
            ("replace", "-5000"),
            ("replace", "5000")
        ],
        "{text}"
    );
    // Every listener is on a port the system chose, and says which.
    let listening: Vec<(&str, &str)> = text
        .lines()
        .skip_while(|l| *l != "Listening:")
        .skip(1)
        .map_while(|l| l.strip_prefix("  ")?.rsplit_once(' '))
        .collect();
    let names: Vec<&str> = listening.iter().map(|(what, _)| what.trim()).collect();
    assert_eq!(
        names,
        [
            "account system of bank-a",
            "account system of bank-c",
            "account system of bank-d",
            "account system of bank-e",
            "switch listener (BASE24)",
            "API"
        ],
        "{text}"
    );
    for (what, address) in &listening {
        let address = address.strip_prefix("http://").unwrap_or(address);
        let bound: std::net::SocketAddr = address.parse().unwrap();
        assert!(
            bound.ip().is_loopback() && bound.port() != 0,
            "{what}: {text}"
        );
    }
    // Card numbers appear masked only: no run of 12 or more digits starting
    // like a demo card (the prepaid cards' numbers come from the production file).
    assert!(!text.contains("4761739001010010"), "{text}");
    let digits = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| run.len() >= 12 && run.starts_with("476173"));
    assert_eq!(digits.count(), 0, "{text}");
}
