//! Load generation: `cardhub sim flood`. Signs on one or more connections,
//! sends many requests made from a template and reports response codes,
//! timeouts, mismatches and latency percentiles.
//!
//! Roles: **workers** (concurrency mode) each keep one request in flight
//! and send the next when it is answered; the **launcher** (rate mode)
//! starts one task per request on a fixed schedule, bounded by
//! [`MAX_OUTSTANDING`]; the **collector** (the calling task) tallies every
//! outcome and drives the progress bar. The run ends when every request has
//! an outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::Instant;

use super::SimError;
use super::client::{SimClient, exchange, response_code_text};
use super::report::{FloodReport, Outcome, Tally};
use super::template::{RRN_SEQUENCE, RequestMaker};
use cardhub_core::iso8583::fields::Pan;
use cardhub_core::iso8583::{Dialect, Message, de};
use cardhub_core::link::Outbound;
use cardhub_core::link::frame::Framing;

/// Requests in flight at once across the run, at most: in rate mode the
/// launcher drops what it cannot start, in concurrency mode it bounds the
/// workers. Far below the 999,999 STANs, so STANs in flight never repeat.
pub const MAX_OUTSTANDING: usize = 100_000;

/// Connections of one run, at most.
pub const MAX_CONNECTIONS: usize = 1000;
/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Requests started on a schedule, this many per second in total,
    /// whether or not earlier ones were answered.
    Rate(f64),
    /// This many requests in flight in total, spread over the connections;
    /// each worker sends its next request when the previous one is answered.
    Concurrency(usize),
}

/// What to flood and how.
#[derive(Debug, Clone)]
pub struct FloodOptions {
    /// The hub's `host:port`, or several hubs': connection `i` goes to
    /// `addresses[i % addresses.len()]`, and the report counts the answers
    /// of each.
    pub addresses: Vec<String>,
    pub dialect: Arc<Dialect>,
    pub framing: Framing,
    /// Header of the sign-on (see [`SimClient::connect`]); requests keep the template's.
    pub header: Option<String>,
    /// The request every request is made from (see [`RequestMaker`]).
    pub template: Message,
    /// PANs used round-robin in DE 2 and DE 35; empty keeps the template's.
    pub cards: Vec<Pan>,
    pub pace: Pace,
    /// Requests to send in all.
    pub count: u64,
    /// Connections to open, each signed on.
    pub connections: usize,
    /// How long each request waits for its answer.
    pub timeout: Duration,
    /// Show a progress bar on stderr.
    pub progress: bool,
}
/// Sends a flood of requests and reports on their answers.
///
/// # Errors
/// [`SimError::Option`] for options out of range; connection or sign-on
/// errors of any connection (before anything is sent). Errors of single
/// requests are counted in the report instead.
pub async fn flood(options: FloodOptions) -> Result<FloodReport, SimError> {
    options.check()?;
    let mut clients = Vec::with_capacity(options.connections);
    for i in 0..options.connections {
        let client = SimClient::connect(
            &options.addresses[i % options.addresses.len()],
            options.dialect.clone(),
            options.framing,
            options.header.clone(),
        )
        .await?;
        client.sign_on().await?;
        clients.push(client);
    }
    let targets: Vec<Target> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| Target {
            outbound: c.outbound().clone(),
            address: i % options.addresses.len(),
        })
        .collect();
    let maker = Arc::new(RequestMaker::new(options.template, options.cards));
    let (results, outcomes) = mpsc::unbounded_channel();
    let started = Instant::now();
    match options.pace {
        Pace::Concurrency(workers) => {
            let next = Arc::new(AtomicU64::new(0));
            for i in 0..workers {
                tokio::spawn(
                    Worker {
                        target: targets[i % targets.len()].clone(),
                        maker: maker.clone(),
                        next: next.clone(),
                        count: options.count,
                        timeout: options.timeout,
                        results: results.clone(),
                    }
                    .run(),
                );
            }
        }
        Pace::Rate(rate) => {
            tokio::spawn(
                Launcher {
                    targets,
                    maker,
                    count: options.count,
                    rate,
                    timeout: options.timeout,
                    outstanding: Arc::new(Semaphore::new(MAX_OUTSTANDING)),
                    results: results.clone(),
                }
                .run(),
            );
        }
    }
    drop(results);
    let tally = Collector::new(options.count, options.addresses.len(), options.progress)
        .run(outcomes)
        .await;
    let report = tally.report(options.count, started.elapsed());
    for client in clients {
        client.close().await;
    }
    Ok(report)
}

