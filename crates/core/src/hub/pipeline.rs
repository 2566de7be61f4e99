//! The authorization pipeline: the link's [`Handler`] for financial requests.
//!
//! Every request goes through: map → duplicate check → card checks → limits
//! → route → decide → journal → answer. Each step is its own function and
//! each decline carries its own DE 39. The journal row is durable before the
//! answer is returned to the link.

mod stand_in;

use stand_in::Tell;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{error, warn};

use crate::account::Kind;
use crate::account::{AccountError, AccountSystem, AdviceDecision, Decider, Operation};
use crate::cards::card::{Card, CardStatus, Product};
use crate::cards::config::LimitProfiles;
use crate::cards::registry::CardRegistry;
use crate::hub::call::{
    LateRecorder, account_request, call_with_deadline, decision_from, operation_of,
};
use crate::hub::limits::{BusinessDay, Counters, LimitChannel, Reservation};
use crate::hub::mapping;
use crate::hub::model::{CanonicalRequest, MessageRole};
use crate::hub::seen::{self, SeenKeys};
use crate::iso8583::Message;
use crate::iso8583::codes;
use crate::iso8583::fields::ResponseCode;
use crate::journal::decision::{DecidedBy, Decision};
use crate::journal::keys::SwitchKeys;
use crate::journal::txn_id::{TxnId, TxnIds};
use crate::journal::{self, Entry, JournalEntry};
use crate::link::{Handler, Request};
use crate::mask::redact_pans;
use crate::metrics::Metrics;
use crate::standin::Effects;
use crate::standin::config::HoldsConfig;
use crate::standin::config::InstitutionConfig;
use crate::standin::saf::{self, NewItem};
use crate::standin::shadow::ShadowBook;
use crate::standin::state::{Institution, Institutions};
use crate::store::Store;

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
    /// A call intent was recorded before an online call: removed with the row.
    intent: bool,
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
            intent: false,
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
}

impl Hub {
    /// A hub over a store and card registry; daily counters are rebuilt from
    /// today's journal.
    ///
    /// # Errors
    /// The store's error when the journal cannot be read.
    pub fn new(
        store: Store,
        cards: Arc<CardRegistry>,
        profiles: LimitProfiles,
        day: BusinessDay,
        routes: Vec<Route>,
        institutions: &[InstitutionConfig],
        holds: HoldsConfig,
    ) -> Result<Hub, crate::store::StoreError> {
        let ids = Arc::new(TxnIds::after(journal::highest_id(&store)?));
        let hub = Hub {
            institutions: Arc::new(Institutions::open(store.clone(), institutions)?),
            book: Arc::new(ShadowBook::new(store.clone())),
            holds,
            offline: Counters::default(),
            metrics: Arc::default(),
            store,
            cards,
            profiles,
            day,
            counters: Counters::default(),
            routes: routes
                .into_iter()
                .map(|r| (r.institution.clone(), r))
                .collect(),
            in_flight: Mutex::default(),
            ids,
            seen: SeenKeys::default(),
            late_answers: TaskTracker::new(),
        };
        hub.reverse_interrupted_calls()?;
        let now = Timestamp::now();
        let recent = TxnId::at(now - seen::MAX_AGE);
        for keys in journal::recent_keys(&hub.store, recent)? {
            hub.seen.insert(&keys);
        }
        // A business day spans at most two calendar days.
        let two_days_ago = TxnId::at(now - std::time::Duration::from_secs(2 * 86_400));
        let today = hub.day.today().to_string();
        for (hash, channel, amount, count, stand_in) in
            journal::day_totals(&hub.store, &today, two_days_ago)?
        {
            if let (Ok(key), Ok(day)) = (CardKey::try_from(hash.as_slice()), today.parse()) {
                let channel = LimitChannel::of_journal(&channel);
                hub.counters.apply(&key, channel, day, amount, count as i32);
                if stand_in {
                    hub.offline.apply(&key, channel, day, amount, count as i32);
                }
            }
        }
        Ok(hub)
    }

