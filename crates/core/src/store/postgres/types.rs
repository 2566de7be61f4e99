//! Values across PostgreSQL's binary format: our parameters bound by the
//! type PostgreSQL inferred for each placeholder, and columns read back as
//! the store's storage classes (NULL, 64-bit integer, text, bytes).
//!
//! PostgreSQL types a placeholder from its use (`amount = $1` is `bigint`),
//! and tokio-postgres binds a Rust value only to the types it names; the
//! modules bind SQLite's storage classes. So the conversion is ours, by the
//! inferred type: an integer into `int8`/`int4`/`int2` (range-checked) or
//! `boolean` (0 or 1 only), text into the text types, bytes into `bytea`.
//! Anything else is a precise [`Error::Parameter`] or [`Error::Column`],
//! never a silent cast.

use std::error::Error as StdError;
use std::fmt;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{FromSql, IsNull, ToSql as PgToSql, Type, to_sql_checked};

use crate::store::sql::{Error, ValueRef};

/// One of our values bound to placeholder `index` (one-based).
#[derive(Debug)]
pub(super) struct Param<'a> {
    /// The value, already converted by the module's `ToSql`.
    pub(super) value: ValueRef<'a>,
    /// One-based, for the error.
    pub(super) index: usize,
}

/// Why a parameter cannot be bound to its placeholder's type; found again
/// under tokio-postgres' error to become [`Error::Parameter`].
#[derive(Debug)]
pub(super) struct ParamError {
    pub(super) index: usize,
    pub(super) reason: String,
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter {}: {}", self.index, self.reason)
    }
}

impl StdError for ParamError {}

impl PgToSql for Param<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        encode(ty, self.value, out).map_err(|reason| {
            Box::new(ParamError {
                index: self.index,
                reason,
            }) as Box<dyn StdError + Sync + Send>
        })
    }

    /// Every type: `encode` refuses the ones it cannot fill, in words.
    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Writes `value` in the binary format of `ty`.
fn encode(ty: &Type, value: ValueRef<'_>, out: &mut BytesMut) -> Result<IsNull, String> {
    let narrow = |i: i64, what: &str| format!("{i} does not fit the placeholder's type {what}");
    match (value, ty) {
        (ValueRef::Null, _) => return Ok(IsNull::Yes),
        (ValueRef::Integer(i), &Type::INT8) => out.put_i64(i),
        (ValueRef::Integer(i), &Type::INT4) => {
            out.put_i32(i32::try_from(i).map_err(|_| narrow(i, "integer"))?);
        }
        (ValueRef::Integer(i), &Type::INT2) => {
            out.put_i16(i16::try_from(i).map_err(|_| narrow(i, "smallint"))?);
        }
        (ValueRef::Integer(i @ (0 | 1)), &Type::BOOL) => out.put_u8(u8::from(i == 1)),
        (ValueRef::Integer(i), &Type::BOOL) => {
            return Err(format!(
                "{i} bound to a boolean placeholder (only 0 or 1 are)"
            ));
        }
        (ValueRef::Text(s), &Type::TEXT | &Type::VARCHAR | &Type::BPCHAR | &Type::UNKNOWN) => {
            out.put_slice(s.as_bytes());
        }
        (ValueRef::Text(s), &Type::NAME) => {
            // A name is at most 63 bytes; the server would cut it silently.
            if s.len() > 63 {
                return Err(format!(
                    "{} bytes of text bound to a name (at most 63)",
                    s.len()
                ));
            }
            out.put_slice(s.as_bytes());
        }
        (ValueRef::Blob(b), &Type::BYTEA) => out.put_slice(b),
        (value, ty) => {
            return Err(format!(
                "{} cannot be bound to a placeholder of type {ty}",
                value.kind()
            ));
        }
    }
    Ok(IsNull::No)
}

