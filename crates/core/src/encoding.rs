//! Character encodings of what account systems send and read: UTF-8,
//! US-ASCII, ISO-8859-1 (Latin-1), Windows-1252, and EBCDIC code page 500
//! (fixed-width records only).
//!
//! The single-byte encodings are converted here by table rather than with
//! `encoding_rs`: legacy systems need only these few, and Latin-1 stays
//! Latin-1 (`encoding_rs`, following WHATWG, reads the label `iso-8859-1` as
//! Windows-1252). This module converts bytes and text; it does not decide
//! which encoding an answer is in (the XML reader and the adapter file do).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;

use crate::iso8583::ebcdic;

/// A character encoding, as adapter files name it (`[records] encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
pub enum Encoding {
    /// UTF-8: every character; a column counts bytes, not characters.
    #[default]
    #[serde(rename = "utf-8", alias = "utf8")]
    Utf8,
    /// US-ASCII: 7-bit only; any other byte or character is an error.
    #[serde(rename = "ascii", alias = "us-ascii")]
    Ascii,
    /// ISO-8859-1: byte n is U+00nn.
    #[serde(rename = "latin1", alias = "iso-8859-1")]
    Latin1,
    /// Windows-1252: Latin-1 with printable characters (€, curly quotes …)
    /// in 0x80–0x9F; the five bytes it leaves undefined read as the C1
    /// controls of the same value, as Windows and WHATWG read them.
    #[serde(rename = "cp1252", alias = "windows-1252")]
    Cp1252,
    /// EBCDIC code page 500, through Latin-1 (the two are a bijection).
    #[serde(rename = "ebcdic", alias = "cp500")]
    Ebcdic,
}

/// Bytes that are not text in an encoding, or text an encoding cannot
/// carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// A byte sequence that is not a character (the sender's fault).
    #[error("not {encoding} at byte {offset}")]
    Undecodable { encoding: Encoding, offset: usize },
    /// A character with no byte in the encoding (nothing was sent).
    #[error("{character:?} (U+{code:04X}) cannot be written in {encoding}", code = u32::from(*.character))]
    Unencodable { encoding: Encoding, character: char },
}

/// Windows-1252 0x80–0x9F; undefined bytes map to the C1 control of the
/// same value.
const CP1252_HIGH: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}',
    '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}',
    '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}',
    '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

impl Encoding {
    /// The encoding an IANA charset label names (`charset=` of a content
    /// type, `encoding=` of an XML declaration), ignoring case; `None` for
    /// one cardhub does not read. EBCDIC has no label here: an XML answer in
    /// it could not even be recognised.
    pub fn from_label(label: &str) -> Option<Encoding> {
        const LABELS: &[(&str, Encoding)] = &[
            ("utf-8", Encoding::Utf8),
            ("utf8", Encoding::Utf8),
            ("us-ascii", Encoding::Ascii),
            ("ascii", Encoding::Ascii),
            ("iso-8859-1", Encoding::Latin1),
            ("iso8859-1", Encoding::Latin1),
            ("iso_8859-1", Encoding::Latin1),
            ("latin1", Encoding::Latin1),
            ("l1", Encoding::Latin1),
            ("windows-1252", Encoding::Cp1252),
            ("cp1252", Encoding::Cp1252),
        ];
        let label = label.trim();
        LABELS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(label))
            .map(|&(_, encoding)| encoding)
    }

    /// Decodes `bytes`; borrows them when they are already UTF-8 text.
    ///
    /// # Errors
    /// [`EncodingError::Undecodable`] at the first byte that is not a
    /// character (UTF-8 and US-ASCII only: the others map every byte).
    pub fn decode(self, bytes: &[u8]) -> Result<Cow<'_, str>, EncodingError> {
        let undecodable = |offset| EncodingError::Undecodable {
            encoding: self,
            offset,
        };
        let char_of: fn(u8) -> char = match self {
            Encoding::Utf8 => {
                let text = std::str::from_utf8(bytes).map_err(|e| undecodable(e.valid_up_to()))?;
                return Ok(Cow::Borrowed(text));
            }
            Encoding::Ascii => {
                return match bytes.iter().position(|b| !b.is_ascii()) {
                    Some(offset) => Err(undecodable(offset)),
                    None => Encoding::Utf8.decode(bytes),
                };
            }
            Encoding::Latin1 => char::from,
            Encoding::Cp1252 => cp1252_char,
            Encoding::Ebcdic => |b| char::from(ebcdic::to_latin1(b)),
        };
        if self != Encoding::Ebcdic && bytes.is_ascii() {
            // ASCII reads the same in all of them: no copy.
            return Encoding::Utf8.decode(bytes);
        }
        Ok(Cow::Owned(bytes.iter().map(|&b| char_of(b)).collect()))
    }

    /// Appends `text` encoded.
    ///
    /// # Errors
    /// [`EncodingError::Unencodable`] for the first character the encoding
    /// has no byte for; `out` then holds the bytes before it.
    pub fn encode(self, text: &str, out: &mut Vec<u8>) -> Result<(), EncodingError> {
        let byte_of: fn(char) -> Option<u8> = match self {
            Encoding::Utf8 => {
                out.extend_from_slice(text.as_bytes());
                return Ok(());
            }
            Encoding::Ascii => |c| u8::try_from(c).ok().filter(u8::is_ascii),
            Encoding::Latin1 => |c| u8::try_from(c).ok(),
            Encoding::Cp1252 => cp1252_byte,
            Encoding::Ebcdic => |c| u8::try_from(c).ok().map(ebcdic::from_latin1),
        };
        out.reserve(text.len());
        for character in text.chars() {
            out.push(byte_of(character).ok_or(EncodingError::Unencodable {
                encoding: self,
                character,
            })?);
        }
        Ok(())
    }

    /// The byte of an ASCII character (every encoding here has one; the
    /// transport writes digits and padding with it).
    pub fn ascii_byte(self, ascii: u8) -> u8 {
        match self {
            Encoding::Ebcdic => ebcdic::from_latin1(ascii),
            _ => ascii,
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Ascii => "US-ASCII",
            Encoding::Latin1 => "ISO-8859-1",
            Encoding::Cp1252 => "Windows-1252",
            Encoding::Ebcdic => "EBCDIC (code page 500)",
        })
    }
}

