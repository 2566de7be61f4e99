//! Tests of `fields`.
use super::*;
use crate::iso8583::Message;
use crate::iso8583::ValueError;

fn msg(fields: &[(u16, &str)]) -> Message {
    let mut m = Message::new("0100".parse().unwrap());
    for (n, v) in fields {
        m.set(*n, *v);
    }
    m
}

#[test]
fn reads_common_fields() {
    let m = msg(&[
        (2, "4761739001010010"),
        (3, "013000"),
        (4, "000000012550"),
        (7, "1122030201"),
        (11, "000123"),
        (14, "2812"),
        (18, "5411"),
        (35, "4761739001010010=28121011234567"),
        (49, "978"),
        (54, "1002978C0000000500002001978D000000001000"),
        (70, "301"),
    ]);
    assert_eq!(m.pan().unwrap().last4(), "0010");
    assert!(m.pan().unwrap().luhn_ok());
    assert_eq!(
        m.processing_code().unwrap(),
        ProcessingCode {
            transaction_type: 1,
            from_account: 30,
            to_account: 0
        }
    );
    assert_eq!(m.amount().unwrap().minor_units(), 12550);
    assert_eq!(m.transmission_time().unwrap().second, 1);
    assert_eq!(m.stan().unwrap().value(), 123);
    assert_eq!(
        m.expiry().unwrap(),
        Expiry {
            year: 28,
            month: 12
        }
    );
    assert_eq!(m.merchant_type().unwrap(), 5411);
    let t2 = m.track2().unwrap();
    assert_eq!(
        t2.expiry,
        Some(Expiry {
            year: 28,
            month: 12
        })
    );
    assert_eq!(t2.service_code.as_deref(), Some("101"));
    assert_eq!(m.currency().unwrap(), 978);
    let amounts = m.additional_amounts().unwrap();
    assert_eq!(amounts.len(), 2);
    assert_eq!(amounts[0].sign, Sign::Credit);
    assert_eq!(amounts[0].amount.minor_units(), 50000);
    assert_eq!(amounts[1].amount_type, "01");
    assert_eq!(m.network_management_code().unwrap(), 301);
}

#[test]
fn expiry_is_yymm() {
    let e = Expiry::parse("2812").unwrap();
    assert_eq!((e.year, e.month), (28, 12));
    assert_eq!(e.to_string(), "2812");
    assert_eq!(Expiry::parse("3001").unwrap().to_string(), "3001");
    for bad in ["", "281", "28123", "2813", "2800", "28-1", "２８１２"] {
        assert!(Expiry::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn base24_header() {
    let h = Base24Header::parse(b"ISO026000070").unwrap();
    assert_eq!(h.product, Base24Product::Pos);
    assert_eq!(h.release, "60");
    assert_eq!(h.status, "000");
    assert_eq!((h.originator, h.responder), ('7', '0'));
    assert_eq!(
        Base24Header::parse(b"ISO016000070").unwrap().product,
        Base24Product::Atm
    );
    assert!(Base24Header::parse(b"XSO026000070").is_err());
    assert!(Base24Header::parse(b"ISO02600007").is_err());
}

#[test]
fn additional_amounts_round_trip() {
    let mut m = msg(&[]);
    let entries = vec![AdditionalAmount {
        account_type: "00".into(),
        amount_type: "02".into(),
        currency: 752,
        sign: Sign::Debit,
        amount: Amount::new(42).unwrap(),
    }];
    m.set_additional_amounts(&entries);
    assert_eq!(m.additional_amounts().unwrap(), entries);
}

#[test]
fn original_data_and_replacement_amounts() {
    let m = msg(&[
        (90, "010000012311220302010000000123400000000000"),
        (95, "000000005000000000005000C00000000C00000000"),
    ]);
    let o = m.original_data().unwrap();
    assert_eq!(o.mti.as_str(), "0100");
    assert_eq!(o.stan.value(), 123);
    assert_eq!(o.transmission_time, "1122030201");
    assert_eq!(o.acquirer, "00000001234");
    let r = m.replacement_amounts().unwrap();
    assert_eq!(r.transaction.minor_units(), 5000);
    assert_eq!(r.transaction_fee, "C00000000");
}

#[test]
fn errors_name_the_field() {
    let m = msg(&[(4, "00000001x550"), (14, "2813"), (3, "12")]);
    assert_eq!(m.pan(), Err(FieldError::Missing { field: 2 }));
    assert!(matches!(
        m.amount(),
        Err(FieldError::Invalid { field: 4, .. })
    ));
    assert_eq!(
        m.expiry(),
        Err(FieldError::Value {
            field: 14,
            source: ValueError::ExpiryMonth { month: 13 }
        })
    );
    assert!(matches!(
        m.processing_code(),
        Err(FieldError::Invalid { field: 3, .. })
    ));
    assert!(Pan::new("1234").is_err());
    assert_eq!(
        format!("{:?}", Pan::new("4761739001010010").unwrap()),
        "Pan(476173******0010)"
    );
}
