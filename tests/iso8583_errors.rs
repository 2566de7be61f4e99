//! Every decode and encode error kind, with the field and offset it reports.

use cardhub_core::iso8583::{DecodeError, Dialect, EncodeError, Message, Part};

fn base24() -> Dialect {
    Dialect::shipped("base24").unwrap().unwrap()
}

fn binary() -> Dialect {
    Dialect::shipped("iso87-binary").unwrap().unwrap()
}

/// A BASE24 0100 with fields 3, 4 and 35: header 0..12, MTI 12..16, bitmap
/// 16..32, DE 3 32..38, DE 4 38..50, DE 35 prefix 50..52, data from 52.
fn base24_bytes() -> Vec<u8> {
    let mut m = Message::new("0100".parse().unwrap());
    m.set_header(Some(b"ISO026000070".to_vec()));
    m.set(3, "000000");
    m.set(4, "000000001000");
    m.set(35, "4761739001010010=2812101");
    base24().encode(&m).unwrap()
}

#[test]
fn layout_assumed_by_these_tests() {
    let bytes = base24_bytes();
    assert_eq!(&bytes[..16], b"ISO0260000700100");
    assert_eq!(&bytes[32..38], b"000000");
    assert_eq!(&bytes[50..52], b"24");
    assert_eq!(bytes.len(), 52 + 24);
}

#[test]
fn length_over_max_names_field_length_and_offset() {
    let mut bytes = base24_bytes();
    bytes[50..52].copy_from_slice(b"41");
    let err = base24().decode(&bytes).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field 35: length 41 exceeds max 37 at offset 50"
    );
    assert_eq!(err.part(), Some(Part::Field(35)));
}

#[test]
fn short_read() {
    let bytes = base24_bytes();
    let err = base24().decode(&bytes[..60]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::ShortRead {
            part: Part::Field(35),
            offset: 52,
            needed: 24,
            available: 8
        }
    );
    let err = base24().decode(&bytes[..20]).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::ShortRead {
            part: Part::PrimaryBitmap,
            offset: 16,
            ..
        }
    ));
}

#[test]
fn bad_bitmap() {
    let mut bytes = base24_bytes();
    bytes[19] = b'G';
    let err = base24().decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadBitmap {
            part: Part::PrimaryBitmap,
            offset: 19,
            byte: b'G'
        }
    );
}

#[test]
fn non_numeric_in_n_field() {
    let mut bytes = base24_bytes();
    bytes[45] = b'A';
    let err = base24().decode(&bytes).unwrap_err();
    assert_eq!(
        err,
        DecodeError::BadCharacter {
            part: Part::Field(4),
            offset: 45,
            byte: b'A',
            class: "n"
        }
    );
    assert_eq!(
        err.to_string(),
        "field 4: byte 0x41 is not allowed in class n at offset 45"
    );
}

#[test]
fn bad_length_prefix() {
    let mut bytes = base24_bytes();
    bytes[51] = b'x';
    let err = base24().decode(&bytes).unwrap_err();
    assert!(matches!(
        err,
        DecodeError::BadLengthPrefix {
            part: Part::Field(35),
            offset: 50,
            ..
        }
    ));
}

#[test]
fn missing_mandatory_header() {
    let bytes = base24_bytes();
    let err = base24().decode(&bytes[12..]).unwrap_err();
    assert_eq!(
        err,
        DecodeError::MissingHeader {
            offset: 0,
            expected: "ISO".into(),
            found: "010".into()
        }
    );
}

#[test]
fn trailing_bytes() {
    let mut bytes = base24_bytes();
    bytes.extend_from_slice(b"XX");
    assert_eq!(
        base24().decode(&bytes).unwrap_err(),
        DecodeError::TrailingBytes {
            offset: 76,
            count: 2
        }
    );
}

#[test]
fn bad_bcd_nibble() {
    let mut m = Message::new("0100".parse().unwrap());
    m.set(3, "000000");
    let mut bytes = binary().encode(&m).unwrap();
    // MTI 0..2, bitmap 2..10, DE 3 10..13.
    bytes[11] = 0x0a;
    assert_eq!(
        binary().decode(&bytes).unwrap_err(),
        DecodeError::BadBcd {
            part: Part::Field(3),
            offset: 11,
            nibble: 0x0a
        }
    );
    bytes[0] = 0xf1;
    assert!(matches!(
        binary().decode(&bytes).unwrap_err(),
        DecodeError::BadBcd {
            part: Part::Mti,
            offset: 0,
            nibble: 0xf
        }
    ));
}

#[test]
fn bit_for_an_undefined_field() {
    let ebcdic = Dialect::from_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/iso8583/dialects/iso87-ebcdic.toml"),
    )
    .unwrap();
    // Header "H00001" and MTI in EBCDIC, then a bitmap with only bit 5 set.
    let mut bytes: Vec<u8> = vec![0xc8, 0xf0, 0xf0, 0xf0, 0xf0, 0xf1, 0xf0, 0xf1, 0xf0, 0xf0];
    bytes.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(
        ebcdic.decode(&bytes).unwrap_err(),
        DecodeError::UndefinedField {
            part: Part::Field(5),
            offset: 18,
            ..
        }
    ));
}

#[test]
fn encode_errors() {
    let d = base24();
    let mut m = Message::new("0100".parse().unwrap());
    assert!(matches!(
        d.encode(&m),
        Err(EncodeError::MissingHeader { length: 12, .. })
    ));
    m.set_header(Some(b"ISO026000070".to_vec()));
    m.set(3, "1234567");
    assert_eq!(
        d.encode(&m),
        Err(EncodeError::TooLong {
            part: Part::Field(3),
            length: 7,
            max: 6
        })
    );
    m.set(3, "12a456");
    assert!(matches!(
        d.encode(&m),
        Err(EncodeError::BadCharacter {
            part: Part::Field(3),
            position: 2,
            ..
        })
    ));
    m.set(3, "1");
    m.set(65, "x");
    assert!(matches!(
        d.encode(&m),
        Err(EncodeError::UndefinedField {
            part: Part::Field(65),
            ..
        })
    ));
    let mut b = Message::new("0100".parse().unwrap());
    b.set(52, vec![1, 2, 3]);
    assert_eq!(
        binary().encode(&b),
        Err(EncodeError::WrongLength {
            part: Part::Field(52),
            length: 3,
            expected: 8
        })
    );
}

#[test]
fn short_fixed_values_are_padded_by_justification() {
    let d = base24();
    let mut m = Message::new("0100".parse().unwrap());
    m.set_header(Some(b"ISO026000070".to_vec()));
    m.set(4, "1000");
    m.set(41, "TERM1");
    let back = d.decode(&d.encode(&m).unwrap()).unwrap();
    assert_eq!(back.get(4), Some(&b"000000001000"[..]));
    assert_eq!(back.get(41), Some(&b"TERM1           "[..]));
}
