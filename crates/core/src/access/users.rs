//! Users: a name, a role, a tenant, an argon2id password hash, disabled or
//! not. Bank admins manage every user; orderer admins manage the users of
//! their own orderer (orderer roles only); a user changes its own password.
//! Every change is audited in the store job that makes it, with the user's
//! role and tenant before and after (never the hash).

use crate::store::sql;
use std::sync::OnceLock;

use crate::store::sql::{Connection, OptionalExtension, params};
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use serde_json::json;
use zeroize::Zeroizing;

use super::audit::{self, Action, NewEntry};
use super::{
    Access, AccessError, Actor, CLI_USER, MACHINE_USER, MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS,
    Role, Tenant, now_us, require,
};

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub tenant: Tenant,
}

/// A user as stored (without its password hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub tenant: Tenant,
    pub disabled: bool,
    pub created_at_us: i64,
}

impl User {
    /// The actor this user is, from `from`.
    pub fn actor(&self, from: Option<std::net::IpAddr>) -> Actor {
        Actor {
            user: self.name.clone(),
            role: self.role,
            tenant: self.tenant.clone(),
            from,
        }
    }

    /// Role, tenant and state as JSON, for the audit log.
    fn state(&self) -> serde_json::Value {
        json!({
            "role": self.role.as_str(),
            "tenant": tenant_json(&self.tenant),
            "disabled": self.disabled,
        })
    }
}

fn tenant_json(tenant: &Tenant) -> serde_json::Value {
    match tenant {
        Tenant::Bank => json!("bank"),
        Tenant::Institutions(ids) => json!({ "institutions": ids }),
        Tenant::Orderer(id) => json!({ "orderer": id }),
    }
}

/// Checks a user name: 1 to 64 of `A-Z a-z 0-9 . _ @ -`, and not a name
/// the audit log gives machines ([`MACHINE_USER`], [`CLI_USER`]).
///
/// # Errors
/// [`AccessError::InvalidName`].
pub fn check_name(name: &str) -> Result<(), AccessError> {
    let fits = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
        && !name.eq_ignore_ascii_case(MACHINE_USER)
        && !name.eq_ignore_ascii_case(CLI_USER);
    if fits {
        Ok(())
    } else {
        Err(AccessError::InvalidName { name: name.into() })
    }
}

/// Checks a new password's length: at least [`MIN_PASSWORD_CHARS`]
/// characters, at most [`MAX_PASSWORD_BYTES`] bytes.
///
/// # Errors
/// [`AccessError::PasswordLength`].
pub fn check_password(password: &str) -> Result<(), AccessError> {
    if password.chars().count() < MIN_PASSWORD_CHARS || password.len() > MAX_PASSWORD_BYTES {
        return Err(AccessError::PasswordLength);
    }
    Ok(())
}

/// Checks that `tenant` fits `role`: bank admins and auditors act for the
/// bank, bank operators for named institutions, orderer roles for one
/// orderer.
///
/// # Errors
/// [`AccessError::TenantMismatch`].
pub fn check_tenant(role: Role, tenant: &Tenant) -> Result<(), AccessError> {
    let problem = match (role, tenant) {
        (Role::BankAdmin | Role::Auditor, Tenant::Bank) => return Ok(()),
        (Role::BankAdmin | Role::Auditor, _) => {
            "acts for the whole bank: no institution or orderer"
        }
        (Role::BankOperator, Tenant::Institutions(ids)) if !ids.is_empty() => return Ok(()),
        (Role::BankOperator, _) => "needs one or more institutions",
        (Role::OrdererAdmin | Role::OrdererUser, Tenant::Orderer(_)) => return Ok(()),
        (Role::OrdererAdmin | Role::OrdererUser, _) => "needs its orderer",
    };
    Err(AccessError::TenantMismatch {
        role: role.as_str(),
        problem,
    })
}

