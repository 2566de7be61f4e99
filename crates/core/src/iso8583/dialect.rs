//! Dialects: the declarative description of one switch's ISO 8583 flavour,
//! loaded from a TOML file (`adapters/switch/<name>.toml`) and checked whole
//! before use. The file format is documented in `docs/iso8583.md`.
//!
//! A [`Dialect`] is the compiled form: every field's encoding, prefix width
//! and padding resolved once, so the codec never looks at the file again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::DialectError;

/// Highest field number a message can carry (tertiary bitmap).
pub const MAX_FIELD: u16 = 192;

/// Dialects shipped with cardhub, embedded so the binary works from any folder.
const SHIPPED: &[(&str, &str)] = &[
    (
        "base24",
        include_str!("../../../../adapters/switch/base24.toml"),
    ),
    (
        "iso87-binary",
        include_str!("../../../../adapters/switch/iso87-binary.toml"),
    ),
];

/// How the bytes of a value are represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// One ASCII byte per character.
    Ascii,
    /// One EBCDIC (code page 500) byte per character.
    Ebcdic,
    /// Packed BCD: two digits per byte.
    Bcd,
    /// Raw bytes (class `b` only; for prefixes: an unsigned big-endian integer).
    Binary,
}

/// The content class of a field: which characters it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Digits only.
    N,
    /// Letters, digits and space.
    An,
    /// Any printable character.
    Ans,
    /// Track data: digits, field separators `=` / `D`, sentinels `;` `?`.
    Z,
    /// Binary bytes.
    B,
}

impl Class {
    /// The class name as written in dialect files and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::N => "n",
            Class::An => "an",
            Class::Ans => "ans",
            Class::Z => "z",
            Class::B => "b",
        }
    }

    /// Whether a (logical, Latin-1) character may appear in a field of this class.
    pub fn allows(self, byte: u8) -> bool {
        CLASS_TABLE[self as usize][usize::from(byte)]
    }

    /// Position of the first character the class does not allow.
    pub fn first_disallowed(self, value: &[u8]) -> Option<usize> {
        let table = &CLASS_TABLE[self as usize];
        value.iter().position(|&b| !table[usize::from(b)])
    }

    const fn allows_slow(self, byte: u8) -> bool {
        match self {
            Class::N => byte.is_ascii_digit(),
            Class::An => byte.is_ascii_alphanumeric() || byte == b' ',
            Class::Ans => !(byte < 0x20 || (byte >= 0x7f && byte < 0xa0)),
            Class::Z => byte.is_ascii_digit() || matches!(byte, b'=' | b'D' | b';' | b'?'),
            Class::B => true,
        }
    }
}

/// `CLASS_TABLE[class][byte]`: whether the class allows the byte.
const CLASS_TABLE: [[bool; 256]; 5] = {
    let classes = [Class::N, Class::An, Class::Ans, Class::Z, Class::B];
    let mut table = [[false; 256]; 5];
    let mut c = 0;
    while c < 5 {
        let mut b = 0;
        while b < 256 {
            table[c][b] = classes[c].allows_slow(b as u8);
            b += 1;
        }
        c += 1;
    }
    table
};

/// Fixed length, or the number of length digits of a variable field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LengthKind {
    Fixed,
    Llvar,
    Lllvar,
    Llllvar,
}

impl LengthKind {
    /// Largest length the prefix can express (decimal digits of the kind).
    fn capacity(self) -> usize {
        match self {
            LengthKind::Fixed => 999,
            LengthKind::Llvar => 99,
            LengthKind::Lllvar => 999,
            LengthKind::Llllvar => 9999,
        }
    }

    fn digits(self) -> usize {
        match self {
            LengthKind::Fixed => 0,
            LengthKind::Llvar => 2,
            LengthKind::Lllvar => 3,
            LengthKind::Llllvar => 4,
        }
    }
}

/// Which side a short fixed-length value is aligned to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Justify {
    Left,
    Right,
}

/// How a field is hidden when shown to people or logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mask {
    /// A card number: first 6 and last 4 digits shown.
    Pan,
    /// Track data: the PAN masked, everything after it hidden.
    Track,
    /// Never shown (PIN blocks, ICC data).
    Secret,
}

/// Known header layouts, for typed access and display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderLayout {
    /// `ISO` + product indicator, release, status, originator, responder.
    Base24,
}

