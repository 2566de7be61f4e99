//! Several instances on one store, at the store level: two `Store` handles
//! on one file stand for two hub processes (the SQLite serve lock keeps
//! real `cardhub serve` processes to one per file). Leases with fencing,
//! instance numbers and their heartbeat, state changes seen by the other
//! instance.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cardhub_core::account::{
    AccountAnswer, AccountError, AccountRequest, AccountSystem, Operation,
};
use cardhub_core::fleet::lease::{self, Lease};
use cardhub_core::fleet::members::Membership;
use cardhub_core::fleet::{FleetError, Holder};
use cardhub_core::iso8583::fields::ResponseCode;
use cardhub_core::journal::txn_id::TxnId;
use cardhub_core::standin::balances::CurrentFile;
use cardhub_core::standin::config::InstitutionConfig;
use cardhub_core::standin::replay::Replay;
use cardhub_core::standin::saf::{self, NewItem};
use cardhub_core::standin::shadow::ShadowBook;
use cardhub_core::standin::state::{InstitutionState, Institutions, Source};
use cardhub_core::store::Store;
use cardhub_core::store::sql::params;
use futures::future::BoxFuture;
use support::wait_until;
use tokio_util::sync::CancellationToken;

/// Two handles on one store file (two instances), and its folder.
fn two_instances() -> (tempfile::TempDir, Store, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hub.db");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    (dir, a, b)
}

async fn acquire(store: &Store, holder: &str, now: i64) -> Option<i64> {
    let holder = holder.to_string();
    store
        .write(move |c| lease::acquire(c, "saf/B1", &holder, now, 1_000))
        .await
        .unwrap()
}

async fn fence_holds(store: &Store, fence: i64) -> bool {
    store
        .write(move |c| lease::check_fence(c, "saf/B1", fence))
        .await
        .unwrap()
}

/// The one statement that takes and renews: one holder until expiry, the
/// fence one more at every change of holder, stale fences refused.
#[tokio::test]
async fn a_lease_is_held_renewed_expires_and_is_taken_over_with_a_new_fence() {
    let (_dir, a, b) = two_instances();
    assert_eq!(acquire(&a, "A", 0).await, Some(1), "a new lease");
    assert_eq!(acquire(&b, "B", 500).await, None, "held by A until 1000");
    assert_eq!(acquire(&a, "A", 600).await, Some(1), "renewed: same fence");
    assert_eq!(acquire(&b, "B", 1_500).await, None, "renewed until 1600");
    assert!(fence_holds(&a, 1).await);
    assert_eq!(
        acquire(&b, "B", 1_600).await,
        Some(2),
        "expired: taken over"
    );
    assert!(!fence_holds(&a, 1).await, "A's fence is stale");
    assert!(fence_holds(&b, 2).await);
    assert_eq!(acquire(&a, "A", 1_700).await, None, "B holds it now");
    let released = b.write(|c| lease::release(c, "saf/B1", "B")).await.unwrap();
    assert!(released);
    let not_mine = a.write(|c| lease::release(c, "saf/B1", "A")).await.unwrap();
    assert!(!not_mine, "only the holder releases");
    assert_eq!(
        acquire(&a, "A", 1_800).await,
        Some(3),
        "released: free at once"
    );
}

