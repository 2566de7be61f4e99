//! The card registry: cards in the store, and an in-memory snapshot of them
//! that the hub looks every request's card up in.
//!
//! Concurrency roles:
//! - **lookup** (every authorization): hashes the PAN, then a read lock on
//!   the snapshot for one map lookup. No I/O.
//! - **refresh** (the hub, periodically): one store read of the registry
//!   version; a full reload only when it moved (another process — the CLI —
//!   changed cards). Blocking: call it from `spawn_blocking`.
//! - **changes** (import, status, profile): one store write each (with the
//!   audit row of a status or profile change), applied to
//!   the snapshot in place before they return. Concurrent changes commit
//!   in one order and may come back in another: each is applied at once
//!   (a first load's activation must be looked up before its answer
//!   leaves), never over a later change of the same card, and the
//!   snapshot's version moves once the changes before it are in.
//!
//! The store is the truth; the snapshot may lag it until the next refresh.

use crate::store::sql;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use crate::cards::card::{Card, CardStatus};
use crate::cards::config::Catalog;
use crate::cards::db::{self, Change, Changed, NewCard};
use crate::cards::error::CardError;
use crate::cards::file::CardRow;
use crate::cards::pan::{PanHash, PanKeys};
use crate::iso8583::fields::{Expiry, Pan};
use crate::mask::redact_pans;
use crate::store::Store;

mod changes;
pub use changes::{CardRef, ChangedBy};

/// The card registry. Share it as `Arc<CardRegistry>`.
#[derive(Debug)]
pub struct CardRegistry {
    /// Where cards are kept; each change is one durable store write.
    store: Store,
    /// PAN keys: hash for lookups, encryption for new cards.
    keys: PanKeys,
    /// Institution ids and limits profiles cards may name.
    catalog: Catalog,
    /// Cards as of a registry version. Read-locked by every lookup for one
    /// map access; write-locked only to swap or patch it.
    snapshot: RwLock<Snapshot>,
}

/// The cards as of one registry version.
#[derive(Debug, Default)]
struct Snapshot {
    /// `None` until loaded.
    version: Option<i64>,
    cards: HashMap<PanHash, Arc<Card>>,
    /// Changes of this process written after a version the snapshot has
    /// not reached yet (a change before them has not come back yet), by
    /// the version they were written on: their cards are in `cards`
    /// already; `version` moves past them once the gap is filled. Dropped
    /// by a reload past them.
    ahead: BTreeMap<i64, (i64, Vec<Card>)>,
}

impl Snapshot {
    /// Applies the cards a change wrote on version `before` (making it
    /// `after`) at once, except where a later change already applied wrote
    /// the same card; the version moves once every change before is in.
    fn patch(&mut self, before: i64, after: i64, cards: Vec<Card>) {
        let Some(version) = self.version else {
            return; // not loaded yet: the load reads it
        };
        if version > before {
            return; // a reload has it
        }
        let newer: HashSet<PanHash> = self
            .ahead
            .range(before + 1..)
            .flat_map(|(_, (_, cards))| cards.iter().map(|c| c.pan_hash))
            .collect();
        for card in cards.iter().filter(|c| !newer.contains(&c.pan_hash)) {
            self.cards.insert(card.pan_hash, Arc::new(card.clone()));
        }
        if version < before {
            self.ahead.insert(before, (after, cards));
            return;
        }
        let mut version = after;
        while let Some((next, _)) = self.ahead.remove(&version) {
            version = next;
        }
        self.version = Some(version);
    }
}

/// Criteria of a card search; `None` matches anything. No criterion holds
/// a full PAN: a card is found by its BIN and last 4 digits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardQuery {
    /// The first 6 digits.
    pub bin: Option<String>,
    /// The last 4 digits.
    pub last4: Option<String>,
    pub account: Option<String>,
    /// Only cards of these institutions (a bank operator's).
    pub institutions: Option<Vec<String>>,
}