/// The role named `role` and the tenant named by `institutions` or
/// `orderer`, as the CLI's flags and the web form give them: an orderer's,
/// else the institutions', else the bank's; each institution must be one
/// `known_institution` accepts, and the tenant must fit the role.
///
/// # Errors
/// [`AccessError::UnknownRole`], [`AccessError::UnknownInstitution`],
/// [`AccessError::TenantMismatch`] (also for both institutions and an
/// orderer).
pub fn role_and_tenant(
    role: &str,
    institutions: Vec<String>,
    orderer: Option<String>,
    known_institution: impl Fn(&str) -> bool,
) -> Result<(Role, Tenant), AccessError> {
    let Some(role) = Role::parse(role) else {
        return Err(AccessError::UnknownRole { role: role.into() });
    };
    if let Some(unknown) = institutions.iter().find(|i| !known_institution(i)) {
        return Err(AccessError::UnknownInstitution {
            institution: unknown.clone(),
        });
    }
    let tenant = match (orderer, institutions.is_empty()) {
        (Some(_), false) => {
            return Err(AccessError::TenantMismatch {
                role: role.as_str(),
                problem: "names institutions or an orderer, not both",
            });
        }
        (Some(orderer), true) => Tenant::Orderer(orderer),
        (None, false) => Tenant::Institutions(institutions),
        (None, true) => Tenant::Bank,
    };
    check_tenant(role, &tenant)?;
    Ok((role, tenant))
}

/// Whether `by` may create or change a user of `role` for `tenant`.
fn manages(by: &Actor, role: Role, tenant: &Tenant) -> bool {
    match by.role {
        Role::BankAdmin => true,
        Role::OrdererAdmin => role.is_orderer() && *tenant == by.tenant,
        Role::BankOperator | Role::OrdererUser | Role::Auditor => false,
    }
}

/// Whether `by` may see `user`.
fn sees(by: &Actor, user: &User) -> bool {
    match by.role {
        Role::BankAdmin | Role::Auditor => true,
        Role::OrdererAdmin => user.tenant == by.tenant,
        Role::BankOperator | Role::OrdererUser => user.name == by.user,
    }
}

/// Hashes `password` with argon2id (the crate's default parameters) and a
/// fresh random salt, as a PHC string. Slow on purpose: call it off the
/// async runtime.
///
/// # Errors
/// [`AccessError::Hash`] when the system's random source fails.
pub fn hash_password(password: &str) -> Result<String, AccessError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| AccessError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (the comparison is
/// constant-time). A hash that cannot be read matches nothing. Slow on
/// purpose: call it off the async runtime.
pub fn verify_password(password: &str, hash: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// A hash no password is known for: checked against when the user name is
/// unknown, so the answer takes as long as for a known one.
pub(super) fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        let random = hex::encode(rand::random::<[u8; 32]>());
        hash_password(&random).unwrap_or_default()
    })
}

/// Hashes off the async runtime.
async fn hash_blocking(password: &str) -> Result<String, AccessError> {
    let password = Zeroizing::new(password.to_owned());
    tokio::task::spawn_blocking(move || hash_password(&password)).await?
}

/// The user named `name` and its password hash.
pub(super) fn find(conn: &Connection, name: &str) -> sql::Result<Option<(User, String)>> {
    let row = conn
        .prepare_cached(
            "SELECT id, role, orderer, disabled, created_at_us, password_hash \
             FROM access_users WHERE name = ?1",
        )?
        .query_row([name], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<String>(1)?,
                r.get::<Option<String>>(2)?,
                r.get::<bool>(3)?,
                r.get::<i64>(4)?,
                r.get::<String>(5)?,
            ))
        })
        .optional()?;
    let Some((id, role, orderer, disabled, created_at_us, hash)) = row else {
        return Ok(None);
    };
    let user = user_from(
        conn,
        id,
        name.into(),
        &role,
        orderer,
        disabled,
        created_at_us,
    )?;
    Ok(Some((user, hash)))
}

/// The user with id `id`.
pub(super) fn by_id(conn: &Connection, id: i64) -> sql::Result<Option<User>> {
    let name: Option<String> = conn
        .prepare_cached("SELECT name FROM access_users WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    match name {
        Some(name) => Ok(find(conn, &name)?.map(|(user, _)| user)),
        None => Ok(None),
    }
}

fn user_from(
    conn: &Connection,
    id: i64,
    name: String,
    role: &str,
    orderer: Option<String>,
    disabled: bool,
    created_at_us: i64,
) -> sql::Result<User> {
    let role = Role::parse(role)
        .ok_or_else(|| sql::Error::bad_column(1, format!("unknown role {role:?}")))?;
    let tenant = match (role, orderer) {
        (_, Some(orderer)) => Tenant::Orderer(orderer),
        (Role::BankOperator, None) => Tenant::Institutions(
            conn.prepare_cached(
                "SELECT institution FROM access_user_institutions WHERE \"user\" = ?1 \
                 ORDER BY institution",
            )?
            .query_map([id], |r| r.get(0))?
            .collect::<sql::Result<_>>()?,
        ),
        (_, None) => Tenant::Bank,
    };
    Ok(User {
        id,
        name,
        role,
        tenant,
        disabled,
        created_at_us,
    })
}

