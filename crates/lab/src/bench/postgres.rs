//! The PostgreSQL server of `cardhub bench --postgres-url`: a database of
//! its own for each hub setup (created empty, dropped after a successful
//! run), and the CPU time of the server's processes when it runs on this
//! machine.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::Url;
use tokio_postgres::NoTls;

use super::process;

/// A connection to the server as given, to create and drop the bench's
/// databases, and where its processes are.
pub(super) struct Postgres {
    url: Url,
    admin: tokio_postgres::Client,
    /// The postmaster: the parent of this connection's backend, when that
    /// is a process of this machine (`None`: the server is elsewhere, its
    /// CPU is not measured).
    postmaster: Option<u32>,
    /// The databases created so far, dropped by [`Postgres::drop_databases`].
    created: Mutex<Vec<String>>,
}

impl Postgres {
    /// Connects to the server at `url` (any database the user may connect
    /// to; the user must be allowed to create databases).
    ///
    /// # Errors
    ///
    /// `url` is not a URL, or the server does not answer.
    pub(super) async fn connect(url: &str) -> Result<Postgres> {
        let parsed = Url::parse(url).with_context(|| format!("--postgres-url {url}"))?;
        let (admin, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .with_context(|| format!("connecting to {}", redacted(&parsed)))?;
        tokio::spawn(connection);
        let backend: i32 = admin
            .query_one("SELECT pg_backend_pid()", &[])
            .await?
            .get(0);
        let postmaster = u32::try_from(backend)
            .ok()
            .filter(|pid| is_postgres(*pid))
            .and_then(process::parent)
            .filter(|pid| is_postgres(*pid));
        Ok(Postgres {
            url: parsed,
            admin,
            postmaster,
            created: Mutex::new(Vec::new()),
        })
    }

    /// A new, empty database `cardhub_bench_<pid>_<name>` (dropped first
    /// if an earlier run left it); its URL.
    ///
    /// # Errors
    ///
    /// The server refuses.
    pub(super) async fn database(&self, name: &str) -> Result<String> {
        let db = format!("cardhub_bench_{}_{name}", std::process::id());
        // One statement each: several in one string run as one transaction,
        // which DROP and CREATE DATABASE refuse.
        for statement in [
            format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"),
            format!("CREATE DATABASE {db}"),
        ] {
            self.admin
                .batch_execute(&statement)
                .await
                .with_context(|| statement.clone())?;
        }
        if let Ok(mut created) = self.created.lock() {
            created.push(db.clone());
        }
        let mut url = self.url.clone();
        url.set_path(&format!("/{db}"));
        Ok(url.to_string())
    }

    /// CPU time the server's processes have used so far, when they are on
    /// this machine.
    pub(super) fn cpu_time(&self) -> Option<Duration> {
        process::tree_cpu_time(self.postmaster?)
    }

    /// Drops the databases [`Postgres::database`] created.
    ///
    /// # Errors
    ///
    /// The server refuses.
    pub(super) async fn drop_databases(&self) -> Result<()> {
        let created = self
            .created
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        for db in created {
            let drop = format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)");
            self.admin.batch_execute(&drop).await?;
        }
        Ok(())
    }
}

/// The server's URL without its password, for messages.
fn redacted(url: &Url) -> Url {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("…"));
    }
    url
}

/// Whether process `pid` of this machine is a PostgreSQL server process
/// (a pid the server reports may name another machine's process, or
/// another namespace's).
fn is_postgres(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "postgres")
}