/// A fenced write in one transaction: the check refuses, nothing of the
/// caller's write lands.
#[tokio::test]
async fn a_stale_holder_writes_nothing() {
    let (_dir, a, b) = two_instances();
    assert_eq!(acquire(&a, "A", 0).await, Some(1));
    assert_eq!(acquire(&b, "B", 2_000).await, Some(2));
    let write = |store: &Store, fence: i64, value: &'static str| {
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    if !lease::check_fence(c, "saf/B1", fence)? {
                        return Ok(false);
                    }
                    c.execute(
                        "INSERT INTO institution_state (institution, state, reason, changed_us) \
                         VALUES ('B1', ?1, '', 0) ON CONFLICT (institution) DO UPDATE SET state = ?1",
                        params![value],
                    )?;
                    Ok(true)
                })
                .await
                .unwrap()
        }
    };
    assert!(!write(&a, 1, "closed").await);
    assert!(write(&b, 2, "open").await);
    let state: String = a
        .read(|c| {
            c.query_row(
                "SELECT state FROM institution_state WHERE institution = 'B1'",
                params![],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(state, "open");
}

/// What a guarded job does: counts its starts, notes whether it runs.
#[derive(Default)]
struct Job {
    starts: AtomicUsize,
    running: AtomicBool,
}

/// Marks the job stopped when its future is dropped.
struct Running(Arc<Job>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

async fn run_job(job: Arc<Job>) {
    job.starts.fetch_add(1, Ordering::SeqCst);
    job.running.store(true, Ordering::SeqCst);
    let _running = Running(job);
    std::future::pending::<()>().await;
}

fn guard(lease: Lease, job: Arc<Job>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        lease
            .run_while_held(&shutdown, |_| run_job(job.clone()))
            .await;
    });
}

/// Short enough for quick takeovers, long enough that a loaded machine
/// still renews in time.
const TTL: Duration = Duration::from_millis(1_500);

/// The job runs on one instance; when that instance dies (its tasks gone
/// without a release, as after `kill -9`) the other takes it over with a
/// new fence; a clean shutdown hands it over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_once_and_moves_when_its_holder_dies() {
    let (_dir, a, b) = two_instances();
    let (job_a, job_b) = (Arc::new(Job::default()), Arc::new(Job::default()));
    // Instance A on a runtime of its own, to kill it.
    let runtime_a = tokio::runtime::Runtime::new().unwrap();
    let lease_a = {
        let _in_a = runtime_a.enter();
        let shutdown = CancellationToken::new();
        let lease = Lease::spawn(a, "saf/B1".into(), Holder::new(0), TTL, shutdown.clone());
        guard(lease.clone(), job_a.clone(), shutdown);
        lease
    };
    wait_until("A holds the lease", || lease_a.held().is_some()).await;
    let fence_a = lease_a.held().unwrap().fence;
    let shutdown_b = CancellationToken::new();
    let lease_b = Lease::spawn(
        b.clone(),
        "saf/B1".into(),
        Holder::new(1),
        TTL,
        shutdown_b.clone(),
    );
    guard(lease_b.clone(), job_b.clone(), shutdown_b.clone());
    wait_until("A's job runs", || job_a.running.load(Ordering::SeqCst)).await;
    // B tries a few times (every TTL/3) while A renews: it never gets it.
    tokio::time::sleep(TTL * 2).await;
    assert!(lease_b.held().is_none());
    assert_eq!(job_b.starts.load(Ordering::SeqCst), 0);

    runtime_a.shutdown_background();
    wait_until("B took the lease over", || lease_b.held().is_some()).await;
    wait_until("B's job runs", || job_b.running.load(Ordering::SeqCst)).await;
    assert!(lease_b.held().unwrap().fence > fence_a);

    // A clean shutdown releases: a third instance gets it on its next try.
    let shutdown_c = CancellationToken::new();
    let lease_c = Lease::spawn(b, "saf/B1".into(), Holder::new(2), TTL, shutdown_c);
    shutdown_b.cancel();
    wait_until("B's job stopped", || !job_b.running.load(Ordering::SeqCst)).await;
    wait_until("C took the released lease", || lease_c.held().is_some()).await;
}

/// A holder whose store does not answer stops its job once its grant runs
/// out, before anyone else could take the lease, and resumes when the
/// store is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_cannot_renew_stops_its_job() {
    let (dir, a, _b) = two_instances();
    let job = Arc::new(Job::default());
    let shutdown = CancellationToken::new();
    let lease = Lease::spawn(a, "saf/B1".into(), Holder::new(0), TTL, shutdown.clone());
    guard(lease.clone(), job.clone(), shutdown.clone());
    wait_until("the job runs", || job.running.load(Ordering::SeqCst)).await;
    // Another process holds the database's write lock.
    let blocker = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    wait_until("the lease is given up", || lease.held().is_none()).await;
    wait_until("the job stopped", || !job.running.load(Ordering::SeqCst)).await;
    blocker.execute_batch("COMMIT").unwrap();
    wait_until("the job runs again", || {
        job.running.load(Ordering::SeqCst) && job.starts.load(Ordering::SeqCst) == 2
    })
    .await;
    shutdown.cancel();
}

