//! Fuzz target: decoding arbitrary bytes with every dialect must never panic,
//! and whatever decodes must survive encode → decode unchanged.
//!
//! Seeds: `fuzz/corpus/decode/` (the pyiso8583 fixtures as raw bytes).

use std::sync::LazyLock;

use cardhub_core::iso8583::dialect::shipped_names;
use cardhub_core::iso8583::{Dialect, FieldList, Message};

/// The shipped dialects plus the test-only EBCDIC one (header, EBCDIC text,
/// tertiary bitmap: paths the shipped dialects do not reach).
static DIALECTS: LazyLock<Vec<Dialect>> = LazyLock::new(|| {
    let mut all: Vec<Dialect> = shipped_names()
        .into_iter()
        .map(|name| {
            Dialect::shipped(name)
                .expect("shipped name")
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    all.push(
        Dialect::from_toml(
            "iso87-ebcdic",
            include_str!("../../fixtures/iso8583/dialects/iso87-ebcdic.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    all
});

/// A message in full, unmasked (`Message`'s `Debug` hides card data).
fn show(msg: &Message, dialect: &Dialect) -> String {
    serde_json::to_string(&FieldList::from_message(msg, dialect, false)).unwrap()
}

pub fn target(data: &[u8]) {
    for dialect in DIALECTS.iter() {
        round_trip(dialect, data);
    }
}

/// Decodes `data` with `dialect`; what decodes must encode to canonical
/// bytes that decode to the same message, and a failed decode's partial
/// message must hold only the fields before the error.
pub fn round_trip(dialect: &Dialect, data: &[u8]) {
    let name = &dialect.name;
    // decode_partial agrees with decode, and its partial message holds
    // exactly the fields before the error.
    let partial = dialect.decode_partial(data);
    let msg = match dialect.decode(data) {
        Ok(msg) => msg,
        Err(error) => {
            match partial {
                Ok(_) => panic!("{name}: decode_partial succeeded where decode failed: {error}"),
                Err(p) => {
                    assert!(p.error == error, "{name}: {} vs {error}", p.error);
                    if let (Some(m), Some(cardhub_core::iso8583::Part::Field(bad))) =
                        (p.partial, error.part())
                    {
                        assert!(m.fields().all(|(n, _)| n < bad), "{name}: field past {bad}");
                    }
                }
            }
            return;
        }
    };
    assert!(
        partial.as_ref().is_ok_and(|p| *p == msg),
        "{name}: decode_partial differs"
    );
    let bytes = dialect.encode(&msg).unwrap_or_else(|e| {
        panic!(
            "{name}: decoded message does not encode: {e}\n{}",
            show(&msg, dialect)
        )
    });
    let again = dialect.decode(&bytes).unwrap_or_else(|e| {
        panic!(
            "{name}: re-encoded bytes do not decode: {e}\nmessage {}\nbytes {}",
            show(&msg, dialect),
            hex(&bytes)
        )
    });
    assert!(
        again == msg,
        "{name}: decode(encode(m)) != m\nfirst  {}\nsecond {}",
        show(&msg, dialect),
        show(&again, dialect)
    );
    // The re-encoded form is canonical: encoding it again changes nothing.
    // (It may differ from the input: hex-bitmap letter case, empty
    // secondary or tertiary bitmaps.)
    let canonical = dialect.encode(&again).expect("encodes once, encodes twice");
    assert!(
        canonical == bytes,
        "{name}: encoding is not stable\nfirst  {}\nsecond {}",
        hex(&bytes),
        hex(&canonical)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}
