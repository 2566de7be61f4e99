//! The [`Message`] accessors of the common data elements: each reads or
//! writes one field as its typed value (see `fields`), with
//! [`FieldError::Missing`] for an absent field and [`FieldError::Invalid`]
//! for content that does not fit.

use super::error::FieldError;
use super::fields::{
    AdditionalAmount, Amount, Expiry, LocalDate, LocalTime, OriginalData, Pan, ProcessingCode,
    ReplacementAmounts, ResponseCode, Sign, Stan, Track2, TransmissionTime, de, digits, numbers,
    parse_additional_amounts, parse_amount, parse_expiry, parse_original_data,
    parse_replacement_amounts, parse_track2,
};
use super::message::Message;

impl Message {
    fn required(&self, field: u16) -> Result<&[u8], FieldError> {
        self.get(field).ok_or(FieldError::Missing { field })
    }

    /// DE 2.
    ///
    /// # Errors
    /// Missing, or not 12–19 digits.
    pub fn pan(&self) -> Result<Pan, FieldError> {
        let raw = self.required(de::PAN)?;
        std::str::from_utf8(raw)
            .map_err(|_| FieldError::invalid(de::PAN, "not text"))
            .and_then(|s| {
                Pan::new(s).map_err(|source| FieldError::Value {
                    field: de::PAN,
                    source,
                })
            })
    }

    /// DE 3.
    ///
    /// # Errors
    /// Missing, or not 6 digits.
    pub fn processing_code(&self) -> Result<ProcessingCode, FieldError> {
        let [transaction_type, from_account, to_account] = numbers(
            de::PROCESSING_CODE,
            self.required(de::PROCESSING_CODE)?,
            2,
            [(0, 99); 3],
        )?;
        Ok(ProcessingCode {
            transaction_type,
            from_account,
            to_account,
        })
    }

    /// DE 4 in minor units.
    ///
    /// # Errors
    /// Missing, or not a number of at most 12 digits.
    pub fn amount(&self) -> Result<Amount, FieldError> {
        parse_amount(de::AMOUNT, self.required(de::AMOUNT)?)
    }

    /// DE 7.
    ///
    /// # Errors
    /// Missing, or not a valid MMDDhhmmss.
    pub fn transmission_time(&self) -> Result<TransmissionTime, FieldError> {
        let raw = self.required(de::TRANSMISSION_TIME)?;
        let [month, day, hour, minute, second] = numbers(
            de::TRANSMISSION_TIME,
            raw,
            2,
            [(1, 12), (1, 31), (0, 23), (0, 59), (0, 59)],
        )?;
        Ok(TransmissionTime {
            month,
            day,
            hour,
            minute,
            second,
        })
    }

    /// DE 11.
    ///
    /// # Errors
    /// Missing, or not a number of at most 6 digits.
    pub fn stan(&self) -> Result<Stan, FieldError> {
        let v = digits(de::STAN, self.required(de::STAN)?)?;
        Stan::new(u32::try_from(v).unwrap_or(u32::MAX)).map_err(|source| FieldError::Value {
            field: de::STAN,
            source,
        })
    }

    /// DE 12.
    ///
    /// # Errors
    /// Missing, or not a valid hhmmss.
    pub fn local_time(&self) -> Result<LocalTime, FieldError> {
        let raw = self.required(de::LOCAL_TIME)?;
        let [hour, minute, second] = numbers(de::LOCAL_TIME, raw, 2, [(0, 23), (0, 59), (0, 59)])?;
        Ok(LocalTime {
            hour,
            minute,
            second,
        })
    }

    /// DE 13.
    ///
    /// # Errors
    /// Missing, or not a valid MMDD.
    pub fn local_date(&self) -> Result<LocalDate, FieldError> {
        let raw = self.required(de::LOCAL_DATE)?;
        let [month, day] = numbers(de::LOCAL_DATE, raw, 2, [(1, 12), (1, 31)])?;
        Ok(LocalDate { month, day })
    }

    /// DE 14.
    ///
    /// # Errors
    /// Missing, or not a valid YYMM.
    pub fn expiry(&self) -> Result<Expiry, FieldError> {
        parse_expiry(de::EXPIRY, self.required(de::EXPIRY)?)
    }

