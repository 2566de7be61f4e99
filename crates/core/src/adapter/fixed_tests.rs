//! Tests of `fixed`.
use super::*;

fn config(framing: RecordFraming, delimiter: &[u8], max_record: usize) -> FixedTcpConfig {
    FixedTcpConfig {
        addresses: vec!["127.0.0.1:1".into()],
        connect_timeout: Duration::from_millis(100),
        framing,
        delimiter: delimiter.to_vec(),
        encoding: Encoding::Ascii,
        sequence: Column {
            start: 2,
            length: 6,
        },
        max_in_flight: 8,
        max_record,
    }
}

fn codec(framing: RecordFraming, delimiter: &[u8], max_record: usize) -> RecordCodec {
    RecordCodec::new(&config(framing, delimiter, max_record))
}

fn sequence(encoding: Encoding, start: usize, length: usize) -> Sequence {
    let column = Column { start, length };
    Sequence { column, encoding }
}

#[test]
fn sequence_is_written_zero_padded_and_read_back() {
    let ascii = sequence(Encoding::Ascii, 2, 6);
    let mut record = b"XX......YY".to_vec();
    ascii.write(&mut record, 42).unwrap();
    assert_eq!(record, b"XX000042YY");
    assert_eq!(ascii.read(&record), Some(42));
    assert_eq!(ascii.read(b"XX00a042YY"), None, "not digits");
    assert_eq!(ascii.read(b"XX0000"), None, "too short");

    let ebcdic = sequence(Encoding::Ebcdic, 0, 3);
    let mut record = vec![0x40; 5];
    ebcdic.write(&mut record, 7).unwrap();
    assert_eq!(record, [0xf0, 0xf0, 0xf7, 0x40, 0x40]);
    assert_eq!(ebcdic.read(&record), Some(7));
    assert_eq!(ebcdic.read(b"007"), None, "ASCII digits are not EBCDIC");

    let err = sequence(Encoding::Ascii, 4, 6).write(&mut [b' '; 7], 1);
    assert!(matches!(err, Err(AccountError::Malformed(m)) if m.contains("7 bytes")));
    let overflowing = sequence(Encoding::Ascii, usize::MAX, 2);
    assert!(overflowing.write(&mut [0; 4], 1).is_err());
    assert_eq!(overflowing.read(&[0; 4]), None);
}

#[test]
fn numbers_wrap_before_outgrowing_the_column() {
    let two = sequence(Encoding::Ascii, 0, 2);
    assert_eq!([0, 1, 98, 99, 100].map(|c| two.nth(c)), [1, 2, 99, 1, 2]);
    let widest = sequence(Encoding::Ascii, 0, MAX_SEQUENCE_DIGITS);
    assert_eq!(widest.largest(), 9_999_999_999_999_999_999);
    let mut record = [b' '; MAX_SEQUENCE_DIGITS];
    widest.write(&mut record, widest.largest()).unwrap();
    assert_eq!(widest.read(&record), Some(widest.largest()));
}

/// Encodes two records, checks the wire, decodes it fed one byte at a time.
fn round_trip(mut codec: RecordCodec, wire: &[u8]) {
    let mut buf = BytesMut::new();
    for record in [&b"abc"[..], b"second record"] {
        codec.encode(Bytes::from(record), &mut buf).unwrap();
    }
    assert_eq!(&buf[..], wire);
    let (mut got, mut buf) = (Vec::new(), BytesMut::new());
    for &b in wire {
        buf.put_u8(b);
        while let Some(record) = codec.decode(&mut buf).unwrap() {
            got.push(record);
        }
    }
    assert_eq!(got, [&b"abc"[..], b"second record"]);
    assert!(buf.is_empty());
}

#[test]
fn framings_round_trip_in_pieces() {
    let two_byte = b"\0\x03abc\0\x0dsecond record";
    round_trip(codec(RecordFraming::TwoByte, b"", 64), two_byte);
    let lines = b"abc\nsecond record\n";
    round_trip(codec(RecordFraming::Delimited, b"\n", 64), lines);
    let crlf = b"abc\r\nsecond record\r\n";
    round_trip(codec(RecordFraming::Delimited, b"\r\n", 64), crlf);
}

#[test]
fn oversize_incoming_records_are_errors() {
    let mut two_byte = codec(RecordFraming::TwoByte, b"", 4);
    let mut buf = BytesMut::from(&[0, 4, 1, 2, 3, 4, 0, 5][..]);
    assert_eq!(
        two_byte.decode(&mut buf).unwrap().unwrap(),
        &[1, 2, 3, 4][..]
    );
    let err = two_byte.decode(&mut buf);
    assert!(matches!(
        err,
        Err(RecordError::TooLarge { length: 5, max: 4 })
    ));

    let mut crlf = codec(RecordFraming::Delimited, b"\r\n", 4);
    let mut buf = BytesMut::from(&b"abcd\r\nabcde\r\n"[..]);
    assert_eq!(crlf.decode(&mut buf).unwrap().unwrap(), &b"abcd"[..]);
    let err = crlf.decode(&mut buf);
    assert!(matches!(
        err,
        Err(RecordError::TooLarge { length: 5, max: 4 })
    ));
    // Without the delimiter where it must have come: fails at once.
    let mut buf = BytesMut::from(&b"abcd\r"[..]);
    assert_eq!(crlf.decode(&mut buf).unwrap(), None);
    buf.put_u8(b'x');
    let err = crlf.decode(&mut buf);
    assert!(matches!(
        err,
        Err(RecordError::Unterminated { read: 6, max: 4 })
    ));
}

#[test]
fn unsendable_records_are_refused() {
    let lines = codec(RecordFraming::Delimited, b"\n", 8);
    let err = lines.check(b"123456789");
    assert!(matches!(
        err,
        Err(RecordError::TooLarge { length: 9, max: 8 })
    ));
    let err = lines.check(b"12\n45");
    assert!(matches!(err, Err(RecordError::ContainsDelimiter)));
    assert_eq!(codec(RecordFraming::TwoByte, b"", 100_000).max, 65_535);
}

#[test]
fn validate_reports_every_problem() {
    assert_eq!(config(RecordFraming::TwoByte, b"", 64).validate(), Ok(()));
    let mut bad = config(RecordFraming::Delimited, b"", 4);
    bad.addresses.clear();
    bad.max_in_flight = 0;
    bad.sequence.length = 20;
    let problems = vec![
        ConfigError::NoAddress,
        ConfigError::SequenceWidth(20),
        ConfigError::EmptyDelimiter,
        ConfigError::NoInFlight,
        ConfigError::RecordTooSmall { max: 4, end: 22 },
    ];
    assert_eq!(bad.validate(), Err(problems));
}
