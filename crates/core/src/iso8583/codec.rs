//! Encoding and decoding of whole messages by a [`Dialect`]. No I/O: bytes in,
//! [`Message`] out, and back.
//!
//! Wire layout: `[header] MTI primary-bitmap [secondary] [tertiary] fields…`.
//! All bitmaps come first (the secondary when any field 65–192 is present, the
//! tertiary — flagged by bit 65 — when any field 129–192 is), then the fields
//! in number order. This is pyiso8583's layout too.
//!
//! Decoding is strict and bounded: every length is checked against the field's
//! maximum and against the bytes left before anything is copied, so arbitrary
//! input costs at most one pass and allocations no larger than the input.

use super::dialect::{BitmapEncoding, Class, Dialect, Encoding, FieldSpec, HeaderSpec, Justify};
use super::ebcdic;
use super::error::{DecodeError, EncodeError, Part};
use super::message::{Message, Mti};

/// A failed decode: the error, and the message as far as it was decoded
/// (`None` when even the MTI could not be read).
#[derive(Debug)]
pub struct PartialDecode {
    pub error: DecodeError,
    pub partial: Option<Box<Message>>,
}

/// Bit of a bitmap word for field `n` (1-based within the word).
const fn bit(n: u16) -> u64 {
    1u64 << (64 - n)
}

/// Bounds-checked reading position in the input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, part: Part, needed: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.buf.len() - self.pos;
        if needed > available {
            return Err(DecodeError::ShortRead {
                part,
                offset: self.pos,
                needed,
                available,
            });
        }
        let slice = &self.buf[self.pos..self.pos + needed];
        self.pos += needed;
        Ok(slice)
    }
}

impl Dialect {
    /// Decodes one message (the frame without its transport length prefix).
    ///
    /// # Errors
    /// A [`DecodeError`] naming the part, the byte offset and the reason.
    pub fn decode(&self, input: &[u8]) -> Result<Message, DecodeError> {
        let mut slot = None;
        self.decode_into(input, &mut slot)?;
        slot.ok_or(DecodeError::ShortRead {
            part: Part::Mti,
            offset: 0,
            needed: 1,
            available: 0,
        })
    }

    /// Like [`Dialect::decode`], but on failure also returns what was decoded
    /// before the error (header, MTI and the fields in front of the bad one),
    /// so that a format-error answer can still be addressed.
    ///
    /// # Errors
    /// A [`PartialDecode`]: the error, and the partial message once the MTI was read.
    pub fn decode_partial(&self, input: &[u8]) -> Result<Message, PartialDecode> {
        let mut slot = None;
        match self.decode_into(input, &mut slot) {
            Ok(()) => slot.ok_or(PartialDecode {
                error: DecodeError::ShortRead {
                    part: Part::Mti,
                    offset: 0,
                    needed: 1,
                    available: 0,
                },
                partial: None,
            }),
            Err(error) => Err(PartialDecode {
                error,
                partial: slot.map(Box::new),
            }),
        }
    }

    /// Decodes into `slot`, which holds the message as soon as the MTI is known.
    fn decode_into(&self, input: &[u8], slot: &mut Option<Message>) -> Result<(), DecodeError> {
        let mut r = Reader { buf: input, pos: 0 };
        let header = match &self.header {
            Some(spec) => Some(decode_header(spec, &mut r)?),
            None => None,
        };
        let mti = self.decode_mti(&mut r)?;
        let msg = slot.insert(Message::with_capacity(mti, 0, 0));
        msg.set_header(header);
        let primary = self.decode_bitmap(&mut r, Part::PrimaryBitmap)?;
        let secondary = if primary & bit(1) != 0 {
            self.decode_bitmap(&mut r, Part::Field(1))?
        } else {
            0
        };
        let tertiary = if secondary & bit(1) != 0 {
            self.decode_bitmap(&mut r, Part::Field(65))?
        } else {
            0
        };
        let count = (primary & !bit(1)).count_ones()
            + (secondary & !bit(1)).count_ones()
            + tertiary.count_ones();
        msg.reserve(count as usize, input.len() * 2);
        for (base, word) in [
            (0u16, primary & !bit(1)),
            (64, secondary & !bit(1)),
            (128, tertiary),
        ] {
            let mut bits = word;
            while bits != 0 {
                let index = bits.leading_zeros() as u16; // 0..=63
                bits &= !(1u64 << (63 - index));
                let number = base + index + 1;
                let spec = self
                    .field(number)
                    .ok_or_else(|| DecodeError::UndefinedField {
                        part: Part::Field(number),
                        offset: r.pos,
                        dialect: self.name.clone(),
                    })?;
                msg.push_with(number, |out| decode_field(spec, &mut r, out))?;
            }
        }
        if r.pos != input.len() {
            return Err(DecodeError::TrailingBytes {
                offset: r.pos,
                count: input.len() - r.pos,
            });
        }
        Ok(())
    }

