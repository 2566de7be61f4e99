//! `cardhub demo --once --api 127.0.0.1:0`: the whole story runs on
//! loopback, on free ports only (it runs beside a demo someone left
//! running), and its summary adds up — counts by outcome (at each of the
//! four adapters), and every stand-in approval told to the account system.

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
    // Card numbers appear masked only.
    assert!(!text.contains("4761739001010010"), "{text}");
}
