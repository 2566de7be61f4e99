//! The hub core end to end: a switch-side client over real TCP, the hub with
//! a real store and card registry, and an account system implemented in the
//! test. One test per decline reason and pipeline step.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cardhub_core::iso8583::fields::Sign;
use support::*;

#[tokio::test]
async fn approved_purchase_carries_auth_id_and_balances_and_is_journaled() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let (answer, _) = c
        .request(&purchase(ACTIVE_USD, 2_500, 1), WAIT)
        .await
        .unwrap();
    assert_eq!(answer.mti().as_str(), "0110");
    assert_eq!(answer.response_code().unwrap().as_str(), "00");
    assert_eq!(answer.auth_id().unwrap(), "AB1234");
    let amounts = answer.additional_amounts().unwrap();
    let available = amounts.iter().find(|a| a.amount_type == "02").unwrap();
    assert_eq!(
        (available.amount.minor_units(), available.sign),
        (97_500, Sign::Credit)
    );
    assert_eq!(t.bank.calls("authorize").len(), 1);
    assert_eq!(t.bank.balance("A-1001"), 97_500);

    // Durable before answered: a new read sees the row.
    let (code, decided_by, masked, amount): (String, String, String, i64) = t
        .hub
        .store()
        .read(|c| {
            c.query_row(
                "SELECT response_code, decided_by, pan_masked, amount_minor FROM journal WHERE stan = '000001'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })
        .unwrap();
    assert_eq!(
        (code.as_str(), decided_by.as_str(), masked.as_str(), amount),
        ("00", "account_system", "476173******0010", 2_500)
    );
    t.link.shutdown().await;
}

#[tokio::test]
async fn card_checks_decline_with_their_own_codes() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let eur = |mut m: cardhub_core::iso8583::Message| {
        m.set(49, "978");
        m
    };
    let cases = [
        (purchase(UNKNOWN, 100, 1), "14"),
        (purchase(LOST, 100, 2), "41"),
        (purchase(STOLEN, 100, 3), "43"),
        (eur(purchase(BLOCKED, 100, 4)), "62"),
        (eur(purchase(EXPIRED, 100, 5)), "54"),
        (eur(purchase(INACTIVE_PREPAID, 100, 6)), "62"),
    ];
    for (m, expected) in cases {
        assert_eq!(code_of(&c, &m).await, expected, "{}", m.pan().unwrap());
    }
    let mut wrong_expiry = purchase(ACTIVE_USD, 100, 7);
    wrong_expiry.set(14, "2901");
    assert_eq!(code_of(&c, &wrong_expiry).await, "14");
    let other_currency = eur(purchase(ACTIVE_USD, 100, 8));
    assert_eq!(code_of(&c, &other_currency).await, "57");
    assert!(
        t.bank.calls("authorize").is_empty(),
        "no declined card reaches the bank"
    );
    t.link.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_30_12_13() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let mut no_pan = purchase(ACTIVE_USD, 100, 1);
    no_pan.remove(2);
    assert_eq!(code_of(&c, &no_pan).await, "30");
    let unknown_processing = request("0100", "990000", ACTIVE_USD, 100, 2);
    assert_eq!(code_of(&c, &unknown_processing).await, "12");
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 0, 3)).await, "13");
    t.link.shutdown().await;
}

#[tokio::test]
async fn atm_limits_per_transaction_daily_amount_and_count() {
    let t = start("").await;
    let c = client(&t.addr).await;
    // ATM: per transaction 500.00, daily 600.00, 3 a day.
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 50_001, 1)).await, "61");
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 40_000, 2)).await, "00");
    assert_eq!(
        code_of(&c, &cash(ACTIVE_USD, 30_000, 3)).await,
        "61",
        "daily amount"
    );
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 10_000, 4)).await, "00");
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 10_000, 5)).await, "00");
    assert_eq!(
        code_of(&c, &cash(ACTIVE_USD, 100, 6)).await,
        "65",
        "daily count"
    );
    // POS limits are separate.
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 20_000, 7)).await, "00");
    // Declines by the bank release what they reserved.
    t.bank.set_balance("A-1002", 5_000);
    assert_eq!(code_of(&c, &cash(ACTIVE_USD_2, 40_000, 8)).await, "51");
    assert_eq!(
        code_of(&c, &cash(ACTIVE_USD_2, 5_000, 9)).await,
        "00",
        "{:?}",
        t.bank.calls("authorize")
    );
    assert_eq!(code_of(&c, &cash(ACTIVE_USD_2, 100, 10)).await, "51");
    t.link.shutdown().await;
}