/// A second live process with the same number is refused (after watching
/// the first's heartbeat move for a TTL); another number joins at once; a
/// dead run's number is taken over and its leases freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_instance_number_is_refused_and_a_dead_ones_taken_over() {
    let (_dir, a, b) = two_instances();
    let runtime_a = tokio::runtime::Runtime::new().unwrap();
    let first = Holder::new(3);
    {
        let (a, first) = (a.clone(), first.clone());
        runtime_a
            .spawn(async move {
                let member = Membership::join(a, first, TTL).await.unwrap();
                member.spawn(CancellationToken::new());
            })
            .await
            .unwrap();
    }
    let refused = Membership::join(b.clone(), Holder::new(3), TTL).await;
    match refused {
        Err(FleetError::InstanceInUse {
            instance, holder, ..
        }) => {
            assert_eq!(instance, 3);
            assert_eq!(holder, first.as_str());
        }
        other => panic!("expected InstanceInUse, got {:?}", other.map(|_| ())),
    }
    let other = Membership::join(b.clone(), Holder::new(4), TTL).await;
    assert!(other.is_ok());

    // The first run holds a lease, then dies without leaving.
    let held = {
        let holder = first.to_string();
        b.write(move |c| lease::acquire(c, "probe/B1", &holder, i64::MAX / 4, 1_000_000))
            .await
            .unwrap()
    };
    assert_eq!(held, Some(1));
    runtime_a.shutdown_background();
    let second = Holder::new(3);
    let member = Membership::join(b.clone(), second.clone(), TTL).await;
    assert!(member.is_ok(), "a dead run's number is free after its TTL");
    let now = jiff::Timestamp::now().as_microsecond();
    let taken = {
        let holder = second.to_string();
        b.write(move |c| lease::acquire(c, "probe/B1", &holder, now, 1_000_000))
            .await
            .unwrap()
    };
    assert_eq!(taken, Some(2), "the dead run's lease was freed");
}

/// A clean stop leaves the fleet: the number is free at once.
#[tokio::test]
async fn a_member_that_stops_leaves() {
    let (_dir, a, b) = two_instances();
    let shutdown = CancellationToken::new();
    let member = Membership::join(a, Holder::new(5), Duration::from_secs(60))
        .await
        .unwrap();
    let heartbeat = member.spawn(shutdown.clone());
    shutdown.cancel();
    heartbeat.await.unwrap().unwrap();
    let again = tokio::time::timeout(
        Duration::from_secs(30),
        Membership::join(b, Holder::new(5), Duration::from_secs(60)),
    )
    .await
    .expect("no wait: the number was left");
    assert!(again.is_ok());
}

fn institution(id: &str) -> InstitutionConfig {
    toml::from_str(&format!(
        "id = \"{id}\"\nname = \"{id}\"\nmode = \"online\"\nadapter = \"bank\"\n"
    ))
    .unwrap()
}

/// A state or pause set on one instance is seen by the other's refresh; a
/// refresh that reads an older row never undoes a newer change.
#[tokio::test]
async fn state_changes_reach_the_other_instance() {
    let (_dir, a, b) = two_instances();
    let configs = [institution("B1"), institution("B2")];
    let on_a = Institutions::open(a, &configs).unwrap();
    let on_b = Institutions::open(b, &configs).unwrap();
    on_a.set_state("B1", InstitutionState::Closing, Source::Api, "end of day")
        .await
        .unwrap();
    on_a.set_paused("B2", true, Source::Api).await.unwrap();
    assert_eq!(on_b.get("B1").unwrap().state(), InstitutionState::Open);
    assert_eq!(on_b.refresh().unwrap(), 2);
    assert_eq!(on_b.get("B1").unwrap().state(), InstitutionState::Closing);
    assert!(on_b.get("B2").unwrap().saf_paused());
    assert_eq!(on_b.refresh().unwrap(), 0, "nothing new");
    assert_eq!(on_a.refresh().unwrap(), 0, "its own changes are applied");

    on_b.set_state("B1", InstitutionState::Open, Source::Api, "day open")
        .await
        .unwrap();
    on_b.set_paused("B2", false, Source::Api).await.unwrap();
    assert_eq!(on_a.refresh().unwrap(), 2);
    assert_eq!(on_a.get("B1").unwrap().state(), InstitutionState::Open);
    assert!(!on_a.get("B2").unwrap().saf_paused());
}