/// What an import did. Re-importing the same file adds and updates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportReport {
    /// Cards not registered before.
    pub added: u64,
    /// Registered cards with some value changed.
    pub updated: u64,
    /// Registered cards exactly as in the file.
    pub unchanged: u64,
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "added {}, updated {}, unchanged {}",
            self.added, self.updated, self.unchanged
        )
    }
}

/// What a re-keying did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyReport {
    /// Cards moved to the new keys.
    pub cards: u64,
    /// Journal rows whose card hash moved with them.
    pub journal_rows: u64,
}

impl std::fmt::Display for RekeyReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} card(s) and {} journal row(s) moved to the new keys",
            self.cards, self.journal_rows
        )
    }
}

impl CardRegistry {
    /// A registry over a store with an empty, unloaded snapshot: changes and
    /// [`CardRegistry::get`] work, [`CardRegistry::lookup`] finds nothing
    /// until [`CardRegistry::refresh_if_changed`]. For tools that change a
    /// few cards; the hub uses [`CardRegistry::open`].
    pub fn new(store: Store, keys: PanKeys, catalog: Catalog) -> CardRegistry {
        CardRegistry {
            store,
            keys,
            catalog,
            snapshot: RwLock::default(),
        }
    }

    /// A registry with the snapshot loaded, after checking that the keys are
    /// the ones the stored cards were written with.
    ///
    /// # Errors
    /// [`CardError::KeyMismatch`] for the wrong key, [`CardError::Store`]
    /// when the cards cannot be read.
    pub fn open(store: Store, keys: PanKeys, catalog: Catalog) -> Result<CardRegistry, CardError> {
        let registry = CardRegistry::new(store, keys, catalog);
        registry.check_keys()?;
        registry.refresh_if_changed()?;
        Ok(registry)
    }

    /// The card with this PAN in the snapshot. Cheap: one HMAC and one map
    /// lookup under a read lock.
    pub fn lookup(&self, pan: &Pan) -> Option<Arc<Card>> {
        let hash = self.keys.hash(pan);
        self.read_snapshot().cards.get(&hash).cloned()
    }

    /// The institution ids and limits profiles cards may name.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Cards in the snapshot.
    pub fn len(&self) -> usize {
        self.read_snapshot().cards.len()
    }

    /// Whether the snapshot holds no card.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Registry version of the snapshot (`None` before the first load).
    pub fn version(&self) -> Option<i64> {
        self.read_snapshot().version
    }

    /// Moves every stored card to `new` keys in one store write: each PAN
    /// is decrypted with the current keys, checked against its stored hash,
    /// re-hashed and re-encrypted; the journal rows carrying a card's old
    /// hash get the new one (rows of PANs never registered keep theirs: the
    /// journal has no PAN to hash again). For a stopped hub: a running one
    /// keeps hashing with the old key and would find no card.
    ///
    /// # Errors
    /// [`CardError::KeyMismatch`] when the current keys are not the store's,
    /// [`CardError::RekeySameKeys`], [`CardError::RekeyCard`] naming a card
    /// the keys do not open, [`CardError::RekeyConflict`],
    /// [`CardError::Encrypt`], [`CardError::Store`]; on any error nothing
    /// was changed.
    pub async fn rekey(&self, new: &PanKeys) -> Result<RekeyReport, CardError> {
        self.check_keys()?;
        if self.keys.same_as(new) {
            return Err(CardError::RekeySameKeys);
        }
        let plan =
            self.store
                .read(db::stored_pans)?
                .into_iter()
                .map(|old| {
                    let fail = |reason| CardError::RekeyCard {
                        card: old.masked.clone(),
                        reason,
                    };
                    let pan = self.keys.decrypt(&old.encrypted).map_err(|_| {
                        fail("its stored PAN does not decrypt with the current key")
                    })?;
                    if self.keys.hash(&pan).0[..] != old.hash[..] {
                        return Err(fail("its stored hash is not the current key's"));
                    }
                    Ok(db::Rekeyed {
                        new_hash: new.hash(&pan).0.to_vec(),
                        new_encrypted: new.encrypt(&pan)?,
                        old,
                    })
                })
                .collect::<Result<Vec<_>, CardError>>()?;
        let cards = plan.len() as u64;
        let journal_rows = self
            .store
            .write(move |c| db::rekey(c, &plan))
            .await?
            .ok_or(CardError::RekeyConflict)?;
        Ok(RekeyReport {
            cards,
            journal_rows,
        })
    }

