//! The PostgreSQL back end of the store: a few writer connections, each on
//! its own thread running one queued job per transaction, read connections
//! on the calling thread, and the runtime their I/O tasks run on. See the
//! [store](crate::store) module doc for the durability promise and what
//! differs from SQLite.

use std::panic;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_postgres::NoTls;
use tokio_postgres::config::Host;

use super::reach::Reach;
use super::{Client, describe};
use crate::store::migrations::migrate_postgres;
use crate::store::sql::{self, Connection};
use crate::store::{Counters, Job, PostgresOptions, StoreError, spawn_writer};

/// The bound on a migration's round trips: building an index on a large
/// table may take minutes, and a hub starting waits for nothing else.
const MIGRATION_ROUND_TRIP: Duration = Duration::from_secs(30 * 60);

/// What the store keeps of the PostgreSQL back end besides its queue.
pub(in crate::store) struct Postgres {
    /// Opens connections (readers here, writers on their threads).
    connector: Connector,
    /// Runs every connection's I/O task; shut down after the writers
    /// stopped (the store's `Inner` drops its back end last).
    _runtime: Runtime,
}

/// Everything needed to open one more connection.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    /// The runtime, the bounds, and whether the server answers.
    reach: Arc<Reach>,
    /// The server and database, without the password.
    location: String,
}

/// The I/O runtime, shut down without waiting when dropped (a store may be
/// dropped inside async code, where a blocking shutdown panics).
struct Runtime(Option<tokio::runtime::Runtime>);

/// Jobs shared by the writer threads: whichever is free takes the next.
type SharedQueue = Arc<Mutex<mpsc::Receiver<Box<dyn Job>>>>;