impl FloodOptions {
    /// Checks the options before anything is dialled.
    fn check(&self) -> Result<(), SimError> {
        let option = |option, reason: String| Err(SimError::Option { option, reason });
        if self.count == 0 || self.count > RRN_SEQUENCE {
            return option("count", format!("must be 1 to {RRN_SEQUENCE}"));
        }
        if self.connections == 0 || self.connections > MAX_CONNECTIONS {
            return option("connections", format!("must be 1 to {MAX_CONNECTIONS}"));
        }
        if self.addresses.is_empty() {
            return option("addresses", "name at least one".into());
        }
        if self.connections < self.addresses.len() {
            let reason = format!(
                "must be at least one per address ({} addresses)",
                self.addresses.len()
            );
            return option("connections", reason);
        }
        if self.timeout.is_zero() {
            return option("timeout", "must be more than zero".into());
        }
        match self.pace {
            Pace::Concurrency(c) if c == 0 || c > MAX_OUTSTANDING => {
                option("concurrency", format!("must be 1 to {MAX_OUTSTANDING}"))
            }
            Pace::Rate(r) if !r.is_finite() || r < 0.001 => {
                option("rate", "must be at least 0.001 per second".into())
            }
            _ => Ok(()),
        }
    }
}

/// One connection of the run and the address it goes to (an index into
/// [`FloodOptions::addresses`]).
#[derive(Clone)]
struct Target {
    outbound: Outbound,
    address: usize,
}

/// Concurrency mode: sends requests one after the other until the run's
/// count is reached (the requests are shared out through `next`).
struct Worker {
    target: Target,
    maker: Arc<RequestMaker>,
    /// The next request number of the run, shared by all workers.
    next: Arc<AtomicU64>,
    count: u64,
    timeout: Duration,
    results: mpsc::UnboundedSender<Outcome>,
}

impl Worker {
    async fn run(self) {
        loop {
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= self.count {
                break;
            }
            let outcome = attempt(&self.target, &self.maker, seq, self.timeout).await;
            if self.results.send(outcome).is_err() {
                break;
            }
        }
    }
}

/// Rate mode: starts request `n` at `n / rate` seconds, each in its own
/// task, round-robin over the connections.
struct Launcher {
    targets: Vec<Target>,
    maker: Arc<RequestMaker>,
    count: u64,
    rate: f64,
    timeout: Duration,
    /// Bounds the requests in flight; one that finds none free is dropped.
    outstanding: Arc<Semaphore>,
    results: mpsc::UnboundedSender<Outcome>,
}

impl Launcher {
    async fn run(self) {
        let started = Instant::now();
        let connections = self.targets.len() as u64;
        let mut launched = 0;
        while launched < self.count {
            // Everything due by now goes out at once: timers tick in
            // milliseconds, rates may be far above 1000 per second.
            let due = ((started.elapsed().as_secs_f64() * self.rate) as u64 + 1).min(self.count);
            for seq in launched..due {
                let target = &self.targets[(seq % connections) as usize];
                let outcome = match self.outstanding.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tokio::spawn(in_flight(
                            target.clone(),
                            self.maker.clone(),
                            seq,
                            self.timeout,
                            self.results.clone(),
                            permit,
                        ));
                        continue;
                    }
                    Err(_) => Outcome::Dropped,
                };
                if self.results.send(outcome).is_err() {
                    return;
                }
            }
            launched = due;
            let next =
                Duration::try_from_secs_f64(launched as f64 / self.rate).unwrap_or(Duration::MAX);
            match started.checked_add(next) {
                Some(at) => tokio::time::sleep_until(at).await,
                None => break,
            }
        }
    }
}

