//! The authorization pipeline: the link's [`Handler`] for financial requests.
//!
//! Every request goes through small steps, one file each: map (`map.rs`:
//! the message read once) → duplicate check (`duplicate.rs`) → decide by
//! role (`decide.rs`: for a request card checks (`card.rs`) → limits
//! (`limits.rs`) → route (`route.rs`) → the account system (`online.rs`)
//! or stand-in (`stand_in.rs`); an advice `advice.rs`, a reversal
//! `reverse.rs`) → journal (`journal.rs`: the row durable before the
//! answer) → answer. Each step takes what the step before it produced and
//! returns what the next one needs, or an early answer; each decline
//! carries its own DE 39. `Hub::decide` reads as that sequence; the hub's
//! start is `start.rs`.

mod advice;
mod card;
mod decide;
mod duplicate;
mod journal;
mod limits;
mod map;
mod online;
mod recheck;
mod reverse;
mod route;
mod stand_in;
mod start;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tracing::warn;

use crate::account::AccountSystem;
use crate::cards::card::Card;
use crate::cards::config::LimitProfiles;
use crate::cards::registry::CardRegistry;
use crate::hub::limits::{BusinessDay, Counters};
use crate::hub::mapping;
use crate::hub::seen::SeenKeys;
use crate::iso8583::Message;
use crate::iso8583::fields::ResponseCode;
use crate::journal::Entry;
use crate::journal::decision::Decision;
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::{TxnId, TxnIds};
use crate::link::{Handler, Request};
use crate::metrics::Metrics;
use crate::standin::Effects;
use crate::standin::config::HoldsConfig;
use crate::standin::shadow::ShadowBook;
use crate::standin::state::Institutions;
use crate::store::{ServeLock, Store};

use journal::Journaled;
use map::Txn;

/// How long an account system's answer is still awaited after the switch
/// was answered, so a late answer can be reconciled (the adapter's own
/// operation timeout bounds it too).
const LATE_LISTEN: Duration = Duration::from_secs(30);

/// Counter key: the card's PAN hash.
type CardKey = [u8; 32];

/// An institution and how to reach its account system.
#[derive(Clone)]
pub struct Route {
    pub institution: String,
    /// `None` when no adapter is configured: stand-in decides every request
    /// from the institution's balances.
    pub account_system: Option<Arc<dyn AccountSystem>>,
}

/// What a step decided, and what the journal needs to know about it.
struct Outcome {
    decision: Decision,
    card: Option<Arc<Card>>,
    counted: (i64, i32),
    business_day: Option<String>,
    original_txn_id: Option<TxnId>,
    entry: Entry,
    /// For reversals: the amount undone, journaled instead of the request's amount.
    reversal: Option<i64>,
    /// Shadow-balance and SAF changes, written with the journal row.
    effects: Effects,
    /// Who writes the journal row.
    journaling: Journaling,
    /// A stand-in approval's check against the shared daily totals, in the
    /// journal row's transaction.
    daily_check: Option<limits::DailyCheck>,
}

/// Who writes a decided request's journal row, and what it clears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Journaling {
    /// The journal step.
    Hub,
    /// The journal step, clearing the call intent recorded before an
    /// online call.
    AfterIntent,
    /// The account system, with its booking in the hub's store (the
    /// prepaid ledger): durable already.
    Booked,
    /// The journal step, unless the account system in the hub's store wrote
    /// it with a booking the hub did not see come back (a call that failed
    /// or outlived its deadline): then that row's decision is the answer.
    MaybeBooked,
    /// Nobody: another request holds the switch keys (journaled, or with
    /// its call under way — a retransmission that reached another instance
    /// than its original), found before the call; the request is answered
    /// as its repeat (`duplicate.rs`).
    KeyHeld,
}

impl Outcome {
    fn rule(code: ResponseCode, reason: impl Into<String>) -> Outcome {
        Outcome {
            decision: Decision::rule(code, reason),
            card: None,
            counted: (0, 0),
            business_day: None,
            original_txn_id: None,
            entry: Entry::Request,
            reversal: None,
            effects: Effects::default(),
            journaling: Journaling::Hub,
            daily_check: None,
        }
    }
}

/// A hub rule's decline, and the card it concerns when known: the early
/// exit of the card, limits and route steps.
struct Refusal {
    code: ResponseCode,
    reason: String,
    card: Option<Arc<Card>>,
}

impl Refusal {
    fn new(code: ResponseCode, reason: impl Into<String>, card: Option<&Arc<Card>>) -> Refusal {
        Refusal {
            code,
            reason: reason.into(),
            card: card.cloned(),
        }
    }
}

impl From<Refusal> for Outcome {
    fn from(r: Refusal) -> Outcome {
        Outcome {
            card: r.card,
            ..Outcome::rule(r.code, r.reason)
        }
    }
}