impl Postgres {
    /// Connects to `url`, migrates the database and starts
    /// `options.writers` writer threads (at least one) taking their jobs
    /// from `queue`.
    pub(in crate::store) fn open(
        url: &str,
        options: PostgresOptions,
        queue: mpsc::Receiver<Box<dyn Job>>,
        counters: &Arc<Counters>,
    ) -> Result<(Postgres, Vec<JoinHandle<()>>), StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| StoreError::Open {
            // The URL itself may hold a password: not repeated.
            location: UNPARSED.into(),
            source: sql::Error::Postgres(e),
        })?;
        // Per host (a host list tries each in turn); the whole connection,
        // authentication included, is bounded by `options.connect_timeout`.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("cardhub");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cardhub-store-pg")
            .enable_all()
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot start the store's PostgreSQL runtime");
                StoreError::WriterGone
            })?;
        let reach = Reach::new(
            runtime.handle().clone(),
            options.timeout,
            options.connect_timeout,
        );
        let runtime = Runtime(Some(runtime));
        let connector = Connector {
            location: config_location(&config),
            config,
            reach: Arc::new(reach),
        };
        let migrator = connector
            .connect(MIGRATION_ROUND_TRIP)
            .map_err(|source| connector.open_error(source))?;
        migrate_postgres(&migrator, &connector.location)?;
        drop(migrator);
        let connections = (0..options.writers.max(1))
            .map(|_| connector.open_writer())
            .collect::<Result<Vec<_>, _>>()?;
        let queue: SharedQueue = Arc::new(Mutex::new(queue));
        let writers = connections
            .into_iter()
            .enumerate()
            .map(|(i, conn)| {
                let (queue, counters, connector) =
                    (Arc::clone(&queue), Arc::clone(counters), connector.clone());
                spawn_writer(format!("cardhub-store-writer-{i}"), move || {
                    run_writer(conn, &queue, &counters, &connector);
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let postgres = Postgres {
            connector,
            _runtime: runtime,
        };
        Ok((postgres, writers))
    }

    /// A new read connection: every transaction on it is read-only.
    pub(in crate::store) fn open_reader(&self) -> Result<Connection, StoreError> {
        let conn = self
            .connector
            .connect(self.connector.reach.round_trip)
            .map_err(|source| self.connector.open_error(source))?;
        conn.execute_batch("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .map_err(|source| self.connector.open_error(source))?;
        Ok(conn)
    }

    /// `postgresql://user@host:port/database`, never the password.
    pub(in crate::store) fn location(&self) -> &str {
        &self.connector.location
    }
}

impl Connector {
    /// A new connection whose I/O task runs on the store's runtime and
    /// whose round trips are bounded by `round_trip`; connecting itself is
    /// bounded too. While the server does not answer, one connection
    /// attempt at a time goes out; others fail at once (`Reach`).
    fn connect(&self, round_trip: Duration) -> sql::Result<Connection> {
        let _attempt = self.reach.attempt()?;
        let connected = self.connect_now(round_trip);
        match &connected {
            Ok(_) => self.reach.answered(),
            Err(sql::Error::Closing) => {}
            Err(_) => self.reach.lost(),
        }
        connected
    }

    fn connect_now(&self, round_trip: Duration) -> sql::Result<Connection> {
        let config = self.config.clone();
        let location = self.location.clone();
        let task = self.reach.runtime().spawn(async move {
            let (client, connection) = config.connect(NoTls).await?;
            let io = tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(%location, error = %describe(&e), "store connection to PostgreSQL lost");
                }
            });
            Ok::<_, tokio_postgres::Error>((client, io.abort_handle()))
        });
        let connecting = task.abort_handle();
        match self.reach.bounded(self.reach.connect, task) {
            Ok(Ok(connected)) => {
                let (client, io) = connected?;
                let client = Client::new(client, io, round_trip, Arc::clone(&self.reach));
                Ok(Connection::from_postgres(client))
            }
            Ok(Err(e)) if e.is_panic() => panic::resume_unwind(e.into_panic()),
            // Only a runtime shutting down cancels the task.
            Ok(Err(_)) => Err(sql::Error::Closing),
            Err(_) => {
                // A half-open connection's socket closes with the task.
                connecting.abort();
                Err(sql::Error::Timeout(self.reach.connect))
            }
        }
    }

    /// A write connection: every transaction on it is SERIALIZABLE. Jobs
    /// read, compute in Rust and write (a balance, a counter); on SQLite
    /// the one writer runs them one after the other, here several
    /// connections (and hubs) run them at once, and READ COMMITTED would
    /// let two of them overwrite each other's update. SERIALIZABLE turns
    /// that into a serialization failure (40001) of one of them: an error
    /// the caller sees ([`StoreError::is_retryable`]), never a lost update.
    fn connect_writer(&self) -> sql::Result<Connection> {
        let conn = self.connect(self.reach.round_trip)?;
        conn.execute_batch(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE",
        )?;
        Ok(conn)
    }

    /// [`Connector::connect_writer`] for opening the store.
    fn open_writer(&self) -> Result<Connection, StoreError> {
        self.connect_writer()
            .map_err(|source| self.open_error(source))
    }

    fn open_error(&self, source: sql::Error) -> StoreError {
        StoreError::Open {
            location: self.location.clone(),
            source,
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// `postgresql://user@host:port/database` of a PostgreSQL URL, for
/// messages: never its password (nor the URL itself when it does not
/// parse).
#[must_use]
pub fn location(url: &str) -> String {
    url.parse()
        .map_or_else(|_| UNPARSED.to_owned(), |config| config_location(&config))
}

/// How messages name a URL that does not parse.
const UNPARSED: &str = "the configured PostgreSQL URL";

/// `postgresql://user@host:port,host:port/database` of `config`.
fn config_location(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("postgresql://{user}{}/{database}", hosts.join(","))
}

/// A writer thread: takes the next job, runs it in its own transaction on
/// this thread's connection (opening a new one when the last was lost),
/// until every handle is gone and the queue is empty.
fn run_writer(conn: Connection, queue: &SharedQueue, counters: &Counters, connector: &Connector) {
    let mut conn = Some(conn);
    loop {
        // The lock is held while waiting: the other writers wait behind it.
        let job = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .blocking_recv();
        let Some(job) = job else { break };
        counters.jobs.fetch_add(1, Ordering::Relaxed);
        let live = match conn.take().filter(Connection::is_idle) {
            Some(live) => live,
            None => match connector.connect_writer() {
                Ok(new) => new,
                Err(e) => {
                    // While the server does not answer only the probe's
                    // failure is news (`Reach` logged the outage once).
                    if !matches!(e, sql::Error::Unreachable) {
                        tracing::error!(location = %connector.location, error = %e, "store writer cannot reconnect to PostgreSQL");
                    }
                    counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
                    job.abandon(&Arc::new(e));
                    continue;
                }
            },
        };
        run_job(&live, job, counters);
        conn = Some(live);
    }
    tracing::debug!("store writer stopped");
}

/// `BEGIN`, the job, `COMMIT` (or `ROLLBACK` when the job failed), then the
/// answer: `Ok` only once `COMMIT` has returned. A job whose transaction
/// could not be serialised with a concurrent one (40001, 40P01: two jobs
/// on one account) runs again in a new transaction, at most
/// [`ATTEMPTS`] times in all.
fn run_job(conn: &Connection, mut job: Box<dyn Job>, counters: &Counters) {
    for attempt in 1..=ATTEMPTS {
        if let Err(e) = conn.execute_batch("BEGIN") {
            counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
            job.abandon(&Arc::new(e));
            return;
        }
        let done = job.run(conn);
        if !done.succeeded() {
            rollback(conn);
            if attempt < ATTEMPTS && done.failed_to_serialise() {
                back_off(attempt);
                job = done.again();
                continue;
            }
            counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
            done.finish(None);
            return;
        }
        // PostgreSQL answers `COMMIT` in an aborted transaction (a statement
        // failed and the job went on) with a silent rollback, not an error;
        // the `SELECT` before it fails in that case (25P02), so `Ok` means
        // committed. One round trip: both in one simple query.
        match conn.execute_batch("SELECT 1; COMMIT") {
            Ok(()) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                done.finish(None);
                return;
            }
            Err(e) if attempt < ATTEMPTS && e.is_busy() => {
                rollback(conn);
                back_off(attempt);
                job = done.again();
            }
            Err(e) => {
                tracing::error!(error = %e, "store commit failed");
                counters.failed_jobs.fetch_add(1, Ordering::Relaxed);
                rollback(conn);
                done.finish(Some(&Arc::new(e)));
                return;
            }
        }
    }
}

/// How many times a job that fails to serialise is run in all.
const ATTEMPTS: u32 = 10;

/// The longest pause before a job runs again.
const MOST_BACK_OFF: Duration = Duration::from_millis(50);

/// Waits a random time before run `attempt + 1` of a job that failed to
/// serialise, up to twice as long after each failure (at most
/// [`MOST_BACK_OFF`]): jobs that all change one row (every card change
/// moves the registry's version) would otherwise run again in the same
/// order and fail again together until their attempts ran out.
fn back_off(attempt: u32) {
    let ceiling = (Duration::from_micros(250) * 2u32.pow(attempt)).min(MOST_BACK_OFF);
    let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
    std::thread::sleep(Duration::from_micros(rand::random_range(0..=micros)));
}

/// Ends the transaction; a connection that cannot is replaced before the
/// next job (it reports not idle once closed).
fn rollback(conn: &Connection) {
    // A connection dropped (lost, or past its round-trip bound) holds no
    // transaction any more.
    if !conn.is_idle() {
        return;
    }
    if let Err(e) = conn.execute_batch("ROLLBACK") {
        tracing::error!(error = %e, "store rollback failed");
    }
}

#[cfg(test)]
mod tests {
    use super::{UNPARSED, location};

    #[test]
    fn location_names_the_server_never_the_password() {
        assert_eq!(
            location("postgresql://hub:s3cret@db.example:6543/cards"),
            "postgresql://hub@db.example:6543/cards"
        );
        assert_eq!(
            location("host=/run/postgresql user=hub password=s3cret"),
            "postgresql://hub@/run/postgresql:5432/hub"
        );
        assert_eq!(location("postgresql://hub:s3cret@db:notaport/x"), UNPARSED);
    }
}
