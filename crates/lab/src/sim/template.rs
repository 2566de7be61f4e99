//! Request templates: reading a fixture (`.hex`, `.json` or `.toml` field
//! list) and making each request from it with the fields a switch would
//! change per request — DE 7 (now), DE 11 (STAN), DE 37 (RRN) and,
//! with a cards list, the PAN in DE 2 and DE 35.

use std::path::Path;

use cardhub_core::iso8583::dialect::{Class, Encoding, Justify, LengthKind};
use cardhub_core::iso8583::fields::{Pan, Stan};
use cardhub_core::iso8583::{Dialect, FieldList, Message, de};
use cardhub_core::link::netmgmt;

use super::{SimError, TemplateError};

/// Largest template file read, in bytes.
const MAX_TEMPLATE: u64 = 1 << 20;

/// RRNs are unique for this many requests of one run.
pub const RRN_SEQUENCE: u64 = 100_000_000;

/// Reads a request template: hex of the message bytes (`.hex`) or a field
/// list (`.json`, `.toml`), in `dialect`.
///
/// # Errors
/// [`SimError::Template`] naming the file: unreadable, unknown kind, not a
/// message of the dialect, or not a request.
pub fn load(path: &Path, dialect: &Dialect) -> Result<Message, SimError> {
    read(path, dialect).map_err(|source| SimError::Template {
        path: path.to_path_buf(),
        source,
    })
}

fn read(path: &Path, dialect: &Dialect) -> Result<Message, TemplateError> {
    let size = std::fs::metadata(path).map_err(TemplateError::Read)?.len();
    if size > MAX_TEMPLATE {
        return Err(TemplateError::TooLarge {
            size,
            max: MAX_TEMPLATE,
        });
    }
    let text = std::fs::read_to_string(path).map_err(TemplateError::Read)?;
    let msg = match path.extension().and_then(|e| e.to_str()) {
        Some("hex") => {
            let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = hex::decode(compact).map_err(TemplateError::Hex)?;
            dialect.decode(&bytes).map_err(TemplateError::Decode)?
        }
        Some("json") => FieldList::from_json(&text)
            .and_then(|list| list.to_message(dialect))
            .map_err(TemplateError::FieldList)?,
        Some("toml") => FieldList::from_toml(&text)
            .and_then(|list| list.to_message(dialect))
            .map_err(TemplateError::FieldList)?,
        _ => return Err(TemplateError::UnknownKind),
    };
    if !msg.mti().expects_response() {
        return Err(TemplateError::NotARequest { mti: msg.mti() });
    }
    Ok(msg)
}

/// A field's text padded as the codec pads a short fixed-length field, so
/// that the value read back from an answer equals the one sent (answers are
/// matched on DE 41). Variable, binary and BCD fields are left as they are.
pub fn fit(dialect: &Dialect, field: u16, text: &str) -> String {
    let Some(spec) = dialect.field(field) else {
        return text.to_string();
    };
    let len = text.chars().count();
    if spec.length != LengthKind::Fixed
        || spec.class == Class::B
        || spec.encoding == Encoding::Bcd
        || len >= spec.max
    {
        return text.to_string();
    }
    let pad: String = std::iter::repeat_n(char::from(spec.pad), spec.max - len).collect();
    match spec.justify {
        Justify::Right => pad + text,
        Justify::Left => format!("{text}{pad}"),
    }
}

/// Track 2 data with its PAN (everything before the `=` or `D` separator) replaced.
pub fn track2_with_pan(track: &[u8], pan: &Pan) -> Vec<u8> {
    let rest = track
        .iter()
        .position(|&b| b == b'=' || b == b'D')
        .map_or(&[][..], |at| &track[at..]);
    let mut out = Vec::with_capacity(pan.expose().len() + rest.len());
    out.extend_from_slice(pan.expose().as_bytes());
    out.extend_from_slice(rest);
    out
}

/// Retrieval reference numbers for one run: `YDDD` (last digit of the year,
/// day of the year) and 8 digits counting from the millisecond of the day
/// the run started, so requests of a run never share one (up to
/// [`RRN_SEQUENCE`] requests) and runs started apart rarely do.
#[derive(Debug, Clone)]
pub struct RrnSource {
    prefix: String,
    base: u64,
}

