//! Tests of `template`.
use super::*;
use crate::money::{Currency, Money};

pub(crate) fn sample() -> AccountRequest {
    AccountRequest {
        transaction_id: "0193A2B4C5D60001".into(),
        institution: "bank-a".into(),
        account: "A-1001".into(),
        card: "476173******0010".into(),
        kind: Kind::Purchase,
        financial: false,
        channel: Channel::Pos,
        amount: Money::new(12550, Currency::from_numeric(840).unwrap()),
        terminal: "POS<01>&".into(),
        merchant: None,
        merchant_name: None,
        transmission_time: "1122030201".into(),
        rrn: "531909004711".into(),
        original_transaction_id: None,
        decision: None,
        clear_pan: None,
        listen_until: None,
        decision_row: None,
        deadline: Instant::now(),
    }
}

fn render(text: &str, values: &BTreeMap<String, BTreeMap<String, String>>, xml: bool) -> String {
    let t = Template::compile(text, values, &TimeZone::UTC, xml).unwrap();
    let req = sample();
    let mut out = String::new();
    let ctx = RenderContext {
        request: &req,
        now: "2026-11-22T04:30:00Z".parse().unwrap(),
        sequence: "000042",
    };
    t.render(&ctx, &mut out);
    out
}

#[test]
fn fields_and_formats() {
    let none = BTreeMap::new();
    assert_eq!(
        render(
            "{amount} {amount:decimal} {currency} {currency_code} {kind} {channel:lower}",
            &none,
            false
        ),
        "12550 125.50 840 USD PURCHASE pos"
    );
    assert_eq!(
        render("{card_last4}|{merchant}|{sequence}", &none, false),
        "0010||000042"
    );
    assert_eq!(
        render("{now:%Y%m%d%H%M%S} {now}", &none, false),
        "20261122043000 2026-11-22T04:30:00.000Z"
    );
    assert_eq!(
        render("{{literal}} {rrn}", &none, false),
        "{literal} 531909004711"
    );
}

/// `{now:pattern}` at `now` in `zone`, and `{now}` (always UTC).
fn local(zone: &str, now: &str) -> (String, String) {
    let zone = TimeZone::get(zone).unwrap();
    let none = BTreeMap::new();
    let t = Template::compile("{now:%Y-%m-%d %H:%M:%S %Z %z}|{now}", &none, &zone, false);
    let req = sample();
    let ctx = RenderContext {
        request: &req,
        now: now.parse().unwrap(),
        sequence: "",
    };
    let mut out = String::new();
    t.unwrap().render(&ctx, &mut out);
    let (local, iso) = out.split_once('|').unwrap();
    (local.to_owned(), iso.to_owned())
}

#[test]
fn patterns_render_in_the_time_zone_across_daylight_saving_time() {
    // Stockholm: CET until 2026-03-29 01:00 UTC, CEST until 2026-10-25 01:00 UTC.
    let cases = [
        ("2026-03-29T00:59:59Z", "2026-03-29 01:59:59 CET +0100"),
        ("2026-03-29T01:00:00Z", "2026-03-29 03:00:00 CEST +0200"),
        ("2026-10-25T00:30:00Z", "2026-10-25 02:30:00 CEST +0200"),
        ("2026-10-25T01:30:00Z", "2026-10-25 02:30:00 CET +0100"),
        ("2026-12-31T23:30:00Z", "2027-01-01 00:30:00 CET +0100"),
    ];
    for (now, want) in cases {
        let (local, iso) = local("Europe/Stockholm", now);
        assert_eq!(local, want, "{now}");
        assert_eq!(iso, now.replace('Z', ".000Z"), "iso stays UTC");
    }
    let (utc, _) = local("UTC", "2026-03-29T01:00:00Z");
    assert_eq!(utc, "2026-03-29 01:00:00 UTC +0000");
}

#[test]
fn time_patterns_are_checked_when_compiled() {
    let none = BTreeMap::new();
    let err = Template::compile("{deadline:%Y%J}", &none, &TimeZone::UTC, false);
    assert!(
        matches!(&err, Err(TemplateError::BadTimePattern { pattern, .. }) if pattern == "%Y%J"),
        "{err:?}"
    );
}