    /// Online calls a stopped hub left under way (`kill -9`, power loss):
    /// nobody knows whether the account system applied them, so each is
    /// journaled with its intent's decision (96, what a repeat or a
    /// reversal from the switch then finds) and a Reverse is queued for it,
    /// under an id of its own, in one transaction. The Reverse waits until
    /// the call could no longer be under way at the account system (the
    /// late-answer window after its arrival), so it cannot overtake it.
    fn reverse_interrupted_calls(&self) -> Result<(), crate::store::StoreError> {
        let ids = self.ids.clone();
        let store = self.store.clone();
        // Start-up, possibly on a runtime worker (where tokio refuses a
        // blocking wait): the one write waits on a thread of its own.
        let recover = move || {
            store.write_blocking(move |c| {
                let calls = journal::journal_interrupted(c)?;
                for call in &calls {
                    let item = NewItem::after_call(
                        Operation::Reverse,
                        call.txn_id,
                        ids.next(),
                        call.institution.clone(),
                        call.account.clone(),
                        Some(call.received_at_us + LATE_LISTEN.as_micros() as i64),
                    );
                    saf::enqueue(c, &item)?;
                }
                Ok(calls)
            })
        };
        let calls = std::thread::scope(|scope| scope.spawn(recover).join())
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        for call in calls {
            warn!(
                txn_id = %call.txn_id,
                institution = call.institution,
                "account-system call interrupted by a stop: outcome unknown, reversal queued"
            );
        }
        Ok(())
    }

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

    /// Each institution's account system, where one is configured.
    pub fn account_systems(&self) -> impl Iterator<Item = (&str, &Arc<dyn AccountSystem>)> {
        self.routes.values().filter_map(|r| {
            r.account_system
                .as_ref()
                .map(|s| (r.institution.as_str(), s))
        })
    }

    async fn decide(&self, request: &Request) -> Message {
        let msg = &request.message;
        let keys = mapping::switch_keys(msg);
        let txn_id = self.ids.next();
        // A retransmission waits for, or finds, its original's decision.
        let sender = match self.claim(&keys) {
            Claim::Mine(sender) => sender,
            Claim::InFlight(mut rx) => {
                let decision = rx
                    .wait_for(Option::is_some)
                    .await
                    .ok()
                    .and_then(|d| d.clone());
                return self.repeat_answer(request, &keys, txn_id, decision).await;
            }
        };
        let done = Done {
            keys: &keys,
            in_flight: &self.in_flight,
        };
        let answered = if self.seen.may_contain(&keys) {
            journal::answered(&self.store, &keys)
        } else {
            Ok(None)
        };
        // Whether it repeats an answered request cannot be told: nothing
        // is decided (nor the account system asked) without knowing.
        let unreadable = answered.as_ref().err().map(|e| self.unreadable(e));
        if let Ok(Some(first)) = answered {
            if same_content(msg, &first) {
                let _ = sender.send(Some(first.decision.clone()));
                drop(done);
                return self
                    .record_repeat(request, &keys, txn_id, Some(first.txn_id), first.decision)
                    .await;
            }
            // Same keys, other amount or card: not a retransmission.
            return self
                .refuse_duplicate(request, &keys, txn_id, first.txn_id, sender)
                .await;
        }
        let (outcome, canonical) = match (
            unreadable,
            mapping::to_canonical(msg, request.received, request.deadline),
        ) {
            (_, Err(e)) => (Outcome::rule(e.code(), e.to_string()), None),
            (Some(refusal), Ok(c)) => (refusal, Some(c)),
            (None, Ok(c)) => {
                let outcome = match c.role {
                    MessageRole::Request => {
                        self.authorize(request, &c, txn_id, sender.subscribe())
                            .await
                    }
                    MessageRole::Advice => self.advice(&c, txn_id).await,
                    MessageRole::Reversal { advice } => self.reverse(&c, txn_id, advice).await,
                };
                (outcome, Some(c))
            }
        };
        let entry = self.entry(request, &keys, txn_id, &outcome, canonical.as_ref());
        let (decision, journaled) = self
            .durably(entry, outcome.decision, outcome.effects, outcome.intent)
            .await;
        if journaled {
            self.seen.insert(&keys);
        }
        let _ = sender.send(Some(decision.clone()));
        drop(done);
        let currency = outcome.card.as_ref().map(|c| c.currency);
        mapping::to_answer(msg, &decision, currency)
    }