    /// DE 18, the merchant category code.
    ///
    /// # Errors
    /// Missing, or not 4 digits.
    pub fn merchant_type(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::MERCHANT_TYPE, 4)? as u16)
    }

    /// DE 22, the point-of-service entry mode (3 digits, as sent).
    ///
    /// # Errors
    /// Missing, or not digits.
    pub fn pos_entry_mode(&self) -> Result<String, FieldError> {
        self.digit_text(de::POS_ENTRY_MODE)
    }

    /// DE 32, the acquiring institution id.
    ///
    /// # Errors
    /// Missing, or not digits.
    pub fn acquirer(&self) -> Result<String, FieldError> {
        self.digit_text(de::ACQUIRER)
    }

    /// DE 35.
    ///
    /// # Errors
    /// Missing, or without a separator, PAN or valid expiry.
    pub fn track2(&self) -> Result<Track2, FieldError> {
        parse_track2(self.required(de::TRACK2)?)
    }

    /// DE 37, the retrieval reference number.
    ///
    /// # Errors
    /// Missing.
    pub fn rrn(&self) -> Result<String, FieldError> {
        self.text(de::RRN)
    }

    /// DE 38, the authorization id.
    ///
    /// # Errors
    /// Missing.
    pub fn auth_id(&self) -> Result<String, FieldError> {
        self.text(de::AUTH_ID)
    }

    /// DE 39.
    ///
    /// # Errors
    /// Missing, or not two letters or digits.
    pub fn response_code(&self) -> Result<ResponseCode, FieldError> {
        let text = self.text(de::RESPONSE_CODE)?;
        ResponseCode::new(&text).map_err(|source| FieldError::Value {
            field: de::RESPONSE_CODE,
            source,
        })
    }

    /// DE 41, the terminal id, as sent (BASE24 pads it to 16).
    ///
    /// # Errors
    /// Missing.
    pub fn terminal_id(&self) -> Result<String, FieldError> {
        self.text(de::TERMINAL)
    }

    /// DE 42, the card acceptor (merchant) id.
    ///
    /// # Errors
    /// Missing.
    pub fn merchant_id(&self) -> Result<String, FieldError> {
        self.text(de::MERCHANT)
    }

    /// DE 43, the card acceptor name and location.
    ///
    /// # Errors
    /// Missing.
    pub fn card_acceptor_name(&self) -> Result<String, FieldError> {
        self.text(de::CARD_ACCEPTOR_NAME)
    }

    /// DE 49, the ISO 4217 numeric currency of DE 4.
    ///
    /// # Errors
    /// Missing, or not 3 digits.
    pub fn currency(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::CURRENCY, 3)? as u16)
    }

    /// DE 54, the additional amounts (balances).
    ///
    /// # Errors
    /// Missing, or an entry that is not 20 characters of the layout.
    pub fn additional_amounts(&self) -> Result<Vec<AdditionalAmount>, FieldError> {
        parse_additional_amounts(self.required(de::ADDITIONAL_AMOUNTS)?)
    }

    /// DE 70, the network management information code.
    ///
    /// # Errors
    /// Missing, or not 3 digits.
    pub fn network_management_code(&self) -> Result<u16, FieldError> {
        Ok(self.fixed_number(de::NETWORK_MANAGEMENT_CODE, 3)? as u16)
    }

    /// DE 90.
    ///
    /// # Errors
    /// Missing, or not 42 digits.
    pub fn original_data(&self) -> Result<OriginalData, FieldError> {
        parse_original_data(self.required(de::ORIGINAL_DATA)?)
    }

    /// DE 95.
    ///
    /// # Errors
    /// Missing, or not 42 characters with numeric amounts.
    pub fn replacement_amounts(&self) -> Result<ReplacementAmounts, FieldError> {
        parse_replacement_amounts(self.required(de::REPLACEMENT_AMOUNTS)?)
    }

    /// DE 102, the "from" account.
    ///
    /// # Errors
    /// Missing.
    pub fn account_1(&self) -> Result<String, FieldError> {
        self.text(de::ACCOUNT_1)
    }

    /// DE 103, the "to" account.
    ///
    /// # Errors
    /// Missing.
    pub fn account_2(&self) -> Result<String, FieldError> {
        self.text(de::ACCOUNT_2)
    }

    /// Sets DE 2.
    pub fn set_pan(&mut self, pan: &Pan) {
        self.set(de::PAN, pan.expose());
    }

    /// Sets DE 4 as 12 zero-padded digits.
    pub fn set_amount(&mut self, amount: Amount) {
        self.set(de::AMOUNT, format!("{:012}", amount.minor_units()));
    }

    /// Sets DE 11 as 6 zero-padded digits.
    pub fn set_stan(&mut self, stan: Stan) {
        self.set(de::STAN, stan.to_string());
    }

    /// Sets DE 39.
    pub fn set_response_code(&mut self, code: ResponseCode) {
        self.set(de::RESPONSE_CODE, code.as_str());
    }

    /// Sets DE 54 from its entries.
    pub fn set_additional_amounts(&mut self, amounts: &[AdditionalAmount]) {
        let text: String = amounts
            .iter()
            .map(|a| {
                format!(
                    "{:0>2.2}{:0>2.2}{:03}{}{:012}",
                    a.account_type,
                    a.amount_type,
                    a.currency,
                    match a.sign {
                        Sign::Credit => 'C',
                        Sign::Debit => 'D',
                    },
                    a.amount.minor_units()
                )
            })
            .collect();
        self.set(de::ADDITIONAL_AMOUNTS, text);
    }

    fn fixed_number(&self, field: u16, width: usize) -> Result<u64, FieldError> {
        let raw = self.required(field)?;
        if raw.len() != width {
            return Err(FieldError::invalid(field, format!("not {width} digits")));
        }
        digits(field, raw)
    }

    fn digit_text(&self, field: u16) -> Result<String, FieldError> {
        let raw = self.required(field)?;
        if raw.iter().all(u8::is_ascii_digit) {
            Ok(String::from_utf8_lossy(raw).into_owned())
        } else {
            Err(FieldError::invalid(field, "not digits"))
        }
    }
}