#[tokio::test]
async fn counters_survive_a_restart() {
    let (dir, config) = prepare("").await;
    let t = start_in(dir, config, Arc::new(TestBank::default())).await;
    let c = client(&t.addr).await;
    for stan in 1..=3 {
        assert_eq!(code_of(&c, &cash(ACTIVE_USD, 1_000, stan)).await, "00");
    }
    c.close().await;
    t.link.shutdown().await;
    let (dir, config) = (t.dir, t.config);
    drop(t.hub);
    let t = start_in(dir, config, t.bank).await;
    let c = client(&t.addr).await;
    assert_eq!(
        code_of(&c, &cash(ACTIVE_USD, 1_000, 4)).await,
        "65",
        "count rebuilt from the journal"
    );
    t.link.shutdown().await;
}

#[tokio::test]
async fn unavailable_account_systems_give_91() {
    let t = start("").await;
    let c = client(&t.addr).await;
    // bank-b has no account system configured.
    let mut eur = purchase(ACTIVE_PREPAID_EUR, 100, 1);
    eur.set(49, "978");
    assert_eq!(code_of(&c, &eur).await, "91");
    t.bank.unreachable.store(true, Ordering::SeqCst);
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 100, 2)).await, "91");
    t.link.shutdown().await;
}

/// The account system holds its answer until the switch has had a 91: the
/// hub answered at its own deadline, not the bank's pace; the answer that
/// comes later is journaled against the original.
#[tokio::test]
async fn a_late_account_system_answer_is_answered_91_in_time_and_recorded() {
    let t = start("switch_timeout_ms = 600\nsafety_margin_ms = 100").await;
    t.bank.hold();
    let c = client(&t.addr).await;
    let (answer, _) = c
        .request(&purchase(ACTIVE_USD, 700, 1), WAIT)
        .await
        .unwrap();
    assert_eq!(answer.response_code().unwrap().as_str(), "91");
    assert_eq!(t.bank.calls("authorize").len(), 1, "the bank was asked");
    t.bank.release();
    let late = || {
        t.hub
            .store()
            .read(|c| {
                c.query_row(
                    "SELECT l.response_code, l.original_txn_id FROM journal l \
                     JOIN journal o ON o.txn_id = l.original_txn_id \
                     WHERE l.entry = 'late_result' AND o.stan = '000001'",
                    [],
                    |r| Ok((r.get::<String>(0)?, r.get::<i64>(1)?)),
                )
            })
            .ok()
    };
    wait_until("the late answer journaled", || late().is_some()).await;
    let (late_code, original) = late().unwrap();
    assert_eq!(late_code, "00");
    assert!(original > 0);
    t.link.shutdown().await;
}