    /// The decision to answer once its journal row is durable, and whether
    /// it is: when the row cannot be written the answer is 96, never an
    /// approval that is not on disk.
    async fn durably(
        &self,
        entry: JournalEntry,
        decision: Decision,
        effects: Effects,
        intent: bool,
    ) -> (Decision, bool) {
        let movement = effects
            .movement
            .as_ref()
            .map(|m| (m.institution.clone(), m.account.clone(), m.txn_id));
        let wake = effects.saf.as_ref().map(|i| i.institution.clone());
        let labels = (
            entry.mti.clone(),
            entry.institution.clone(),
            entry.latency_us,
        );
        let written = self
            .store
            .write(move |c| {
                journal::insert(c, &entry)?;
                if intent {
                    journal::clear_intent(c, entry.txn_id)?;
                }
                effects.write(c)
            })
            .await;
        let answered = match written {
            Ok(()) => {
                if let Some(inst) = wake.and_then(|id| self.institutions.get(&id)) {
                    inst.saf_wake.notify_one();
                }
                (decision, true)
            }
            Err(e) => {
                if let Some((institution, account, txn_id)) = movement {
                    self.book.forget(&institution, &account, txn_id);
                }
                error!(error = %e, "journal write failed; answering 96");
                (
                    Decision::rule(codes::SYSTEM_ERROR, "journal write failed"),
                    false,
                )
            }
        };
        let (mti, institution, latency_us) = labels;
        self.observe(&mti, institution.as_deref(), latency_us, &answered.0);
        answered
    }

    /// Counts an answered request for `/metrics`.
    fn observe(&self, mti: &str, institution: Option<&str>, latency_us: i64, decision: &Decision) {
        self.metrics.request(
            mti,
            decision.code.as_str(),
            decision.decided_by.as_str(),
            institution.unwrap_or("none"),
            latency_us as f64 / 1e6,
        );
    }

