//! Request templates (`adapter::template`, the `template` and `record`
//! values of adapter files): text either compiles or is refused with the
//! placeholder at fault; an XML template escapes every value, so a request
//! whose values are full of markup renders no more tags than a plain one.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use cardhub_core::account::AccountRequest;
use cardhub_core::adapter::template::{RenderContext, Template};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// `[values]` tables as an adapter file has them.
static VALUES: LazyLock<BTreeMap<String, BTreeMap<String, String>>> = LazyLock::new(|| {
    let table = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    BTreeMap::from([
        (
            "kind".to_string(),
            table(&[
                ("PURCHASE", "PAYMENT"),
                ("CASH", "CASH"),
                ("BALANCE_INQUIRY", "ENQUIRY"),
                ("LOAD", "DEPOSIT"),
                ("REFUND", "REFUND"),
            ]),
        ),
        (
            "channel".to_string(),
            table(&[("ATM", "ATM"), ("POS", "POS"), ("OTHER", "WEB")]),
        ),
    ])
});

/// A request with every optional value present (so sections render).
static PLAIN: LazyLock<AccountRequest> = LazyLock::new(|| {
    let mut r = super::account_request();
    r.original_transaction_id = Some("0193A2B4C5D60000".into());
    r
});

/// The same request with markup in every free-text value.
static MARKUP: LazyLock<AccountRequest> = LazyLock::new(|| {
    let mut r = PLAIN.clone();
    for value in [
        &mut r.transaction_id,
        &mut r.institution,
        &mut r.account,
        &mut r.terminal,
        &mut r.rrn,
    ] {
        *value = format!("<{value}&'\"/>");
    }
    r.merchant = Some("<m>&amp;</m>".into());
    r.original_transaction_id = Some("<o/>".into());
    r
});

pub fn target(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(template) = Template::compile(text, &VALUES, &TimeZone::UTC, true) else {
        return;
    };
    let render = |request: &AccountRequest| {
        let ctx = RenderContext {
            request,
            now: Timestamp::UNIX_EPOCH,
            sequence: "",
        };
        let mut out = String::new();
        template.render(&ctx, &mut out);
        out
    };
    let (plain, markup) = (render(&PLAIN), render(&MARKUP));
    assert_eq!(
        plain.matches('<').count(),
        markup.matches('<').count(),
        "a value rendered unescaped:\n{markup}"
    );
    // Compiled as a record field (no escaping) it renders too.
    if let Ok(record) = Template::compile(text, &VALUES, &TimeZone::UTC, false) {
        let ctx = RenderContext {
            request: &PLAIN,
            now: Timestamp::UNIX_EPOCH,
            sequence: "",
        };
        let mut out = String::new();
        record.render(&ctx, &mut out);
    }
}
