//! A message as a plain field list, for people and tools:
//! `{"mti": "0100", "header": "ISO026000070", "fields": {"2": "…", "52": "0123…"}}`.
//!
//! Text fields are their characters; binary fields are uppercase hex. This is
//! the format of the cross-check fixtures (`fixtures/iso8583/`), of
//! `cardhub iso encode` input and of `cardhub iso decode --json` output.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dialect::{Class, Dialect, Mask};
use super::error::FieldListError;
use super::message::{Message, Mti};
use crate::mask;

/// A message as field number → text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldList {
    pub mti: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    pub fields: BTreeMap<u16, String>,
}

impl FieldList {
    /// Parses a field list from JSON.
    ///
    /// # Errors
    /// [`FieldListError::Syntax`] with line and column.
    pub fn from_json(text: &str) -> Result<FieldList, FieldListError> {
        serde_json::from_str(text).map_err(|e| FieldListError::Syntax(e.to_string()))
    }

    /// Parses a field list from TOML (`mti = "0100"`, `[fields]`, `2 = "…"`).
    ///
    /// # Errors
    /// [`FieldListError::Syntax`] with line and column.
    pub fn from_toml(text: &str) -> Result<FieldList, FieldListError> {
        // TOML keys are strings; going through a JSON value lets serde read them as numbers.
        let value: serde_json::Value =
            toml::from_str(text).map_err(|e| FieldListError::Syntax(e.to_string()))?;
        serde_json::from_value(value).map_err(|e| FieldListError::Syntax(e.to_string()))
    }

    /// The field list of a message; with `masked`, card data is hidden as the
    /// dialect's `mask` settings say.
    pub fn from_message(msg: &Message, dialect: &Dialect, masked: bool) -> FieldList {
        let fields = msg
            .fields()
            .map(|(n, v)| {
                let spec = dialect.field(n);
                let text = match spec.map(|s| (s.class, s.mask)) {
                    Some((_, Some(m))) if masked => match m {
                        Mask::Pan => mask::pan_bytes(v),
                        Mask::Track => mask::track_bytes(v),
                        Mask::Secret => mask::SECRET.to_string(),
                    },
                    Some((Class::B, _)) | None => hex::encode_upper(v),
                    Some(_) => latin1(v),
                };
                (n, text)
            })
            .collect();
        FieldList {
            mti: msg.mti().to_string(),
            header: msg.header().map(latin1),
            fields,
        }
    }

    /// Builds the message this list describes in a dialect.
    ///
    /// # Errors
    /// A bad MTI, an undefined field, bad hex in a binary field, or a
    /// character outside Latin-1. Lengths and classes are checked by encoding.
    pub fn to_message(&self, dialect: &Dialect) -> Result<Message, FieldListError> {
        let mti: Mti = self.mti.parse().map_err(FieldListError::BadMti)?;
        let mut msg = Message::new(mti);
        if let Some(h) = &self.header {
            msg.set_header(Some(from_latin1(0, h)?));
        }
        for (&field, text) in &self.fields {
            let spec = dialect
                .field(field)
                .ok_or_else(|| FieldListError::UndefinedField {
                    field,
                    dialect: dialect.name.clone(),
                })?;
            let value = if spec.class == Class::B {
                hex::decode(text).map_err(|_| FieldListError::BadHex {
                    field,
                    value: text.clone(),
                })?
            } else {
                from_latin1(field, text)?
            };
            msg.set(field, value);
        }
        Ok(msg)
    }
}

fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

fn from_latin1(field: u16, text: &str) -> Result<Vec<u8>, FieldListError> {
    text.chars()
        .map(|c| {
            u8::try_from(c).map_err(|_| FieldListError::NotLatin1 {
                field,
                character: c,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base24() -> Dialect {
        Dialect::shipped("base24").unwrap().unwrap()
    }

    #[test]
    fn json_and_toml_give_the_same_message() {
        let json = r#"{"mti":"0800","header":"ISO006000070","fields":{"7":"1122030201","11":"000001","70":"001"}}"#;
        let toml = "mti = \"0800\"\nheader = \"ISO006000070\"\n[fields]\n7 = \"1122030201\"\n11 = \"000001\"\n70 = \"001\"\n";
        let a = FieldList::from_json(json).unwrap();
        let b = FieldList::from_toml(toml).unwrap();
        assert_eq!(a, b);
        let m = a.to_message(&base24()).unwrap();
        assert_eq!(m.network_management_code().unwrap(), 1);
    }

    #[test]
    fn masks_as_the_dialect_says() {
        let mut m = Message::new("0100".parse().unwrap());
        m.set(2, "4761739001010010");
        m.set(52, "0123456789ABCDEF");
        m.set(4, "000000001000");
        let list = FieldList::from_message(&m, &base24(), true);
        assert_eq!(list.fields[&2], "476173******0010");
        assert_eq!(list.fields[&52], mask::SECRET);
        assert_eq!(list.fields[&4], "000000001000");
        let clear = FieldList::from_message(&m, &base24(), false);
        assert_eq!(clear.to_message(&base24()).unwrap(), m);
    }

    #[test]
    fn errors_name_the_field() {
        let d = Dialect::shipped("iso87-binary").unwrap().unwrap();
        let bad_hex = FieldList::from_json(r#"{"mti":"0100","fields":{"52":"XYZ"}}"#).unwrap();
        assert!(matches!(
            bad_hex.to_message(&d),
            Err(FieldListError::BadHex { field: 52, .. })
        ));
        let undefined = FieldList::from_json(r#"{"mti":"0100","fields":{"160":"1"}}"#).unwrap();
        assert!(matches!(
            undefined.to_message(&d),
            Err(FieldListError::UndefinedField { field: 160, .. })
        ));
        let bad_mti = FieldList::from_json(r#"{"mti":"01X0","fields":{}}"#).unwrap();
        assert!(matches!(
            bad_mti.to_message(&d),
            Err(FieldListError::BadMti(_))
        ));
        assert!(matches!(
            FieldList::from_json(r#"{"mti":"0100","fields":{},"extra":1}"#),
            Err(FieldListError::Syntax(_))
        ));
    }
}