    /// The keyed hash of a PAN under this registry's key.
    pub fn hash(&self, pan: &Pan) -> PanHash {
        self.keys.hash(pan)
    }

    /// Reloads the snapshot when the stored registry version moved; returns
    /// whether it did. Blocking (a full reload reads every card).
    ///
    /// # Errors
    /// [`CardError::Store`] when the store cannot be read; the old snapshot stays.
    pub fn refresh_if_changed(&self) -> Result<bool, CardError> {
        let stored = self.store.read(db::version)?;
        if self.version() == Some(stored) {
            return Ok(false);
        }
        let (version, cards) = self.store.read(db::load_all)?;
        let cards = cards
            .into_iter()
            .map(|card| (card.pan_hash, Arc::new(card)))
            .collect();
        let mut snapshot = self.write_snapshot();
        // A change applied meanwhile may have moved the snapshot past this load.
        if snapshot.version.is_none_or(|v| v < version) {
            let ahead = std::mem::take(&mut snapshot.ahead).split_off(&version);
            *snapshot = Snapshot {
                version: Some(version),
                cards,
                ahead: BTreeMap::new(),
            };
            // Changes of this process written on this version or later.
            for (before, (after, cards)) in ahead {
                snapshot.patch(before, after, cards);
            }
        }
        Ok(true)
    }

    /// Checks the configured keys against one stored card: its encrypted PAN
    /// must decrypt, and hash to its stored hash. Passes when no card is stored.
    ///
    /// # Errors
    /// [`CardError::KeyMismatch`] naming the wrong key; [`CardError::Store`].
    pub fn check_keys(&self) -> Result<(), CardError> {
        let Some((hash, encrypted)) = self.store.read(db::sample)? else {
            return Ok(());
        };
        let pan = self
            .keys
            .decrypt(&encrypted)
            .map_err(|_| CardError::KeyMismatch {
                key: "pan_encryption_key",
            })?;
        if self.keys.hash(&pan).0[..] != hash[..] {
            return Err(CardError::KeyMismatch {
                key: "pan_hash_key",
            });
        }
        Ok(())
    }

    /// Applies checked card file rows all or nothing, in one store write:
    /// new cards are added, changed ones updated, identical ones left alone.
    /// The registry version moves only if something changed.
    ///
    /// # Errors
    /// [`CardError::KeyMismatch`] when the keys are not the store's (nothing
    /// would match), [`CardError::Encrypt`], [`CardError::Store`]; on any
    /// error nothing was changed.
    pub async fn import(&self, rows: Vec<CardRow>) -> Result<ImportReport, CardError> {
        self.check_keys()?;
        let cards = rows
            .into_iter()
            .map(|row| self.protect(row))
            .collect::<Result<Vec<_>, CardError>>()?;
        let now = now_us();
        let done = self
            .store
            .write(move |conn| db::import(conn, &cards, now))
            .await?;
        self.patch(done.versions, done.changed);
        Ok(ImportReport {
            added: done.added,
            updated: done.updated,
            unchanged: done.unchanged,
        })
    }

