//! Login sessions. [`Access::login`] checks a name and password and opens
//! a session with a fresh 256-bit random id (the store keeps only its
//! SHA-256) and a CSRF token bound to it; [`Access::resolve`] turns an id
//! back into its [`Session`], refusing one past its idle or absolute
//! timeout (`[web]`) or of a disabled user; [`Access::logout`] ends it.
//!
//! Every login opens a new session: an id that existed before a login is
//! never the one after it (no session fixation). Failed logins are audited
//! and counted from the audit log: after [`MAX_FAILURES_PER_USER`] for a
//! name, or [`MAX_FAILURES_PER_SOURCE`] from an address, within
//! [`FAILURE_WINDOW`], logins are refused without checking the password
//! until the window has passed; the refusal is audited too.
//!
//! No cookie or HTML here: the web application carries the id and the CSRF
//! token.

use crate::store::sql;
use std::net::IpAddr;
use std::time::Duration;

use crate::store::sql::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::audit::{self, Action, NewEntry, Outcome};
use super::users::{self, User};
use super::{Access, AccessError, Actor, now_us};

/// Failed logins of one user name within [`FAILURE_WINDOW`] after which
/// its logins are refused.
pub const MAX_FAILURES_PER_USER: u32 = 5;

/// Failed logins from one address within [`FAILURE_WINDOW`] after which
/// its logins are refused (more than per user: offices share an address).
pub const MAX_FAILURES_PER_SOURCE: u32 = 20;

/// The window failed logins are counted over.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A session's last-seen time is written at most this often.
const TOUCH_EVERY_US: i64 = 60_000_000;

/// A logged-in session, as [`Access::resolve`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user, with the address of the request that resolved it.
    pub actor: Actor,
    /// The CSRF token of the session's forms (64 hex digits); check it
    /// with [`csrf_matches`].
    pub csrf: String,
    pub created_at_us: i64,
    pub last_seen_us: i64,
}

/// What a successful login gives.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The new session's id (64 hex digits): the browser's cookie. Shown
    /// here only; the store keeps its SHA-256.
    pub id: Zeroizing<String>,
    pub session: Session,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("id", &"<secret>")
            .field("session", &self.session)
            .finish()
    }
}

/// Whether `given` is `session`'s CSRF token, compared in constant time.
pub fn csrf_matches(session: &Session, given: &str) -> bool {
    bool::from(session.csrf.as_bytes().ct_eq(given.as_bytes()))
}

/// A new secret: 256 random bits as 64 hex digits.
pub(super) fn secret() -> Zeroizing<String> {
    Zeroizing::new(hex::encode(rand::random::<[u8; 32]>()))
}

/// The SHA-256 of a secret, as stored.
pub(super) fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Seconds until the oldest of `count` failures since `since_us` leaves
/// the window, if `count` reached `max`.
fn lockout(
    conn: &Connection,
    column: &str,
    value: &str,
    max: u32,
    now: i64,
) -> sql::Result<Option<u64>> {
    let since = now - i64::try_from(FAILURE_WINDOW.as_micros()).unwrap_or(i64::MAX);
    // `column` is one of two fixed names, never input.
    let sql = format!(
        "SELECT at_us FROM audit_log WHERE {column} = ?1 AND action = 'login' \
         AND outcome = 'failed' AND at_us >= ?2 ORDER BY at_us DESC LIMIT 1 OFFSET ?3"
    );
    let oldest: Option<i64> = conn
        .prepare_cached(&sql)?
        .query_row(params![value, since, max - 1], |r| r.get(0))
        .optional()?;
    Ok(oldest.map(|at| {
        let left = at - since;
        u64::try_from(left / 1_000_000 + 1).unwrap_or(1)
    }))
}