/// A column's bytes as the server sent them, whatever its type (`None` for
/// NULL through `Option`).
struct Raw<'a>(&'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Column `column` (zero-based) of `row` as one of the store's values.
pub(in crate::store) fn column(
    row: &tokio_postgres::Row,
    column: usize,
) -> Result<ValueRef<'_>, Error> {
    let Some(ty) = row.columns().get(column).map(tokio_postgres::Column::type_) else {
        return Err(Error::bad_column(
            column,
            format!("no such column (the row has {})", row.len()),
        ));
    };
    let raw = row
        .try_get::<_, Option<Raw<'_>>>(column)
        .map_err(|e| Error::bad_column(column, e))?;
    let Some(Raw(raw)) = raw else {
        return Ok(ValueRef::Null);
    };
    decode(ty, raw).map_err(|reason| Error::bad_column(column, reason))
}

/// A non-NULL value of type `ty` in the binary format.
fn decode<'a>(ty: &Type, raw: &'a [u8]) -> Result<ValueRef<'a>, String> {
    let wrong_length = || format!("{} bytes for a value of type {ty}", raw.len());
    Ok(match *ty {
        Type::INT8 => ValueRef::Integer(i64::from_be_bytes(
            raw.try_into().map_err(|_| wrong_length())?,
        )),
        Type::INT4 => ValueRef::Integer(i64::from(i32::from_be_bytes(
            raw.try_into().map_err(|_| wrong_length())?,
        ))),
        Type::INT2 => ValueRef::Integer(i64::from(i16::from_be_bytes(
            raw.try_into().map_err(|_| wrong_length())?,
        ))),
        Type::BOOL => match raw {
            [b] => ValueRef::Integer(i64::from(*b != 0)),
            _ => return Err(wrong_length()),
        },
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            ValueRef::Text(std::str::from_utf8(raw).map_err(|e| format!("text is not UTF-8: {e}"))?)
        }
        Type::BYTEA => ValueRef::Blob(raw),
        Type::NUMERIC => ValueRef::Integer(numeric_to_i64(raw)?),
        _ => {
            return Err(format!(
                "type {ty} is not one the store reads (bigint, integer, smallint, boolean, text, bytea, integral numeric)"
            ));
        }
    })
}