/// Shutdown waits for an account system's late answer to be journaled
/// (and reconciled) instead of dropping it with the process.
#[tokio::test]
async fn shutdown_waits_for_late_answers_to_be_recorded() {
    let t = start("switch_timeout_ms = 600\nsafety_margin_ms = 100").await;
    t.bank.delay_ms.store(1_500, Ordering::SeqCst);
    let c = client(&t.addr).await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 700, 1)).await, "91");
    t.link.shutdown().await;
    assert!(
        t.hub
            .drain_late_answers(std::time::Duration::from_secs(20))
            .await
    );
    let late: Vec<(String, String)> = t
        .hub
        .store()
        .read(|c| {
            c.prepare_cached(
                "SELECT response_code, reason FROM journal WHERE entry = 'late_result' \
                 AND original_txn_id = (SELECT txn_id FROM journal WHERE stan = '000001')",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
        .unwrap();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].0, "00");
    // cardhub declined: the late approval is queued for reversal.
    let reverses: i64 = t
        .hub
        .store()
        .read(|c| {
            c.query_row(
                "SELECT COUNT(*) FROM saf_queue WHERE operation = 'reverse'",
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(reverses, 1);
}

/// A call that fails inside cardhub (its task panics) is the hub's error:
/// 96, no stand-in, the breaker untouched, and a Reverse queued because
/// the request may have reached the account system.
#[tokio::test]
async fn a_panicking_call_is_answered_96_and_reversed() {
    let t = start("").await;
    t.bank.panics.store(true, Ordering::SeqCst);
    let c = client(&t.addr).await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 700, 1)).await, "96");
    assert_eq!(
        t.hub.institutions().get("bank-a").unwrap().state().as_str(),
        "open"
    );
    let (decided_by, operation): (String, String) = t
        .hub
        .store()
        .read(|c| {
            c.query_row(
                "SELECT j.decided_by, q.operation FROM journal j JOIN saf_queue q ON q.txn_id = j.txn_id \
                 WHERE j.stan = '000001'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
        .unwrap();
    assert_eq!(
        (decided_by.as_str(), operation.as_str()),
        ("hub_rule", "reverse")
    );
    t.link.shutdown().await;
}

/// When the journal cannot be read, whether a request repeats an answered
/// one cannot be told: it is answered 96 and the account system is not
/// asked (it would be debited twice), and reversals are not decided.
#[tokio::test]
async fn an_unreadable_journal_is_answered_96_without_asking_the_bank() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let first = purchase(ACTIVE_USD, 1_000, 1);
    assert_eq!(code_of(&c, &first).await, "00");
    let rename = |from: &'static str, to: &'static str| {
        let store = t.hub.store().clone();
        async move {
            store
                .write(move |c| c.execute_batch(&format!("ALTER TABLE {from} RENAME TO {to}")))
                .await
                .unwrap()
        }
    };
    rename("journal", "journal_away").await;
    assert_eq!(code_of(&c, &first).await, "96", "a retransmission");
    let mut reversal = request("0400", "000000", ACTIVE_USD, 1_000, 2);
    reversal.set(90, "010000000111220302010000476173900000000000");
    assert_eq!(code_of(&c, &reversal).await, "96", "a reversal");
    assert_eq!(t.bank.calls("authorize").len(), 1, "asked once only");
    assert!(t.bank.calls("reverse").is_empty());
    rename("journal_away", "journal").await;
    assert_eq!(code_of(&c, &first).await, "00", "the original answer again");
    t.link.shutdown().await;
}

#[tokio::test]
async fn retransmissions_get_the_original_answer_and_debit_once() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let first = purchase(ACTIVE_USD, 1_000, 1);
    let (a, _) = c.request(&first, WAIT).await.unwrap();
    // The same request again, and as a repeat MTI.
    let (b, _) = c.request(&first, WAIT).await.unwrap();
    let mut repeat = first.clone();
    repeat.set_mti("0101".parse().unwrap());
    let (r, _) = c.request(&repeat, WAIT).await.unwrap();
    for answer in [&a, &b, &r] {
        assert_eq!(answer.response_code().unwrap().as_str(), "00");
        assert_eq!(answer.auth_id().unwrap(), "AB1234");
    }
    assert_eq!(r.mti().as_str(), "0110");
    // The same keys with another amount is not a retransmission: 94.
    let mut other = first.clone();
    other.set(4, "000000002000");
    assert_eq!(code_of(&c, &other).await, "94");
    assert_eq!(t.bank.calls("authorize").len(), 1, "one debit only");
    assert_eq!(t.bank.balance("A-1001"), 99_000);
    t.link.shutdown().await;
}

#[tokio::test]
async fn a_retransmission_while_the_original_is_in_flight_waits_for_it() {
    let t = start("").await;
    t.bank.delay_ms.store(300, Ordering::SeqCst);
    let c = Arc::new(client(&t.addr).await);
    let first = purchase(ACTIVE_USD, 1_000, 1);
    let mut repeat = first.clone();
    repeat.set_mti("0101".parse().unwrap());
    let c2 = c.clone();
    let original = tokio::spawn(async move { code_of(&c2, &first).await });
    wait_until("the original at the bank", || {
        !t.bank.calls("authorize").is_empty()
    })
    .await;
    // The switch retransmits on another connection while the first is pending.
    let other = client(&t.addr).await;
    let (again, _) = other.request(&repeat, WAIT).await.unwrap();
    assert_eq!(original.await.unwrap(), "00");
    assert_eq!(again.response_code().unwrap().as_str(), "00");
    assert_eq!(t.bank.calls("authorize").len(), 1);
    t.link.shutdown().await;
}

#[tokio::test]
async fn reversals_of_approved_declined_and_unknown_originals() {
    let t = start("").await;
    let c = client(&t.addr).await;
    // Approved ATM withdrawal, then its reversal (DE 90 names it).
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 40_000, 1)).await, "00");
    let mut reversal = request("0400", "011000", ACTIVE_USD, 40_000, 2);
    reversal.set(90, "020000000111220302010000476173900000000000");
    let (answer, _) = c.request(&reversal, WAIT).await.unwrap();
    assert_eq!(answer.mti().as_str(), "0410");
    assert_eq!(answer.response_code().unwrap().as_str(), "00");
    let reversed = t.bank.calls("reverse");
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0].amount, 40_000);
    assert!(reversed[0].original.is_some());
    assert_eq!(t.bank.balance("A-1001"), 100_000);
    // The reversal gave the daily amount back: 500.00 fits again.
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 50_000, 3)).await, "00");

    // A declined original: acknowledged, nothing undone.
    assert_eq!(code_of(&c, &purchase(LOST, 100, 4)).await, "41");
    let mut rev = request("0400", "000000", LOST, 100, 5);
    rev.set(90, "010000000411220302010000476173900000000000");
    assert_eq!(code_of(&c, &rev).await, "00");

    // Unknown original: 25 for 0400, recorded as orphan for 0420.
    let mut unknown = request("0400", "000000", ACTIVE_USD, 100, 6);
    unknown.set(90, "010099999911220302010000476173900000000000");
    assert_eq!(code_of(&c, &unknown).await, "25");
    let mut advice = unknown.clone();
    advice.set_mti("0420".parse().unwrap());
    advice.set(11, "000007");
    let (answer, _) = c.request(&advice, WAIT).await.unwrap();
    assert_eq!(
        (
            answer.mti().as_str(),
            answer.response_code().unwrap().as_str()
        ),
        ("0430", "00")
    );
    assert_eq!(t.bank.calls("reverse").len(), 1);
    t.link.shutdown().await;
}

