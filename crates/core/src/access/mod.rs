//! Who is acting: users' roles and tenants, shared by the JSON API, the web
//! application and the audit log. A request carries one [`Actor`]; the
//! service layer checks it, so hiding a link is never the only guard.
//!
//! [`Access`] is the service over the store: users ([`users`]), login
//! sessions ([`sessions`]), per-user API tokens ([`tokens`]); every change
//! and every login is written to the append-only audit log ([`audit`]) in
//! the same store job as the change itself. No cookies, forms or HTTP here:
//! the web application and the JSON API build on these functions.
//! `docs/access.md` has the roles table and the rules.

pub mod audit;
pub mod config;
pub mod sessions;
pub mod tokens;
pub mod users;

use std::net::IpAddr;

use crate::store::{Store, StoreError};
use config::WebConfig;

/// What a user may do (`docs/access.md` has the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, every tenant.
    BankAdmin,
    /// Monitoring, search, institutions, SAF, cards and balance files of its
    /// own institutions.
    BankOperator,
    /// Its orderer's prepaid cards, loads, moves, orders, statements,
    /// attestation, and its orderer's users.
    OrdererAdmin,
    /// Its orderer's prepaid cards, loads, moves, orders, statements,
    /// attestation.
    OrdererUser,
    /// Reads everything, and the audit log; changes nothing.
    Auditor,
}

impl Role {
    /// Every role, in the order the docs list them.
    pub const ALL: [Role; 5] = [
        Role::BankAdmin,
        Role::BankOperator,
        Role::OrdererAdmin,
        Role::OrdererUser,
        Role::Auditor,
    ];

    /// The name in the store, the CLI and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::BankAdmin => "bank-admin",
            Role::BankOperator => "bank-operator",
            Role::OrdererAdmin => "orderer-admin",
            Role::OrdererUser => "orderer-user",
            Role::Auditor => "auditor",
        }
    }

    /// The role named `name` (as [`Role::as_str`] spells it).
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Whether the role belongs to an orderer (else to the bank).
    pub fn is_orderer(self) -> bool {
        matches!(self, Role::OrdererAdmin | Role::OrdererUser)
    }

    /// Whether the role reads prepaid data (of its tenant's orderers):
    /// bank admins, auditors, orderers' users.
    pub fn reads_prepaid(self) -> bool {
        matches!(
            self,
            Role::BankAdmin | Role::Auditor | Role::OrdererAdmin | Role::OrdererUser
        )
    }

    /// Whether the role reads the bank's own prepaid data (the ledger
    /// audit, the accounting export): bank admins and auditors.
    pub fn reads_bank_prepaid(self) -> bool {
        matches!(self, Role::BankAdmin | Role::Auditor)
    }

    /// Whether the role loads, moves, replaces, orders and attests (for
    /// its tenant's orderers): bank admins and orderers' users.
    pub fn changes_prepaid(self) -> bool {
        matches!(
            self,
            Role::BankAdmin | Role::OrdererAdmin | Role::OrdererUser
        )
    }
}

/// Whose data an actor may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// The bank as a whole (bank admins, auditors, machine clients).
    Bank,
    /// The named institutions only (bank operators).
    Institutions(Vec<String>),
    /// One prepaid orderer (orderer admins and users).
    Orderer(String),
}

/// Who makes a request, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The user's name, or the machine client's (`api-token`).
    pub user: String,
    pub role: Role,
    pub tenant: Tenant,
    /// The peer address, when over the network.
    pub from: Option<IpAddr>,
}

impl Actor {
    /// The operator of the local machine: the CLI acts as bank admin.
    pub fn cli() -> Actor {
        Actor {
            user: CLI_USER.into(),
            role: Role::BankAdmin,
            tenant: Tenant::Bank,
            from: None,
        }
    }

    /// The `[api]` machine token's client, from `from`.
    pub fn machine(from: Option<IpAddr>) -> Actor {
        Actor {
            user: MACHINE_USER.into(),
            role: Role::BankAdmin,
            tenant: Tenant::Bank,
            from,
        }
    }

    /// Whether the actor may see the data of orderer `orderer`.
    pub fn sees_orderer(&self, orderer: &str) -> bool {
        match &self.tenant {
            Tenant::Orderer(own) => own == orderer,
            Tenant::Bank => true,
            Tenant::Institutions(_) => false,
        }
    }

    /// Whether the actor is the `[api]` machine token's client (which
    /// acts for systems, not for one person).
    pub fn is_machine(&self) -> bool {
        self.user == MACHINE_USER && self.role == Role::BankAdmin
    }

    /// Whether the actor sees every orderer (the bank as a whole).
    pub fn sees_every_orderer(&self) -> bool {
        self.tenant == Tenant::Bank
    }

    /// Whether the actor may see the data of institution `institution`.
    pub fn sees_institution(&self, institution: &str) -> bool {
        match &self.tenant {
            Tenant::Bank => true,
            Tenant::Institutions(own) => own.iter().any(|i| i == institution),
            Tenant::Orderer(_) => false,
        }
    }

    /// Whether the actor may see a transaction of `institution` (one of
    /// no institution: the whole bank only).
    pub fn sees_transaction(&self, institution: Option<&str>) -> bool {
        institution.map_or(self.tenant == Tenant::Bank, |i| self.sees_institution(i))
    }