/// NUMERIC's sign word for a positive, negative and not-a-number value.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// A binary NUMERIC (what `SUM(bigint)` gives) as an `i64`, when it is a
/// whole number in range: header `ndigits`, `weight`, `sign`, `dscale`
/// (16 bits each, big-endian), then `ndigits` base-10000 digits, the first
/// worth `10000^weight`.
///
/// # Errors
/// A reason for a fraction, NaN, an infinity, a value past `i64` or a
/// malformed value.
pub(super) fn numeric_to_i64(raw: &[u8]) -> Result<i64, String> {
    let word = |i: usize| -> Result<u16, String> {
        raw.get(2 * i..2 * i + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| format!("a numeric of {} bytes is cut short", raw.len()))
    };
    let ndigits = usize::from(word(0)?);
    let weight = i32::from(word(1)?.cast_signed());
    let sign = word(2)?;
    if raw.len() != 8 + 2 * ndigits {
        return Err(format!(
            "a numeric of {ndigits} digits in {} bytes",
            raw.len()
        ));
    }
    let negative = match sign {
        NUMERIC_POS => false,
        NUMERIC_NEG => true,
        _ => return Err("the numeric is NaN or infinite".into()),
    };
    // Accumulate as a negative number: i64::MIN has no positive twin.
    let mut value: i128 = 0;
    for i in 0..ndigits {
        let digit = word(4 + i)?;
        if digit >= 10_000 {
            return Err(format!("the numeric digit {digit} is past 9999"));
        }
        let exponent = weight - i32::try_from(i).map_err(|_| "too many numeric digits")?;
        if exponent < 0 {
            if digit != 0 {
                return Err("the numeric has a fraction; the store reads whole numbers".into());
            }
            continue;
        }
        let scale = 10_000_i128
            .checked_pow(exponent.cast_unsigned())
            .ok_or("the numeric does not fit a 64-bit integer")?;
        value = i128::from(digit)
            .checked_mul(scale)
            .and_then(|d| value.checked_sub(d))
            .ok_or("the numeric does not fit a 64-bit integer")?;
    }
    let value = if negative {
        Some(value)
    } else {
        value.checked_neg()
    };
    value
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| "the numeric does not fit a 64-bit integer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary NUMERIC of `digits` (base 10000), `weight` and `sign`.
    fn numeric(weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        let ndigits = u16::try_from(digits.len()).unwrap();
        for word in [ndigits, weight.cast_unsigned(), sign, dscale] {
            out.extend_from_slice(&word.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn whole_numerics_are_integers() {
        assert_eq!(numeric_to_i64(&numeric(0, NUMERIC_POS, 0, &[])), Ok(0));
        assert_eq!(numeric_to_i64(&numeric(0, NUMERIC_POS, 0, &[42])), Ok(42));
        assert_eq!(
            numeric_to_i64(&numeric(1, NUMERIC_NEG, 0, &[12, 3456])),
            Ok(-123_456)
        );
        // 1e8: trailing zero digits are left out, the weight says where.
        assert_eq!(
            numeric_to_i64(&numeric(2, NUMERIC_POS, 0, &[1])),
            Ok(100_000_000)
        );
        // 5.00 is whole although its display scale is 2.
        assert_eq!(numeric_to_i64(&numeric(0, NUMERIC_POS, 2, &[5])), Ok(5));
        // i64::MAX = 922 3372 0368 5477 5807, i64::MIN one further.
        let max = numeric(4, NUMERIC_POS, 0, &[922, 3372, 368, 5477, 5807]);
        assert_eq!(numeric_to_i64(&max), Ok(i64::MAX));
        let min = numeric(4, NUMERIC_NEG, 0, &[922, 3372, 368, 5477, 5808]);
        assert_eq!(numeric_to_i64(&min), Ok(i64::MIN));
    }

    #[test]
    fn fractions_overflow_and_nan_are_refused() {
        let half = numeric(-1, NUMERIC_POS, 1, &[5000]);
        assert!(numeric_to_i64(&half).unwrap_err().contains("fraction"));
        let past = numeric(4, NUMERIC_POS, 0, &[922, 3372, 368, 5477, 5808]);
        assert!(numeric_to_i64(&past).unwrap_err().contains("64-bit"));
        let huge = numeric(40, NUMERIC_POS, 0, &[1]);
        assert!(numeric_to_i64(&huge).unwrap_err().contains("64-bit"));
        let nan = numeric(0, 0xC000, 0, &[]);
        assert!(numeric_to_i64(&nan).unwrap_err().contains("NaN"));
        assert!(numeric_to_i64(&[0, 1]).unwrap_err().contains("short"));
        let bad_len = &numeric(0, NUMERIC_POS, 0, &[1])[..9];
        assert!(numeric_to_i64(bad_len).is_err());
        let bad_digit = numeric(0, NUMERIC_POS, 0, &[10_000]);
        assert!(numeric_to_i64(&bad_digit).unwrap_err().contains("9999"));
    }

    #[test]
    fn parameters_follow_the_placeholder_type() {
        let mut out = BytesMut::new();
        assert!(matches!(
            encode(&Type::INT4, ValueRef::Integer(7), &mut out),
            Ok(IsNull::No)
        ));
        assert_eq!(&out[..], &7_i32.to_be_bytes());
        let refused = |ty: &Type, value| match encode(ty, value, &mut BytesMut::new()) {
            Err(reason) => reason,
            Ok(_) => panic!("{value:?} bound to {ty}"),
        };
        let too_big = refused(&Type::INT2, ValueRef::Integer(70_000));
        assert!(too_big.contains("smallint"), "{too_big}");
        let not_bool = refused(&Type::BOOL, ValueRef::Integer(2));
        assert!(not_bool.contains("boolean"), "{not_bool}");
        let mismatch = refused(&Type::INT8, ValueRef::Text("978"));
        assert_eq!(
            mismatch,
            "text cannot be bound to a placeholder of type int8"
        );
        assert!(matches!(
            encode(&Type::NUMERIC, ValueRef::Null, &mut out),
            Ok(IsNull::Yes)
        ));
    }
}
