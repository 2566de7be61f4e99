//! Users, sessions, API tokens and the audit log: the `cardhub users` CLI on
//! a real config and store, and the access service (`cardhub_core::access`)
//! on the same kind of store, as the web application and the API call it.

use std::net::IpAddr;
use std::path::Path;

use cardhub_core::access::audit::{Action, Query};
use cardhub_core::access::sessions::{MAX_FAILURES_PER_USER, csrf_matches};
use cardhub_core::access::users::{NewUser, User};
use cardhub_core::access::{Access, AccessError, Actor, Role, Tenant};
use cardhub_core::config::Config;
use cardhub_core::prepaid::{Ledger, NewOrderer};

mod support;

use support::{cardhub_cli, cardhub_cli_ok};

const PASSWORD: &str = "correct horse battery";

fn config_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cardhub.toml"),
        format!(
            "[store]\n{}\n\n[[institution]]\nid = \"bank-a\"\nname = \"Bank A\"\n\
             mode = \"online\"\n\n[web]\nidle_minutes = 30\nabsolute_hours = 8\n",
            support::store_keys(dir.path())
        ),
    )
    .unwrap();
    dir
}

/// The access service on `dir`'s store, with orderers `a` and `b` in the ledger.
async fn service(dir: &Path) -> Access {
    let config = Config::load(&dir.join("cardhub.toml")).unwrap();
    let store = config.open_store().unwrap();
    let ledger = Ledger::new(store.clone(), &config.prepaid);
    for id in ["a", "b"] {
        ledger
            .create_orderer(NewOrderer {
                id: id.into(),
                name: format!("Orderer {id}"),
                funding_account: "NL00BANK0123456789".into(),
            })
            .await
            .unwrap();
    }
    Access::new(store, &config.web)
}

fn user(name: &str, role: Role, tenant: Tenant) -> NewUser {
    NewUser {
        name: name.into(),
        role,
        tenant,
    }
}

/// Adds a user as the CLI does, with the tests' password.
async fn add(access: &Access, name: &str, role: Role, tenant: Tenant) -> User {
    access
        .add_user(&Actor::cli(), user(name, role, tenant), PASSWORD)
        .await
        .unwrap()
}

fn addr(text: &str) -> Option<IpAddr> {
    Some(text.parse().unwrap())
}