    /// The institution criterion of a list the actor asks for: `given`
    /// when it may see it, its only institution when none is given (with
    /// several, the caller filters the answer instead).
    ///
    /// # Errors
    /// [`AccessError::Forbidden`] for an institution the actor may not see.
    pub fn scoped_institution(&self, given: Option<String>) -> Result<Option<String>, AccessError> {
        match (&self.tenant, given) {
            (Tenant::Institutions(own), None) if own.len() == 1 => Ok(own.first().cloned()),
            (_, Some(id)) => {
                require(self, self.sees_institution(&id), "see that institution")?;
                Ok(Some(id))
            }
            (_, None) => Ok(None),
        }
    }

    /// The orderer the actor is limited to, if any.
    pub fn orderer(&self) -> Option<&str> {
        match &self.tenant {
            Tenant::Orderer(own) => Some(own),
            Tenant::Bank | Tenant::Institutions(_) => None,
        }
    }
}

/// The actor name of the `[api]` machine token; no user may take it.
pub const MACHINE_USER: &str = "api-token";

/// The actor name of the CLI; no user may take it.
pub const CLI_USER: &str = "cli";

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The longest password accepted, in bytes (hashing cost is bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why an access operation was refused or failed. Refusals that could tell
/// an attacker something (which user names exist, whether a password was
/// close) are one [`AccessError::BadCredentials`].
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// A user name outside 1 to 64 of `A-Z a-z 0-9 . _ @ -`, or one the
    /// audit log uses for machines (`api-token`, `cli`). The caller's.
    #[error(
        "user name {name:?} must be 1 to 64 letters, digits, '.', '_', '@' or '-', \
         and neither api-token nor cli"
    )]
    InvalidName { name: String },
    /// A password shorter than [`MIN_PASSWORD_CHARS`] or longer than
    /// [`MAX_PASSWORD_BYTES`]. The caller's.
    #[error(
        "a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_BYTES} bytes' worth of characters"
    )]
    PasswordLength,
    /// A token label outside 1 to 64 printable characters. The caller's.
    #[error("a token label has 1 to 64 printable characters")]
    InvalidLabel,
    /// No user of that name (or none the actor may see). The caller's.
    #[error("no user {name:?}")]
    UnknownUser { name: String },
    /// A user of that name exists. The caller's.
    #[error("user {name:?} exists")]
    UserExists { name: String },
    /// The role and tenant do not fit together (an orderer role without
    /// its orderer, a bank operator without institutions, ...). The caller's.
    #[error("role {role} {problem}")]
    TenantMismatch {
        role: &'static str,
        problem: &'static str,
    },
    /// A role name that is none of [`Role::ALL`]. The caller's.
    #[error(
        "unknown role {role:?} (one of bank-admin, bank-operator, orderer-admin, orderer-user, auditor)"
    )]
    UnknownRole { role: String },
    /// An institution that is not in the configuration. The caller's.
    #[error("institution {institution:?} is not in the config")]
    UnknownInstitution { institution: String },
    /// The orderer is not registered in the prepaid ledger. The caller's.
    #[error("no orderer {orderer:?}")]
    UnknownOrderer { orderer: String },
    /// No API token with that id (or none the actor may see). The caller's.
    #[error("no API token {id}")]
    UnknownToken { id: i64 },
    /// The actor's role or tenant may not do this. The caller's; retrying
    /// does not help.
    #[error("{actor} ({role}) may not {what}")]
    Forbidden {
        actor: String,
        role: &'static str,
        what: &'static str,
    },
    /// Wrong name or password, or a disabled user: which one is not told.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Too many failed logins for the user or from the address lately;
    /// refused without checking the password. Retry after `retry_after_secs`.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    TooManyFailures { retry_after_secs: u64 },
    /// A session id that is unknown, ended, expired, or whose user is
    /// disabled. The caller logs in again.
    #[error("no valid session")]
    NoSession,
    /// A stored password hash cannot be read or a new one made (ours).
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// The store failed (see [`StoreError`] for whose fault and retries).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A blocking task (password hashing) did not finish (ours).
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// The access service: users, sessions, tokens and the audit, on the hub's
/// store. Cheap to clone.
#[derive(Clone)]
pub struct Access {
    store: Store,
    web: WebConfig,
}

impl Access {
    /// The service on `store`, with `[web]`'s session timeouts.
    pub fn new(store: Store, web: &WebConfig) -> Access {
        Access {
            store,
            web: web.clone(),
        }
    }

    /// The store it works on.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Microseconds since the Unix epoch, now.
fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Refuses `what` unless `allowed`.
fn require(by: &Actor, allowed: bool, what: &'static str) -> Result<(), AccessError> {
    if allowed {
        Ok(())
    } else {
        Err(AccessError::Forbidden {
            actor: by.user.clone(),
            role: by.role.as_str(),
            what,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_back_from_its_name() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn tenants_limit_what_an_actor_sees() {
        let orderer = Actor {
            user: "o".into(),
            role: Role::OrdererUser,
            tenant: Tenant::Orderer("a".into()),
            from: None,
        };
        assert!(orderer.sees_orderer("a"));
        assert!(!orderer.sees_orderer("b"));
        assert!(!orderer.sees_institution("a"));
        let operator = Actor {
            role: Role::BankOperator,
            tenant: Tenant::Institutions(vec!["bank1".into()]),
            ..orderer
        };
        assert!(operator.sees_institution("bank1"));
        assert!(!operator.sees_orderer("a"));
        assert!(!operator.sees_institution("bank2"));
        assert!(Actor::cli().sees_orderer("a") && Actor::cli().sees_institution("x"));
    }
}