#[tokio::test]
async fn a_partial_reversal_undoes_the_difference() {
    let t = start("").await;
    let c = client(&t.addr).await;
    assert_eq!(code_of(&c, &purchase(ACTIVE_USD, 10_000, 1)).await, "00");
    let mut partial = request("0420", "000000", ACTIVE_USD, 10_000, 2);
    partial.set(90, "010000000111220302010000476173900000000000");
    // DE 95: the actual amount was 60.00, so 40.00 is reversed.
    partial.set(95, "000000006000000000006000C00000000C00000000");
    assert_eq!(code_of(&c, &partial).await, "00");
    let reversed = t.bank.calls("reverse");
    assert_eq!(reversed.len(), 1);
    assert_eq!(reversed[0].amount, 4_000);
    assert_eq!(t.bank.balance("A-1001"), 90_000 + 4_000);
    t.link.shutdown().await;
}

#[tokio::test]
async fn advices_are_recorded_counted_and_passed_on() {
    let t = start("").await;
    let c = client(&t.addr).await;
    // The switch stood in for three ATM withdrawals: the daily count is used up.
    for stan in 1..=3 {
        let mut advice = request("0220", "011000", ACTIVE_USD, 1_000, stan);
        advice.set(39, "00");
        let (answer, _) = c.request(&advice, WAIT).await.unwrap();
        assert_eq!(
            (
                answer.mti().as_str(),
                answer.response_code().unwrap().as_str()
            ),
            ("0230", "00")
        );
    }
    assert_eq!(t.bank.calls("advice").len(), 3);
    assert_eq!(code_of(&c, &cash(ACTIVE_USD, 1_000, 9)).await, "65");
    t.link.shutdown().await;
}

