//! `cardhub users …`: the users of the web application and the API, their
//! API tokens, and the audit log, on the store of `--config`. The CLI acts
//! as bank admin (`cli` in the audit log): whoever runs it on the hub's
//! machine owns the store anyway. A password is read from the terminal
//! without echo, or with `--password-stdin` from the first line of standard
//! input; never from an argument (it would sit in the shell history and the
//! process list).

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use zeroize::Zeroizing;

use super::ConfigArg;
use cardhub_core::access::audit::{self, Action, Query};
use cardhub_core::access::tokens::TokenInfo;
use cardhub_core::access::users::{self, NewUser, User};
use cardhub_core::access::{Access, Actor, Role, Tenant};
use cardhub_core::config::Config;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user: a bank admin or auditor (no tenant), a bank operator of
    /// `--institution`s, or an orderer admin or user of `--orderer`.
    Add {
        #[arg(long)]
        name: String,
        #[command(flatten)]
        role: RoleArg,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List users with their roles, tenants and states.
    List {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Disable a user: its logins, sessions and API tokens stop working.
    Disable {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Enable a disabled user again.
    Enable {
        name: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Give a user another role and tenant.
    SetRole {
        name: String,
        #[command(flatten)]
        role: RoleArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Set a user's password.
    SetPassword {
        name: String,
        #[command(flatten)]
        password: PasswordArg,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Per-user API tokens: issue, list, revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The audit log, newest first.
    Audit {
        /// Only this actor (a user name, `api-token`, `cli`).
        #[arg(long)]
        actor: Option<String>,
        /// Only this action (`login`, `user.add`, `prepaid.load`, ...).
        #[arg(long)]
        action: Option<String>,
        /// Only objects of this kind (`user`, `card`, `institution`, ...).
        #[arg(long)]
        object_kind: Option<String>,
        /// Only this object id.
        #[arg(long)]
        object_id: Option<String>,
        /// From this time on (RFC 3339).
        #[arg(long)]
        from: Option<String>,
        /// Before this time (RFC 3339).
        #[arg(long)]
        to: Option<String>,
        /// Only rows older than this id (the next page).
        #[arg(long)]
        before: Option<i64>,
        /// At most this many rows (default 100, at most 1000).
        #[arg(long)]
        limit: Option<usize>,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token for a user; it is printed once and never again.
    Issue {
        name: String,
        /// What the token is for.
        #[arg(long)]
        label: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// List tokens (of one user, or all), revoked ones too.
    List {
        name: Option<String>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Revoke a token by its id.
    Revoke {
        id: i64,
        #[command(flatten)]
        config: ConfigArg,
    },
}

/// A role and its tenant.
#[derive(Debug, Args)]
pub struct RoleArg {
    /// bank-admin, bank-operator, orderer-admin, orderer-user or auditor.
    #[arg(long)]
    role: String,
    /// A bank operator's institution (repeat for several).
    #[arg(long = "institution")]
    institutions: Vec<String>,
    /// An orderer admin's or user's orderer.
    #[arg(long, conflicts_with = "institutions")]
    orderer: Option<String>,
}

impl RoleArg {
    /// The role and tenant, institutions checked against the config.
    fn resolve(self, config: &Config) -> Result<(Role, Tenant)> {
        let known = |id: &str| config.institutions.iter().any(|i| i.id == id);
        Ok(users::role_and_tenant(
            &self.role,
            self.institutions,
            self.orderer,
            known,
        )?)
    }
}

/// Where the password comes from.
#[derive(Debug, Args)]
pub struct PasswordArg {
    /// Read the password from the first line of standard input instead of
    /// prompting on the terminal.
    #[arg(long)]
    password_stdin: bool,
}

impl PasswordArg {
    fn read(&self) -> Result<Zeroizing<String>> {
        if self.password_stdin {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
            return Ok(trimmed);
        }
        let no_terminal = "no terminal to ask for the password on: use --password-stdin";
        let first = Zeroizing::new(rpassword::prompt_password("Password: ").context(no_terminal)?);
        let again = Zeroizing::new(rpassword::prompt_password("Again: ").context(no_terminal)?);
        if first != again {
            bail!("the passwords differ");
        }
        Ok(first)
    }
}

pub fn run(command: UsersCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(execute(command))
}

fn open(config: &ConfigArg) -> Result<(Access, Config)> {
    let (config, store) = config.open()?;
    Ok((Access::new(store, &config.web), config))
}

async fn execute(command: UsersCommand) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let cli = Actor::cli();
    match command {
        UsersCommand::Add {
            name,
            role,
            password,
            config,
        } => {
            let (access, config) = open(&config)?;
            let (role, tenant) = role.resolve(&config)?;
            let password = password.read()?;
            let user = NewUser { name, role, tenant };
            let added = access.add_user(&cli, user, &password).await?;
            print_user(&mut out, &added)?;
        }
        UsersCommand::List { config } => {
            let (access, _) = open(&config)?;
            for user in access.users(&cli)? {
                print_user(&mut out, &user)?;
            }
        }
        UsersCommand::Disable { name, config } => {
            let (access, _) = open(&config)?;
            print_user(&mut out, &access.set_disabled(&cli, &name, true).await?)?;
        }
        UsersCommand::Enable { name, config } => {
            let (access, _) = open(&config)?;
            print_user(&mut out, &access.set_disabled(&cli, &name, false).await?)?;
        }
        UsersCommand::SetRole { name, role, config } => {
            let (access, config) = open(&config)?;
            let (role, tenant) = role.resolve(&config)?;
            print_user(&mut out, &access.set_role(&cli, &name, role, tenant).await?)?;
        }
        UsersCommand::SetPassword {
            name,
            password,
            config,
        } => {
            let (access, _) = open(&config)?;
            let password = password.read()?;
            print_user(
                &mut out,
                &access.set_password(&cli, &name, &password).await?,
            )?;
        }
        UsersCommand::Token { command } => token(&mut out, &cli, command).await?,
        UsersCommand::Audit {
            actor,
            action,
            object_kind,
            object_id,
            from,
            to,
            before,
            limit,
            config,
        } => {
            let (access, _) = open(&config)?;
            let action = action
                .map(|a| Action::parse(&a).with_context(|| format!("unknown action {a:?}")))
                .transpose()?;
            let query = Query {
                actor,
                action,
                object_kind,
                object_id,
                from_us: from.as_deref().map(time_us).transpose()?,
                to_us: to.as_deref().map(time_us).transpose()?,
                before_id: before,
                limit,
            };
            for entry in access.search_audit(&cli, &query)? {
                print_entry(&mut out, &entry)?;
            }
        }
    }
    Ok(())
}

async fn token(out: &mut impl Write, cli: &Actor, command: TokenCommand) -> Result<()> {
    match command {
        TokenCommand::Issue {
            name,
            label,
            config,
        } => {
            let (access, _) = open(&config)?;
            let issued = access.issue_token(cli, &name, &label).await?;
            writeln!(
                out,
                "token {} for {name}: {}",
                issued.id,
                issued.token.as_str()
            )?;
            writeln!(out, "(shown once: it is stored only as a hash)")?;
        }
        TokenCommand::List { name, config } => {
            let (access, _) = open(&config)?;
            for token in access.tokens(cli, name.as_deref())? {
                print_token(out, &token)?;
            }
        }
        TokenCommand::Revoke { id, config } => {
            let (access, _) = open(&config)?;
            access.revoke_token(cli, id).await?;
            writeln!(out, "token {id} revoked")?;
        }
    }
    Ok(())
}

/// An RFC 3339 time as microseconds since the epoch.
fn time_us(text: &str) -> Result<i64> {
    let at: jiff::Timestamp = text
        .parse()
        .with_context(|| format!("{text:?} is not an RFC 3339 time"))?;
    Ok(at.as_microsecond())
}

fn time(us: i64) -> String {
    jiff::Timestamp::from_microsecond(us).map_or_else(|_| us.to_string(), |t| t.to_string())
}

fn tenant(tenant: &Tenant) -> String {
    match tenant {
        Tenant::Bank => "bank".into(),
        Tenant::Institutions(ids) => format!("institutions {}", ids.join(",")),
        Tenant::Orderer(id) => format!("orderer {id}"),
    }
}

fn print_user(out: &mut impl Write, user: &User) -> Result<()> {
    writeln!(
        out,
        "{}  {}  {}  {}  created {}",
        user.name,
        user.role.as_str(),
        tenant(&user.tenant),
        if user.disabled { "disabled" } else { "enabled" },
        time(user.created_at_us),
    )?;
    Ok(())
}

fn print_token(out: &mut impl Write, token: &TokenInfo) -> Result<()> {
    let state = token.revoked_at_us.map_or_else(
        || "active".to_string(),
        |at| format!("revoked {}", time(at)),
    );
    writeln!(
        out,
        "{}  {}  {:?}  issued {}  {state}",
        token.id,
        token.user,
        token.label,
        time(token.created_at_us),
    )?;
    Ok(())
}

fn print_entry(out: &mut impl Write, entry: &audit::Entry) -> Result<()> {
    writeln!(
        out,
        "{}  {}  {} ({}) from {}  {}  {} {}  {}{}{}",
        entry.id,
        time(entry.at_us),
        entry.actor,
        entry.role.as_deref().unwrap_or("-"),
        entry.source.as_deref().unwrap_or("-"),
        entry.action,
        entry.object_kind,
        entry.object_id,
        entry.outcome,
        entry
            .before
            .as_deref()
            .map(|b| format!("  before {b}"))
            .unwrap_or_default(),
        entry
            .after
            .as_deref()
            .map(|a| format!("  after {a}"))
            .unwrap_or_default(),
    )?;
    Ok(())
}
