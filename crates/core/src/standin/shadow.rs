//! Shadow balances: cardhub's own estimate of each account's available
//! balance, for deciding in stand-in.
//!
//! An account's shadow balance is its freshest known balance — the current
//! balance file's row, or the balance its account system returned in an
//! online answer, whichever is newer — minus every debit and open hold
//! approved after that balance's as-of time, plus credits once the account
//! system has confirmed them. Holds expire; an expired hold no longer counts
//! but is kept (it is reported as expired and still takes a late completion).
//!
//! The book keeps the accounts it has touched in memory, so a stand-in
//! check and its hold are one atomic step within one hub; the store has
//! every movement (written in the same transaction as its journal row) and
//! the balances, and an account is loaded from it on first use.
//!
//! Several hub instances on one store each have their own book, which does
//! not see the others' movements: a hold the book made is checked again
//! with [`verify_hold`] in the store transaction that writes it, under the
//! account's row lock, by the same code reading the account from the store
//! — so two instances never approve the same last money twice. A hold the
//! store refuses becomes a decline, and the account is evicted from the
//! book to be read again.

use crate::store::sql;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Mutex, RwLock};

use crate::store::sql::{Connection, OptionalExtension, params};

pub use super::movements::{
    MovementUpdate, confirm_credit, insert_movement, update_movement, upsert_online_balance,
};

use crate::journal::txn_id::TxnId;
use crate::standin::balances::CurrentFile;
use crate::store::{Store, StoreError};

const SHARDS: usize = 64;

/// What a movement does to the balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementKind {
    /// An authorization (0100): counts until completed, reversed or expired.
    Hold,
    /// A financial transaction (0200) or completion: counts until reversed.
    Debit,
    /// A load or refund: counts once the account system confirmed it.
    Credit,
}

impl MovementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Hold => "hold",
            MovementKind::Debit => "debit",
            MovementKind::Credit => "credit",
        }
    }

    fn parse(s: &str) -> MovementKind {
        match s {
            "hold" => MovementKind::Hold,
            "credit" => MovementKind::Credit,
            _ => MovementKind::Debit,
        }
    }
}

/// Where a movement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovementState {
    /// A hold or debit in force (a hold past its expiry is reported expired).
    Open,
    /// A hold an advice completed: now a debit of the completed amount.
    Completed,
    /// Wholly reversed.
    Reversed,
    /// A credit the account system has not confirmed yet.
    Pending,
    /// A credit the account system confirmed.
    Confirmed,
}

impl MovementState {
    pub fn as_str(self) -> &'static str {
        match self {
            MovementState::Open => "open",
            MovementState::Completed => "completed",
            MovementState::Reversed => "reversed",
            MovementState::Pending => "pending",
            MovementState::Confirmed => "confirmed",
        }
    }

    fn parse(s: &str) -> MovementState {
        match s {
            "completed" => MovementState::Completed,
            "reversed" => MovementState::Reversed,
            "pending" => MovementState::Pending,
            "confirmed" => MovementState::Confirmed,
            _ => MovementState::Open,
        }
    }
}

/// One approved movement of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub txn_id: TxnId,
    pub institution: String,
    pub account: String,
    pub kind: MovementKind,
    pub amount: i64,
    /// What still counts after reversals and completion.
    pub remaining: i64,
    /// `account_system`, `stand_in` or `switch`.
    pub approved_by: &'static str,
    pub created_us: i64,
    pub expires_us: Option<i64>,
    pub state: MovementState,
}

impl Movement {
    /// Its effect on the available balance at `now_us` (negative for debits).
    fn effect(&self, now_us: i64) -> i64 {
        match (self.kind, self.state) {
            (MovementKind::Hold, MovementState::Open) => {
                if self.expires_us.is_some_and(|e| now_us >= e) {
                    0
                } else {
                    -self.remaining
                }
            }
            (
                MovementKind::Hold | MovementKind::Debit,
                MovementState::Open | MovementState::Completed,
            ) => -self.remaining,
            (MovementKind::Credit, MovementState::Confirmed) => self.remaining,
            _ => 0,
        }
    }

    /// Its remaining amount and state, to write.
    fn update(&self) -> MovementUpdate {
        MovementUpdate {
            institution: self.institution.clone(),
            account: self.account.clone(),
            txn_id: self.txn_id,
            remaining: self.remaining,
            state: self.state,
        }
    }

