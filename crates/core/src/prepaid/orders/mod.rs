//! Card orders: an orderer orders N prepaid cards (personal: one holder
//! name per card; impersonal: none) of a programme; cardhub draws their
//! PANs from the programme's card range, registers them `inactive` and
//! empty, writes the card production file and PIN mailer files for the card
//! producer, and follows the order through its states:
//!
//! `ordered` → (production file written) `produced` → (`mark_delivered`)
//! `delivered` → `active` once any of its cards has a load booked (the first
//! load activates a card: the hub's rule). `active` is derived, not stored.
//!
//! No PIN is known to cardhub: a PIN request is a reference the producer's
//! HSM generates a PIN for; the production file carries it with the full
//! PAN, a PIN mailer record with the masked PAN only. See
//! `docs/prepaid.md`, "Card orders".

mod db;
pub mod names;
pub mod production;
mod range;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::cards::file::CardRow;
use crate::cards::{CardError, CardRegistry, CardStatus, Product};
use crate::iso8583::fields::{Expiry, Pan};
use crate::money::Currency;
use crate::store::StoreError;

use super::{Ledger, PrepaidError, now_us};
pub(super) use db::record_replacement;
use db::{OrderedCard, Planned};
use names::NameError;
pub use range::CardRange;
use range::{check_range, expiry_after, pan_at};

/// Most cards in one order.
pub const MAX_ORDER_CARDS: u32 = 10_000;
/// Longest order reference (it is also the stem of the card accounts).
pub const MAX_REFERENCE_LEN: usize = 35;
/// Longest programme id that can be ordered from (a production file field).
pub const MAX_PROGRAMME_LEN: usize = 20;
/// Tries of an order whose card range another order moved meanwhile.
const ORDER_TRIES: usize = 3;

/// An order of cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub orderer: String,
    /// A programme of the orderer, with a card range.
    pub programme: String,
    /// Cards, 1 to [`MAX_ORDER_CARDS`].
    pub count: u32,
    /// Personal cards: one holder name per card, printed on it. `None`:
    /// impersonal cards (the orderer's name only).
    pub holders: Option<Vec<String>>,
    /// The orderer's idempotency key: 1 to [`MAX_REFERENCE_LEN`] of
    /// `A-Z a-z 0-9 . _ -`. The card accounts are named `<reference>-NNNNN`
    /// (the card's sequence).
    pub reference: String,
}

/// A recorded order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ordered {
    pub id: i64,
    /// The reference was ordered before: nothing was created again.
    pub repeat: bool,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    /// Cards registered (`inactive`, empty); no production file yet.
    Ordered,
    /// The production file was written.
    Produced,
    /// The cards reached the orderer.
    Delivered,
    /// Delivered, and at least one card has a load booked.
    Active,
}

impl OrderState {
    /// The name in the store, the docs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Ordered => "ordered",
            OrderState::Produced => "produced",
            OrderState::Delivered => "delivered",
            OrderState::Active => "active",
        }
    }
}

impl std::fmt::Display for OrderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An order without its cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSummary {
    pub id: i64,
    pub reference: String,
    pub orderer: String,
    pub programme: String,
    pub personal: bool,
    pub count: u32,
    pub state: OrderState,
    pub ordered_at_us: i64,
    pub produced_at_us: Option<i64>,
    pub delivered_at_us: Option<i64>,
    /// Cards with a load booked.
    pub loaded: u32,
}

/// An order and its cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub summary: OrderSummary,
    pub cards: Vec<OrderCard>,
}

/// One card of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderCard {
    /// 1 to the order's count.
    pub sequence: u32,
    /// First 6 + last 4 digits.
    pub pan_masked: String,
    /// Its ledger card account (the registry's `account`).
    pub account: String,
    pub expiry: Expiry,
    pub holder: Option<String>,
    /// Its status in the card registry now (`None`: no longer registered).
    pub status: Option<CardStatus>,
    /// A load was booked on it.
    pub loaded: bool,
}

