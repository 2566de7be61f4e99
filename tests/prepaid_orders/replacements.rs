//! Replacements of lost order cards: the new card is a one-card order of
//! its own, produced, PIN mailed and PIN reordered like any order card.

use cardhub_core::cards::CardStatus;
use cardhub_core::iso8583::fields::{Expiry, Pan};
use cardhub_core::prepaid::orders::{OrderError, OrderState};
use serde_json::Value;

use super::{Hub, hub, impersonal, pan, pans_of, personal};

/// Replaces card `lost` by `new` (expiry 3001, card account `account`) and
/// returns the order the replacement became.
async fn replace(hub: &Hub, lost: &Pan, new: &Pan, account: &str) -> i64 {
    hub.ledger
        .replace_lost_card(
            &hub.cards,
            &format!("X-{account}"),
            lost,
            new,
            Expiry::parse("3001").unwrap(),
            account,
        )
        .await
        .unwrap();
    let (order, sequence) = hub.ledger.order_of_card(account).unwrap().unwrap();
    assert_eq!(sequence, 1);
    let orders = hub.ledger.orders("city").unwrap();
    assert!(
        orders.iter().any(|o| o.id == order),
        "in the orderer's orders"
    );
    order
}

#[tokio::test]
async fn a_replacement_is_produced_pin_mailed_and_reordered_as_an_ordered_card() {
    let hub = hub().await;
    let id = hub.order(personal("SOC-5", &["Ana", "Zoë Bo"])).await;
    let old = pans_of(&hub.produce(id, "production.txt").await).remove(1);
    hub.ledger.mark_delivered(id).await.unwrap();
    assert!(hub.mail_pins("m1").await.is_some());
    let new = pan(900);
    let replacement = replace(&hub, &old, &new, "SOC-5-R").await;

    let order = hub.ledger.order(&hub.cards, replacement).unwrap();
    assert_eq!(order.summary.reference, format!("replace:{id}/2"));
    assert_eq!(
        (
            order.summary.state,
            order.summary.count,
            order.summary.personal
        ),
        (OrderState::Ordered, 1, true)
    );
    let card = &order.cards[0];
    assert_eq!(
        (
            card.pan_masked.as_str(),
            card.account.as_str(),
            card.holder.as_deref()
        ),
        (new.masked().as_str(), "SOC-5-R", Some("Zoë Bo"))
    );
    assert_eq!(card.status, Some(CardStatus::Active));
    // Its PIN waits for its production.
    assert!(hub.mail_pins("m2").await.is_none());

    let file = hub.produce(replacement, "replacement.txt").await;
    assert_eq!(file["header"]["reference"], format!("replace:{id}/2"));
    assert_eq!(file["header"]["personal"], "P");
    let d = &file["details"][0];
    assert_eq!(file["details"].as_array().unwrap().len(), 1);
    assert_eq!(d["pan"], new.expose());
    assert_eq!(
        (d["order"].as_i64(), d["sequence"].as_u64()),
        (Some(replacement), Some(1))
    );
    assert_eq!(
        (&d["expiry"], &d["holder_name"], &d["orderer_name"]),
        (
            &Value::from("3001"),
            &Value::from("ZOE BO"),
            &Value::from("GEMEENTE DUEREN")
        )
    );
    assert_eq!(d["pin_delivery"], "M");

    let mailed = hub.mail_pins("m3").await.unwrap();
    let m = &mailed["details"][0];
    assert_eq!(mailed["details"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            m["order"].as_i64(),
            m["kind"].as_str(),
            m["holder_name"].as_str()
        ),
        (Some(replacement), Some("N"), Some("ZOE BO"))
    );
    assert_eq!(m["masked_pan"], new.masked());
    assert_eq!(m["pin_request"], d["pin_request"]);

    let reorder = hub.ledger.reorder_pin(&hub.cards, &new).await.unwrap();
    assert!(!reorder.repeat);
    let again = hub.mail_pins("m4").await.unwrap();
    let m = &again["details"][0];
    assert_eq!(
        (
            m["order"].as_i64(),
            m["sequence"].as_u64(),
            m["kind"].as_str()
        ),
        (Some(replacement), Some(1), Some("R"))
    );
    assert_eq!(m["pin_request"], reorder.reference.as_str());
    let err = hub.ledger.reorder_pin(&hub.cards, &old).await.unwrap_err();
    assert!(
        matches!(err, OrderError::PinReorderRefused { .. }) && err.to_string().contains("lost"),
        "{err}"
    );
}

#[tokio::test]
async fn an_impersonal_replacement_gets_its_pin_with_the_card() {
    let hub = hub().await;
    let id = hub.order(impersonal("SMALL-5", 1)).await;
    let old = pans_of(&hub.produce(id, "production.txt").await).remove(0);
    let new = pan(901);
    let replacement = replace(&hub, &old, &new, "SMALL-5-R").await;
    let file = hub.produce(replacement, "replacement.txt").await;
    assert_eq!(file["header"]["personal"], "I");
    let d = &file["details"][0];
    assert_eq!(
        (
            d["pan"].as_str(),
            d["holder_name"].as_str(),
            d["pin_delivery"].as_str()
        ),
        (Some(new.expose()), Some(""), Some("C"))
    );
    assert!(
        hub.mail_pins("m1").await.is_none(),
        "a PIN with the card has no mailer record"
    );
    // The replacement of the replacement is an order card too.
    let third = pan(902);
    let next = replace(&hub, &new, &third, "SMALL-5-R2").await;
    let order = hub.ledger.order(&hub.cards, next).unwrap();
    assert_eq!(order.summary.reference, format!("replace:{replacement}/1"));
    assert!(hub.ledger.reorder_pin(&hub.cards, &third).await.is_ok());
}