    /// The state shown to operators: an open hold past its expiry is expired.
    pub fn shown_state(&self, now_us: i64) -> &'static str {
        match (self.kind, self.state, self.expires_us) {
            (MovementKind::Hold, MovementState::Open, Some(e)) if now_us >= e => "expired",
            _ => self.state.as_str(),
        }
    }
}

/// A known balance and when it was true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base {
    pub available: i64,
    pub as_of_us: i64,
}

/// An account's shadow balance right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shadow {
    pub available: i64,
    /// As-of time of the balance it starts from.
    pub as_of_us: i64,
}

#[derive(Debug, Default)]
struct Account {
    file: Option<Base>,
    /// The institution's file generation `file` was read under.
    file_generation: u64,
    online: Option<Base>,
    /// Movements after the newest balance's as-of (older ones are in it).
    movements: Vec<Movement>,
    /// The movements' sum, while it holds: an approval adds to it; anything
    /// else (a new balance, a reversal, a hold expiring) recomputes it.
    sum: Option<Sum>,
}

/// The movements' effect on the balance, valid for one base and until the
/// next counted hold expires.
#[derive(Debug, Clone, Copy)]
struct Sum {
    as_of_us: i64,
    moved: i64,
    valid_until_us: i64,
}

impl Account {
    fn base(&self) -> Option<Base> {
        match (self.file, self.online) {
            (Some(f), Some(o)) => Some(if o.as_of_us > f.as_of_us { o } else { f }),
            (f, o) => f.or(o),
        }
    }

    fn shadow(&mut self, now_us: i64) -> Option<Shadow> {
        let base = self.base()?;
        let sum = match self.sum {
            Some(sum) if sum.as_of_us == base.as_of_us && now_us < sum.valid_until_us => sum,
            _ => {
                let counted = self
                    .movements
                    .iter()
                    .filter(|m| m.created_us > base.as_of_us);
                let sum = Sum {
                    as_of_us: base.as_of_us,
                    moved: counted.clone().map(|m| m.effect(now_us)).sum(),
                    valid_until_us: counted
                        .filter(|m| m.effect(now_us) != 0)
                        .filter_map(|m| m.expires_us)
                        .min()
                        .unwrap_or(i64::MAX),
                };
                self.sum = Some(sum);
                sum
            }
        };
        Some(Shadow {
            available: base.available + sum.moved,
            as_of_us: base.as_of_us,
        })
    }

    /// Adds a movement, keeping the sum when it holds.
    fn push(&mut self, m: Movement, now_us: i64) {
        let base = self.base();
        if let (Some(sum), Some(base)) = (&mut self.sum, base)
            && sum.as_of_us == base.as_of_us
            && m.created_us > base.as_of_us
        {
            sum.moved += m.effect(now_us);
            if let Some(expires) = m.expires_us.filter(|_| m.effect(now_us) != 0) {
                sum.valid_until_us = sum.valid_until_us.min(expires);
            }
        }
        self.movements.push(m);
    }

    /// A movement to change: the sum is recomputed afterwards.
    fn movement(&mut self, txn_id: TxnId) -> Option<&mut Movement> {
        self.sum = None;
        self.movements.iter_mut().find(|m| m.txn_id == txn_id)
    }

    /// A new balance: movements before it are in it.
    fn rebased(&mut self) {
        self.sum = None;
        if let Some(base) = self.base() {
            self.movements.retain(|m| m.created_us > base.as_of_us);
        }
    }
}

type Key = (String, String);

/// The shadow balances of the accounts in use.
pub struct ShadowBook {
    store: Store,
    shards: Vec<Mutex<HashMap<Key, Account>>>,
    /// Per institution: bumped when a new balance file becomes current.
    generations: RwLock<HashMap<String, u64>>,
    /// Per institution: the current balance file last seen in the store
    /// (its as-of and applied times), to notice files other processes
    /// made current.
    seen_files: Mutex<HashMap<String, (i64, Option<i64>)>>,
}

/// Why a stand-in debit does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No balance known for the account.
    NoBalance,
    /// The shadow balance is short (what it is).
    Short(Shadow),
    /// The policy refused (stale balance, floor limit), and why.
    Policy(String),
}