/// Bitmap representation on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BitmapEncoding {
    /// 16 ASCII hex characters per bitmap.
    Hex,
    /// 8 raw bytes per bitmap.
    Binary,
}

/// One field of a dialect, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    /// Data element number (2–192, not 65).
    pub number: u16,
    /// Human name, for display.
    pub name: String,
    pub class: Class,
    pub length: LengthKind,
    /// Fixed length, or maximum length, in characters (digits for BCD, bytes for binary).
    pub max: usize,
    /// Data encoding.
    pub encoding: Encoding,
    /// Length-prefix encoding (variable fields only).
    pub prefix: Encoding,
    /// Pad character for short fixed values (for BCD: the pad nibble as a hex digit).
    pub pad: u8,
    pub justify: Justify,
    pub mask: Option<Mask>,
}

impl FieldSpec {
    /// Bytes the length prefix takes on the wire.
    pub fn prefix_width(&self) -> usize {
        match (self.length, self.prefix) {
            (LengthKind::Fixed, _) => 0,
            (kind, Encoding::Ascii | Encoding::Ebcdic) => kind.digits(),
            (LengthKind::Llvar, _) => 1,
            (_, _) => 2,
        }
    }

    /// Bytes a value of `len` characters takes on the wire (without prefix).
    pub fn wire_len(&self, len: usize) -> usize {
        if self.encoding == Encoding::Bcd {
            len.div_ceil(2)
        } else {
            len
        }
    }
}

/// The message header a dialect requires in front of the MTI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSpec {
    /// Header length in bytes.
    pub length: usize,
    /// ASCII or EBCDIC.
    pub encoding: Encoding,
    /// Literal every header starts with (logical characters).
    pub starts_with: Vec<u8>,
    pub layout: Option<HeaderLayout>,
}

