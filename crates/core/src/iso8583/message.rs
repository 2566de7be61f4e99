//! The decoded message: MTI, optional header and the data elements as their
//! logical values — characters (Latin-1 bytes) for text classes, raw bytes
//! for binary fields. Bitmaps are not stored: the codec derives them from the
//! fields present.
//!
//! `Debug` masks card data by field number (2, 34, 35, 36, 45, 52, 55), so a
//! message can be logged without leaking a PAN, track or PIN block.

use std::fmt;
use std::str::FromStr;

use super::error::{FieldError, ValueError};
use crate::mask;

/// Fields whose content is card data, hidden by `Debug` whatever the dialect.
const SENSITIVE_FIELDS: &[u16] = &[2, 34, 35, 36, 45, 52, 55];

/// A message type indicator: four decimal digits (version, class, function, origin).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mti([u8; 4]);

impl Mti {
    /// 0800, network management request.
    pub const NETWORK_REQUEST: Mti = Mti(*b"0800");

    /// Builds an MTI from four ASCII digits.
    ///
    /// # Errors
    /// The reason, when the bytes are not four digits.
    pub fn from_digits(digits: [u8; 4]) -> Result<Mti, ValueError> {
        if digits.iter().all(u8::is_ascii_digit) {
            Ok(Mti(digits))
        } else {
            Err(ValueError::Mti {
                mti: String::from_utf8_lossy(&digits).into_owned(),
            })
        }
    }

    /// The four digits as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }

    /// The four ASCII digits.
    pub fn digits(&self) -> [u8; 4] {
        self.0
    }

    /// Message class (second digit): 1 authorization, 2 financial, 4 reversal, 8 network.
    pub fn class(&self) -> u8 {
        self.0[1] - b'0'
    }

    /// Message function (third digit): 0 request, 1 response, 2 advice, 3 advice response.
    pub fn function(&self) -> u8 {
        self.0[2] - b'0'
    }

    /// Whether this is a repeat (fourth digit 1 or 3: acquirer or issuer repeat).
    pub fn is_repeat(&self) -> bool {
        matches!(self.0[3], b'1' | b'3')
    }

    /// Whether this is a request or advice (function 0 or 2), i.e. it expects an answer.
    pub fn expects_response(&self) -> bool {
        matches!(self.function(), 0 | 2)
    }

    /// The response MTI for a request or advice: function + 1, origin reset
    /// from repeat to original (0101 → 0110, 0420 → 0430).
    pub fn response(&self) -> Mti {
        let mut d = self.without_repeat().0;
        if matches!(d[2], b'0' | b'2' | b'4') {
            d[2] += 1;
        }
        Mti(d)
    }

    /// The original (non-repeat) form of a repeat MTI (0101 → 0100).
    pub fn without_repeat(&self) -> Mti {
        let mut d = self.0;
        d[3] = match d[3] {
            b'1' => b'0',
            b'3' => b'2',
            other => other,
        };
        Mti(d)
    }
}

impl FromStr for Mti {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Mti, ValueError> {
        let digits: [u8; 4] = s
            .as_bytes()
            .try_into()
            .map_err(|_| ValueError::Mti { mti: s.to_owned() })?;
        Mti::from_digits(digits)
    }
}

impl fmt::Display for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Mti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mti({})", self.as_str())
    }
}

/// One ISO 8583 message.
///
/// Field values live in one byte buffer with an index of ranges, so decoding
/// a message costs two allocations however many fields it has. Replacing a
/// field appends its new value; the old bytes stay until the message drops.
#[derive(Clone)]
pub struct Message {
    mti: Mti,
    header: Option<Vec<u8>>,
    /// Sorted by field number, no duplicates; ranges into `data`.
    index: Vec<Entry>,
    data: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    number: u16,
    start: u32,
    len: u32,
}

impl Message {
    /// An empty message of a type.
    pub fn new(mti: Mti) -> Message {
        Message::with_capacity(mti, 24, 256)
    }

    /// An empty message with room for `fields` fields of `bytes` bytes in all.
    pub(crate) fn with_capacity(mti: Mti, fields: usize, bytes: usize) -> Message {
        Message {
            mti,
            header: None,
            index: Vec::with_capacity(fields),
            data: Vec::with_capacity(bytes),
        }
    }

    /// Makes room for more fields and value bytes.
    pub(crate) fn reserve(&mut self, fields: usize, bytes: usize) {
        self.index.reserve(fields);
        self.data.reserve(bytes);
    }

    pub fn mti(&self) -> Mti {
        self.mti
    }

    pub fn set_mti(&mut self, mti: Mti) {
        self.mti = mti;
    }

    /// The header's logical characters, if the message has one.
    pub fn header(&self) -> Option<&[u8]> {
        self.header.as_deref()
    }

    pub fn set_header(&mut self, header: Option<Vec<u8>>) {
        self.header = header;
    }