fn cp1252_char(byte: u8) -> char {
    match byte {
        0x80..=0x9F => CP1252_HIGH[usize::from(byte - 0x80)],
        _ => char::from(byte),
    }
}

fn cp1252_byte(character: char) -> Option<u8> {
    match u8::try_from(character) {
        Ok(byte) if !(0x80..=0x9F).contains(&byte) => Some(byte),
        _ => (0x80..=0x9F).find(|&byte| CP1252_HIGH[usize::from(byte - 0x80)] == character),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Encoding; 5] = [
        Encoding::Utf8,
        Encoding::Ascii,
        Encoding::Latin1,
        Encoding::Cp1252,
        Encoding::Ebcdic,
    ];

    fn encoded(encoding: Encoding, text: &str) -> Result<Vec<u8>, EncodingError> {
        let mut out = Vec::new();
        encoding.encode(text, &mut out).map(|()| out)
    }

    #[test]
    fn latin1_and_cp1252_read_the_bytes_legacy_systems_send() {
        // "Müller, 5 €" as a Windows host writes it.
        let cp1252 = b"M\xfcller, 5 \x80";
        assert_eq!(Encoding::Cp1252.decode(cp1252).unwrap(), "Müller, 5 €");
        assert_eq!(Encoding::Latin1.decode(cp1252).unwrap(), "Müller, 5 \u{80}");
        assert_eq!(
            Encoding::Cp1252.decode(b"\x93q\x94 \x81").unwrap(),
            "\u{201C}q\u{201D} \u{81}"
        );
        assert_eq!(encoded(Encoding::Cp1252, "Müller, 5 €").unwrap(), cp1252);
        assert_eq!(encoded(Encoding::Latin1, "Müller").unwrap(), b"M\xfcller");
        assert_eq!(
            encoded(Encoding::Latin1, "5 €"),
            Err(EncodingError::Unencodable {
                encoding: Encoding::Latin1,
                character: '€'
            })
        );
    }

    #[test]
    fn utf8_and_ascii_refuse_what_they_cannot_carry() {
        let err = Encoding::Utf8.decode(b"ab\xfc").unwrap_err();
        assert_eq!(err.to_string(), "not UTF-8 at byte 2");
        let err = Encoding::Ascii.decode(b"abc\xfc").unwrap_err();
        assert_eq!(err.to_string(), "not US-ASCII at byte 3");
        let err = encoded(Encoding::Ascii, "Grüße").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'ü' (U+00FC) cannot be written in US-ASCII"
        );
        assert_eq!(
            encoded(Encoding::Utf8, "Grüße").unwrap(),
            "Grüße".as_bytes()
        );
        assert!(matches!(
            Encoding::Utf8.decode(b"plain"),
            Ok(Cow::Borrowed("plain"))
        ));
    }

    #[test]
    fn ebcdic_goes_through_latin1() {
        assert_eq!(
            encoded(Encoding::Ebcdic, "A1 ").unwrap(),
            [0xc1, 0xf1, 0x40]
        );
        assert_eq!(Encoding::Ebcdic.decode(&[0xc1, 0xf1, 0x40]).unwrap(), "A1 ");
        assert!(encoded(Encoding::Ebcdic, "€").is_err());
        assert_eq!(Encoding::Ebcdic.ascii_byte(b'0'), 0xf0);
        assert_eq!(Encoding::Latin1.ascii_byte(b'0'), b'0');
    }

    #[test]
    fn labels_ignore_case() {
        assert_eq!(Encoding::from_label("ISO-8859-1"), Some(Encoding::Latin1));
        assert_eq!(
            Encoding::from_label(" Windows-1252"),
            Some(Encoding::Cp1252)
        );
        assert_eq!(Encoding::from_label("UTF-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_label("koi8-r"), None);
        assert_eq!(Encoding::from_label("ebcdic"), None);
    }

    #[test]
    fn every_encodable_text_round_trips() {
        let samples = ["", "ACCT 0042", "Grüße, Zoë", "€ “quoted” — ok", "日本"];
        for encoding in ALL {
            for text in samples {
                if let Ok(bytes) = encoded(encoding, text) {
                    assert_eq!(encoding.decode(&bytes).unwrap(), text, "{encoding}");
                }
            }
        }
        for byte in 0..=255u8 {
            for encoding in [Encoding::Latin1, Encoding::Cp1252, Encoding::Ebcdic] {
                let text = encoding.decode(&[byte]).unwrap().into_owned();
                assert_eq!(encoded(encoding, &text).unwrap(), [byte], "{encoding}");
            }
        }
    }
}