impl RrnSource {
    /// RRNs for a run starting now (local time).
    pub fn starting_now() -> RrnSource {
        let now = jiff::Zoned::now();
        let millis = now
            .time()
            .duration_since(jiff::civil::Time::midnight())
            .as_millis();
        RrnSource {
            prefix: format!(
                "{}{:03}",
                i64::from(now.year()).rem_euclid(10),
                now.day_of_year()
            ),
            base: u64::try_from(millis).unwrap_or(0),
        }
    }

    /// The RRN of the run's `seq`-th request: 12 digits.
    pub fn rrn(&self, seq: u64) -> String {
        format!(
            "{}{:08}",
            self.prefix,
            self.base.wrapping_add(seq) % RRN_SEQUENCE
        )
    }
}

/// Makes the requests of a run from one template.
#[derive(Debug, Clone)]
pub struct RequestMaker {
    template: Message,
    /// PANs used round-robin; empty keeps the template's.
    cards: Vec<Pan>,
    rrn: RrnSource,
}

impl RequestMaker {
    /// A maker for `template`; with `cards`, request `n` carries card `n mod len`.
    pub fn new(template: Message, cards: Vec<Pan>) -> RequestMaker {
        RequestMaker {
            template,
            cards,
            rrn: RrnSource::starting_now(),
        }
    }

    /// The run's `seq`-th request: the template with DE 7 set to now, DE 11
    /// to `stan`, a fresh DE 37 and, with cards, the next PAN in DE 2 and in
    /// DE 35 when the template has track 2.
    pub fn build(&self, seq: u64, stan: Stan) -> Message {
        let mut msg = self.template.clone();
        msg.set(de::TRANSMISSION_TIME, netmgmt::transmission_time());
        msg.set_stan(stan);
        msg.set(de::RRN, self.rrn.rrn(seq));
        let count = self.cards.len() as u64;
        if count > 0 {
            let pan = &self.cards[(seq % count) as usize];
            msg.set_pan(pan);
            if let Some(track) = msg.get(de::TRACK2) {
                let track = track2_with_pan(track, pan);
                msg.set(de::TRACK2, track);
            }
        }
        msg
    }
}

/// A BASE24 financial request with fixed terminal data: the ATM header,
/// terminal and location for cash (processing code 01…), POS otherwise (a
/// shop's name and location in DE 43, as the accounting export shows it);
/// `amount` in minor units of `currency` (DE 49, numeric).
pub fn base24_request(
    mti: cardhub_core::iso8583::Mti,
    processing: &str,
    pan: &str,
    amount: u64,
    stan: u32,
    currency: &str,
) -> Message {
    let atm = processing.starts_with("01");
    let mut m = Message::new(mti);
    m.set_header(Some(if atm {
        b"ISO016000070".to_vec()
    } else {
        b"ISO026000070".to_vec()
    }));
    m.set(2, pan);
    m.set(3, processing);
    m.set(4, format!("{amount:012}"));
    m.set(7, "1122030201");
    m.set(11, format!("{stan:06}"));
    m.set(32, "4761739");
    m.set(37, format!("RRN{stan:09}"));
    m.set(41, if atm { "ATM00001" } else { "POS00001" });
    let (name, city, country) = if atm {
        ("CARDHUB SIM ATM STATION", "AMSTERDAM", "NL")
    } else {
        ("CARDHUB SIM CORNER SHOP", "AMSTERDAM", "NL")
    };
    m.set(43, card_acceptor(name, city, country));
    m.set(49, currency);
    m
}