/// One request of the rate launcher, holding its outstanding permit.
async fn in_flight(
    target: Target,
    maker: Arc<RequestMaker>,
    seq: u64,
    timeout: Duration,
    results: mpsc::UnboundedSender<Outcome>,
    permit: OwnedSemaphorePermit,
) {
    let outcome = attempt(&target, &maker, seq, timeout).await;
    drop(permit);
    let _ = results.send(outcome);
}

/// Makes request `seq`, sends it and judges the answer.
async fn attempt(target: &Target, maker: &RequestMaker, seq: u64, timeout: Duration) -> Outcome {
    let request = maker.build(seq, target.outbound.next_stan());
    match exchange(&target.outbound, &request, timeout).await {
        Ok((answer, latency)) => Outcome::Answered {
            address: target.address,
            code: response_code_text(&answer),
            latency,
            mismatch: answer.get(de::STAN) != request.get(de::STAN)
                || answer.get(de::RRN) != request.get(de::RRN),
        },
        Err(e) if e.is_timeout() => Outcome::Timeout,
        Err(e) => Outcome::Error(e),
    }
}

/// Tallies outcomes as they come and shows progress.
struct Collector {
    tally: Tally,
    progress: ProgressBar,
}

impl Collector {
    fn new(count: u64, addresses: usize, show: bool) -> Collector {
        let progress = if show {
            let bar = ProgressBar::new(count);
            if let Ok(style) = ProgressStyle::with_template(
                "{elapsed_precise} [{wide_bar}] {pos}/{len} {per_sec} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        } else {
            ProgressBar::hidden()
        };
        Collector {
            tally: Tally::new(addresses),
            progress,
        }
    }

    async fn run(mut self, mut outcomes: mpsc::UnboundedReceiver<Outcome>) -> Tally {
        while let Some(outcome) = outcomes.recv().await {
            let failures = self.tally.failures();
            self.tally.record(outcome);
            self.progress.inc(1);
            if self.tally.failures() != failures {
                self.progress.set_message(self.tally.failure_summary());
            }
        }
        self.progress.finish_and_clear();
        self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pace: Pace) -> FloodOptions {
        let dialect = Arc::new(Dialect::shipped("base24").unwrap().unwrap());
        FloodOptions {
            addresses: vec!["127.0.0.1:1".into()],
            dialect,
            framing: Framing::TwoByte,
            header: None,
            template: Message::new("0100".parse().unwrap()),
            cards: Vec::new(),
            pace,
            count: 10,
            connections: 1,
            timeout: Duration::from_secs(1),
            progress: false,
        }
    }

    #[test]
    fn options_out_of_range_are_refused() {
        assert!(options(Pace::Concurrency(5)).check().is_ok());
        assert!(options(Pace::Rate(100.0)).check().is_ok());
        for (bad, name) in [
            (options(Pace::Concurrency(0)), "concurrency"),
            (
                options(Pace::Concurrency(MAX_OUTSTANDING + 1)),
                "concurrency",
            ),
            (options(Pace::Rate(0.0)), "rate"),
            (options(Pace::Rate(f64::NAN)), "rate"),
            (
                FloodOptions {
                    count: 0,
                    ..options(Pace::Rate(1.0))
                },
                "count",
            ),
            (
                FloodOptions {
                    connections: 0,
                    ..options(Pace::Rate(1.0))
                },
                "connections",
            ),
            (
                FloodOptions {
                    addresses: Vec::new(),
                    ..options(Pace::Rate(1.0))
                },
                "addresses",
            ),
            (
                FloodOptions {
                    addresses: vec!["127.0.0.1:1".into(), "127.0.0.1:2".into()],
                    ..options(Pace::Rate(1.0))
                },
                "connections",
            ),
        ] {
            assert!(
                matches!(bad.check(), Err(SimError::Option { option, .. }) if option == name),
                "{name}"
            );
        }
    }
}