    /// Encodes a message, appending the bytes to `out`.
    ///
    /// # Errors
    /// An [`EncodeError`] naming the field and what does not fit; `out` may
    /// then hold a partial message.
    pub fn encode_into(&self, msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match (&self.header, msg.header()) {
            (Some(spec), Some(h)) => encode_header(spec, h, out)?,
            (Some(spec), None) => {
                return Err(EncodeError::MissingHeader {
                    dialect: self.name.clone(),
                    length: spec.length,
                    starts_with: String::from_utf8_lossy(&spec.starts_with).into_owned(),
                });
            }
            (None, Some(_)) => {
                return Err(EncodeError::BadHeader {
                    reason: format!("dialect {} has no header", self.name),
                });
            }
            (None, None) => {}
        }
        self.encode_mti(msg.mti(), out);
        let mut words = [0u64; 3];
        for (number, _) in msg.fields() {
            if self.field(number).is_none() {
                return Err(EncodeError::UndefinedField {
                    part: Part::Field(number),
                    dialect: self.name.clone(),
                });
            }
            let n = number - 1;
            words[usize::from(n / 64)] |= bit(n % 64 + 1);
        }
        if words[2] != 0 {
            words[1] |= bit(1);
        }
        if words[1] != 0 {
            words[0] |= bit(1);
        }
        // The primary bitmap is always there; the others only when flagged.
        self.encode_bitmap(words[0], out);
        for word in words[1..].iter().take_while(|&&w| w != 0) {
            self.encode_bitmap(*word, out);
        }
        for (number, value) in msg.fields() {
            if let Some(spec) = self.field(number) {
                encode_field(spec, value, out)?;
            }
        }
        Ok(())
    }

    /// Encodes a message into a new buffer.
    ///
    /// # Errors
    /// As [`Dialect::encode_into`].
    pub fn encode(&self, msg: &Message) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        self.encode_into(msg, &mut out)?;
        Ok(out)
    }

    fn decode_mti(&self, r: &mut Reader<'_>) -> Result<Mti, DecodeError> {
        let width = if self.mti == Encoding::Bcd { 2 } else { 4 };
        let offset = r.pos;
        let raw = r.take(Part::Mti, width)?;
        let mut digits = [0u8; 4];
        match self.mti {
            Encoding::Bcd => {
                for (i, &byte) in raw.iter().enumerate() {
                    for (j, nibble) in [byte >> 4, byte & 0x0f].into_iter().enumerate() {
                        if nibble > 9 {
                            return Err(DecodeError::BadBcd {
                                part: Part::Mti,
                                offset: offset + i,
                                nibble,
                            });
                        }
                        digits[i * 2 + j] = b'0' + nibble;
                    }
                }
            }
            encoding => {
                for (i, &byte) in raw.iter().enumerate() {
                    let c = text_char(encoding, byte);
                    if !c.is_ascii_digit() {
                        return Err(DecodeError::BadCharacter {
                            part: Part::Mti,
                            offset: offset + i,
                            byte,
                            class: "n",
                        });
                    }
                    digits[i] = c;
                }
            }
        }
        Mti::from_digits(digits).map_err(|_| DecodeError::BadCharacter {
            part: Part::Mti,
            offset,
            byte: raw[0],
            class: "n",
        })
    }

    fn encode_mti(&self, mti: Mti, out: &mut Vec<u8>) {
        let d = mti.digits();
        match self.mti {
            Encoding::Bcd => {
                out.push(((d[0] - b'0') << 4) | (d[1] - b'0'));
                out.push(((d[2] - b'0') << 4) | (d[3] - b'0'));
            }
            Encoding::Ebcdic => out.extend(d.iter().map(|&c| ebcdic::from_latin1(c))),
            _ => out.extend_from_slice(&d),
        }
    }

    fn decode_bitmap(&self, r: &mut Reader<'_>, part: Part) -> Result<u64, DecodeError> {
        match self.bitmap {
            BitmapEncoding::Binary => {
                let raw = r.take(part, 8)?;
                let mut word = [0u8; 8];
                word.copy_from_slice(raw);
                Ok(u64::from_be_bytes(word))
            }
            BitmapEncoding::Hex => {
                let offset = r.pos;
                let raw = r.take(part, 16)?;
                let mut word = 0u64;
                for (i, &byte) in raw.iter().enumerate() {
                    let value = (byte as char).to_digit(16).ok_or(DecodeError::BadBitmap {
                        part,
                        offset: offset + i,
                        byte,
                    })?;
                    word = (word << 4) | u64::from(value);
                }
                Ok(word)
            }
        }
    }

    fn encode_bitmap(&self, word: u64, out: &mut Vec<u8>) {
        match self.bitmap {
            BitmapEncoding::Binary => out.extend_from_slice(&word.to_be_bytes()),
            BitmapEncoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.extend(
                    (0..16)
                        .rev()
                        .map(|i| HEX[((word >> (i * 4)) & 0xf) as usize]),
                );
            }
        }
    }
}

