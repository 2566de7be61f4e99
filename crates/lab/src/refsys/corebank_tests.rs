//! Unit tests of `corebank.rs`: the adapters' golden requests read with
//! real tokens, refused tokens, values and element order.

use super::*;
use cardhub_core::adapter::soap::{UsernameToken, wsse_header};
use cardhub_core::soap_writer::envelope;

const PASSWORD: &str = "demo-only-not-a-secret";

fn credentials() -> Credentials {
    Credentials {
        username: "CARDHUB01".into(),
        password: PASSWORD.into(),
    }
}

/// The adapter's golden request of `op` with a real token made at `created`.
fn request(op: &str, created: Timestamp, nonce: &[u8], password: &str) -> String {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("fixtures/adapters/legacy-soap12")
        .join(format!("{op}.request.xml"));
    let golden = std::fs::read_to_string(path).unwrap();
    let body =
        &golden[golden.find("<soap:Body>").unwrap() + 11..golden.find("</soap:Body>").unwrap()];
    let token = UsernameToken {
        username: "CARDHUB01".into(),
        password: password.into(),
        digest: true,
    };
    let mut header = String::new();
    wsse_header(&token, created, nonce, &mut header);
    let mut xml = String::new();
    envelope(
        Version::V12,
        Some(&header),
        &body.replace('…', "2026-11-22T09:14:07.000Z"),
        &mut xml,
    );
    xml
}

fn ct(action: &str) -> String {
    format!("application/soap+xml; charset=utf-8; action=\"{NAMESPACE}/{action}\"")
}

#[test]
fn the_digest_is_the_oasis_formula() {
    // Computed apart from cardhub: base64(sha1(b"\x01"*16 + b"2026-01-01T00:00:00.000Z" + b"secret")).
    let digest = password_digest(&[1; 16], "2026-01-01T00:00:00.000Z", "secret");
    assert_eq!(digest, "6Ek1p+qXeGWwKZ9/7b4n4O4ei1M=");
}

#[test]
fn golden_requests_are_read_with_a_fresh_token_only() {
    let now = Timestamp::now();
    let mut nonces = Nonces::default();
    let xml = request("authorize", now, &[7; 16], PASSWORD);
    let call = parse_request(
        xml.as_bytes(),
        &ct("ReserveFunds"),
        &credentials(),
        &mut nonces,
        now,
    )
    .unwrap();
    let r = call.request;
    assert_eq!(
        (r.operation, r.amount, r.currency),
        (Operation::Authorize, 12550, 840)
    );
    assert_eq!((r.account.as_str(), r.kind), ("0042778812", Kind::Purchase));

    let again = parse_request(
        xml.as_bytes(),
        &ct("ReserveFunds"),
        &credentials(),
        &mut nonces,
        now,
    );
    assert!(matches!(
        again,
        Err(RequestError::Authentication("Nonce already used"))
    ));
    let wrong = request("authorize", now, &[8; 16], "guess");
    let e = parse_request(
        wrong.as_bytes(),
        &ct("ReserveFunds"),
        &credentials(),
        &mut nonces,
        now,
    );
    assert!(matches!(
        e,
        Err(RequestError::Authentication("wrong PasswordDigest"))
    ));
    let stale = request(
        "authorize",
        now - SignedDuration::from_mins(6),
        &[9; 16],
        PASSWORD,
    );
    let e = parse_request(
        stale.as_bytes(),
        &ct("ReserveFunds"),
        &credentials(),
        &mut nonces,
        now,
    );
    assert!(matches!(e, Err(RequestError::Authentication(_))));
    let fresh = request("authorize", now, &[10; 16], PASSWORD);
    let e = parse_request(
        fresh.as_bytes(),
        &ct("CreditAccount"),
        &credentials(),
        &mut nonces,
        now,
    );
    assert!(matches!(e, Err(RequestError::Action { .. })), "{e:?}");

    for (i, (op, action)) in [
        ("load", "CreditAccount"),
        ("reverse", "CancelReservation"),
        ("advice", "PostAdvice"),
        ("balance_inquiry", "GetBalance"),
    ]
    .into_iter()
    .enumerate()
    {
        let xml = request(op, now, &[20 + i as u8; 16], PASSWORD);
        parse_request(
            xml.as_bytes(),
            &ct(action),
            &credentials(),
            &mut nonces,
            now,
        )
        .unwrap_or_else(|e| panic!("{op}: {e}"));
    }
}

#[test]
fn bad_values_and_order_are_refused() {
    let now = Timestamp::now();
    let mut nonces = Nonces::default();
    let good = request("authorize", now, &[1; 16], PASSWORD);
    for (i, (bad, want)) in [
        (good.replace(">125.50<", ">125.505<"), "Amt"),
        (good.replace(">USD<", ">840<"), "Ccy"),
        (good.replace(">DEBIT_HOLD<", ">GIFT<"), "TxnType"),
        (
            good.replace("<cb:CardMask>476173******0010</cb:CardMask>", ""),
            "CardMask",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        // A fresh nonce memory per case: the token is the same.
        let mut n = Nonces::default();
        let e = parse_request(
            bad.as_bytes(),
            &ct("ReserveFunds"),
            &credentials(),
            &mut n,
            now,
        )
        .unwrap_err();
        assert!(e.to_string().contains(want), "{i} {want}: {e}");
    }
    let e = parse_request(
        good.as_bytes(),
        "text/xml",
        &credentials(),
        &mut nonces,
        now,
    )
    .unwrap_err();
    assert!(matches!(e, RequestError::ContentType(_)));
}