/// Requests with the same switch keys being decided now: a retransmission
/// waits for the original's decision instead of being decided twice.
type InFlight = Mutex<HashMap<SwitchKeys, watch::Receiver<Option<Decision>>>>;

/// The hub core.
pub struct Hub {
    store: Store,
    cards: Arc<CardRegistry>,
    profiles: LimitProfiles,
    day: BusinessDay,
    counters: Counters<CardKey>,
    routes: HashMap<String, Route>,
    in_flight: InFlight,
    /// Transaction ids, above every id in the journal.
    ids: Arc<TxnIds>,
    /// Switch keys of recent requests: most requests skip the journal read.
    seen: SeenKeys,
    /// Institution states and breakers.
    institutions: Arc<Institutions>,
    /// Shadow balances for stand-in.
    book: Arc<ShadowBook>,
    holds: HoldsConfig,
    /// Stand-in's own daily counters (its approvals only).
    offline: Counters<CardKey>,
    metrics: Arc<Metrics>,
    /// Tasks waiting for account systems' late answers (drained at shutdown).
    late_answers: TaskTracker,
    /// The hub is the only one on its store (it holds the store's
    /// [`ServeLock`]): its memory sees every approval, so stand-in
    /// approvals are not checked again in the store and online debits
    /// reserve only in memory (`recheck.rs`, `limits.rs`).
    alone: AtomicBool,
}

impl Hub {
    /// At shutdown, after the link stopped taking requests: waits up to
    /// `grace` for account systems' late answers still awaited to be
    /// journaled (and a late approval cardhub declined to be queued for
    /// reversal); true when none is left.
    pub async fn drain_late_answers(&self, grace: Duration) -> bool {
        self.late_answers.close();
        let drained = tokio::time::timeout(grace, self.late_answers.wait())
            .await
            .is_ok();
        if !drained {
            warn!(
                left = self.late_answers.len(),
                "late account-system answers still awaited at shutdown are not recorded"
            );
        }
        drained
    }

    /// Tells the hub it is the only one on its store, as the store's serve
    /// lock proves: the checks against other instances' writes are skipped.
    pub fn serve_alone(&self, _lock: &ServeLock) {
        self.alone.store(true, Ordering::Relaxed);
    }

    /// Whether other instances may write the store (no serve lock held).
    fn shared(&self) -> bool {
        !self.alone.load(Ordering::Relaxed)
    }

    /// Commit and job counts of the hub's store (for monitoring and benchmarks).
    pub fn store_stats(&self) -> crate::store::StoreStats {
        self.store.stats()
    }

    /// The card registry (refreshed by the caller when cards change).
    pub fn cards(&self) -> &Arc<CardRegistry> {
        &self.cards
    }

    /// Institution states (for status signals, the API and the replay).
    pub fn institutions(&self) -> &Arc<Institutions> {
        &self.institutions
    }

    /// The shadow balances (told when a balance file becomes current).
    pub fn book(&self) -> &Arc<ShadowBook> {
        &self.book
    }

    /// What the hub counts (served at `/metrics`).
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The hub's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The fleet instance number its transaction ids carry.
    pub fn instance(&self) -> u8 {
        self.ids.instance()
    }

    /// Each institution's account system, where one is configured.
    pub fn account_systems(&self) -> impl Iterator<Item = (&str, &Arc<dyn AccountSystem>)> {
        self.routes.values().filter_map(|r| {
            r.account_system
                .as_ref()
                .map(|s| (r.institution.as_str(), s))
        })
    }

    /// The pipeline: map → duplicate check → decide → journal → answer.
    async fn decide(&self, request: &Request) -> Message {
        let m = map::map(request);
        let txn_id = self.ids.next();
        // A retransmission is answered here with its original's decision.
        let mut claimed = match self.duplicate(&m, txn_id).await {
            Ok(claimed) => claimed,
            Err(answer) => return answer,
        };
        let outcome = match (&m.canonical, claimed.unreadable.take()) {
            (Err(e), _) => Outcome::rule(e.code(), e.to_string()),
            (Ok(_), Some(unreadable)) => unreadable,
            (Ok(c), None) => {
                let t = Txn {
                    m: &m,
                    c,
                    id: txn_id,
                };
                self.decide_by_role(&t, claimed.decided()).await
            }
        };
        let currency = outcome.card.as_ref().map(|c| c.currency);
        let (decision, journaled) = match self.journal(&m, txn_id, outcome).await {
            Journaled::Answer(decision, durable) => (decision, durable),
            Journaled::KeyHeld => return self.repeat_of_held(&m, claimed).await,
        };
        if journaled {
            self.seen.insert(&m.keys);
        }
        claimed.publish(&decision);
        mapping::to_answer(&request.message, &decision, currency)
    }
}

impl Handler for Hub {
    async fn handle(&self, request: Request) -> Message {
        self.decide(&request).await
    }
}