#[tokio::test]
async fn balance_inquiry_and_load() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let (answer, _) = c
        .request(&request("0100", "310000", ACTIVE_USD, 0, 1), WAIT)
        .await
        .unwrap();
    assert_eq!(answer.response_code().unwrap().as_str(), "00");
    let ledger = answer
        .additional_amounts()
        .unwrap()
        .into_iter()
        .find(|a| a.amount_type == "01")
        .unwrap();
    assert_eq!(ledger.amount.minor_units(), 100_000);
    assert_eq!(
        code_of(&c, &request("0200", "210000", ACTIVE_USD, 5_000, 2)).await,
        "00"
    );
    assert_eq!(t.bank.calls("load").len(), 1);
    assert_eq!(t.bank.balance("A-1001"), 105_000);
    t.link.shutdown().await;
}

#[tokio::test]
async fn no_full_pan_is_stored() {
    let t = start("").await;
    let c = client(&t.addr).await;
    for (stan, pan) in [ACTIVE_USD, LOST, UNKNOWN].into_iter().enumerate() {
        let mut m = purchase(pan, 100, stan as u32 + 1);
        m.set(35, format!("{pan}=28121011234567"));
        code_of(&c, &m).await;
    }
    c.close().await;
    t.link.shutdown().await;
    for name in ["hub.db", "hub.db-wal"] {
        let Ok(bytes) = std::fs::read(t.dir.path().join(name)) else {
            continue;
        };
        for pan in [ACTIVE_USD, LOST, UNKNOWN] {
            assert!(
                !bytes.windows(pan.len()).any(|w| w == pan.as_bytes()),
                "{name} holds a clear PAN"
            );
        }
    }
}

/// The decision's row of an approved online call cannot be written (a
/// trigger refuses it, as a store that fails to serialise or stops
/// answering would): the switch gets 96 while the bank approved. The
/// call's intent outlives its request, and the running hub reverses the
/// call once the intent is stale — not at its next start.
#[tokio::test]
async fn an_approval_whose_row_failed_is_reversed_while_the_hub_runs() {
    let t = start("").await;
    let c = client(&t.addr).await;
    let store = t.hub.store().clone();
    let (refuse, allow) = if on_postgres() {
        (
            "CREATE FUNCTION refuse_row() RETURNS trigger AS $$ BEGIN \
             RAISE EXCEPTION 'refused by the test'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_row BEFORE INSERT ON journal FOR EACH ROW \
             WHEN (NEW.stan = '000900') EXECUTE FUNCTION refuse_row()",
            "DROP TRIGGER refuse_row ON journal",
        )
    } else {
        (
            "CREATE TRIGGER refuse_row BEFORE INSERT ON journal WHEN NEW.stan = '000900' \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
            "DROP TRIGGER refuse_row",
        )
    };
    store.write(move |w| w.execute_batch(refuse)).await.unwrap();
    let count = |sql: &'static str| -> i64 {
        store
            .read(move |r| r.query_row(sql, [], |row| row.get(0)))
            .unwrap()
    };

    assert_eq!(
        code_of(&c, &purchase("4761739001010010", 2_500, 900)).await,
        "96"
    );
    assert_eq!(t.bank.calls("authorize").len(), 1, "the bank approved");
    assert_eq!(count("SELECT COUNT(*) FROM call_intents"), 1);
    // Its request might still be under way: nothing is touched yet.
    assert_eq!(t.hub.reverse_stale_calls().await.unwrap(), 0);
    assert_eq!(count("SELECT COUNT(*) FROM call_intents"), 1);

    // The request long gone, the store writable again.
    store
        .write(move |w| {
            w.execute_batch(allow)?;
            w.execute_batch("UPDATE call_intents SET received_at_us = received_at_us - 600000000")
        })
        .await
        .unwrap();
    assert_eq!(t.hub.reverse_stale_calls().await.unwrap(), 1);
    assert_eq!(count("SELECT COUNT(*) FROM call_intents"), 0);
    assert_eq!(
        count("SELECT COUNT(*) FROM journal WHERE stan = '000900' AND response_code = '96'"),
        1
    );
    assert_eq!(
        count(
            "SELECT COUNT(*) FROM saf_queue q JOIN journal j ON j.txn_id = q.txn_id \
             WHERE q.operation = 'reverse' AND j.stan = '000900'"
        ),
        1,
        "a Reverse of the approved call is queued"
    );
    t.link.shutdown().await;
}
