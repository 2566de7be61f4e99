//! One request, one answer: `cardhub sim send`. The request comes from a
//! fixture as it is, or is built from a few card and amount options with
//! the per-request fields (DE 7, 11, 12, 13, 37) filled in; `N=VALUE`
//! overrides apply to either.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::SimError;
use super::client::SimClient;
use super::template::{self, RrnSource};
use cardhub_core::iso8583::fields::{Amount, Pan, Stan};
use cardhub_core::iso8583::{Dialect, FieldList, Message, Mti, de};
use cardhub_core::link::frame::Framing;
use cardhub_core::link::netmgmt;

/// DE 41 of built requests when no terminal is given.
pub const DEFAULT_TERMINAL: &str = "CARDHUB-SIM";

/// Where the request comes from.
#[derive(Debug, Clone)]
pub enum MessageSpec {
    /// A fixture (`.hex`, `.json`, `.toml`), sent as it is.
    File(PathBuf),
    /// A request built from options.
    Build(BuildOptions),
}

/// The fields of a request built from options.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub mti: Mti,
    pub pan: String,
    /// DE 4 in minor units.
    pub amount: u64,
    /// DE 3.
    pub processing_code: String,
    /// DE 14, YYMM.
    pub expiry: Option<String>,
    /// DE 41; [`DEFAULT_TERMINAL`] when absent.
    pub terminal: Option<String>,
    /// DE 42.
    pub merchant: Option<String>,
    /// DE 49, numeric currency code.
    pub currency: String,
}

/// Everything `sim send` needs.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// The hub's `host:port`.
    pub address: String,
    pub dialect: Arc<Dialect>,
    pub framing: Framing,
    /// Header of built requests and of the sign-on (see [`SimClient::connect`]).
    pub header: Option<String>,
    pub message: MessageSpec,
    /// `N=VALUE` overrides, applied last (binary fields as hex).
    pub fields: Vec<(u16, String)>,
    /// How long to wait for the sign-on's answer and the request's.
    pub timeout: Duration,
}

/// A request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub request: Message,
    pub answer: Message,
    pub round_trip: Duration,
}

/// A request read from its file, or the options to build it once connected
/// (its STAN comes from the connection).
enum Planned<'a> {
    Ready(Message),
    ToBuild(&'a BuildOptions),
}

/// Connects, signs on, sends one request, waits for its answer and signs off.
///
/// # Errors
/// Connection and sign-on errors, [`SimError::Template`] or
/// [`SimError::Field`] / [`SimError::Build`] for a request that cannot be
/// made, and [`SimError::Request`] when no answer comes.
pub async fn send(options: SendOptions) -> Result<Exchange, SimError> {
    // Read the fixture before dialling: a bad file fails fast.
    let planned = match &options.message {
        MessageSpec::File(path) => Planned::Ready(template::load(path, &options.dialect)?),
        MessageSpec::Build(build) => Planned::ToBuild(build),
    };
    let client = SimClient::connect(
        &options.address,
        options.dialect.clone(),
        options.framing,
        options.header.clone(),
    )
    .await?;
    client.sign_on_within(options.timeout).await?;
    let dialect = &options.dialect;
    let request = match planned {
        Planned::Ready(msg) => msg,
        Planned::ToBuild(build) => build_request(
            build,
            dialect,
            client.header(),
            client.outbound().next_stan(),
        )?,
    };
    let request = with_fields(&request, dialect, &options.fields)?;
    let outcome = client.request(&request, options.timeout).await;
    client.close().await;
    let (answer, round_trip) = outcome?;
    Ok(Exchange {
        request,
        answer,
        round_trip,
    })
}