/// The orderer column of `tenant`.
fn orderer_of(tenant: &Tenant) -> Option<&str> {
    match tenant {
        Tenant::Orderer(o) => Some(o),
        Tenant::Bank | Tenant::Institutions(_) => None,
    }
}

/// Writes user `id`'s institutions over what it had.
fn store_institutions(conn: &Connection, id: i64, tenant: &Tenant) -> sql::Result<()> {
    conn.execute(
        "DELETE FROM access_user_institutions WHERE \"user\" = ?1",
        [id],
    )?;
    if let Tenant::Institutions(ids) = tenant {
        let mut insert = conn.prepare_cached(
            "INSERT INTO access_user_institutions (\"user\", institution) VALUES (?1, ?2) \
             ON CONFLICT DO NOTHING",
        )?;
        for institution in ids {
            insert.execute(params![id, institution])?;
        }
    }
    Ok(())
}

/// Refuses an orderer the ledger does not know.
fn check_orderer(conn: &Connection, tenant: &Tenant) -> sql::Result<Result<(), AccessError>> {
    let Tenant::Orderer(orderer) = tenant else {
        return Ok(Ok(()));
    };
    let known = conn
        .prepare_cached("SELECT 1 FROM prepaid_orderers WHERE id = ?1")?
        .exists([orderer])?;
    Ok(if known {
        Ok(())
    } else {
        Err(AccessError::UnknownOrderer {
            orderer: orderer.clone(),
        })
    })
}