/// A wire byte of a text encoding as its logical (Latin-1) character.
fn text_char(encoding: Encoding, byte: u8) -> u8 {
    if encoding == Encoding::Ebcdic {
        ebcdic::to_latin1(byte)
    } else {
        byte
    }
}

fn decode_header(spec: &HeaderSpec, r: &mut Reader<'_>) -> Result<Vec<u8>, DecodeError> {
    let offset = r.pos;
    let rest = &r.buf[r.pos..];
    let logical: Vec<u8> = rest
        .iter()
        .take(spec.length)
        .map(|&b| text_char(spec.encoding, b))
        .collect();
    let check = spec.starts_with.len().min(logical.len());
    if logical[..check] != spec.starts_with[..check] {
        return Err(DecodeError::MissingHeader {
            offset,
            expected: String::from_utf8_lossy(&spec.starts_with).into_owned(),
            found: String::from_utf8_lossy(&logical[..spec.starts_with.len().min(logical.len())])
                .into_owned(),
        });
    }
    r.take(Part::Header, spec.length)?;
    Ok(logical)
}

fn encode_header(spec: &HeaderSpec, header: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if header.len() != spec.length || !header.starts_with(&spec.starts_with) {
        return Err(EncodeError::BadHeader {
            reason: format!(
                "{:?} must be {} bytes starting with {:?}",
                String::from_utf8_lossy(header),
                spec.length,
                String::from_utf8_lossy(&spec.starts_with)
            ),
        });
    }
    match spec.encoding {
        Encoding::Ebcdic => out.extend(header.iter().map(|&c| ebcdic::from_latin1(c))),
        _ => out.extend_from_slice(header),
    }
    Ok(())
}

/// Decodes one field, appending its logical value to `out`.
fn decode_field(
    spec: &FieldSpec,
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let part = Part::Field(spec.number);
    let len = if spec.prefix_width() == 0 {
        spec.max
    } else {
        let offset = r.pos;
        let raw = r.take(part, spec.prefix_width())?;
        let len = decode_prefix(spec.prefix, raw).ok_or_else(|| DecodeError::BadLengthPrefix {
            part,
            offset,
            raw: if spec.prefix == Encoding::Ascii {
                String::from_utf8_lossy(raw).into_owned()
            } else {
                hex::encode_upper(raw)
            },
        })?;
        if len > spec.max {
            return Err(DecodeError::LengthOverMax {
                part,
                offset,
                length: len,
                max: spec.max,
            });
        }
        len
    };
    let offset = r.pos;
    let data = r.take(part, spec.wire_len(len))?;
    match spec.encoding {
        Encoding::Binary => out.extend_from_slice(data),
        Encoding::Bcd => unpack_bcd(spec, data, len, offset, out)?,
        encoding => {
            let start = out.len();
            if encoding == Encoding::Ebcdic {
                out.extend(data.iter().map(|&b| ebcdic::to_latin1(b)));
            } else {
                out.extend_from_slice(data);
            }
            if let Some(i) = spec.class.first_disallowed(&out[start..]) {
                return Err(DecodeError::BadCharacter {
                    part,
                    offset: offset + i,
                    byte: data[i],
                    class: spec.class.as_str(),
                });
            }
        }
    }
    Ok(())
}

/// Reads a length prefix; `None` when it is not a number in its encoding.
fn decode_prefix(encoding: Encoding, raw: &[u8]) -> Option<usize> {
    raw.iter().try_fold(0usize, |acc, &byte| match encoding {
        Encoding::Binary => Some(acc * 256 + usize::from(byte)),
        Encoding::Bcd => {
            let (hi, lo) = (byte >> 4, byte & 0x0f);
            (hi <= 9 && lo <= 9).then(|| acc * 100 + usize::from(hi * 10 + lo))
        }
        text => {
            let c = text_char(text, byte);
            c.is_ascii_digit().then(|| acc * 10 + usize::from(c - b'0'))
        }
    })
}