#[test]
fn the_cli_adds_lists_disables_and_audits_users() {
    let dir = config_dir();
    let d = dir.path();
    let out = cardhub_cli_ok(
        d,
        &[
            "users",
            "add",
            "--name",
            "olga",
            "--role",
            "bank-operator",
            "--institution",
            "bank-a",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.contains("olga  bank-operator  institutions bank-a  enabled"),
        "{out}"
    );

    // A password is never an argument, and a short one is refused.
    let refused = cardhub_cli(
        d,
        &[
            "users",
            "add",
            "--name",
            "x",
            "--role",
            "auditor",
            "--password",
            PASSWORD,
        ],
        "",
    );
    assert!(!refused.status.success());
    let short = cardhub_cli(
        d,
        &[
            "users",
            "add",
            "--name",
            "x",
            "--role",
            "auditor",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(String::from_utf8_lossy(&short.stderr).contains("password"));
    // An institution the config lacks, a role without its tenant.
    let unknown = cardhub_cli(
        d,
        &[
            "users",
            "add",
            "--name",
            "x",
            "--role",
            "bank-operator",
            "--institution",
            "bank-z",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("bank-z"));
    let tenantless = cardhub_cli(
        d,
        &[
            "users",
            "add",
            "--name",
            "x",
            "--role",
            "orderer-user",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(String::from_utf8_lossy(&tenantless.stderr).contains("needs its orderer"));

    let out = cardhub_cli_ok(d, &["users", "disable", "olga"], "");
    assert!(out.contains("disabled"), "{out}");
    let list = cardhub_cli_ok(d, &["users", "list"], "");
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(
        list.contains("olga  bank-operator  institutions bank-a  disabled"),
        "{list}"
    );

    let audit = cardhub_cli_ok(d, &["users", "audit"], "");
    let lines: Vec<&str> = audit.lines().collect();
    assert_eq!(lines.len(), 2, "{audit}");
    assert!(
        lines[0].contains("cli (bank-admin)") && lines[0].contains("user.disable  user olga  done")
    );
    assert!(lines[0].contains(r#"before {"disabled":false"#), "{audit}");
    assert!(lines[1].contains("user.add  user olga  done"), "{audit}");
    assert!(!audit.contains("argon2"), "no hash in the audit log");
    let adds = cardhub_cli_ok(d, &["users", "audit", "--action", "user.add"], "");
    assert_eq!(adds.lines().count(), 1);

    let token = cardhub_cli_ok(
        d,
        &["users", "token", "issue", "olga", "--label", "reports"],
        "",
    );
    assert!(token.contains("token 1 for olga: cht_"), "{token}");
    let listed = cardhub_cli_ok(d, &["users", "token", "list"], "");
    assert!(
        listed.contains("olga") && listed.contains("active"),
        "{listed}"
    );
    assert!(!listed.contains("cht_"), "a token is shown once only");
    cardhub_cli_ok(d, &["users", "token", "revoke", "1"], "");
    let listed = cardhub_cli_ok(d, &["users", "token", "list", "olga"], "");
    assert!(listed.contains("revoked"), "{listed}");
}

#[tokio::test]
async fn a_login_opens_a_fresh_session_that_resolves_until_logout() {
    let dir = config_dir();
    let access = service(dir.path()).await;
    let cli = Actor::cli();
    add(
        &access,
        "ann",
        Role::OrdererUser,
        Tenant::Orderer("a".into()),
    )
    .await;

    let first = access
        .login("ann", PASSWORD, addr("10.0.0.1"))
        .await
        .unwrap();
    let second = access
        .login("ann", PASSWORD, addr("10.0.0.1"))
        .await
        .unwrap();
    assert_ne!(*first.id, *second.id, "every login gets a new id");
    assert_ne!(first.session.csrf, second.session.csrf);

    let session = access.resolve(&first.id, addr("10.0.0.2")).await.unwrap();
    assert_eq!(session.actor.user, "ann");
    assert_eq!(session.actor.role, Role::OrdererUser);
    assert_eq!(session.actor.tenant, Tenant::Orderer("a".into()));
    assert_eq!(session.actor.from, addr("10.0.0.2"));
    assert!(csrf_matches(&session, &first.session.csrf));
    assert!(!csrf_matches(&session, &second.session.csrf));

    // Only the digest is stored.
    let stored: Vec<Vec<u8>> = access
        .store()
        .read(|c| {
            c.prepare_cached("SELECT id_hash FROM access_sessions")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 32 && *h != first.id.as_bytes())
    );

    access.logout(&first.id, addr("10.0.0.2")).await.unwrap();
    assert!(matches!(
        access.resolve(&first.id, None).await,
        Err(AccessError::NoSession)
    ));
    assert!(access.resolve(&second.id, None).await.is_ok());
    assert!(matches!(
        access.resolve("not a session", None).await,
        Err(AccessError::NoSession)
    ));

    // Disabling the user ends its sessions.
    access.set_disabled(&cli, "ann", true).await.unwrap();
    assert!(matches!(
        access.resolve(&second.id, None).await,
        Err(AccessError::NoSession)
    ));
    assert!(matches!(
        access.login("ann", PASSWORD, None).await,
        Err(AccessError::BadCredentials)
    ));

    let logins = access
        .search_audit(
            &cli,
            &Query {
                action: Some(Action::Login),
                ..Query::default()
            },
        )
        .unwrap();
    let outcomes: Vec<&str> = logins.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["failed", "done", "done"]);
    assert_eq!(logins[1].source.as_deref(), Some("10.0.0.1"));
    let logouts = access
        .search_audit(
            &cli,
            &Query {
                action: Some(Action::Logout),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].source.as_deref(), Some("10.0.0.2"));
}

#[tokio::test]
async fn idle_and_old_sessions_end() {
    let dir = config_dir();
    let access = service(dir.path()).await;
    access
        .add_user(
            &Actor::cli(),
            user("bea", Role::Auditor, Tenant::Bank),
            PASSWORD,
        )
        .await
        .unwrap();
    let idle = access.login("bea", PASSWORD, None).await.unwrap();
    let old = access.login("bea", PASSWORD, None).await.unwrap();
    // Age the sessions in the store: 31 minutes idle ([web] idle_minutes =
    // 30); 9 hours old but just seen (absolute_hours = 8).
    let minute = 60_000_000_i64;
    let idle_hash = sha(&idle.id);
    let old_hash = sha(&old.id);
    access
        .store()
        .write(move |c| {
            c.execute(
                "UPDATE access_sessions SET last_seen_us = last_seen_us - ?2 WHERE id_hash = ?1",
                cardhub_core::params![idle_hash, 31 * minute],
            )?;
            c.execute(
                "UPDATE access_sessions SET created_at_us = created_at_us - ?2 WHERE id_hash = ?1",
                cardhub_core::params![old_hash, 9 * 60 * minute],
            )
        })
        .await
        .unwrap();
    assert!(matches!(
        access.resolve(&idle.id, None).await,
        Err(AccessError::NoSession)
    ));
    assert!(matches!(
        access.resolve(&old.id, None).await,
        Err(AccessError::NoSession)
    ));
}

fn sha(secret: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes()).to_vec()
}

#[tokio::test]
async fn repeated_failures_lock_the_name_out_and_the_refusals_are_audited() {
    let dir = config_dir();
    let access = service(dir.path()).await;
    let cli = Actor::cli();
    add(&access, "cid", Role::BankAdmin, Tenant::Bank).await;
    for _ in 0..MAX_FAILURES_PER_USER {
        assert!(matches!(
            access
                .login("cid", "wrong password!", addr("10.0.0.9"))
                .await,
            Err(AccessError::BadCredentials)
        ));
    }
    // Even the right password is refused now, from any address.
    let locked = access.login("cid", PASSWORD, addr("10.0.0.10")).await;
    let Err(AccessError::TooManyFailures { retry_after_secs }) = locked else {
        panic!("not locked out: {locked:?}");
    };
    assert!(
        (1..=15 * 60).contains(&retry_after_secs),
        "{retry_after_secs}"
    );
    // An unknown name fails the same way as a wrong password.
    assert!(matches!(
        access.login("nobody", PASSWORD, None).await,
        Err(AccessError::BadCredentials)
    ));
    let rows = access
        .search_audit(
            &cli,
            &Query {
                actor: Some("cid".into()),
                action: Some(Action::Login),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(rows[0].outcome, "refused");
    assert_eq!(rows[0].source.as_deref(), Some("10.0.0.10"));
    assert_eq!(rows.iter().filter(|r| r.outcome == "failed").count(), 5);
    assert!(rows.iter().all(|r| r.outcome != "done"));
}

#[tokio::test]
async fn orderer_admins_manage_only_their_own_orderers_users() {
    let dir = config_dir();
    let access = service(dir.path()).await;
    let cli = Actor::cli();
    add(
        &access,
        "ada",
        Role::OrdererAdmin,
        Tenant::Orderer("a".into()),
    )
    .await;
    add(
        &access,
        "bob",
        Role::OrdererUser,
        Tenant::Orderer("b".into()),
    )
    .await;
    let ada = access
        .login("ada", PASSWORD, None)
        .await
        .unwrap()
        .session
        .actor;
    access
        .add_user(
            &ada,
            user("amy", Role::OrdererUser, Tenant::Orderer("a".into())),
            PASSWORD,
        )
        .await
        .unwrap();
    assert!(matches!(
        access
            .add_user(
                &ada,
                user("eve", Role::OrdererUser, Tenant::Orderer("b".into())),
                PASSWORD
            )
            .await,
        Err(AccessError::Forbidden { .. })
    ));
    assert!(matches!(
        access
            .add_user(&ada, user("eve", Role::BankAdmin, Tenant::Bank), PASSWORD)
            .await,
        Err(AccessError::Forbidden { .. })
    ));
    // Orderer b's user is not even there for ada.
    assert!(matches!(
        access.set_disabled(&ada, "bob", true).await,
        Err(AccessError::UnknownUser { .. })
    ));
    let names: Vec<String> = access
        .users(&ada)
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ada", "amy"]);
    // An unknown orderer, a duplicate name.
    assert!(matches!(
        access
            .add_user(
                &cli,
                user("zed", Role::OrdererUser, Tenant::Orderer("z".into())),
                PASSWORD
            )
            .await,
        Err(AccessError::UnknownOrderer { .. })
    ));
    assert!(matches!(
        access
            .add_user(&cli, user("amy", Role::Auditor, Tenant::Bank), PASSWORD)
            .await,
        Err(AccessError::UserExists { .. })
    ));
    // A user changes its own password, knowing the current one; the old
    // one stops working.
    let amy = access
        .login("amy", PASSWORD, None)
        .await
        .unwrap()
        .session
        .actor;
    assert!(matches!(
        access
            .change_own_password(&amy, "not the password", "a brand new password")
            .await,
        Err(AccessError::BadCredentials)
    ));
    access
        .change_own_password(&amy, PASSWORD, "a brand new password")
        .await
        .unwrap();
    assert!(access.login("amy", PASSWORD, None).await.is_err());
    assert!(
        access
            .login("amy", "a brand new password", None)
            .await
            .is_ok()
    );
    // Roles and tenants change together; an orderer admin cannot promote.
    assert!(matches!(
        access
            .set_role(&ada, "amy", Role::BankAdmin, Tenant::Bank)
            .await,
        Err(AccessError::Forbidden { .. })
    ));
    let operator = Tenant::Institutions(vec!["bank-a".into()]);
    let amy = access
        .set_role(&cli, "amy", Role::BankOperator, operator.clone())
        .await
        .unwrap();
    assert_eq!((amy.role, amy.tenant), (Role::BankOperator, operator));
    assert!(matches!(
        access
            .set_role(&cli, "amy", Role::OrdererUser, Tenant::Bank)
            .await,
        Err(AccessError::TenantMismatch { .. })
    ));
    let changed = access
        .search_audit(
            &cli,
            &Query {
                action: Some(Action::UserSetRole),
                ..Query::default()
            },
        )
        .unwrap();
    assert_eq!(changed.len(), 1);
    assert!(
        changed[0]
            .before
            .as_deref()
            .unwrap()
            .contains(r#""orderer":"a""#)
    );
    assert!(
        changed[0]
            .after
            .as_deref()
            .unwrap()
            .contains(r#""institutions":["bank-a"]"#)
    );
    // Only bank admins and auditors read the audit log.
    assert!(matches!(
        access.search_audit(&ada, &Query::default()),
        Err(AccessError::Forbidden { .. })
    ));
}

#[tokio::test]
async fn a_user_token_acts_as_its_user_until_revoked_or_disabled() {
    let dir = config_dir();
    let access = service(dir.path()).await;
    let cli = Actor::cli();
    add(
        &access,
        "dan",
        Role::OrdererUser,
        Tenant::Orderer("b".into()),
    )
    .await;
    let issued = access
        .issue_token(&cli, "dan", "nightly loads")
        .await
        .unwrap();
    let actor = access
        .token_actor(&issued.token, addr("10.1.1.1"))
        .unwrap()
        .unwrap();
    assert_eq!(actor.user, "dan");
    assert_eq!(actor.tenant, Tenant::Orderer("b".into()));
    assert_eq!(actor.from, addr("10.1.1.1"));
    assert_eq!(access.token_actor("cht_0000", None).unwrap(), None);

    access.set_disabled(&cli, "dan", true).await.unwrap();
    assert_eq!(access.token_actor(&issued.token, None).unwrap(), None);
    access.set_disabled(&cli, "dan", false).await.unwrap();
    assert!(access.token_actor(&issued.token, None).unwrap().is_some());
    access.revoke_token(&cli, issued.id).await.unwrap();
    assert_eq!(access.token_actor(&issued.token, None).unwrap(), None);

    let tokens = access.tokens(&cli, Some("dan")).unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked_at_us.is_some());
    let audit = access
        .search_audit(
            &cli,
            &Query {
                object_kind: Some("token".into()),
                ..Query::default()
            },
        )
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["token.revoke", "token.issue"]);
    assert!(
        audit
            .iter()
            .all(|e| !e.after.as_deref().unwrap_or("").contains("cht_"))
    );
}