#[test]
fn xml_templates_escape_values() {
    let none = BTreeMap::new();
    assert_eq!(
        render("<t>{terminal}</t>", &none, true),
        "<t>POS&lt;01&gt;&amp;</t>"
    );
    assert_eq!(render("<t>{terminal}</t>", &none, false), "<t>POS<01>&</t>");
}

#[test]
fn vendor_values() {
    let mut values = BTreeMap::new();
    values.insert(
        "kind".to_string(),
        KINDS
            .iter()
            .map(|k| (k.to_string(), format!("V-{k}")))
            .collect(),
    );
    assert_eq!(render("{kind:vendor}", &values, false), "V-PURCHASE");
    let mut partial = values.clone();
    partial.get_mut("kind").unwrap().remove("REFUND");
    assert!(matches!(
        Template::compile("{kind:vendor}", &partial, &TimeZone::UTC, false),
        Err(TemplateError::VendorValues { .. })
    ));
}

#[test]
fn sections_render_only_with_a_value() {
    let none = BTreeMap::new();
    assert_eq!(
        render("a{?merchant}<m>{merchant}</m>{/merchant}b", &none, true),
        "ab"
    );
    assert_eq!(
        render("a{?rrn}<r>{rrn}</r>{/rrn}b", &none, true),
        "a<r>531909004711</r>b"
    );
    assert_eq!(
        Template::compile("{?rrn}x", &none, &TimeZone::UTC, true),
        Err(TemplateError::UnclosedSection("rrn".into()))
    );
    assert_eq!(
        Template::compile("x{/rrn}", &none, &TimeZone::UTC, true),
        Err(TemplateError::StraySectionEnd("rrn".into()))
    );
}

#[test]
fn compile_errors() {
    let none = BTreeMap::new();
    assert_eq!(
        Template::compile("{nope}", &none, &TimeZone::UTC, true),
        Err(TemplateError::UnknownField("nope".into()))
    );
    assert!(matches!(
        Template::compile("{amount:hex}", &none, &TimeZone::UTC, true),
        Err(TemplateError::BadFormat { .. })
    ));
    assert!(matches!(
        Template::compile("{rrn:decimal}", &none, &TimeZone::UTC, true),
        Err(TemplateError::BadFormat { .. })
    ));
    assert_eq!(
        Template::compile("a {rrn", &none, &TimeZone::UTC, true),
        Err(TemplateError::Unclosed(2))
    );
    assert_eq!(
        Template::compile("a } b", &none, &TimeZone::UTC, true),
        Err(TemplateError::LoneBrace(2))
    );
}

#[test]
fn iso_times_are_written_as_strftime_writes_them() {
    let times = [
        "2026-11-22T04:30:00Z",
        "2025-11-22T09:14:05.123999999Z",
        "1970-01-01T00:00:00.0009Z",
        "0999-01-02T03:04:05.006Z",
        "9999-12-01T23:59:59.999999999Z",
    ];
    for text in times {
        let at: Timestamp = text.parse().unwrap();
        let mut ours = String::new();
        write_iso_millis(at, &mut ours);
        let strftime = at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        assert_eq!(ours, strftime, "{text}");
    }
}

#[test]
fn formats_apply_to_computed_values_and_escaping_follows_them() {
    let mut values = BTreeMap::new();
    values.insert(
        "amount".to_string(),
        BTreeMap::from([("12550".to_string(), "<big & round>".to_string())]),
    );
    values.insert(
        "currency".to_string(),
        BTreeMap::from([("978".to_string(), "EUR".to_string())]),
    );
    // A vendor value is escaped like any other; one not in the table
    // stays as it is.
    assert_eq!(
        render(
            "{amount:vendor}|{currency:vendor}|{terminal:lower}",
            &values,
            true
        ),
        "&lt;big &amp; round&gt;|840|pos&lt;01&gt;&amp;"
    );
    assert_eq!(
        render("{amount:vendor} {currency_code:lower}", &values, false),
        "<big & round> usd"
    );
}