fn encode_prefix(spec: &FieldSpec, len: usize, out: &mut Vec<u8>) {
    let width = spec.prefix_width();
    match spec.prefix {
        Encoding::Binary => out.extend((0..width).rev().map(|i| (len >> (8 * i)) as u8)),
        Encoding::Bcd => out.extend((0..width).rev().map(|i| {
            let pair = (len / 100usize.pow(i as u32)) % 100;
            (((pair / 10) << 4) | (pair % 10)) as u8
        })),
        text => out.extend((0..width).rev().map(|i| {
            let digit = b'0' + ((len / 10usize.pow(i as u32)) % 10) as u8;
            if text == Encoding::Ebcdic {
                ebcdic::from_latin1(digit)
            } else {
                digit
            }
        })),
    }
}

/// Logical character of a BCD nibble for a class, if the class allows it.
fn bcd_char(class: Class, nibble: u8) -> Option<u8> {
    match nibble {
        0..=9 => Some(b'0' + nibble),
        0xd if class == Class::Z => Some(b'D'),
        _ => None,
    }
}

fn unpack_bcd(
    spec: &FieldSpec,
    data: &[u8],
    len: usize,
    offset: usize,
    value: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    let part = Part::Field(spec.number);
    let pads = data.len() * 2 - len;
    let pad_nibble = (spec.pad as char).to_digit(16).unwrap_or(0) as u8;
    for (i, &byte) in data.iter().enumerate() {
        for (j, nibble) in [byte >> 4, byte & 0x0f].into_iter().enumerate() {
            let k = i * 2 + j;
            let is_pad = match spec.justify {
                Justify::Right => k < pads,
                Justify::Left => k >= len,
            };
            let bad = DecodeError::BadBcd {
                part,
                offset: offset + i,
                nibble,
            };
            if is_pad {
                if nibble != pad_nibble {
                    return Err(bad);
                }
            } else {
                value.push(bcd_char(spec.class, nibble).ok_or(bad)?);
            }
        }
    }
    Ok(())
}

fn encode_field(spec: &FieldSpec, value: &[u8], out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let part = Part::Field(spec.number);
    let len = value.len();
    if len > spec.max {
        return Err(EncodeError::TooLong {
            part,
            length: len,
            max: spec.max,
        });
    }
    let fixed = spec.prefix_width() == 0;
    if fixed && spec.class == Class::B && len != spec.max {
        return Err(EncodeError::WrongLength {
            part,
            length: len,
            expected: spec.max,
        });
    }
    check_characters(spec, value)?;
    let digits = if fixed { spec.max } else { len };
    if !fixed {
        encode_prefix(spec, digits, out);
    }
    match spec.encoding {
        Encoding::Binary => out.extend_from_slice(value),
        Encoding::Bcd => pack_bcd(spec, value, spec.wire_len(digits), out),
        encoding => {
            let start = out.len();
            let pads = std::iter::repeat_n(spec.pad, digits - len);
            if spec.justify == Justify::Right {
                out.extend(pads);
                out.extend_from_slice(value);
            } else {
                out.extend_from_slice(value);
                out.extend(pads);
            }
            if encoding == Encoding::Ebcdic {
                out[start..]
                    .iter_mut()
                    .for_each(|b| *b = ebcdic::from_latin1(*b));
            }
        }
    }
    Ok(())
}

fn check_characters(spec: &FieldSpec, value: &[u8]) -> Result<(), EncodeError> {
    let bad = match spec.encoding {
        Encoding::Bcd => value
            .iter()
            .position(|&c| !(c.is_ascii_digit() || (spec.class == Class::Z && c == b'D'))),
        _ => spec.class.first_disallowed(value),
    };
    match bad {
        Some(position) => Err(EncodeError::BadCharacter {
            part: Part::Field(spec.number),
            position,
            byte: value[position],
            class: spec.class.as_str(),
        }),
        None => Ok(()),
    }
}

fn pack_bcd(spec: &FieldSpec, value: &[u8], bytes: usize, out: &mut Vec<u8>) {
    let pads = bytes * 2 - value.len();
    let pad = (spec.pad as char).to_digit(16).unwrap_or(0) as u8;
    let nibble = |k: usize| -> u8 {
        let at = match spec.justify {
            Justify::Right => k.checked_sub(pads),
            Justify::Left => Some(k).filter(|&k| k < value.len()),
        };
        match at.map(|i| value[i]) {
            Some(b'D') => 0xd,
            Some(c) => c - b'0',
            None => pad,
        }
    };
    out.extend((0..bytes).map(|i| (nibble(2 * i) << 4) | nibble(2 * i + 1)));
}