    /// Registers a request as in flight, or finds the one it repeats.
    fn claim(&self, keys: &SwitchKeys) -> Claim {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = map.get(keys) {
            return Claim::InFlight(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        map.insert(keys.clone(), rx);
        Claim::Mine(tx)
    }

    /// Answers a retransmission of a request decided while it waited.
    async fn repeat_answer(
        &self,
        request: &Request,
        keys: &SwitchKeys,
        txn_id: TxnId,
        decision: Option<Decision>,
    ) -> Message {
        let decision = decision
            .unwrap_or_else(|| Decision::rule(codes::SYSTEM_ERROR, "original decision lost"));
        let original = journal::answered(&self.store, keys)
            .ok()
            .flatten()
            .map(|first| first.txn_id);
        self.record_repeat(request, keys, txn_id, original, decision)
            .await
    }

    /// Declines (94) a request that reuses another's switch keys with other content.
    async fn refuse_duplicate(
        &self,
        request: &Request,
        keys: &SwitchKeys,
        txn_id: TxnId,
        first: TxnId,
        sender: watch::Sender<Option<Decision>>,
    ) -> Message {
        let canonical =
            mapping::to_canonical(&request.message, request.received, request.deadline).ok();
        let outcome = Outcome {
            card: canonical.as_ref().and_then(|c| self.cards.lookup(&c.pan)),
            original_txn_id: Some(first),
            ..Outcome::rule(
                codes::DUPLICATE,
                "duplicate transmission: switch keys of another request, other amount or card",
            )
        };
        let entry = self.entry(request, keys, txn_id, &outcome, canonical.as_ref());
        let entry = JournalEntry {
            entry: Entry::Retransmission,
            ..entry
        };
        let (decision, _) = self
            .durably(entry, outcome.decision, Effects::default(), false)
            .await;
        let _ = sender.send(Some(decision.clone()));
        mapping::to_answer(&request.message, &decision, None)
    }

    /// Journals a retransmission and answers it with the original decision.
    async fn record_repeat(
        &self,
        request: &Request,
        keys: &SwitchKeys,
        txn_id: TxnId,
        original_txn_id: Option<TxnId>,
        decision: Decision,
    ) -> Message {
        let card = mapping::to_canonical(&request.message, request.received, request.deadline)
            .ok()
            .and_then(|c| self.cards.lookup(&c.pan));
        let outcome = Outcome {
            decision: decision.clone(),
            card,
            original_txn_id,
            entry: Entry::Retransmission,
            ..Outcome::rule(codes::APPROVED, "")
        };
        let entry = self.entry(request, keys, txn_id, &outcome, None);
        self.observe(
            &entry.mti,
            entry.institution.as_deref(),
            entry.latency_us,
            &decision,
        );
        if let Err(e) = journal::append(&self.store, entry).await {
            warn!(error = %e, "retransmission not journaled");
        }
        let currency = outcome.card.as_ref().map(|c| c.currency);
        mapping::to_answer(&request.message, &decision, currency)
    }

    /// 0100 / 0200: card checks, limits, route, then the account system —
    /// or stand-in when the institution is not open or its system fails.
    async fn authorize(
        &self,
        request: &Request,
        c: &CanonicalRequest,
        txn_id: TxnId,
        decided: watch::Receiver<Option<Decision>>,
    ) -> Outcome {
        let card = match self.check_card(c) {
            Ok(card) => card,
            Err(refusal) => return refusal.into(),
        };
        let day = self.day.today();
        let reservation = if c.kind.is_debit() {
            match self.reserve(&card, c, day) {
                Ok(r) => Some(r),
                Err(refusal) => return refusal.into(),
            }
        } else {
            None
        };
        let Some(institution) = self.institutions.get(&card.institution).cloned() else {
            let reason = format!("institution {:?} not configured", card.institution);
            if let Some(r) = reservation {
                self.counters.release(r);
            }
            return Refusal::new(codes::ISSUER_UNAVAILABLE, reason, Some(&card)).into();
        };
        let system = self.route(&card).cloned();
        let mut intent = false;
        let (decision, effects) = match (&system, institution.state()) {
            (Some(system), state) if state.is_online() => {
                // Its intent, if written, is cleared with the decision's row
                // (clearing one that was not written changes nothing).
                intent = true;
                self.call_online(
                    request,
                    c,
                    &card,
                    txn_id,
                    &institution,
                    system,
                    decided,
                    day,
                )
                .await
            }
            (_, state) => {
                let why = match system {
                    None => format!("institution {state}, no account system"),
                    Some(_) => format!("institution {state}"),
                };
                {
                    let tell = if system.is_some() {
                        Tell::MoneyMoves
                    } else {
                        Tell::Nothing
                    };
                    self.stand_in(c, &card, txn_id, &institution, tell, &why)
                }
            }
        };
        let counted = match (reservation, decision.approved()) {
            (Some(r), true) => {
                self.counters.keep(r);
                (c.amount.minor as i64, 1)
            }
            (Some(r), false) => {
                self.counters.release(r);
                (0, 0)
            }
            (None, _) => (0, 0),
        };
        Outcome {
            decision,
            card: Some(card),
            counted,
            business_day: Some(day.to_string()),
            effects,
            intent,
            ..Outcome::rule(codes::APPROVED, "")
        }
    }

    /// The account system's decision on a request, or stand-in's when it
    /// fails or is late. A call intent is recorded durably before the call,
    /// so a hub stopped under way reverses the call at its next start;
    /// without that record nothing is sent: 96.
    #[allow(clippy::too_many_arguments)]
    async fn call_online(
        &self,
        link_request: &Request,
        c: &CanonicalRequest,
        card: &Arc<Card>,
        txn_id: TxnId,
        institution: &Arc<Institution>,
        system: &Arc<dyn AccountSystem>,
        decided: watch::Receiver<Option<Decision>>,
        day: jiff::civil::Date,
    ) -> (Decision, Effects) {
        let unknown = Outcome {
            decision: Decision {
                adapter: Some(system.name().to_string()),
                ..Decision::rule(
                    codes::SYSTEM_ERROR,
                    "the hub stopped during the account-system call: outcome unknown; reversal queued",
                )
            },
            card: Some(card.clone()),
            business_day: Some(day.to_string()),
            ..Outcome::rule(codes::SYSTEM_ERROR, "")
        };
        let intent = self.entry(link_request, &c.keys, txn_id, &unknown, Some(c));
        if let Err(e) = self
            .store
            .write(move |w| journal::record_intent(w, &intent))
            .await
        {
            error!(error = %e, "call intent not recorded; answering 96");
            let decision = Decision::rule(codes::SYSTEM_ERROR, "call intent not recorded");
            return (decision, Effects::default());
        }
        let mut request = account_request(c, card, txn_id, None, None);
        let reserve = Duration::from_millis(institution.stand_in.reserve_ms);
        request.deadline = c.deadline.checked_sub(reserve).unwrap_or(c.deadline);
        let listen_until = c.deadline + LATE_LISTEN;
        request.listen_until = Some(listen_until);
        // When the call can no longer reach the account system, as wall time
        // (for a SAF item held until then).
        let call_over_us = || {
            let left = listen_until.saturating_duration_since(Instant::now());
            Timestamp::now().as_microsecond() + left.as_micros() as i64
        };
        let late = LateRecorder {
            store: self.store.clone(),
            ids: self.ids.clone(),
            original: txn_id,
            decided,
            wake: institution.clone(),
            tasks: self.late_answers.clone(),
        };
        let started = std::time::Instant::now();
        let answer = call_with_deadline(system.clone(), request, c.kind, late).await;
        let outcome = match &answer {
            Ok(_) => "answered",
            Err(e) => e.kind(),
        };
        let seconds = started.elapsed().as_secs_f64();
        self.metrics.adapter_call(&institution.id, outcome, seconds);
        match answer {
            Ok(answer) => {
                self.institutions
                    .record_success(&institution.id, operation_of(c.kind));
                let decision = decision_from(Ok(answer), system.name());
                let effects = self.online_effects(c, card, txn_id, &decision);
                (decision, effects)
            }
            Err(AccountError::Internal(why)) => {
                // The hub's own failure: 96, not stand-in; the request may
                // have reached the account system, so it is reversed there.
                let decision = Decision {
                    adapter: Some(system.name().to_string()),
                    ..Decision::rule(
                        codes::SYSTEM_ERROR,
                        format!(
                            "hub error during the account-system call ({why}); reversal queued"
                        ),
                    )
                };
                let effects = Effects {
                    saf: Some(NewItem::after_call(
                        Operation::Reverse,
                        txn_id,
                        self.ids.next(),
                        card.institution.clone(),
                        card.account.clone(),
                        Some(call_over_us()),
                    )),
                    ..Effects::default()
                };
                (decision, effects)
            }
            Err(e) => {
                if e.is_unavailability() {
                    self.institutions
                        .record_failure(&institution.id, operation_of(c.kind), &e.to_string())
                        .await;
                }
                let why = format!("account system: {}", redact_pans(&e.to_string()));
                // A request that timed out may still reach the account
                // system: its advice waits until the call has ended.
                let not_before_us = (e == AccountError::Timeout).then(call_over_us);
                let tell = Tell::AfterCall { not_before_us };
                let (mut decision, effects) =
                    self.stand_in(c, card, txn_id, institution, tell, &why);
                decision.adapter = Some(system.name().to_string());
                (decision, effects)
            }
        }
    }

    /// The card checks: known, usable status, not expired, right currency.
    fn check_card(&self, c: &CanonicalRequest) -> Result<Arc<Card>, Refusal> {
        let Some(card) = self.cards.lookup(&c.pan) else {
            return Err(Refusal::new(codes::INVALID_CARD, "unknown card", None));
        };
        let first_load = c.kind == Kind::Load && card.product == Product::Prepaid;
        let refused = match card.status {
            CardStatus::Active => None,
            CardStatus::Inactive if first_load => None,
            CardStatus::Inactive => Some((codes::RESTRICTED, "card not activated")),
            CardStatus::Blocked => Some((codes::RESTRICTED, "card blocked")),
            CardStatus::Lost => Some((codes::LOST, "card reported lost")),
            CardStatus::Stolen => Some((codes::STOLEN, "card reported stolen")),
            CardStatus::Expired => Some((codes::EXPIRED, "card expired")),
            CardStatus::Closed => Some((codes::INVALID_CARD, "card closed")),
        };
        if let Some((code, reason)) = refused {
            return Err(Refusal::new(code, reason, Some(&card)));
        }
        let now = Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC);
        let this_month = ((now.year() % 100) as u8, now.month() as u8);
        if (card.expiry.year, card.expiry.month) < this_month {
            return Err(Refusal::new(codes::EXPIRED, "card expired", Some(&card)));
        }
        if c.expiry.is_some_and(|e| e != card.expiry) {
            return Err(Refusal::new(
                codes::INVALID_CARD,
                "expiry date does not match the card",
                Some(&card),
            ));
        }
        if c.amount.currency != card.currency && c.kind != Kind::BalanceInquiry {
            let reason = format!(
                "transaction currency {} differs from the account currency {}",
                c.amount.currency.code, card.currency.code
            );
            return Err(Refusal::new(codes::NOT_PERMITTED, reason, Some(&card)));
        }
        Ok(card)
    }

    /// Reserves a debit against the card's limits for its channel.
    fn reserve(
        &self,
        card: &Arc<Card>,
        c: &CanonicalRequest,
        day: jiff::civil::Date,
    ) -> Result<Reservation<CardKey>, Refusal> {
        let Some(profile) = self.profiles.get(&card.profile) else {
            let reason = format!("limits profile {:?} not configured", card.profile);
            return Err(Refusal::new(codes::SYSTEM_ERROR, reason, Some(card)));
        };
        let channel = LimitChannel::of(c.channel);
        let limits = channel.limits(profile);
        self.counters
            .reserve(&card.pan_hash.0, channel, day, c.amount.minor, limits)
            .map_err(|b| {
                let (code, reason) = stand_in::breach(b, channel, "");
                Refusal::new(code, reason, Some(card))
            })
    }

    fn route(&self, card: &Card) -> Option<&Arc<dyn AccountSystem>> {
        self.routes
            .get(&card.institution)
            .and_then(|r| r.account_system.as_ref())
    }

    /// 0120 / 0220: the switch decided (its own stand-in, or a completion
    /// of an earlier authorization). Recorded, counted when approved, passed
    /// on to the account system (or queued for it), acknowledged.
    async fn advice(&self, c: &CanonicalRequest, txn_id: TxnId) -> Outcome {
        let Some(card) = self.cards.lookup(&c.pan) else {
            return Outcome::rule(codes::APPROVED, "advice for an unknown card recorded");
        };
        let day = self.day.today();
        let switch_approved = c.advice_code.is_none_or(|code| code.is_approval());
        let mut outcome = Outcome {
            card: Some(card.clone()),
            business_day: Some(day.to_string()),
            ..Outcome::rule(codes::APPROVED, "")
        };
        let completes = match (&c.original, switch_approved && c.kind.is_debit()) {
            (Some(_), true) => match self.find_original(c) {
                Ok(original) => original.filter(|o| o.approved),
                Err(e) => return self.unreadable(&e),
            },
            _ => None,
        };
        if let Some(original) = &completes {
            // A completion: the hold becomes a debit of the final amount;
            // the daily counters already hold the authorization.
            outcome.original_txn_id = Some(original.txn_id);
            let amount = c.amount.minor as i64;
            if let Ok(Some(update)) =
                self.book
                    .complete(&card.institution, &card.account, original.txn_id, amount)
            {
                outcome.effects.movement_update = Some(update);
            }
        } else if switch_approved && c.kind.is_debit() {
            let channel = LimitChannel::of(c.channel);
            self.counters
                .apply(&card.pan_hash.0, channel, day, c.amount.minor as i64, 1);
            outcome.counted = (c.amount.minor as i64, 1);
            let movement = self.movement(c, &card, txn_id, stand_in::SWITCH);
            if self.book.record(movement.clone()).is_ok() {
                outcome.effects.movement = Some(movement);
            }
        }
        let code = c.advice_code.unwrap_or(codes::APPROVED);
        let decision = AdviceDecision {
            code,
            decided_by: Decider::Switch,
            reason: "advice from the switch".into(),
        };
        let request = account_request(c, &card, txn_id, None, Some(decision));
        let (reason, saf) = self
            .deliver_or_queue(Operation::Advice, &card, request, txn_id)
            .await;
        outcome.decision.reason = format!("advice recorded; {reason}");
        // The switch's own decision, for the journal and for a queued advice.
        outcome.decision.raw_code = Some(code.as_str().to_string());
        outcome.effects.saf = saf;
        outcome
    }

    /// 0400 / 0420: undo an earlier transaction, fully or (DE 95) partly.
    async fn reverse(&self, c: &CanonicalRequest, txn_id: TxnId, advice: bool) -> Outcome {
        let card = self.cards.lookup(&c.pan);
        let original = match self.find_original(c) {
            Ok(original) => original,
            Err(e) => return self.unreadable(&e),
        };
        let Some(original) = original else {
            return match advice {
                false => Outcome::rule(codes::ORIGINAL_NOT_FOUND, "original not found"),
                true => Outcome {
                    entry: Entry::OrphanReversal,
                    card,
                    ..Outcome::rule(codes::APPROVED, "original not found; recorded as orphan")
                },
            };
        };
        let mut outcome = Outcome {
            card: card.clone(),
            business_day: Some(original.business_day.clone()),
            original_txn_id: Some(original.txn_id),
            ..Outcome::rule(
                codes::APPROVED,
                "reversal of a declined original: nothing to undo",
            )
        };
        if !original.approved {
            return outcome;
        }
        let done = match journal::reversed_so_far(&self.store, original.txn_id) {
            Ok(done) => done,
            Err(e) => return self.unreadable(&e),
        };
        let remaining = (original.amount_minor - done).max(0);
        let wanted = match c.replacement {
            Some(actual) => original.amount_minor - actual as i64,
            None => original.amount_minor,
        };
        let undo = wanted.min(remaining).max(0);
        if undo == 0 {
            outcome.decision.reason = "already reversed".into();
            return outcome;
        }
        let fully = done + undo >= original.amount_minor;
        let count = if fully { -original.counted_count } else { 0 };
        if let (Some(hash), Ok(day)) = (
            original
                .pan_hash
                .as_deref()
                .and_then(|h| CardKey::try_from(h).ok()),
            original.business_day.parse(),
        ) && original.kind != "load"
            && original.kind != "refund"
        {
            let channel = LimitChannel::of_journal(&original.channel);
            self.counters.apply(&hash, channel, day, -undo, count);
            if original.decided_by == DecidedBy::StandIn.as_str() {
                self.offline.apply(&hash, channel, day, -undo, count);
            }
            outcome.counted = (-undo, count);
        }
        if let (Some(institution), Some(account)) = (&original.institution, &original.account)
            && let Ok(Some(update)) = self
                .book
                .reverse(institution, account, original.txn_id, undo)
        {
            outcome.effects.movement_update = Some(update);
        }
        outcome.decision.reason = match &card {
            Some(card) => {
                let mut request = account_request(c, card, txn_id, Some(original.txn_id), None);
                request.amount.minor = undo as u64;
                let (told, saf) = self
                    .deliver_or_queue(Operation::Reverse, card, request, txn_id)
                    .await;
                outcome.effects.saf = saf;
                format!("reversed {undo}; {told}")
            }
            None => format!("reversed {undo}; card no longer known, account system not told"),
        };
        // A reversal row's amount is what it undid.
        outcome.reversal = Some(undo);
        outcome
    }

    /// The journaled original a reversal or completion refers to.
    fn find_original(
        &self,
        c: &CanonicalRequest,
    ) -> Result<Option<journal::Original>, crate::store::StoreError> {
        if let Some(o) = &c.original {
            return journal::original(
                &self.store,
                o.mti.without_repeat().as_str(),
                &o.transmission_time,
                &o.stan.to_string(),
                &o.acquirer,
            );
        }
        // Without DE 90 the reversal carries the original's own keys.
        for mti in ["0100", "0200"] {
            let found = journal::original(
                &self.store,
                mti,
                &c.keys.transmission_time,
                &c.keys.stan,
                &c.keys.acquirer,
            )?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// A journal read failed: the request is answered 96 (the hub's
    /// error, counted), never decided as if the read had found nothing.
    fn unreadable(&self, e: &crate::store::StoreError) -> Outcome {
        error!(error = %e, "journal not readable; answering 96");
        self.metrics.store_read_error();
        Outcome::rule(codes::SYSTEM_ERROR, format!("journal not readable: {e}"))
    }

    fn entry(
        &self,
        request: &Request,
        keys: &SwitchKeys,
        txn_id: TxnId,
        outcome: &Outcome,
        c: Option<&CanonicalRequest>,
    ) -> JournalEntry {
        let msg = &request.message;
        let card = outcome.card.as_deref();
        let amount_minor = outcome
            .reversal
            .unwrap_or_else(|| c.map_or(0, |c| c.amount.minor as i64));
        JournalEntry {
            txn_id,
            entry: outcome.entry,
            received_at_us: Timestamp::now().as_microsecond()
                - request.received.elapsed().as_micros() as i64,
            business_day: outcome
                .business_day
                .clone()
                .unwrap_or_else(|| self.day.today().to_string()),
            switch: request.origin.switch.clone(),
            mti: keys.mti.to_string(),
            is_repeat: msg.mti().is_repeat(),
            kind: c.map_or("unknown", |c| c.kind.as_str()),
            channel: c.map_or("other", |c| c.channel.as_str()),
            pan_hash: card.map(|k| k.pan_hash.0.to_vec()),
            pan_masked: card
                .map(|k| k.pan_masked.clone())
                .or_else(|| msg.pan().ok().map(|p| p.masked())),
            account: card.map(|k| k.account.clone()),
            institution: card.map(|k| k.institution.clone()),
            amount_minor,
            currency: c.map_or(0, |c| c.amount.currency.numeric),
            keys: keys.clone(),
            merchant: c.and_then(|c| c.merchant.clone()),
            mcc: c.and_then(|c| c.mcc),
            decision: outcome.decision.clone(),
            counted_minor: outcome.counted.0,
            counted_count: outcome.counted.1,
            original_txn_id: outcome.original_txn_id,
            latency_us: request.received.elapsed().as_micros() as i64,
        }
    }
}

impl Handler for Hub {
    async fn handle(&self, request: Request) -> Message {
        self.decide(&request).await
    }
}

/// A hub rule's decline, and the card it concerns when known.
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

enum Claim {
    /// This request decides; the sender publishes its decision.
    Mine(watch::Sender<Option<Decision>>),
    /// Another request with the same keys is being decided.
    InFlight(watch::Receiver<Option<Decision>>),
}

/// Removes a request's in-flight entry when it is done, however it ends.
struct Done<'a> {
    keys: &'a SwitchKeys,
    in_flight: &'a InFlight,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(self.keys);
    }
}

/// Whether a request has the amount and card of the journaled one with its keys.
fn same_content(msg: &Message, first: &journal::Answered) -> bool {
    let amount = msg.amount().map_or(0, |a| a.minor_units() as i64);
    let pan = msg.pan().ok().map(|p| p.masked());
    amount == first.amount_minor && (pan.is_none() || pan == first.pan_masked)
}
