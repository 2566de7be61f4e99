//! Per-user API tokens: `Authorization: Bearer <token>` on the JSON API acts
//! as the token's user, with its role and tenant. A token is 256 random bits
//! shown once when issued; the store keeps its SHA-256. A revoked token,
//! or one of a disabled user, is refused.

use crate::store::sql;
use std::net::IpAddr;

use crate::store::sql::{OptionalExtension, params};
use serde_json::json;
use zeroize::Zeroizing;

use super::audit::{self, Action, NewEntry};
use super::sessions::{digest, secret};
use super::users::{self, User};
use super::{Access, AccessError, Actor, Role, now_us, require};

/// What every user token starts with (so leaked ones are easy to spot).
pub const TOKEN_PREFIX: &str = "cht_";

/// A token just issued.
#[derive(Clone, PartialEq, Eq)]
pub struct Issued {
    pub id: i64,
    /// The token itself: shown once, never stored.
    pub token: Zeroizing<String>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("id", &self.id)
            .field("token", &"<secret>")
            .finish()
    }
}

/// A token as listed (without the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub label: String,
    pub created_at_us: i64,
    pub revoked_at_us: Option<i64>,
}

/// Whether `by` may issue, list or revoke `user`'s tokens: its own, or
/// (bank admins) anyone's, or (orderer admins) its orderer's users'.
fn handles(by: &Actor, user: &User) -> bool {
    user.name == by.user
        || by.role == Role::BankAdmin
        || (by.role == Role::OrdererAdmin && user.tenant == by.tenant)
}

fn check_label(label: &str) -> Result<(), AccessError> {
    let fits = (1..=64).contains(&label.chars().count()) && !label.chars().any(char::is_control);
    if fits {
        Ok(())
    } else {
        Err(AccessError::InvalidLabel)
    }
}

impl Access {
    /// Issues a token for `user`, labelled `label` (what it is for).
    /// Audited as `token.issue`.
    ///
    /// # Errors
    /// [`AccessError::InvalidLabel`]; [`AccessError::UnknownUser`] (also for
    /// a user `by` may not handle); [`AccessError::Forbidden`] for an
    /// auditor; the store's.
    pub async fn issue_token(
        &self,
        by: &Actor,
        user: &str,
        label: &str,
    ) -> Result<Issued, AccessError> {
        check_label(label)?;
        let target = self.user(by, user)?;
        require(by, handles(by, &target), "issue tokens for this user")?;
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{}", secret().as_str()));
        let hash = digest(&token);
        let (by, label) = (by.clone(), label.to_owned());
        let id = self
            .store
            .write(move |c| {
                let id: i64 = c
                    .prepare_insert(
                        "INSERT INTO access_tokens (\"user\", label, hash, created_at_us) \
                     VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .insert(params![target.id, label, hash, now_us()])?;
                let entry = NewEntry::new(&by, Action::TokenIssue, "token", id.to_string())
                    .after(&json!({ "user": target.name, "label": label }));
                audit::record(c, &entry)?;
                Ok(id)
            })
            .await?;
        Ok(Issued { id, token })
    }

    /// The tokens of `user` (every user's when `None`) that `by` may see,
    /// revoked ones included, by id.
    ///
    /// # Errors
    /// The store's.
    pub fn tokens(&self, by: &Actor, user: Option<&str>) -> Result<Vec<TokenInfo>, AccessError> {
        let visible: Vec<User> = self
            .users(by)?
            .into_iter()
            .filter(|u| user.is_none_or(|name| u.name == name))
            .filter(|u| by.role == Role::Auditor || handles(by, u))
            .collect();
        let all = self.store.read(|c| {
            c.prepare_cached(
                "SELECT t.id, u.name, t.label, t.created_at_us, t.revoked_at_us \
                 FROM access_tokens t JOIN access_users u ON u.id = t.\"user\" ORDER BY t.id",
            )?
            .query_map(params![], |r| {
                Ok(TokenInfo {
                    id: r.get(0)?,
                    user: r.get(1)?,
                    label: r.get(2)?,
                    created_at_us: r.get(3)?,
                    revoked_at_us: r.get(4)?,
                })
            })?
            .collect::<sql::Result<Vec<_>>>()
        })?;
        Ok(all
            .into_iter()
            .filter(|t| visible.iter().any(|u| u.name == t.user))
            .collect())
    }

    /// Revokes token `id`; it is refused from now on. Audited as
    /// `token.revoke`. Revoking a revoked token changes nothing.
    ///
    /// # Errors
    /// [`AccessError::UnknownToken`] (also for one `by` may not handle);
    /// the store's.
    pub async fn revoke_token(&self, by: &Actor, id: i64) -> Result<(), AccessError> {
        let owner: Option<String> = self.store.read(|c| {
            c.prepare_cached(
                "SELECT u.name FROM access_tokens t JOIN access_users u ON u.id = t.\"user\" \
                 WHERE t.id = ?1",
            )?
            .query_row([id], |r| r.get(0))
            .optional()
        })?;
        let owner = owner
            .and_then(|name| self.user(by, &name).ok())
            .filter(|u| handles(by, u))
            .ok_or(AccessError::UnknownToken { id })?;
        let by = by.clone();
        self.store
            .write(move |c| {
                let changed = c.execute(
                    "UPDATE access_tokens SET revoked_at_us = ?2 \
                     WHERE id = ?1 AND revoked_at_us IS NULL",
                    params![id, now_us()],
                )?;
                if changed > 0 {
                    let entry = NewEntry::new(&by, Action::TokenRevoke, "token", id.to_string())
                        .before(&json!({ "user": owner.name }));
                    audit::record(c, &entry)?;
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// The actor of a user token, for a request from `from`: `None` for an
    /// unknown or revoked token or a disabled user.
    ///
    /// # Errors
    /// The store's.
    pub fn token_actor(
        &self,
        token: &str,
        from: Option<IpAddr>,
    ) -> Result<Option<Actor>, AccessError> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = digest(token);
        let user = self.store.read(|c| {
            let id: Option<i64> = c
                .prepare_cached(
                    "SELECT \"user\" FROM access_tokens WHERE hash = ?1 AND revoked_at_us IS NULL",
                )?
                .query_row([&hash], |r| r.get(0))
                .optional()?;
            id.map(|id| users::by_id(c, id)).transpose()
        })?;
        Ok(user
            .flatten()
            .filter(|u| !u.disabled)
            .map(|u| u.actor(from)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_short_and_printable() {
        assert!(check_label("reporting job").is_ok());
        assert!(check_label("").is_err());
        assert!(check_label("a\nb").is_err());
        assert!(check_label(&"x".repeat(65)).is_err());
    }
}