    /// Registers cards that must all be new (a card order), in one store
    /// write together with `with` — the account system's side (the prepaid
    /// ledger opening their card accounts and recording the order). When
    /// `with` refuses (`Ok(Err(_))`, having written nothing) no card is
    /// registered. `line` of a row is only its position, for messages.
    ///
    /// # Errors
    /// [`CardError::UnknownInstitution`], [`CardError::UnknownProfile`],
    /// [`CardError::CardExists`] (masked) when a PAN is registered already,
    /// [`CardError::KeyMismatch`], [`CardError::Encrypt`],
    /// [`CardError::Store`] (with `with`'s SQL errors); on any error nothing
    /// was changed.
    pub async fn register_new<T, E, F>(
        &self,
        rows: Vec<CardRow>,
        mut with: F,
    ) -> Result<Result<(Vec<Card>, T), E>, CardError>
    where
        F: FnMut(&sql::Connection) -> sql::Result<Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.check_keys()?;
        for row in &rows {
            if !self.catalog.has_institution(&row.institution) {
                return Err(CardError::UnknownInstitution {
                    institution: redact_pans(&row.institution),
                });
            }
            if !self.catalog.has_profile(&row.profile) {
                return Err(CardError::UnknownProfile {
                    profile: redact_pans(&row.profile),
                });
            }
        }
        let cards = rows
            .into_iter()
            .map(|row| self.protect(row))
            .collect::<Result<Vec<_>, CardError>>()?;
        let now = now_us();
        let done = self
            .store
            .write(move |conn| {
                for new in &cards {
                    if db::get(conn, &new.card.pan_hash)?.is_some() {
                        return Ok(Err(Registered::Exists(new.card.pan_masked.clone())));
                    }
                }
                let value = match with(conn)? {
                    Ok(value) => value,
                    Err(e) => return Ok(Err(Registered::Refused(e))),
                };
                let imported = db::import(conn, &cards, now)?;
                Ok(Ok((imported, value)))
            })
            .await?;
        match done {
            Ok((imported, value)) => {
                self.patch(imported.versions, imported.changed.clone());
                Ok(Ok((imported.changed, value)))
            }
            Err(Registered::Exists(card)) => Err(CardError::CardExists { card }),
            Err(Registered::Refused(e)) => Ok(Err(e)),
        }
    }

    /// The cards drawing on these accounts, as stored now, by account.
    ///
    /// # Errors
    /// [`CardError::Store`].
    pub fn by_accounts(&self, accounts: &[String]) -> Result<HashMap<String, Card>, CardError> {
        let accounts = accounts.to_vec();
        Ok(self
            .store
            .read(move |conn| db::by_accounts(conn, &accounts))?)
    }

    /// The clear PANs of the cards drawing on `accounts`, in that order,
    /// each checked against its stored hash. The one way a clear PAN leaves
    /// the registry: for the card production file, which the card producer
    /// must emboss. Never log what it returns.
    ///
    /// # Errors
    /// [`CardError::UnknownCard`] naming an account with no card,
    /// [`CardError::Decrypt`] when a stored PAN does not open or match its
    /// hash, [`CardError::KeyMismatch`], [`CardError::Store`].
    pub(crate) fn reveal(&self, accounts: &[String]) -> Result<Vec<Pan>, CardError> {
        self.check_keys()?;
        let wanted = accounts.to_vec();
        let stored = self
            .store
            .read(move |conn| db::protected_by_accounts(conn, &wanted))?;
        accounts
            .iter()
            .zip(stored)
            .map(|(account, stored)| {
                let stored = stored.ok_or_else(|| CardError::UnknownCard {
                    card: format!("of account {}", redact_pans(account)),
                })?;
                let pan = self.keys.decrypt(&stored.encrypted)?;
                if self.keys.hash(&pan).0[..] != stored.hash[..] {
                    return Err(CardError::Decrypt {
                        reason: "the PAN does not match its stored hash",
                    });
                }
                Ok(pan)
            })
            .collect()
    }

    /// The card with this PAN as stored now (not the snapshot).
    ///
    /// # Errors
    /// [`CardError::Store`].
    pub fn get(&self, pan: &Pan) -> Result<Option<Card>, CardError> {
        self.get_by_hash(&self.keys.hash(pan))
    }

    /// The card with this PAN hash as stored now (what pages name a card by:
    /// never its PAN).
    ///
    /// # Errors
    /// [`CardError::Store`].
    pub fn get_by_hash(&self, hash: &PanHash) -> Result<Option<Card>, CardError> {
        let hash = *hash;
        Ok(self.store.read(move |conn| db::get(conn, &hash))?)
    }

    /// The cards matching `query` as stored now, by masked PAN, at most `limit`.
    ///
    /// # Errors
    /// [`CardError::Store`].
    pub fn search(&self, query: &CardQuery, limit: u32) -> Result<Vec<Card>, CardError> {
        Ok(self.store.read(|conn| db::search(conn, query, limit))?)
    }

    /// Replaces the lost card `old` by a new card `new` (expiry `expiry`,
    /// drawing on `account`, otherwise as `old`: institution, currency,
    /// profile, product), `active`, in one store write together with
    /// `with` — the account system's side of the replacement (the prepaid
    /// ledger moving the balance). `old` becomes `lost`. When `with`
    /// refuses (`Ok(Err(_))`, having written nothing) the cards are left
    /// alone.
    ///
    /// When `new` is registered already, `repeat` — called in the same
    /// store write with the lost card, the card asked for and the one
    /// stored — tells whether this replacement was done already: `Some`
    /// answers (with the stored card) and writes nothing, `None` is
    /// [`CardError::CardExists`]. A repeated replacement always finds its
    /// new card stored, as the first one registered it in the same write
    /// as the account system's step.
    ///
    /// # Errors
    /// [`CardError::UnknownCard`] for `old`, [`CardError::CardExists`] for
    /// `new`, [`CardError::Encrypt`], [`CardError::Store`] (with `with`'s
    /// or `repeat`'s SQL errors); on any error nothing was changed.
    pub async fn replace<T, E, R, F>(
        &self,
        old: &Pan,
        new: &Pan,
        expiry: Expiry,
        account: &str,
        mut repeat: R,
        mut with: F,
    ) -> Result<Result<(Card, T), E>, CardError>
    where
        R: FnMut(&sql::Connection, &Card, &Card, &Card) -> sql::Result<Option<Result<T, E>>>
            + Send
            + 'static,
        F: FnMut(&sql::Connection, &Card, &Card) -> sql::Result<Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        self.check_keys()?;
        let (old_hash, new_hash) = (self.keys.hash(old), self.keys.hash(new));
        let (old_masked, new_masked) = (old.masked(), new.masked());
        let encrypted = self.keys.encrypt(new)?;
        let (last4, account) = (new.last4().to_string(), account.to_string());
        let now = now_us();
        let done = self
            .store
            .write(move |conn| {
                let Some(lost) = db::get(conn, &old_hash)? else {
                    return Ok(Replaced::Missing);
                };
                let card = Card {
                    pan_hash: new_hash,
                    pan_masked: new_masked.clone(),
                    expiry,
                    status: CardStatus::Active,
                    account: account.clone(),
                    ..lost.clone()
                };
                if let Some(stored) = db::get(conn, &new_hash)? {
                    return Ok(match repeat(conn, &lost, &card, &stored)? {
                        Some(Ok(value)) => Replaced::Repeat {
                            card: stored,
                            value,
                        },
                        Some(Err(e)) => Replaced::Refused(e),
                        None => Replaced::Exists,
                    });
                }
                let value = match with(conn, &lost, &card)? {
                    Ok(value) => value,
                    Err(e) => return Ok(Replaced::Refused(e)),
                };
                let status = Change::Status(CardStatus::Lost);
                let (before, old_card) = match db::change(conn, &old_hash, &status, now)? {
                    Changed::Done { card, versions, .. } => (versions.0, card),
                    _ => (
                        db::version(conn)?,
                        Card {
                            status: CardStatus::Lost,
                            ..lost.clone()
                        },
                    ),
                };
                let new_card = NewCard {
                    card: card.clone(),
                    last4: last4.clone(),
                    encrypted: encrypted.clone(),
                };
                let imported = db::import(conn, &[new_card], now)?;
                Ok(Replaced::Done {
                    versions: (before, imported.versions.1),
                    cards: Box::new([old_card, card]),
                    value,
                })
            })
            .await?;
        match done {
            Replaced::Missing => Err(CardError::UnknownCard { card: old_masked }),
            Replaced::Exists => Err(CardError::CardExists { card: new.masked() }),
            Replaced::Refused(e) => Ok(Err(e)),
            Replaced::Repeat { card, value } => Ok(Ok((card, value))),
            Replaced::Done {
                versions,
                cards,
                value,
            } => {
                let [lost, card] = *cards;
                self.patch(versions, vec![lost, card.clone()]);
                Ok(Ok((card, value)))
            }
        }
    }

    /// Runs `with` — an account system's step that credits card accounts,
    /// such as a prepaid load file — and, in the same store write, activates
    /// the inactive prepaid cards drawing on the accounts it returns: their
    /// first load activates them, as the hub does for an ISO 8583 load.
    /// Returns `with`'s value and the cards activated. When `with` refuses
    /// (`Ok(Err(_))`, having written nothing) no card is changed.
    ///
    /// # Errors
    /// [`CardError::Store`] (with `with`'s SQL errors); on any error
    /// nothing was changed.
    pub async fn activate_loaded<T, E, F>(
        &self,
        mut with: F,
    ) -> Result<Result<(T, Vec<Card>), E>, CardError>
    where
        F: FnMut(&sql::Connection) -> sql::Result<Result<(T, HashSet<String>), E>> + Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
    {
        let now = now_us();
        let done = self
            .store
            .write(move |conn| {
                let (value, accounts) = match with(conn)? {
                    Ok(done) => done,
                    Err(e) => return Ok(Err(e)),
                };
                let (versions, cards) = db::activate_prepaid(conn, &accounts, now)?;
                Ok(Ok((value, versions, cards)))
            })
            .await?;
        Ok(done.map(|(value, versions, cards)| {
            self.patch(versions, cards.clone());
            (value, cards)
        }))
    }

    /// A card row as the store keeps it: hashed, masked, encrypted.
    fn protect(&self, row: CardRow) -> Result<NewCard, CardError> {
        Ok(NewCard {
            encrypted: self.keys.encrypt(&row.pan)?,
            last4: row.pan.last4().to_string(),
            card: Card {
                pan_hash: self.keys.hash(&row.pan),
                pan_masked: row.pan.masked(),
                expiry: row.expiry,
                status: row.status,
                account: row.account,
                institution: row.institution,
                currency: row.currency,
                profile: row.profile,
                product: row.product,
            },
        })
    }

    /// Applies cards written by this process to the snapshot (a change of
    /// another process is read by the next refresh).
    fn patch(&self, (before, after): (i64, i64), cards: Vec<Card>) {
        if before != after {
            self.write_snapshot().patch(before, after, cards);
        }
    }

    // A poisoned lock still holds a usable snapshot: a patch interrupted by
    // a panic sets no new version, so the next refresh reloads it whole.
    fn read_snapshot(&self) -> std::sync::RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_snapshot(&self) -> std::sync::RwLockWriteGuard<'_, Snapshot> {
        self.snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Why a registration of new cards wrote nothing.
enum Registered<E> {
    /// This card (masked) is registered already.
    Exists(String),
    Refused(E),
}

/// What a replacement's store job did.
enum Replaced<T, E> {
    Missing,
    Exists,
    Refused(E),
    /// Done already: the new card as stored.
    Repeat {
        card: Card,
        value: T,
    },
    Done {
        versions: (i64, i64),
        /// The lost card and the new one, as stored.
        cards: Box<[Card; 2]>,
        value: T,
    },
}

fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}