impl ShadowBook {
    pub fn new(store: Store) -> ShadowBook {
        ShadowBook {
            store,
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generations: RwLock::default(),
            seen_files: Mutex::default(),
        }
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, Account>> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn generation(&self, institution: &str) -> u64 {
        self.generations
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(institution)
            .copied()
            .unwrap_or(0)
    }

    /// A new balance file became current: its accounts re-read their file
    /// balance on next use (movements stay).
    pub fn file_applied(&self, institution: &str) {
        *self
            .generations
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(institution.to_string())
            .or_default() += 1;
    }

    /// The institutions' current balance files as read from the store:
    /// each institution whose file is not the one last seen (made current by
    /// another process, or not seen before) re-reads its file balances as
    /// [`ShadowBook::file_applied`]. Returns how many institutions changed.
    pub fn files_current(&self, current: &[CurrentFile]) -> usize {
        let mut seen = self.seen_files.lock().unwrap_or_else(|p| p.into_inner());
        let mut changed = 0;
        for file in current {
            let now = (file.as_of_us, file.applied_us);
            if seen.insert(file.institution.clone(), now) != Some(now) {
                self.file_applied(&file.institution);
                changed += 1;
            }
        }
        changed
    }

    /// Runs `f` on an account, loading it from the store first when needed.
    ///
    /// # Errors
    /// The store's error when the account cannot be loaded.
    fn with_account<R>(
        &self,
        institution: &str,
        account: &str,
        f: impl FnOnce(&mut Account) -> R,
    ) -> Result<R, StoreError> {
        let key = (institution.to_string(), account.to_string());
        let generation = self.generation(institution);
        let fresh = {
            let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
            shard
                .get(&key)
                .is_some_and(|a| a.file_generation == generation)
        };
        if !fresh {
            let known = {
                let shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
                shard.contains_key(&key)
            };
            if known {
                let file = self.store.read(|c| file_balance(c, institution, account))?;
                let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
                if let Some(a) = shard.get_mut(&key) {
                    a.file = file;
                    a.file_generation = generation;
                    a.rebased();
                }
            } else {
                let loaded = self
                    .store
                    .read(|c| load_account(c, institution, account, generation))?;
                let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
                shard.entry(key.clone()).or_insert(loaded);
            }
        }
        let mut shard = self.shard(&key).lock().unwrap_or_else(|p| p.into_inner());
        let account = shard.entry(key).or_default();
        Ok(f(account))
    }

    /// The account's shadow balance now (`None` when no balance is known).
    ///
    /// # Errors
    /// The store's error.
    pub fn shadow(
        &self,
        institution: &str,
        account: &str,
        now_us: i64,
    ) -> Result<Option<Shadow>, StoreError> {
        self.with_account(institution, account, |a| a.shadow(now_us))
    }

    /// Holds `movement` against the shadow balance if `policy` finds no
    /// reason to refuse and the amount fits: the check and the hold are one
    /// step, so two stand-in debits cannot both spend the same money.
    ///
    /// # Errors
    /// The store's error (nothing is held then).
    pub fn hold_if(
        &self,
        movement: Movement,
        now_us: i64,
        policy: impl FnOnce(Shadow) -> Option<String>,
    ) -> Result<Result<Shadow, Refused>, StoreError> {
        let (institution, account) = (movement.institution.clone(), movement.account.clone());
        self.with_account(&institution, &account, |a| {
            let Some(shadow) = a.shadow(now_us) else {
                return Err(Refused::NoBalance);
            };
            if let Some(reason) = policy(shadow) {
                return Err(Refused::Policy(reason));
            }
            fits(shadow, &movement)?;
            a.push(movement, now_us);
            Ok(shadow)
        })
    }

    /// Forgets an account: its next use reads it from the store again,
    /// with every instance's movements (after the store refused a hold the
    /// book had made: another instance spent the money).
    pub fn evict(&self, institution: &str, account: &str) {
        let key = (institution.to_string(), account.to_string());
        self.shard(&key)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
    }

    /// Records a movement approved elsewhere (online, or by the switch).
    ///
    /// # Errors
    /// The store's error.
    pub fn record(&self, movement: Movement) -> Result<(), StoreError> {
        let (institution, account) = (movement.institution.clone(), movement.account.clone());
        self.with_account(&institution, &account, |a| {
            a.push(movement, jiff::Timestamp::now().as_microsecond());
        })
    }

    /// Takes back a movement whose journal row could not be written.
    pub fn forget(&self, institution: &str, account: &str, txn_id: TxnId) {
        let _ = self.with_account(institution, account, |a| {
            a.sum = None;
            a.movements.retain(|m| m.txn_id != txn_id);
        });
    }

    /// The balance an account system returned in an online answer.
    ///
    /// # Errors
    /// The store's error.
    pub fn online_balance(
        &self,
        institution: &str,
        account: &str,
        base: Base,
    ) -> Result<(), StoreError> {
        self.with_account(institution, account, |a| {
            if a.online.is_none_or(|o| o.as_of_us <= base.as_of_us) {
                a.online = Some(base);
                a.rebased();
            }
        })
    }

    /// Undoes `amount` of a movement (a reversal); returns its new remaining
    /// amount and state, or `None` when the movement is not known.
    ///
    /// # Errors
    /// The store's error.
    pub fn reverse(
        &self,
        institution: &str,
        account: &str,
        txn_id: TxnId,
        amount: i64,
    ) -> Result<Option<MovementUpdate>, StoreError> {
        self.change(institution, account, txn_id, |m| {
            m.remaining = (m.remaining - amount).max(0);
            if m.remaining == 0 {
                m.state = MovementState::Reversed;
            }
        })
    }

    /// Completes a hold with its final amount (also after it expired).
    ///
    /// # Errors
    /// The store's error.
    pub fn complete(
        &self,
        institution: &str,
        account: &str,
        txn_id: TxnId,
        amount: i64,
    ) -> Result<Option<MovementUpdate>, StoreError> {
        self.change(institution, account, txn_id, |m| {
            m.remaining = amount;
            m.state = MovementState::Completed;
        })
    }

    /// Changes a known movement; its new remaining amount and state to write.
    fn change(
        &self,
        institution: &str,
        account: &str,
        txn_id: TxnId,
        f: impl FnOnce(&mut Movement),
    ) -> Result<Option<MovementUpdate>, StoreError> {
        self.with_account(institution, account, |a| {
            let m = a.movement(txn_id)?;
            f(m);
            Some(m.update())
        })
    }

    /// A credit the account system acknowledged now counts.
    ///
    /// # Errors
    /// The store's error.
    pub fn confirm_credit(
        &self,
        institution: &str,
        account: &str,
        txn_id: TxnId,
    ) -> Result<bool, StoreError> {
        self.with_account(institution, account, |a| match a.movement(txn_id) {
            Some(m) if m.state == MovementState::Pending => {
                m.state = MovementState::Confirmed;
                true
            }
            _ => false,
        })
    }
}

/// Whether `movement` fits the shadow balance.
fn fits(shadow: Shadow, movement: &Movement) -> Result<(), Refused> {
    if shadow.available < movement.remaining {
        return Err(Refused::Short(shadow));
    }
    Ok(())
}

/// Re-checks a stand-in hold the book made, in the store transaction that
/// is to write it (before [`insert_movement`]): takes the account's row in
/// `shadow_account_locks` (an upsert: on PostgreSQL the row stays locked
/// until commit, so another instance's check of the same account waits;
/// SQLite's single writer serialises them anyway), then reads the account
/// from the store with every instance's movements and computes its shadow
/// balance at `now_us` with the book's own code. `Ok(Ok(shadow))`: the
/// hold still fits; otherwise why not.
///
/// # Errors
/// The database's error.
pub fn verify_hold(
    c: &Connection,
    movement: &Movement,
    now_us: i64,
) -> sql::Result<Result<Shadow, Refused>> {
    let (institution, account) = (&movement.institution, &movement.account);
    c.prepare_cached(
        "INSERT INTO shadow_account_locks (institution, account, checks) VALUES (?1, ?2, 1) \
         ON CONFLICT (institution, account) DO UPDATE SET checks = shadow_account_locks.checks + 1",
    )?
    .execute(params![institution, account])?;
    let mut stored = load_account(c, institution, account, 0)?;
    Ok(match stored.shadow(now_us) {
        None => Err(Refused::NoBalance),
        Some(shadow) => fits(shadow, movement).map(|()| shadow),
    })
}

/// The account's balance in the institution's current balance file.
fn file_balance(c: &Connection, institution: &str, account: &str) -> sql::Result<Option<Base>> {
    c.prepare_cached(
        "SELECT b.available_minor, f.as_of_us FROM balance_files f \
         JOIN file_balances b ON b.file_id = f.file_id AND b.account = ?2 \
         WHERE f.institution = ?1 AND f.state = 'current'",
    )?
    .query_row(params![institution, account], |r| {
        Ok(Base {
            available: r.get(0)?,
            as_of_us: r.get(1)?,
        })
    })
    .optional()
}

/// An account as the store has it: its file and online balances and the
/// movements after the newer one (every movement when it has none).
fn load_account(
    c: &Connection,
    institution: &str,
    account: &str,
    file_generation: u64,
) -> sql::Result<Account> {
    let file = file_balance(c, institution, account)?;
    let online = c
        .prepare_cached(
            "SELECT available_minor, as_of_us FROM online_balances WHERE institution = ?1 AND account = ?2",
        )?
        .query_row(params![institution, account], |r| {
            Ok(Base {
                available: r.get(0)?,
                as_of_us: r.get(1)?,
            })
        })
        .optional()?;
    let mut loaded = Account {
        file,
        file_generation,
        online,
        movements: Vec::new(),
        sum: None,
    };
    // A movement's created_us is its txn_id's time: older ones are in the
    // balance, and the key's range skips them.
    let first = loaded
        .base()
        .map_or(i64::MIN, |b| TxnId::after_micros(b.as_of_us).0);
    loaded.movements = c
        .prepare_cached(
            "SELECT txn_id, kind, amount_minor, remaining_minor, approved_by, created_us, expires_us, state \
             FROM movements WHERE institution = ?1 AND account = ?2 AND txn_id >= ?3 ORDER BY txn_id",
        )?
        .query_map(params![institution, account, first], |r| {
            let approved_by: String = r.get(4)?;
            Ok(Movement {
                txn_id: TxnId(r.get(0)?),
                institution: institution.to_string(),
                account: account.to_string(),
                kind: MovementKind::parse(&r.get::<String>(1)?),
                amount: r.get(2)?,
                remaining: r.get(3)?,
                approved_by: approver(&approved_by),
                created_us: r.get(5)?,
                expires_us: r.get(6)?,
                state: MovementState::parse(&r.get::<String>(7)?),
            })
        })?
        .collect::<sql::Result<Vec<_>>>()?;
    loaded.rebased();
    Ok(loaded)
}

/// The static name of a stored approver.
fn approver(s: &str) -> &'static str {
    match s {
        "account_system" => "account_system",
        "stand_in" => "stand_in",
        _ => "switch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movement(txn: i64, kind: MovementKind, amount: i64, created_us: i64) -> Movement {
        Movement {
            txn_id: TxnId(txn),
            institution: "B".into(),
            account: "A".into(),
            kind,
            amount,
            remaining: amount,
            approved_by: "stand_in",
            created_us,
            expires_us: (kind == MovementKind::Hold).then_some(created_us + 100),
            state: if kind == MovementKind::Credit {
                MovementState::Pending
            } else {
                MovementState::Open
            },
        }
    }