/// Builds a request from options: the given fields plus DE 7 (now, UTC),
/// DE 11 (`stan`), DE 12 and 13 (local time and date) and a fresh DE 37.
///
/// # Errors
/// [`SimError::Field`] for a PAN or amount that does not pass its check,
/// [`SimError::Build`] for values that do not fit the dialect.
pub fn build_request(
    options: &BuildOptions,
    dialect: &Dialect,
    header: Option<&str>,
    stan: Stan,
) -> Result<Message, SimError> {
    let invalid = |field| move |source| SimError::Field { field, source };
    let pan = Pan::new(&options.pan).map_err(invalid(de::PAN))?;
    let amount = Amount::new(options.amount).map_err(invalid(de::AMOUNT))?;
    let mut msg = Message::new(options.mti);
    msg.set_header(header.map(|h| h.as_bytes().to_vec()));
    msg.set_pan(&pan);
    msg.set_amount(amount);
    msg.set_stan(stan);
    msg.set(de::TRANSMISSION_TIME, netmgmt::transmission_time());
    let local = jiff::Zoned::now();
    msg.set(de::LOCAL_TIME, local.strftime("%H%M%S").to_string());
    msg.set(de::LOCAL_DATE, local.strftime("%m%d").to_string());
    msg.set(de::RRN, RrnSource::starting_now().rrn(0));
    let terminal = options.terminal.as_deref().unwrap_or(DEFAULT_TERMINAL);
    let mut text = vec![
        (de::PROCESSING_CODE, options.processing_code.as_str()),
        (de::TERMINAL, terminal),
        (de::CURRENCY, options.currency.as_str()),
    ];
    text.extend(options.expiry.as_deref().map(|e| (de::EXPIRY, e)));
    text.extend(options.merchant.as_deref().map(|m| (de::MERCHANT, m)));
    let text: Vec<(u16, String)> = text.into_iter().map(|(n, v)| (n, v.to_string())).collect();
    with_fields(&msg, dialect, &text)
}

/// A message with fields set from text, as a field list writes them
/// (binary fields as hex); short fixed-length values are padded as the
/// dialect pads them.
///
/// # Errors
/// [`SimError::Build`] naming a field the dialect does not define or a value
/// that is not Latin-1 or not hex.
pub fn with_fields(
    msg: &Message,
    dialect: &Dialect,
    fields: &[(u16, String)],
) -> Result<Message, SimError> {
    if fields.is_empty() {
        return Ok(msg.clone());
    }
    let mut list = FieldList::from_message(msg, dialect, false);
    for (field, value) in fields {
        list.fields
            .insert(*field, template::fit(dialect, *field, value));
    }
    list.to_message(dialect).map_err(SimError::Build)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base24() -> Dialect {
        Dialect::shipped("base24").unwrap().unwrap()
    }

    fn options() -> BuildOptions {
        BuildOptions {
            mti: "0100".parse().unwrap(),
            pan: "4761739001010010".into(),
            amount: 1250,
            processing_code: "000000".into(),
            expiry: Some("2812".into()),
            terminal: None,
            merchant: Some("SIMSHOP".into()),
            currency: "978".into(),
        }
    }

    #[test]
    fn built_request_has_the_per_request_fields_and_encodes() {
        let d = base24();
        let stan = Stan::new(42).unwrap();
        let msg = build_request(&options(), &d, Some("ISO026000070"), stan).unwrap();
        assert_eq!(msg.stan().unwrap(), stan);
        assert_eq!(msg.amount().unwrap().minor_units(), 1250);
        assert_eq!(msg.get(de::TERMINAL), Some(&b"CARDHUB-SIM     "[..]));
        assert_eq!(msg.get(de::MERCHANT), Some(&b"SIMSHOP        "[..]));
        for (field, len) in [(7, 10), (12, 6), (13, 4), (37, 12)] {
            assert_eq!(msg.get(field).map(<[u8]>::len), Some(len), "field {field}");
        }
        let decoded = d.decode(&d.encode(&msg).unwrap()).unwrap();
        assert_eq!(decoded, msg);
    }

    #[test]
    fn bad_values_name_the_field() {
        let d = base24();
        let stan = Stan::new(1).unwrap();
        let mut bad_pan = options();
        bad_pan.pan = "4761".into();
        assert!(matches!(
            build_request(&bad_pan, &d, None, stan),
            Err(SimError::Field { field: 2, .. })
        ));
        let mut bad_amount = options();
        bad_amount.amount = u64::MAX;
        assert!(matches!(
            build_request(&bad_amount, &d, None, stan),
            Err(SimError::Field { field: 4, .. })
        ));
        let msg = build_request(&options(), &d, None, stan).unwrap();
        assert!(matches!(
            with_fields(&msg, &d, &[(199, "x".into())]),
            Err(SimError::Build(_))
        ));
        let changed = with_fields(&msg, &d, &[(11, "7".into()), (18, "5999".into())]).unwrap();
        assert_eq!(changed.get(11), Some(&b"000007"[..]));
        assert_eq!(changed.get(18), Some(&b"5999"[..]));
    }
}