/// A compiled dialect: everything the codec needs, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    pub name: String,
    pub description: String,
    /// MTI encoding: ASCII, EBCDIC (4 bytes) or BCD (2 bytes).
    pub mti: Encoding,
    pub bitmap: BitmapEncoding,
    pub header: Option<HeaderSpec>,
    /// Indexed by field number; `None` where the dialect defines no field.
    fields: Vec<Option<FieldSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DialectFile {
    name: String,
    #[serde(default)]
    description: String,
    mti: MtiFile,
    bitmap: BitmapFile,
    header: Option<HeaderFile>,
    defaults: DefaultsFile,
    fields: BTreeMap<String, FieldFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MtiFile {
    encoding: Encoding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BitmapFile {
    encoding: BitmapEncoding,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderFile {
    length: usize,
    encoding: Encoding,
    #[serde(default)]
    starts_with: String,
    layout: Option<HeaderLayout>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultsFile {
    numeric: Encoding,
    text: Encoding,
    prefix: Encoding,
    binary_prefix: Option<Encoding>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: String,
    class: Class,
    length: LengthKind,
    max: usize,
    encoding: Option<Encoding>,
    prefix: Option<Encoding>,
    pad: Option<String>,
    justify: Option<Justify>,
    mask: Option<Mask>,
}

impl Dialect {
    /// Parses and checks a dialect from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    /// [`DialectError::Syntax`] for TOML or schema errors (with line and
    /// column), [`DialectError::Invalid`] listing every semantic problem.
    pub fn from_toml(origin: &str, text: &str) -> Result<Dialect, DialectError> {
        let file: DialectFile = toml::from_str(text).map_err(|e| DialectError::Syntax {
            origin: origin.to_string(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        compile(file, origin)
    }

    /// Reads a dialect file.
    ///
    /// # Errors
    /// [`DialectError::Read`] when the file cannot be read, otherwise as [`Dialect::from_toml`].
    pub fn from_file(path: &Path) -> Result<Dialect, DialectError> {
        let text = std::fs::read_to_string(path).map_err(|source| DialectError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Dialect::from_toml(&path.display().to_string(), &text)
    }

    /// Finds a dialect by name or path: a value ending in `.toml` or holding a
    /// `/` is a file; a name is looked up as `<dir>/<name>.toml`, then among
    /// the dialects shipped inside the binary.
    ///
    /// # Errors
    /// [`DialectError::Unknown`] when neither exists, or the file's own errors.
    pub fn find(name_or_path: &str, dir: &Path) -> Result<Dialect, DialectError> {
        if name_or_path.ends_with(".toml") || name_or_path.contains('/') {
            return Dialect::from_file(Path::new(name_or_path));
        }
        let path = dir.join(format!("{name_or_path}.toml"));
        if path.is_file() {
            return Dialect::from_file(&path);
        }
        Dialect::shipped(name_or_path).unwrap_or_else(|| {
            Err(DialectError::Unknown {
                name: name_or_path.to_string(),
                known: shipped_names().join(", "),
                path,
            })
        })
    }

    /// A dialect shipped with cardhub (`base24`, `iso87-binary`), if the name is one.
    pub fn shipped(name: &str) -> Option<Result<Dialect, DialectError>> {
        SHIPPED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Dialect::from_toml(&format!("shipped dialect {n}"), text))
    }

    /// The field definition for a number, if the dialect has one.
    pub fn field(&self, number: u16) -> Option<&FieldSpec> {
        self.fields
            .get(usize::from(number))
            .and_then(Option::as_ref)
    }

    /// All defined fields in number order.
    pub fn fields(&self) -> impl Iterator<Item = &FieldSpec> {
        self.fields.iter().flatten()
    }
}

/// Names of the dialects embedded in the binary.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(n, _)| *n).collect()
}

/// Default directory of dialect files, relative to the working directory.
pub fn default_dir() -> PathBuf {
    PathBuf::from("adapters/switch")
}

/// # Errors
/// [`DialectError::Invalid`] listing every problem.
fn compile(file: DialectFile, origin: &str) -> Result<Dialect, DialectError> {
    let mut problems = Vec::new();
    if !matches!(
        file.mti.encoding,
        Encoding::Ascii | Encoding::Ebcdic | Encoding::Bcd
    ) {
        problems.push("mti: encoding must be ascii, ebcdic or bcd".to_string());
    }
    let header = file.header.map(|h| compile_header(h, &mut problems));
    let mut fields: Vec<Option<FieldSpec>> = vec![None; usize::from(MAX_FIELD) + 1];
    for (key, def) in file.fields {
        match key.parse::<u16>() {
            Ok(n) if (2..=MAX_FIELD).contains(&n) && n != 65 && key == n.to_string() => {
                if let Some(spec) = compile_field(n, def, &file.defaults, &mut problems) {
                    fields[usize::from(n)] = Some(spec);
                }
            }
            _ => problems.push(format!(
                "fields.{key}: field numbers are written 2 to {MAX_FIELD} without leading zeros; 1 and 65 are the secondary and tertiary bitmaps"
            )),
        }
    }
    if problems.is_empty() {
        Ok(Dialect {
            name: file.name,
            description: file.description,
            mti: file.mti.encoding,
            bitmap: file.bitmap.encoding,
            header,
            fields,
        })
    } else {
        Err(DialectError::Invalid {
            origin: origin.to_string(),
            problems,
        })
    }
}

fn compile_header(h: HeaderFile, problems: &mut Vec<String>) -> HeaderSpec {
    if !(1..=64).contains(&h.length) {
        problems.push(format!("header: length {} must be 1 to 64", h.length));
    }
    if !matches!(h.encoding, Encoding::Ascii | Encoding::Ebcdic) {
        problems.push("header: encoding must be ascii or ebcdic".to_string());
    }
    if h.starts_with.len() > h.length || !h.starts_with.is_ascii() {
        problems.push(format!(
            "header: starts_with {:?} must be ASCII and no longer than the header",
            h.starts_with
        ));
    }
    HeaderSpec {
        length: h.length,
        encoding: h.encoding,
        starts_with: h.starts_with.into_bytes(),
        layout: h.layout,
    }
}

fn compile_field(
    number: u16,
    def: FieldFile,
    defaults: &DefaultsFile,
    problems: &mut Vec<String>,
) -> Option<FieldSpec> {
    let before = problems.len();
    let mut problem = |msg: String| problems.push(format!("field {number}: {msg}"));
    let encoding = def.encoding.unwrap_or(match def.class {
        Class::N | Class::Z => defaults.numeric,
        Class::An | Class::Ans => defaults.text,
        Class::B => Encoding::Binary,
    });
    let prefix = def.prefix.unwrap_or(match def.class {
        Class::B => defaults.binary_prefix.unwrap_or(defaults.prefix),
        _ => defaults.prefix,
    });
    match (def.class, encoding) {
        (Class::B, Encoding::Binary) => {}
        (Class::B, _) | (_, Encoding::Binary) => {
            problem("class b and encoding binary go together".to_string())
        }
        (Class::An | Class::Ans, Encoding::Bcd) => {
            problem("encoding bcd needs class n or z".to_string())
        }
        _ => {}
    }
    if def.max == 0 || def.max > def.length.capacity() {
        problem(format!(
            "max {} must be 1 to {} for length {:?}",
            def.max,
            def.length.capacity(),
            def.length
        ));
    }
    if def.length == LengthKind::Fixed && def.prefix.is_some() {
        problem("a fixed-length field has no prefix".to_string());
    }
    let justify = def.justify.unwrap_or(match def.class {
        Class::N => Justify::Right,
        _ => Justify::Left,
    });
    let pad = match def.pad.as_deref() {
        None if encoding == Encoding::Bcd && justify == Justify::Left => b'F',
        None if def.class == Class::N || encoding == Encoding::Bcd => b'0',
        None if def.class == Class::B => 0,
        None => b' ',
        Some(p) if p.len() == 1 && p.is_ascii() => p.as_bytes()[0],
        Some(p) => {
            problem(format!("pad {p:?} must be a single ASCII character"));
            b' '
        }
    };
    if encoding == Encoding::Bcd && !pad.is_ascii_hexdigit() {
        problem(format!(
            "pad {:?} of a BCD field must be a hex digit",
            pad as char
        ));
    }
    // A text pad must itself be allowed, or padded values would not decode.
    if def.length == LengthKind::Fixed
        && !matches!(encoding, Encoding::Bcd | Encoding::Binary)
        && !def.class.allows(pad)
    {
        problem(format!(
            "pad {:?} is not allowed in class {}",
            pad as char,
            def.class.as_str()
        ));
    }
    if problems.len() > before {
        return None;
    }
    Some(FieldSpec {
        number,
        name: def.name,
        class: def.class,
        length: def.length,
        max: def.max,
        encoding,
        prefix,
        pad: if encoding == Encoding::Bcd {
            pad.to_ascii_uppercase()
        } else {
            pad
        },
        justify,
        mask: def.mask,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_dialects_load() {
        for name in shipped_names() {
            let d = Dialect::shipped(name).unwrap().unwrap();
            assert_eq!(d.name, name);
            assert!(d.field(2).is_some(), "{name} defines the PAN");
            assert!(d.field(65).is_none());
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let text = include_str!("../../../../adapters/switch/base24.toml").replace(
            "[mti]\nencoding = \"ascii\"",
            "[mti]\nencoding = \"ascii\"\ncolour = \"blue\"",
        );
        let err = Dialect::from_toml("t", &text).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let text = r#"
            name = "broken"
            [mti]
            encoding = "binary"
            [bitmap]
            encoding = "hex"
            [defaults]
            numeric = "ascii"
            text = "ascii"
            prefix = "ascii"
            [fields]
            1 = { name = "x", class = "n", length = "fixed", max = 1 }
            2 = { name = "PAN", class = "an", length = "llvar", max = 100, encoding = "bcd" }
            52 = { name = "PIN", class = "b", length = "fixed", max = 8, encoding = "ascii" }
            035 = { name = "x", class = "n", length = "fixed", max = 1 }
            36 = { name = "track", class = "z", length = "fixed", max = 10 }
        "#;
        let DialectError::Invalid { problems, .. } = Dialect::from_toml("t", text).unwrap_err()
        else {
            panic!("expected Invalid");
        };
        let all = problems.join("\n");
        assert!(all.contains("mti: encoding"), "{all}");
        assert!(all.contains("fields.1"), "{all}");
        assert!(
            all.contains("field 2: encoding bcd needs class n or z"),
            "{all}"
        );
        assert!(all.contains("field 2: max 100 must be 1 to 99"), "{all}");
        assert!(all.contains("field 52: class b"), "{all}");
        assert!(all.contains("fields.035"), "{all}");
        assert!(
            all.contains("field 36: pad ' ' is not allowed in class z"),
            "{all}"
        );
    }

    #[test]
    fn bcd_defaults_pad_by_justification() {
        let d = Dialect::shipped("iso87-binary").unwrap().unwrap();
        assert_eq!(d.field(2).unwrap().pad, b'0');
        assert_eq!(d.field(35).unwrap().pad, b'F');
        assert_eq!(d.field(2).unwrap().prefix_width(), 1);
        assert_eq!(d.field(55).unwrap().prefix, Encoding::Binary);
    }
}