/// A PIN request: what the producer's HSM generates a PIN for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRequest {
    pub id: i64,
    /// `PIN` and 13 digits, as in the producer's files.
    pub reference: String,
    /// A reorder for the card was pending already: it is that one.
    pub repeat: bool,
}

impl PinRequest {
    fn new(id: i64, repeat: bool) -> PinRequest {
        PinRequest {
            id,
            reference: production::pin_reference(id),
            repeat,
        }
    }
}

/// A producer's file written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The order's id (production file) or the mailer's (PIN mailer).
    pub id: i64,
    /// Detail records: one per card.
    pub records: usize,
    pub bytes: usize,
}

/// Why an order operation was refused or failed. Refusals changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The order itself is malformed (the caller's to fix).
    #[error("order {field}: {reason}")]
    InvalidOrder { field: &'static str, reason: String },
    /// A card range that cannot issue cards (the caller's to fix).
    #[error("card range {field}: {reason}")]
    InvalidRange { field: &'static str, reason: String },
    /// A name that cannot be printed on a card.
    #[error("name cannot be embossed: {0}")]
    Name(#[from] NameError),
    #[error("programme {programme:?} has no card range to issue cards from")]
    NoCardRange { programme: String },
    #[error("programme {programme:?} is not one of orderer {orderer:?}")]
    NotOrderersProgramme { programme: String, orderer: String },
    /// The reference names another order (other orderer, programme or count).
    #[error("reference {reference:?} is order {order}, a different order")]
    ReferenceConflict { reference: String, order: i64 },
    /// No unused PAN is left in the range.
    #[error("card range {prefix} of programme {programme:?} has no unused PAN left")]
    RangeExhausted { programme: String, prefix: String },
    /// Other orders kept moving the range on; a retry can help.
    #[error("card range of programme {programme:?} is busy with other orders; try again")]
    Contended { programme: String },
    #[error("no card order {order}")]
    UnknownOrder { order: i64 },
    #[error("no PIN mailer {mailer}")]
    UnknownMailer { mailer: i64 },
    /// The order is not in a state this step leads from.
    #[error("order {order} is {state}; it cannot become {to}")]
    IllegalTransition {
        order: i64,
        state: OrderState,
        to: OrderState,
    },
    /// A PIN reorder for a card that cannot get one (masked PAN).
    #[error("card {card}: no PIN reorder, {reason}")]
    PinReorderRefused { card: String, reason: String },
    /// A producer's file field that does not fit (ours: values are checked
    /// when ordered).
    #[error("{record} record, field {field}: {reason}")]
    Field {
        record: &'static str,
        field: &'static str,
        reason: String,
    },
    /// The file cannot be written (exists already, directory, disk).
    #[error("{path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("prepaid ledger: {0}")]
    Ledger(#[from] PrepaidError),
    #[error("cards: {0}")]
    Cards(#[from] CardError),
    #[error("card orders store: {0}")]
    Store(#[from] StoreError),
}

impl OrderError {
    /// Whether the same call may succeed later: a busy range, a transient
    /// store or card registry failure. Everything else is in the request
    /// or the data.
    pub fn is_retryable(&self) -> bool {
        match self {
            OrderError::Contended { .. } => true,
            OrderError::Store(e) => e.is_retryable(),
            OrderError::Cards(e) => e.is_retryable(),
            _ => false,
        }
    }
}

/// Why recording an order wrote nothing.
enum Refused {
    /// The reference was ordered meanwhile: this order.
    Repeat(i64),
    /// The range moved since its PANs were drawn.
    Contended,
    Order(OrderError),
}

impl Ledger {
    /// Sets (or changes) the card range of `programme`. The range's serial
    /// goes on while prefix and length stay; PANs already issued are never
    /// issued again in any case (they are in the card registry).
    ///
    /// # Errors
    /// [`OrderError::InvalidRange`], [`PrepaidError::UnknownProgramme`]
    /// (as [`OrderError::Ledger`]), [`OrderError::Store`].
    pub async fn set_card_range(
        &self,
        programme: &str,
        range: CardRange,
    ) -> Result<(), OrderError> {
        check_range(&range)?;
        let programme = programme.to_string();
        self.store
            .write(move |c| db::set_range(c, &programme, &range, now_us()))
            .await?
    }

    /// The card range of `programme`, if it has one.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    pub fn card_range(&self, programme: &str) -> Result<Option<CardRange>, OrderError> {
        Ok(self
            .store
            .read(|c| db::range(c, programme))?
            .map(|(r, _)| r))
    }

    /// Orders cards: in one store transaction registers `order.count` new
    /// cards `inactive` in `cards` (PANs drawn in serial order from the
    /// programme's range, Luhn check digit, none registered before; expiry
    /// the range's validity from this month), opens their empty card
    /// accounts and records the order `ordered` with a PIN request per card.
    /// A repeat of the reference returns the order and creates nothing.
    ///
    /// # Errors
    /// [`OrderError::InvalidOrder`], [`OrderError::Name`] (holder or
    /// orderer name not embossable), [`OrderError::NoCardRange`],
    /// [`OrderError::NotOrderersProgramme`],
    /// [`OrderError::ReferenceConflict`], [`OrderError::RangeExhausted`],
    /// [`OrderError::Contended`], [`OrderError::Ledger`] (unknown
    /// programme, card account taken), [`OrderError::Cards`] (institution
    /// or profile not configured, store), [`OrderError::Store`]; on any
    /// error nothing was changed.
    pub async fn order_cards(
        &self,
        cards: &CardRegistry,
        order: NewOrder,
    ) -> Result<Ordered, OrderError> {
        check_order(&order)?;
        for _ in 0..ORDER_TRIES {
            let plan = match self.store.read(|c| db::plan(c, &order))?? {
                Planned::Repeat(id) => return Ok(Ordered { id, repeat: true }),
                Planned::New(plan) => plan,
            };
            names::emboss("orderer name", &plan.orderer_name)?;
            let now = now_us();
            let expiry = expiry_after(now, plan.range.validity_months)?;
            let currency =
                Currency::from_numeric(plan.currency).map_err(|e| OrderError::InvalidOrder {
                    field: "programme",
                    reason: format!("currency {}: {e}", plan.currency),
                })?;
            let (pans, next_serial) = self.draw_pans(cards, &order, &plan)?;
            let mut rows = Vec::with_capacity(pans.len());
            let mut ordered = Vec::with_capacity(pans.len());
            for (i, pan) in pans.into_iter().enumerate() {
                let account = format!("{}-{:05}", order.reference, i + 1);
                ordered.push(OrderedCard {
                    account: account.clone(),
                    pan_masked: pan.masked(),
                    expiry: expiry.to_string(),
                    holder: order.holders.as_ref().and_then(|h| h.get(i).cloned()),
                });
                rows.push(CardRow {
                    line: i as u64 + 1,
                    pan,
                    expiry,
                    status: CardStatus::Inactive,
                    account,
                    institution: plan.range.institution.clone(),
                    currency,
                    profile: plan.range.profile.clone(),
                    product: Product::Prepaid,
                });
            }
            let (o, p) = (order.clone(), plan.clone());
            let done = cards
                .register_new(rows, move |c| {
                    db::record(c, &o, &p, next_serial, &ordered, now)
                })
                .await;
            match done {
                Ok(Ok((_, id))) => {
                    tracing::info!(order = id, count = order.count, programme = %order.programme, "prepaid cards ordered");
                    return Ok(Ordered { id, repeat: false });
                }
                Ok(Err(Refused::Repeat(id))) => return Ok(Ordered { id, repeat: true }),
                Ok(Err(Refused::Order(e))) => return Err(e),
                Ok(Err(Refused::Contended)) | Err(CardError::CardExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrderError::Contended {
            programme: order.programme,
        })
    }

    /// `order.count` PANs of the range from its next serial on, skipping
    /// those registered already, and the serial after the last one drawn.
    fn draw_pans(
        &self,
        cards: &CardRegistry,
        order: &NewOrder,
        plan: &db::Plan,
    ) -> Result<(Vec<Pan>, i64), OrderError> {
        let mut serial = plan.next_serial;
        let mut pans = Vec::with_capacity(order.count as usize);
        while pans.len() < order.count as usize {
            let pan = pan_at(&plan.range, serial).ok_or_else(|| OrderError::RangeExhausted {
                programme: order.programme.clone(),
                prefix: plan.range.prefix.clone(),
            })?;
            serial += 1;
            if cards.get(&pan)?.is_none() {
                pans.push(pan);
            }
        }
        Ok((pans, serial))
    }

    /// The production file of `order` (format in `docs/prepaid.md`): full
    /// PANs, for the card producer only. Changes nothing; refused once the
    /// order is delivered.
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], [`OrderError::IllegalTransition`],
    /// [`OrderError::Cards`] (a PAN that does not decrypt), [`OrderError::Store`].
    pub fn production_file(&self, cards: &CardRegistry, order: i64) -> Result<Vec<u8>, OrderError> {
        let (summary, production) = self.store.read(|c| db::production(c, order))??;
        if !matches!(summary.state, OrderState::Ordered | OrderState::Produced) {
            return Err(OrderError::IllegalTransition {
                order,
                state: summary.state,
                to: OrderState::Produced,
            });
        }
        let accounts: Vec<String> = production.cards.iter().map(|c| c.account.clone()).collect();
        let pans = cards.reveal(&accounts)?;
        production::production_file(&production, &pans)
    }

    /// Writes the production file of `order` to `path` (a new file, mode
    /// 0600, synced) and moves the order to `produced`. Written again for a
    /// produced order (to a new path) it is byte for byte the same.
    ///
    /// # Errors
    /// As [`Ledger::production_file`]; [`OrderError::File`] when `path`
    /// exists or cannot be written (the order stays as it was).
    pub async fn write_production_file(
        &self,
        cards: &CardRegistry,
        order: i64,
        path: &Path,
    ) -> Result<Written, OrderError> {
        let bytes = self.production_file(cards, order)?;
        write_new_file(path, &bytes).await?;
        self.store
            .write(move |c| {
                db::transition(
                    c,
                    order,
                    OrderState::Ordered,
                    OrderState::Produced,
                    now_us(),
                )
            })
            .await??;
        let records = bytes.len() / (production::RECORD_LEN + 1) - 2;
        tracing::info!(order, records, path = %path.display(), "card production file written");
        Ok(Written {
            id: order,
            records,
            bytes: bytes.len(),
        })
    }

    /// Marks a produced order `delivered` (done already: no change).
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], [`OrderError::IllegalTransition`]
    /// (not produced yet), [`OrderError::Store`].
    pub async fn mark_delivered(&self, order: i64) -> Result<OrderSummary, OrderError> {
        self.store
            .write(move |c| {
                db::transition(
                    c,
                    order,
                    OrderState::Produced,
                    OrderState::Delivered,
                    now_us(),
                )
            })
            .await?
    }

    /// An order, its state and its cards (masked PANs, card accounts,
    /// registry status, loaded or not).
    ///
    /// # Errors
    /// [`OrderError::UnknownOrder`], [`OrderError::Cards`], [`OrderError::Store`].
    pub fn order(&self, cards: &CardRegistry, id: i64) -> Result<Order, OrderError> {
        let (summary, stored) = self
            .store
            .read(|c| {
                Ok(match db::summary(c, id)? {
                    Some(s) => Some((s, db::cards(c, id)?)),
                    None => None,
                })
            })?
            .ok_or(OrderError::UnknownOrder { order: id })?;
        let accounts: Vec<String> = stored.iter().map(|c| c.account.clone()).collect();
        let mut registered: HashMap<String, _> = cards.by_accounts(&accounts)?;
        let cards = stored
            .into_iter()
            .map(|c| {
                Ok(OrderCard {
                    sequence: c.sequence,
                    expiry: Expiry::parse(&c.expiry).map_err(|e| OrderError::Field {
                        record: "order card",
                        field: "expiry",
                        reason: e.to_string(),
                    })?,
                    status: registered.remove(&c.account).map(|card| card.status),
                    pan_masked: c.pan_masked,
                    account: c.account,
                    holder: c.holder,
                    loaded: c.loaded,
                })
            })
            .collect::<Result<Vec<_>, OrderError>>()?;
        Ok(Order { summary, cards })
    }

    /// The card order that issued the card drawing on ledger account
    /// `account`, and the card's sequence in it: for a replacement of an
    /// order card, its replacement order (see [`Ledger::replace_lost_card`]).
    ///
    /// # Errors
    /// [`OrderError::Store`].
    pub fn order_of_card(&self, account: &str) -> Result<Option<(i64, u32)>, OrderError> {
        Ok(self
            .store
            .read(|c| db::ordered_card(c, account))?
            .map(|(order, sequence, _)| (order, sequence)))
    }

    /// An orderer's orders, oldest first.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    pub fn orders(&self, orderer: &str) -> Result<Vec<OrderSummary>, OrderError> {
        Ok(self.store.read(|c| db::summaries(c, orderer))?)
    }

    /// Requests a new PIN for the ordered card `pan`, delivered by the next
    /// PIN mailer file. A reorder still pending is returned, not doubled.
    ///
    /// # Errors
    /// [`OrderError::PinReorderRefused`] for a card that is not registered,
    /// not from a card order, lost, stolen, closed, expired or replaced;
    /// [`OrderError::Cards`], [`OrderError::Store`].
    pub async fn reorder_pin(
        &self,
        cards: &CardRegistry,
        pan: &Pan,
    ) -> Result<PinRequest, OrderError> {
        let refuse = |reason: &str| OrderError::PinReorderRefused {
            card: pan.masked(),
            reason: reason.to_string(),
        };
        let card = cards
            .get(pan)?
            .ok_or_else(|| refuse("it is not registered"))?;
        if matches!(
            card.status,
            CardStatus::Lost | CardStatus::Stolen | CardStatus::Closed | CardStatus::Expired
        ) {
            return Err(refuse(&format!("it is {}", card.status)));
        }
        let account = card.account;
        let found = self.store.read(|c| db::ordered_card(c, &account))?;
        let (order, sequence) = match found {
            None => return Err(refuse("it was not issued by a card order")),
            Some((_, _, true)) => return Err(refuse("it was replaced")),
            Some((order, sequence, false)) => (order, sequence),
        };
        let request = self
            .store
            .write(move |c| db::reorder(c, order, sequence, now_us()))
            .await?;
        tracing::info!(card = %pan, pin_request = %request.reference, repeat = request.repeat, "PIN reorder requested");
        Ok(request)
    }

    /// Writes every pending PIN request — reorders, and the new cards of
    /// produced orders whose programme delivers PINs `separately` — as a
    /// new PIN mailer file at `path` (mode 0600, synced). `None`: nothing
    /// was pending, no file written. The requests are taken into the mailer
    /// before the file is written: if writing fails, write it again from
    /// [`Ledger::pin_mailer_file`] with the mailer's id (in the error's
    /// log line).
    ///
    /// # Errors
    /// [`OrderError::File`], [`OrderError::Field`], [`OrderError::Store`].
    pub async fn write_pin_mailer_file(&self, path: &Path) -> Result<Option<Written>, OrderError> {
        let Some(mailer) = self.store.write(|c| db::take_pending(c, now_us())).await? else {
            return Ok(None);
        };
        let written = async {
            let bytes = self.pin_mailer_file(mailer)?;
            write_new_file(path, &bytes).await?;
            Ok::<_, OrderError>(bytes)
        }
        .await;
        let bytes = written.inspect_err(|e| {
            tracing::error!(mailer, error = %e, "PIN mailer file not written; write it again from the mailer");
        })?;
        let records = bytes.len() / (production::RECORD_LEN + 1) - 2;
        tracing::info!(mailer, records, path = %path.display(), "PIN mailer file written");
        Ok(Some(Written {
            id: mailer,
            records,
            bytes: bytes.len(),
        }))
    }

    /// The PIN mailer file `mailer` as it was written (masked PANs only).
    ///
    /// # Errors
    /// [`OrderError::UnknownMailer`], [`OrderError::Field`],
    /// [`OrderError::Store`].
    pub fn pin_mailer_file(&self, mailer: i64) -> Result<Vec<u8>, OrderError> {
        let (created, records) = self
            .store
            .read(|c| db::mailer(c, mailer))?
            .ok_or(OrderError::UnknownMailer { mailer })?;
        production::mailer_file(mailer, &utc_date(created), &records)
    }
}

fn check_order(o: &NewOrder) -> Result<(), OrderError> {
    let bad = |field, reason: String| Err(OrderError::InvalidOrder { field, reason });
    if o.reference.is_empty()
        || o.reference.len() > MAX_REFERENCE_LEN
        || !o
            .reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return bad(
            "reference",
            format!("must be 1 to {MAX_REFERENCE_LEN} of A-Z a-z 0-9 . _ -"),
        );
    }
    if !(1..=MAX_ORDER_CARDS).contains(&o.count) {
        return bad(
            "count",
            format!("{} is not 1 to {MAX_ORDER_CARDS}", o.count),
        );
    }
    if o.programme.len() > MAX_PROGRAMME_LEN || !o.programme.bytes().all(|b| b.is_ascii_graphic()) {
        return bad(
            "programme",
            format!(
                "id must be at most {MAX_PROGRAMME_LEN} printable ASCII characters to be ordered"
            ),
        );
    }
    if let Some(holders) = &o.holders {
        if holders.len() != o.count as usize {
            return bad(
                "holders",
                format!(
                    "{} names for {} cards (personal: one per card)",
                    holders.len(),
                    o.count
                ),
            );
        }
        for (i, name) in holders.iter().enumerate() {
            names::emboss(&format!("holders[{i}]"), name)?;
        }
    }
    Ok(())
}

/// `YYYYMMDD` of a time (UTC).
fn utc_date(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us)
        .map(|t| {
            t.to_zoned(jiff::tz::TimeZone::UTC)
                .date()
                .strftime("%Y%m%d")
                .to_string()
        })
        .unwrap_or_else(|_| "00000000".into())
}

/// Writes `bytes` to the new file `path`, readable by its owner only
/// (0600), and syncs it.
async fn write_new_file(path: &Path, bytes: &[u8]) -> Result<(), OrderError> {
    use tokio::io::AsyncWriteExt;
    let file_error = |source| OrderError::File {
        path: path.to_path_buf(),
        source,
    };
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await.map_err(file_error)?;
    file.write_all(bytes).await.map_err(file_error)?;
    file.sync_all().await.map_err(file_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_checked_before_anything_is_read() {
        let order = NewOrder {
            orderer: "city".into(),
            programme: "p".into(),
            count: 2,
            holders: Some(vec!["A".into()]),
            reference: "R1".into(),
        };
        assert!(matches!(
            check_order(&order),
            Err(OrderError::InvalidOrder {
                field: "holders",
                ..
            })
        ));
        let spaced = NewOrder {
            reference: "R 1".into(),
            holders: None,
            ..order
        };
        assert!(matches!(
            check_order(&spaced),
            Err(OrderError::InvalidOrder {
                field: "reference",
                ..
            })
        ));
    }
}
