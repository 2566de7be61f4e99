//! The hub's start: its state assembled, calls a stopped hub left under way
//! reversed, the seen-keys filter and the daily counters rebuilt from the
//! journal.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use tokio_util::task::TaskTracker;
use tracing::warn;

use super::{CardKey, Hub, LATE_LISTEN, Route};
use crate::account::Operation;
use crate::cards::config::LimitProfiles;
use crate::cards::registry::CardRegistry;
use crate::hub::limits::{BusinessDay, Counters, LimitChannel};
use crate::hub::seen::{self, SeenKeys};
use crate::journal;
use crate::journal::txn_id::{TxnId, TxnIds};
use crate::standin::config::{HoldsConfig, InstitutionConfig};
use crate::standin::saf::{self, NewItem};
use crate::standin::shadow::ShadowBook;
use crate::standin::state::Institutions;
use crate::store::{Store, sql};

impl Hub {
    /// A hub over a store and card registry, handing out transaction ids
    /// as fleet instance `instance` (0 for a lone hub); daily counters are
    /// rebuilt from today's journal, and calls this instance number left
    /// under way when it stopped are reversed.
    ///
    /// # Errors
    /// The store's error when the journal cannot be read.
    // The hub's parts, each built from its own config section by `app::open`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        cards: Arc<CardRegistry>,
        profiles: LimitProfiles,
        day: BusinessDay,
        routes: Vec<Route>,
        institutions: &[InstitutionConfig],
        holds: HoldsConfig,
        instance: u8,
    ) -> Result<Hub, crate::store::StoreError> {
        let ids = Arc::new(TxnIds::new(instance, journal::highest_id(&store)?));
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
            alone: AtomicBool::new(false),
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
                let calls = journal::journal_interrupted(c, ids.instance())?;
                queue_reversals(c, &ids, &calls)?;
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
}

impl Hub {
    /// Calls whose request ended without its decision journaled, while the
    /// hub runs: their intents, older than [`STALE_INTENT`], are journaled
    /// with their 96 and each call is reversed (as after a stop). Without
    /// this an account system's approval the switch saw as 96 would stand
    /// until this instance's next start. The calls reversed.
    ///
    /// # Errors
    /// The store's error; nothing moved.
    pub async fn reverse_stale_calls(&self) -> Result<usize, crate::store::StoreError> {
        let ids = self.ids.clone();
        let before_us = (Timestamp::now() - STALE_INTENT).as_microsecond();
        let calls = self
            .store
            .write(move |c| {
                let calls = journal::journal_stale_intents(c, ids.instance(), before_us)?;
                queue_reversals(c, &ids, &calls)?;
                Ok(calls)
            })
            .await?;
        for call in &calls {
            warn!(
                txn_id = %call.txn_id,
                institution = call.institution,
                "account-system call whose decision was never journaled: outcome unknown, reversal queued"
            );
        }
        Ok(calls.len())
    }
}

/// How old a call intent is when [`Hub::reverse_stale_calls`] takes its
/// request for ended: far past any switch deadline (seconds) plus the
/// late-answer window after it.
pub const STALE_INTENT: std::time::Duration = std::time::Duration::from_secs(300);

/// Queues a Reverse for each call whose outcome nobody knows, under an id
/// of its own, held until the late-answer window after the request's
/// arrival has passed (so it cannot overtake the call at the account
/// system).
pub(super) fn queue_reversals(
    c: &sql::Connection,
    ids: &TxnIds,
    calls: &[journal::Interrupted],
) -> sql::Result<()> {
    for call in calls {
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
    Ok(())
}