impl Access {
    /// Creates a user with `password`, audited as `user.add` by `by`.
    ///
    /// # Errors
    /// [`AccessError::Forbidden`] unless `by` manages such users;
    /// [`AccessError::InvalidName`], [`AccessError::PasswordLength`],
    /// [`AccessError::TenantMismatch`], [`AccessError::UnknownOrderer`],
    /// [`AccessError::UserExists`]; the store's.
    pub async fn add_user(
        &self,
        by: &Actor,
        user: NewUser,
        password: &str,
    ) -> Result<User, AccessError> {
        require(by, manages(by, user.role, &user.tenant), "add such a user")?;
        check_name(&user.name)?;
        check_tenant(user.role, &user.tenant)?;
        check_password(password)?;
        let hash = hash_blocking(password).await?;
        let by = by.clone();
        self.store
            .write(move |c| {
                if find(c, &user.name)?.is_some() {
                    return Ok(Err(AccessError::UserExists {
                        name: user.name.clone(),
                    }));
                }
                if let Err(e) = check_orderer(c, &user.tenant)? {
                    return Ok(Err(e));
                }
                let id: i64 = c.prepare_insert(
                    "INSERT INTO access_users (name, role, orderer, password_hash, created_at_us) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .insert(params![
                        user.name,
                        user.role.as_str(),
                        orderer_of(&user.tenant),
                        hash,
                        now_us()
                    ])?;
                store_institutions(c, id, &user.tenant)?;
                let Some(added) = by_id(c, id)? else {
                    return Err(sql::Error::NoRows);
                };
                let entry =
                    NewEntry::new(&by, Action::UserAdd, "user", &added.name).after(&added.state());
                audit::record(c, &entry)?;
                Ok(Ok(added))
            })
            .await?
    }

    /// The users `by` may see, by name.
    ///
    /// # Errors
    /// The store's.
    pub fn users(&self, by: &Actor) -> Result<Vec<User>, AccessError> {
        let all = self.store.read(|c| {
            let names: Vec<String> = c
                .prepare_cached("SELECT name FROM access_users ORDER BY name")?
                .query_map(params![], |r| r.get(0))?
                .collect::<sql::Result<_>>()?;
            let mut users = Vec::with_capacity(names.len());
            for name in names {
                users.extend(find(c, &name)?.map(|(user, _)| user));
            }
            Ok(users)
        })?;
        Ok(all.into_iter().filter(|u| sees(by, u)).collect())
    }

    /// The user named `name`, if `by` may see it.
    ///
    /// # Errors
    /// [`AccessError::UnknownUser`] (also for a user `by` may not see); the store's.
    pub fn user(&self, by: &Actor, name: &str) -> Result<User, AccessError> {
        let found = self.store.read(|c| find(c, name))?;
        match found {
            Some((user, _)) if sees(by, &user) => Ok(user),
            _ => Err(AccessError::UnknownUser { name: name.into() }),
        }
    }

    /// Disables (`true`) or enables a user. A disabled user cannot log in,
    /// and its sessions and API tokens stop working at once.
    ///
    /// # Errors
    /// As [`Access::set_role`].
    pub async fn set_disabled(
        &self,
        by: &Actor,
        name: &str,
        disabled: bool,
    ) -> Result<User, AccessError> {
        let action = if disabled {
            Action::UserDisable
        } else {
            Action::UserEnable
        };
        self.change(by, name, action, None, move |c, user| {
            c.execute(
                "UPDATE access_users SET disabled = ?2 WHERE id = ?1",
                params![user.id, disabled],
            )
            .map(drop)
        })
        .await
    }

    /// Gives a user another role and tenant.
    ///
    /// # Errors
    /// [`AccessError::Forbidden`] unless `by` manages the user both before
    /// and after; [`AccessError::UnknownUser`], [`AccessError::TenantMismatch`],
    /// [`AccessError::UnknownOrderer`]; the store's.
    pub async fn set_role(
        &self,
        by: &Actor,
        name: &str,
        role: Role,
        tenant: Tenant,
    ) -> Result<User, AccessError> {
        require(by, manages(by, role, &tenant), "give that role")?;
        check_tenant(role, &tenant)?;
        let target = Some((role, tenant.clone()));
        self.change(by, name, Action::UserSetRole, target, move |c, user| {
            c.execute(
                "UPDATE access_users SET role = ?2, orderer = ?3 WHERE id = ?1",
                params![user.id, role.as_str(), orderer_of(&tenant)],
            )?;
            store_institutions(c, user.id, &tenant)
        })
        .await
    }

    /// Sets a user's password: its own, or one `by` manages.
    ///
    /// # Errors
    /// [`AccessError::PasswordLength`], [`AccessError::Forbidden`],
    /// [`AccessError::UnknownUser`]; the store's.
    pub async fn set_password(
        &self,
        by: &Actor,
        name: &str,
        password: &str,
    ) -> Result<User, AccessError> {
        check_password(password)?;
        let hash = hash_blocking(password).await?;
        self.change(by, name, Action::UserSetPassword, None, move |c, user| {
            c.execute(
                "UPDATE access_users SET password_hash = ?2 WHERE id = ?1",
                params![user.id, hash],
            )
            .map(drop)
        })
        .await
    }

    /// Changes `by`'s own password after checking its current one (the web
    /// application's "change password" form).
    ///
    /// # Errors
    /// [`AccessError::BadCredentials`] when `current` is wrong (audited as a
    /// failed `user.set-password`); as [`Access::set_password`].
    pub async fn change_own_password(
        &self,
        by: &Actor,
        current: &str,
        new: &str,
    ) -> Result<User, AccessError> {
        check_password(new)?;
        let name = by.user.clone();
        let stored = self.store.read(|c| find(c, &name))?;
        let Some((_, hash)) = stored else {
            return Err(AccessError::UnknownUser { name });
        };
        let current = Zeroizing::new(current.to_owned());
        let matches = tokio::task::spawn_blocking(move || verify_password(&current, &hash)).await?;
        if !matches {
            let entry = NewEntry::new(by, Action::UserSetPassword, "user", &by.user)
                .outcome(audit::Outcome::Failed);
            self.audit(entry).await?;
            return Err(AccessError::BadCredentials);
        }
        self.set_password(by, &by.user, new).await
    }

    /// Runs `apply` on the user `name` in one store job with its audit row,
    /// after checking that `by` manages it (or, for a password, is it) and,
    /// for a new role, the orderer it names.
    async fn change<F>(
        &self,
        by: &Actor,
        name: &str,
        action: Action,
        target: Option<(Role, Tenant)>,
        mut apply: F,
    ) -> Result<User, AccessError>
    where
        F: FnMut(&Connection, &User) -> sql::Result<()> + Send + 'static,
    {
        let by = by.clone();
        let name = name.to_owned();
        self.store
            .write(move |c| {
                let Some((user, _)) = find(c, &name)? else {
                    return Ok(Err(AccessError::UnknownUser { name: name.clone() }));
                };
                let own_password = action == Action::UserSetPassword && user.name == by.user;
                if !own_password && !manages(&by, user.role, &user.tenant) {
                    return Ok(Err(if sees(&by, &user) {
                        AccessError::Forbidden {
                            actor: by.user.clone(),
                            role: by.role.as_str(),
                            what: "change this user",
                        }
                    } else {
                        AccessError::UnknownUser { name: name.clone() }
                    }));
                }
                if let Some((_, tenant)) = &target
                    && let Err(e) = check_orderer(c, tenant)?
                {
                    return Ok(Err(e));
                }
                apply(c, &user)?;
                let Some(after) = by_id(c, user.id)? else {
                    return Err(sql::Error::NoRows);
                };
                let entry = NewEntry::new(&by, action, "user", &user.name)
                    .before(&user.state())
                    .after(&after.state());
                audit::record(c, &entry)?;
                Ok(Ok(after))
            })
            .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_passwords_are_checked() {
        assert!(check_name("alice.b@bank-1").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("api-token").is_err() && check_name("CLI").is_err());
        assert!(check_name(&"a".repeat(65)).is_err());
        assert!(check_password("short").is_err());
        assert!(check_password("twelve chars").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn roles_need_their_tenant() {
        assert!(check_tenant(Role::BankAdmin, &Tenant::Bank).is_ok());
        assert!(check_tenant(Role::Auditor, &Tenant::Orderer("a".into())).is_err());
        assert!(check_tenant(Role::BankOperator, &Tenant::Institutions(vec![])).is_err());
        assert!(check_tenant(Role::BankOperator, &Tenant::Institutions(vec!["b".into()])).is_ok());
        assert!(check_tenant(Role::OrdererUser, &Tenant::Bank).is_err());
        assert!(check_tenant(Role::OrdererAdmin, &Tenant::Orderer("a".into())).is_ok());
    }

    #[test]
    fn a_role_and_its_tenant_come_from_names() {
        let known = |i: &str| i == "bank-a";
        let operator = role_and_tenant("bank-operator", vec!["bank-a".into()], None, known);
        assert_eq!(
            operator.unwrap(),
            (
                Role::BankOperator,
                Tenant::Institutions(vec!["bank-a".into()])
            )
        );
        let user = role_and_tenant("orderer-user", vec![], Some("city".into()), known).unwrap();
        assert_eq!(user, (Role::OrdererUser, Tenant::Orderer("city".into())));
        assert_eq!(
            role_and_tenant("auditor", vec![], None, known).unwrap(),
            (Role::Auditor, Tenant::Bank)
        );
        assert!(matches!(
            role_and_tenant("admin", vec![], None, known),
            Err(AccessError::UnknownRole { .. })
        ));
        assert!(matches!(
            role_and_tenant("bank-operator", vec!["bank-z".into()], None, known),
            Err(AccessError::UnknownInstitution { .. })
        ));
        let both = role_and_tenant(
            "orderer-user",
            vec!["bank-a".into()],
            Some("c".into()),
            known,
        );
        assert!(matches!(both, Err(AccessError::TenantMismatch { .. })));
        assert!(matches!(
            role_and_tenant("orderer-admin", vec![], None, known),
            Err(AccessError::TenantMismatch { .. })
        ));
    }

    #[test]
    fn a_hash_is_argon2id_salted_and_verifies_only_its_password() {
        let first = hash_password("correct horse battery").unwrap();
        let second = hash_password("correct horse battery").unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, second, "a fresh salt each time");
        assert!(verify_password("correct horse battery", &first));
        assert!(!verify_password("correct horse battery!", &first));
        assert!(!verify_password("anything", "not a hash"));
        assert!(!verify_password("", decoy_hash()));
    }

    #[test]
    fn orderer_admins_manage_only_their_orderers_users() {
        let admin = Actor {
            user: "oa".into(),
            role: Role::OrdererAdmin,
            tenant: Tenant::Orderer("a".into()),
            from: None,
        };
        assert!(manages(
            &admin,
            Role::OrdererUser,
            &Tenant::Orderer("a".into())
        ));
        assert!(!manages(
            &admin,
            Role::OrdererUser,
            &Tenant::Orderer("b".into())
        ));
        assert!(!manages(&admin, Role::BankAdmin, &Tenant::Bank));
        let auditor = Actor {
            role: Role::Auditor,
            tenant: Tenant::Bank,
            ..admin
        };
        assert!(!manages(
            &auditor,
            Role::OrdererUser,
            &Tenant::Orderer("a".into())
        ));
    }
}