impl Access {
    /// Checks `name` and `password` and opens a new session for a request
    /// from `from`. Audited: `login` done, failed (wrong name or password,
    /// disabled user) or refused (too many failures).
    ///
    /// # Errors
    /// [`AccessError::TooManyFailures`] while the name or the address is
    /// locked out; [`AccessError::BadCredentials`] for an unknown name, a
    /// wrong password or a disabled user (the same answer, in about the
    /// same time); the store's.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        from: Option<IpAddr>,
    ) -> Result<Login, AccessError> {
        let attempt = NewEntry {
            actor: name.chars().take(64).collect(),
            role: None,
            source: from,
            action: Action::Login,
            object_kind: "user",
            object_id: name.chars().take(64).collect(),
            before: None,
            after: None,
            outcome: Outcome::Refused,
        };
        let source = from.map(|a| a.to_string());
        let (key, src) = (attempt.actor.clone(), source.clone());
        let found = self.store.read(move |c| {
            let now = now_us();
            let by_user = lockout(c, "actor", &key, MAX_FAILURES_PER_USER, now)?;
            let by_source = match &src {
                Some(s) => lockout(c, "source", s, MAX_FAILURES_PER_SOURCE, now)?,
                None => None,
            };
            let locked = by_user.into_iter().chain(by_source).max();
            Ok((locked, users::find(c, &key)?))
        })?;
        let (locked, user) = found;
        if let Some(retry_after_secs) = locked {
            self.audit(attempt).await?;
            return Err(AccessError::TooManyFailures { retry_after_secs });
        }
        let hash = user
            .as_ref()
            .map_or_else(|| users::decoy_hash().to_owned(), |(_, h)| h.clone());
        let password = Zeroizing::new(password.to_owned());
        let matches =
            tokio::task::spawn_blocking(move || users::verify_password(&password, &hash)).await?;
        let user = match user {
            Some((user, _)) if matches && !user.disabled => user,
            _ => {
                self.audit(attempt.outcome(Outcome::Failed)).await?;
                return Err(AccessError::BadCredentials);
            }
        };
        self.open_session(user, from).await
    }

    /// Opens a session for `user`, audited as its login.
    async fn open_session(&self, user: User, from: Option<IpAddr>) -> Result<Login, AccessError> {
        let id = secret();
        let csrf = secret();
        let now = now_us();
        let session = Session {
            actor: user.actor(from),
            csrf: csrf.to_string(),
            created_at_us: now,
            last_seen_us: now,
        };
        let hash = digest(&id);
        let entry = NewEntry::new(&session.actor, Action::Login, "user", &user.name);
        let source = from.map(|a| a.to_string());
        self.store
            .write(move |c| {
                c.execute(
                    "INSERT INTO access_sessions (id_hash, \"user\", csrf, source, created_at_us, \
                     last_seen_us) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                    params![hash, user.id, csrf.as_str(), source, now],
                )?;
                audit::record(c, &entry).map(drop)
            })
            .await?;
        Ok(Login { id, session })
    }

    /// The session with id `id`, for a request from `from`; its last-seen
    /// time moves to now (written at most once a minute).
    ///
    /// # Errors
    /// [`AccessError::NoSession`] for an unknown or ended id, one idle for
    /// longer than `[web] idle_minutes`, one older than `absolute_hours`,
    /// or one whose user is disabled; the store's.
    pub async fn resolve(&self, id: &str, from: Option<IpAddr>) -> Result<Session, AccessError> {
        let hash = digest(id);
        let key = hash.clone();
        let row = self.store.read(move |c| {
            let row = c
                .prepare_cached(
                    "SELECT \"user\", csrf, created_at_us, last_seen_us FROM access_sessions \
                     WHERE id_hash = ?1 AND ended_at_us IS NULL",
                )?
                .query_row([&key], |r| {
                    Ok((
                        r.get::<i64>(0)?,
                        r.get::<String>(1)?,
                        r.get::<i64>(2)?,
                        r.get::<i64>(3)?,
                    ))
                })
                .optional()?;
            match row {
                Some((user, csrf, created, seen)) => {
                    Ok(users::by_id(c, user)?.map(|u| (u, csrf, created, seen)))
                }
                None => Ok(None),
            }
        })?;
        let Some((user, csrf, created_at_us, last_seen_us)) = row else {
            return Err(AccessError::NoSession);
        };
        let now = now_us();
        let idle = i64::try_from(self.web.idle().as_micros()).unwrap_or(i64::MAX);
        let absolute = i64::try_from(self.web.absolute().as_micros()).unwrap_or(i64::MAX);
        if user.disabled || now - last_seen_us > idle || now - created_at_us > absolute {
            return Err(AccessError::NoSession);
        }
        if now - last_seen_us >= TOUCH_EVERY_US {
            self.store
                .write(move |c| {
                    c.execute(
                        "UPDATE access_sessions SET last_seen_us = ?2 WHERE id_hash = ?1",
                        params![hash, now],
                    )
                })
                .await?;
        }
        Ok(Session {
            actor: user.actor(from),
            csrf,
            created_at_us,
            last_seen_us: now.max(last_seen_us),
        })
    }

    /// Ends the session with id `id` (audited as `logout`); an unknown or
    /// ended id is left alone.
    ///
    /// # Errors
    /// The store's.
    pub async fn logout(&self, id: &str, from: Option<IpAddr>) -> Result<(), AccessError> {
        let hash = digest(id);
        self.store
            .write(move |c| {
                let user: Option<i64> = c
                    .prepare_cached(
                        "SELECT \"user\" FROM access_sessions WHERE id_hash = ?1 \
                         AND ended_at_us IS NULL",
                    )?
                    .query_row([&hash], |r| r.get(0))
                    .optional()?;
                let Some(user) = user.map(|u| users::by_id(c, u)).transpose()?.flatten() else {
                    return Ok(());
                };
                c.execute(
                    "UPDATE access_sessions SET ended_at_us = ?2 WHERE id_hash = ?1",
                    params![hash, now_us()],
                )?;
                let entry = NewEntry::new(&user.actor(from), Action::Logout, "user", &user.name);
                audit::record(c, &entry).map(drop)
            })
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_stored_only_as_digests() {
        let (a, b) = (secret(), secret());
        assert_eq!(a.len(), 64);
        assert_ne!(*a, *b);
        assert_eq!(digest(&a).len(), 32);
        assert_ne!(digest(&a), a.as_bytes());
    }

    #[test]
    fn csrf_must_match_exactly() {
        let session = Session {
            actor: Actor::cli(),
            csrf: "ab".repeat(32),
            created_at_us: 0,
            last_seen_us: 0,
        };
        assert!(csrf_matches(&session, &"ab".repeat(32)));
        assert!(!csrf_matches(&session, &"ab".repeat(31)));
        assert!(!csrf_matches(&session, ""));
    }
}