    #[test]
    fn shadow_counts_movements_after_the_newest_balance_only() {
        let mut a = Account {
            file: Some(Base {
                available: 10_000,
                as_of_us: 1_000,
            }),
            ..Account::default()
        };
        a.movements.push(movement(1, MovementKind::Debit, 500, 900)); // before the file: in it already
        // Added through `push`, the running sum holds without a recompute.
        assert_eq!(a.shadow(950).unwrap().available, 10_000);
        a.push(movement(2, MovementKind::Debit, 2_000, 1_100), 1_100);
        a.push(movement(3, MovementKind::Hold, 1_000, 1_200), 1_200);
        a.push(movement(4, MovementKind::Credit, 3_000, 1_300), 1_200); // not confirmed yet
        assert_eq!(a.shadow(1_250).unwrap().available, 7_000);
        // The hold expires at 1_300: it no longer counts, and shows as expired.
        assert_eq!(a.shadow(1_300).unwrap().available, 8_000);
        assert_eq!(a.movements[2].shown_state(1_300), "expired");
        a.movement(TxnId(4)).unwrap().state = MovementState::Confirmed;
        assert_eq!(a.shadow(1_300).unwrap().available, 11_000);
        // A newer online balance replaces the file and what came before it.
        a.online = Some(Base {
            available: 4_000,
            as_of_us: 1_250,
        });
        a.rebased();
        assert_eq!(a.shadow(1_300).unwrap().available, 7_000);
        assert_eq!(
            a.movements.len(),
            1,
            "movements before the balance are in it"
        );
    }

    #[test]
    fn completed_and_reversed_holds() {
        let mut a = Account {
            online: Some(Base {
                available: 10_000,
                as_of_us: 0,
            }),
            ..Account::default()
        };
        a.movements.push(movement(1, MovementKind::Hold, 1_000, 10));
        let m = a.movement(TxnId(1)).unwrap();
        m.state = MovementState::Completed;
        m.remaining = 800;
        // A completed hold counts even past the hold's expiry.
        assert_eq!(a.shadow(10_000).unwrap().available, 9_200);
        let m = a.movement(TxnId(1)).unwrap();
        m.state = MovementState::Reversed;
        m.remaining = 0;
        assert_eq!(a.shadow(10_000).unwrap().available, 10_000);
        assert!(Account::default().shadow(0).is_none());
    }
}