/// DE 43 as BASE24 lays it out: name (25), city (13), country (2), each
/// padded with spaces.
fn card_acceptor(name: &str, city: &str, country: &str) -> String {
    format!("{name:<25.25}{city:<13.13}{country:<2.2}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base24() -> Dialect {
        Dialect::shipped("base24").unwrap().unwrap()
    }

    #[test]
    fn purchases_name_their_card_acceptor_in_forty_bytes() {
        let m = base24_request(
            "0200".parse().unwrap(),
            "000000",
            "4761739001010010",
            1,
            1,
            "978",
        );
        let de43 = m.get(43).unwrap();
        assert_eq!(de43.len(), 40);
        assert_eq!(&de43[..25], b"CARDHUB SIM CORNER SHOP  ");
        assert_eq!(&de43[25..38], b"AMSTERDAM    ");
        assert_eq!(&de43[38..], b"NL");
        base24().encode(&m).unwrap();
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("fixtures/iso8583/base24")
            .join(name)
    }

    #[test]
    fn hex_and_json_fixtures_give_the_same_request() {
        let from_hex = load(&fixture("0100.hex"), &base24()).unwrap();
        let from_json = load(&fixture("0100.json"), &base24()).unwrap();
        assert_eq!(from_hex, from_json);
        assert_eq!(from_hex.header(), Some(&b"ISO026000070"[..]));
    }

    #[test]
    fn unusable_templates_are_refused_with_the_path() {
        let answer = load(&fixture("0110.json"), &base24()).unwrap_err();
        assert!(
            matches!(
                answer,
                SimError::Template {
                    source: TemplateError::NotARequest { .. },
                    ..
                }
            ),
            "{answer:?}"
        );
        let missing = load(Path::new("no/such.hex"), &base24()).unwrap_err();
        assert!(missing.to_string().contains("no/such.hex"), "{missing}");
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("request.txt");
        std::fs::write(&odd, "0100").unwrap();
        assert!(matches!(
            load(&odd, &base24()),
            Err(SimError::Template {
                source: TemplateError::UnknownKind,
                ..
            })
        ));
        let bad_hex = dir.path().join("request.hex");
        std::fs::write(&bad_hex, "49534G").unwrap();
        assert!(matches!(
            load(&bad_hex, &base24()),
            Err(SimError::Template {
                source: TemplateError::Hex(_),
                ..
            })
        ));
    }

    #[test]
    fn requests_vary_in_stan_rrn_time_and_card() {
        let template = load(&fixture("0100.hex"), &base24()).unwrap();
        let cards = vec![
            Pan::new("5413330089010608").unwrap(),
            Pan::new("360000000000008").unwrap(),
        ];
        let maker = RequestMaker::new(template.clone(), cards);
        let a = maker.build(0, Stan::new(1).unwrap());
        let b = maker.build(1, Stan::new(2).unwrap());
        assert_ne!(a.get(de::STAN), b.get(de::STAN));
        assert_ne!(a.get(de::RRN), b.get(de::RRN));
        for msg in [&a, &b] {
            assert_eq!(msg.get(de::RRN).unwrap().len(), 12);
            assert_ne!(msg.get(de::RRN), template.get(de::RRN));
            assert_eq!(msg.get(de::TRANSMISSION_TIME).unwrap().len(), 10);
            base24().encode(msg).unwrap();
        }
        assert_eq!(a.get(de::PAN), Some(&b"5413330089010608"[..]));
        assert_eq!(
            a.get(de::TRACK2),
            Some(&b"5413330089010608=28122011143804400000"[..])
        );
        assert_eq!(b.get(de::PAN), Some(&b"360000000000008"[..]));
        assert_eq!(
            b.get(de::TRACK2),
            Some(&b"360000000000008=28122011143804400000"[..])
        );
        // Round-robin: request 2 uses the first card again.
        let c = maker.build(2, Stan::new(3).unwrap());
        assert_eq!(c.get(de::PAN), a.get(de::PAN));
        // Without cards the template's card stays.
        let plain = RequestMaker::new(template.clone(), Vec::new()).build(0, Stan::new(1).unwrap());
        assert_eq!(plain.get(de::PAN), template.get(de::PAN));
        assert_eq!(plain.get(de::TRACK2), template.get(de::TRACK2));
    }

    #[test]
    fn rrns_of_a_run_are_unique_and_twelve_digits() {
        let source = RrnSource::starting_now();
        let rrns: std::collections::HashSet<String> = (0..10_000).map(|n| source.rrn(n)).collect();
        assert_eq!(rrns.len(), 10_000);
        assert!(
            rrns.iter()
                .all(|r| r.len() == 12 && r.bytes().all(|b| b.is_ascii_digit()))
        );
    }

    #[test]
    fn fixed_fields_are_padded_as_the_codec_pads() {
        let d = base24();
        assert_eq!(fit(&d, de::TERMINAL, "SIM1"), "SIM1            ");
        assert_eq!(fit(&d, de::STAN, "42"), "000042");
        assert_eq!(fit(&d, de::PAN, "4761739001010010"), "4761739001010010");
        assert_eq!(
            track2_with_pan(b"4761739001010010", &Pan::new("5413330089010608").unwrap()),
            b"5413330089010608"
        );
    }
}
