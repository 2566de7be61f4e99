//! Property tests of the codec for every dialect: generated valid messages
//! survive `decode(encode(m)) == m`, and arbitrary or damaged bytes give
//! `Ok` or `Err`, never a panic.

use std::path::PathBuf;
use std::sync::LazyLock;

use cardhub_core::iso8583::dialect::{Class, Encoding, LengthKind};
use cardhub_core::iso8583::{Dialect, FieldSpec, Message, Mti};
use proptest::prelude::*;

static DIALECTS: LazyLock<Vec<Dialect>> = LazyLock::new(|| {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    vec![
        Dialect::shipped("base24").unwrap().unwrap(),
        Dialect::shipped("iso87-binary").unwrap().unwrap(),
        Dialect::from_file(&repo.join("fixtures/iso8583/dialects/iso87-ebcdic.toml")).unwrap(),
    ]
});

/// Characters a valid value of this field may hold.
fn alphabet(spec: &FieldSpec) -> Vec<u8> {
    match (spec.class, spec.encoding) {
        (Class::Z, Encoding::Bcd) => b"0123456789D".to_vec(),
        (class, _) => (0..=255u8).filter(|&c| class.allows(c)).collect(),
    }
}

fn value(spec: &FieldSpec) -> BoxedStrategy<(u16, Vec<u8>)> {
    let number = spec.number;
    let len = match spec.length {
        LengthKind::Fixed => spec.max..=spec.max,
        _ => 0..=spec.max.min(40),
    };
    prop::collection::vec(prop::sample::select(alphabet(spec)), len)
        .prop_map(move |v| (number, v))
        .boxed()
}

fn message(dialect: &'static Dialect) -> impl Strategy<Value = Message> {
    let specs: Vec<FieldSpec> = dialect.fields().cloned().collect();
    let count = specs.len();
    let header = dialect.header.clone();
    (
        "[0-9]{4}",
        "[0-9]{64}",
        prop::sample::subsequence(specs, 0..=count),
    )
        .prop_flat_map(|(mti, filler, chosen)| {
            let values: Vec<_> = chosen.iter().map(value).collect();
            (Just(mti), Just(filler), values)
        })
        .prop_map(move |(mti, filler, values)| {
            let mut msg = Message::new(mti.parse::<Mti>().unwrap());
            if let Some(h) = &header {
                let mut bytes = h.starts_with.clone();
                bytes.extend_from_slice(&filler.as_bytes()[..h.length - bytes.len()]);
                msg.set_header(Some(bytes));
            }
            for (n, v) in values {
                msg.set(n, v);
            }
            msg
        })
}

fn any_dialect_message() -> impl Strategy<Value = (usize, Message)> {
    (0..DIALECTS.len()).prop_flat_map(|i| message(&DIALECTS[i]).prop_map(move |m| (i, m)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_inverts_encode((i, msg) in any_dialect_message()) {
        let d = &DIALECTS[i];
        let bytes = d.encode(&msg).map_err(|e| TestCaseError::fail(format!("{}: {e}", d.name)))?;
        let back = d.decode(&bytes).map_err(|e| TestCaseError::fail(format!("{}: {e}", d.name)))?;
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        for d in DIALECTS.iter() {
            let _ = d.decode(&bytes);
        }
    }

    #[test]
    fn damaged_messages_never_panic(
        (i, msg) in any_dialect_message(),
        cut in any::<prop::sample::Index>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let d = &DIALECTS[i];
        let mut bytes = d.encode(&msg).unwrap();
        for (at, byte) in flips {
            let k = at.index(bytes.len());
            bytes[k] = byte;
        }
        let keep = cut.index(bytes.len() + 1);
        bytes.truncate(keep);
        if let Ok(decoded) = d.decode(&bytes) {
            // Whatever decodes must encode again.
            prop_assert!(d.encode(&decoded).is_ok());
        }
    }
}