    /// A field's logical value.
    pub fn get(&self, field: u16) -> Option<&[u8]> {
        self.position(field).ok().map(|i| self.value(self.index[i]))
    }

    /// Whether the field is present.
    pub fn has(&self, field: u16) -> bool {
        self.position(field).is_ok()
    }

    /// Sets (or replaces) a field's logical value.
    pub fn set(&mut self, field: u16, value: impl AsRef<[u8]>) {
        let entry = self.append(field, value.as_ref());
        match self.position(field) {
            Ok(i) => self.index[i] = entry,
            Err(i) => self.index.insert(i, entry),
        }
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, field: u16) -> Option<Vec<u8>> {
        let i = self.position(field).ok()?;
        let entry = self.index.remove(i);
        Some(self.value(entry).to_vec())
    }

    /// All fields in number order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = (u16, &[u8])> {
        self.index.iter().map(|e| (e.number, self.value(*e)))
    }

    /// A text field as a string (Latin-1 decoded).
    ///
    /// # Errors
    /// [`FieldError::Missing`] when absent.
    pub fn text(&self, field: u16) -> Result<String, FieldError> {
        self.get(field)
            .map(|v| v.iter().map(|&b| char::from(b)).collect())
            .ok_or(FieldError::Missing { field })
    }

    /// Decoder fast path: a field known to sort after every field present,
    /// whose value the closure appends to the buffer.
    pub(crate) fn push_with<E>(
        &mut self,
        field: u16,
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        debug_assert!(self.index.last().is_none_or(|e| e.number < field));
        let start = self.data.len();
        write(&mut self.data)?;
        self.index.push(Entry {
            number: field,
            start: start as u32,
            len: (self.data.len() - start) as u32,
        });
        Ok(())
    }

    fn append(&mut self, field: u16, value: &[u8]) -> Entry {
        let start = self.data.len();
        self.data.extend_from_slice(value);
        Entry {
            number: field,
            start: start as u32,
            len: value.len() as u32,
        }
    }

    fn value(&self, e: Entry) -> &[u8] {
        &self.data[e.start as usize..(e.start + e.len) as usize]
    }

    fn position(&self, field: u16) -> Result<usize, usize> {
        self.index.binary_search_by_key(&field, |e| e.number)
    }
}

impl PartialEq for Message {
    fn eq(&self, other: &Message) -> bool {
        self.mti == other.mti && self.header == other.header && self.fields().eq(other.fields())
    }
}

impl Eq for Message {}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Message");
        s.field("mti", &self.mti);
        if let Some(h) = &self.header {
            s.field("header", &String::from_utf8_lossy(h));
        }
        let fields: Vec<String> = self
            .fields()
            .map(|(n, v)| {
                let shown = match n {
                    2 | 34 => mask::pan_bytes(v),
                    35 | 36 | 45 => mask::track_bytes(v),
                    n if SENSITIVE_FIELDS.contains(&n) => mask::SECRET.to_string(),
                    _ => String::from_utf8_lossy(v).into_owned(),
                };
                format!("{n}={shown}")
            })
            .collect();
        s.field("fields", &fields);
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_mti() {
        for (req, resp) in [
            ("0100", "0110"),
            ("0101", "0110"),
            ("0120", "0130"),
            ("0121", "0130"),
            ("0200", "0210"),
            ("0420", "0430"),
            ("0421", "0430"),
            ("0800", "0810"),
        ] {
            assert_eq!(req.parse::<Mti>().unwrap().response().as_str(), resp);
        }
        assert!("0101".parse::<Mti>().unwrap().is_repeat());
        assert!(!"0100".parse::<Mti>().unwrap().is_repeat());
        assert!("01a0".parse::<Mti>().is_err());
        assert!("010".parse::<Mti>().is_err());
    }

    #[test]
    fn fields_stay_sorted_and_replace() {
        let mut m = Message::new("0100".parse().unwrap());
        m.set(41, "T1");
        m.set(3, "000000");
        m.set(41, "T2");
        let order: Vec<u16> = m.fields().map(|(n, _)| n).collect();
        assert_eq!(order, vec![3, 41]);
        assert_eq!(m.get(41), Some(&b"T2"[..]));
        assert_eq!(m.remove(3), Some(b"000000".to_vec()));
        assert!(!m.has(3));
    }

    #[test]
    fn debug_masks_card_data() {
        let mut m = Message::new("0100".parse().unwrap());
        m.set(2, "4761739001010010");
        m.set(35, "4761739001010010=25121011234567");
        m.set(52, "0123456789ABCDEF");
        let shown = format!("{m:?}");
        assert!(!shown.contains("4761739001010010"), "{shown}");
        assert!(!shown.contains("0123456789ABCDEF"), "{shown}");
        assert!(shown.contains("476173******0010"), "{shown}");
    }
}