/// A balance file made current by another instance: the book re-reads
/// that institution's file balances, once.
#[test]
fn a_balance_file_made_current_elsewhere_is_noticed() {
    let (_dir, a, _b) = two_instances();
    let book = ShadowBook::new(a);
    let file = |institution: &str, applied: i64| CurrentFile {
        institution: institution.to_string(),
        as_of_us: 1_000,
        rows: 10,
        applied_us: Some(applied),
    };
    assert_eq!(book.files_current(&[file("B1", 5), file("B2", 5)]), 2);
    assert_eq!(book.files_current(&[file("B1", 5), file("B2", 5)]), 0);
    assert_eq!(book.files_current(&[file("B1", 9), file("B2", 5)]), 1);
}

/// An account system that answers every call "approved", each once the
/// test lets it.
struct Gated {
    calls: AtomicUsize,
    go: tokio::sync::Semaphore,
}

impl Default for Gated {
    fn default() -> Self {
        Gated {
            calls: AtomicUsize::new(0),
            go: tokio::sync::Semaphore::new(0),
        }
    }
}

impl AccountSystem for Gated {
    fn name(&self) -> &str {
        "gated"
    }

    fn call<'a>(
        &'a self,
        _operation: Operation,
        _request: &'a AccountRequest,
    ) -> BoxFuture<'a, Result<AccountAnswer, AccountError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.go.acquire().await.unwrap().forget();
            Ok(AccountAnswer {
                code: ResponseCode::new("00").unwrap(),
                raw_code: "000".to_string(),
                auth_id: None,
                balances: None,
                message: None,
            })
        })
    }
}

/// The SAF replay's own writes are fenced: a replay that still believes it
/// holds its lease, while another instance took it over, delivers but
/// records nothing (the item stays pending and is delivered again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_whose_lease_moved_records_nothing() {
    let (_dir, a, b) = two_instances();
    a.write(|c| {
        c.execute(
            "INSERT INTO journal (txn_id, entry, received_at_us, business_day, switch, mti, \
             is_repeat, kind, channel, amount_minor, currency, transmission_time, stan, acquirer, \
             terminal, response_code, decided_by, latency_us) \
             VALUES (1, 'request', 0, '2026-12-01', 's', '0200', 0, 'purchase', 'pos', 100, 840, \
             '1201120000', '000001', '4761739', 'T1', '00', 'stand_in', 0)",
            params![],
        )?;
        let item = NewItem::after_call(
            Operation::Advice,
            TxnId(1),
            TxnId(2),
            "B1".to_string(),
            "A-1".to_string(),
            None,
        );
        saf::enqueue(c, &item)
    })
    .await
    .unwrap();
    let institutions = Arc::new(Institutions::open(a.clone(), &[institution("B1")]).unwrap());
    let system = Arc::new(Gated::default());
    let shutdown = CancellationToken::new();
    // A long TTL: the keeper does not renew (and notice the takeover) while
    // the test runs; only the fence stops the writes.
    let lease = Lease::spawn(
        a.clone(),
        "saf/B1".into(),
        Holder::new(0),
        Duration::from_secs(120),
        shutdown.clone(),
    );
    Replay {
        institution: institutions.get("B1").unwrap().clone(),
        institutions: institutions.clone(),
        system: system.clone(),
        store: a.clone(),
        book: Arc::new(ShadowBook::new(a.clone())),
        lease: lease.clone(),
    }
    .spawn(shutdown.clone());
    wait_until("the replay delivers", || {
        system.calls.load(Ordering::SeqCst) == 1
    })
    .await;
    assert!(lease.held().is_some());
    b.write(|c| {
        c.execute(
            "UPDATE fleet_leases SET holder = 'other', fence = fence + 1, expires_at_us = ?1 \
             WHERE name = 'saf/B1'",
            params![i64::MAX / 2],
        )
    })
    .await
    .unwrap();
    system.go.add_permits(1_000);
    wait_until("the unrecorded item is delivered again", || {
        system.calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    let state: String = b
        .read(|c| c.query_row("SELECT state FROM saf_queue", params![], |r| r.get(0)))
        .unwrap();
    assert_eq!(state, "pending");
    shutdown.cancel();
}
