//! The outcome of a flood: counts by response code, timeouts, errors,
//! mismatches, latency percentiles (hdrhistogram, microseconds, 3
//! significant digits) and throughput, and how it reads.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::{SimError, error_chain};

/// Largest latency the histogram tells apart, in microseconds (one hour).
const LATENCY_MAX_US: u64 = 3_600_000_000;

/// Latency percentiles of the answered requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub max: Duration,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct FloodReport {
    /// Requests in the run (`count`).
    pub requests: u64,
    pub answered: u64,
    /// Answers from each address, in the order of
    /// [`FloodOptions::addresses`](super::FloodOptions::addresses).
    pub answered_by_address: Vec<u64>,
    /// Answers by DE 39 (`none` when an answer has no DE 39).
    pub codes: BTreeMap<String, u64>,
    pub timeouts: u64,
    /// Requests that failed otherwise (connection lost, not encodable).
    pub errors: u64,
    /// The first such error, with its causes.
    pub first_error: Option<String>,
    /// Answers whose DE 11 or DE 37 differs from their request's.
    pub mismatches: u64,
    /// Requests the rate launcher could not start (too many outstanding).
    pub dropped: u64,
    pub latency: Latency,
    /// From the first request sent to the last outcome (sign-on excluded).
    pub elapsed: Duration,
    /// Answers per second over `elapsed`.
    pub throughput: f64,
}

/// What became of one request.
#[derive(Debug)]
pub(crate) enum Outcome {
    Answered {
        /// The index of the address that answered.
        address: usize,
        code: String,
        latency: Duration,
        mismatch: bool,
    },
    Timeout,
    Error(SimError),
    Dropped,
}

/// Counts and the latency histogram of a run so far.
pub(crate) struct Tally {
    latency: Histogram<u64>,
    codes: BTreeMap<String, u64>,
    answered: u64,
    answered_by_address: Vec<u64>,
    timeouts: u64,
    errors: u64,
    first_error: Option<String>,
    mismatches: u64,
    dropped: u64,
}

impl Tally {
    /// A tally of a run against `addresses` addresses.
    pub(crate) fn new(addresses: usize) -> Tally {
        Tally {
            latency: Histogram::new_with_bounds(1, LATENCY_MAX_US, 3)
                .unwrap_or_else(|_| unreachable!("constant bounds and precision are valid")),
            codes: BTreeMap::new(),
            answered: 0,
            answered_by_address: vec![0; addresses],
            timeouts: 0,
            errors: 0,
            first_error: None,
            mismatches: 0,
            dropped: 0,
        }
    }

    /// Timeouts, errors and dropped requests so far.
    pub(crate) fn failures(&self) -> u64 {
        self.timeouts + self.errors + self.dropped
    }

    /// The failures so far, for the progress bar.
    pub(crate) fn failure_summary(&self) -> String {
        format!(
            "{} timeouts, {} errors, {} dropped",
            self.timeouts, self.errors, self.dropped
        )
    }

    pub(crate) fn record(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Answered {
                address,
                code,
                latency,
                mismatch,
            } => {
                self.answered += 1;
                if let Some(n) = self.answered_by_address.get_mut(address) {
                    *n += 1;
                }
                *self.codes.entry(code).or_default() += 1;
                let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency.saturating_record(micros.max(1));
                self.mismatches += u64::from(mismatch);
            }
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Error(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| error_chain(&e));
            }
            Outcome::Dropped => self.dropped += 1,
        }
    }

    /// The report of a run of `requests` that took `elapsed`.
    pub(crate) fn report(self, requests: u64, elapsed: Duration) -> FloodReport {
        let at = |q: f64| Duration::from_micros(self.latency.value_at_quantile(q));
        let latency = if self.answered == 0 {
            Latency::default()
        } else {
            Latency {
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                p999: at(0.999),
                max: Duration::from_micros(self.latency.max()),
            }
        };
        let seconds = elapsed.as_secs_f64();
        FloodReport {
            requests,
            answered: self.answered,
            answered_by_address: self.answered_by_address,
            codes: self.codes,
            timeouts: self.timeouts,
            errors: self.errors,
            first_error: self.first_error,
            mismatches: self.mismatches,
            dropped: self.dropped,
            latency,
            elapsed,
            throughput: if seconds > 0.0 {
                self.answered as f64 / seconds
            } else {
                0.0
            },
        }
    }
}

impl fmt::Display for FloodReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "requests    {} sent, {} answered, {} timeouts, {} errors, {} mismatches, {} dropped",
            self.requests, self.answered, self.timeouts, self.errors, self.mismatches, self.dropped
        )?;
        let codes: Vec<String> = self
            .codes
            .iter()
            .map(|(code, n)| format!("{code}: {n}"))
            .collect();
        writeln!(
            f,
            "answers     {}",
            if codes.is_empty() {
                "none".to_string()
            } else {
                codes.join(", ")
            }
        )?;
        let l = &self.latency;
        writeln!(
            f,
            "latency     p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
            millis(l.p50),
            millis(l.p90),
            millis(l.p99),
            millis(l.p999),
            millis(l.max)
        )?;
        write!(
            f,
            "throughput  {:.0} answers/s over {:.3} s",
            self.throughput,
            self.elapsed.as_secs_f64()
        )?;
        if let Some(e) = &self.first_error {
            write!(f, "\nfirst error {e}")?;
        }
        Ok(())
    }
}

/// A duration as milliseconds with microsecond precision.
fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
#[cfg(test)]
mod tests {
    use super::*;
    use cardhub_core::link::LinkError;

    #[test]
    fn tally_counts_and_percentiles() {
        let mut tally = Tally::new(2);
        for ms in 1..=100 {
            tally.record(Outcome::Answered {
                address: (ms % 2) as usize,
                code: "00".into(),
                latency: Duration::from_millis(ms),
                mismatch: ms == 50,
            });
        }
        tally.record(Outcome::Answered {
            address: 1,
            code: "91".into(),
            latency: Duration::from_millis(1),
            mismatch: false,
        });
        tally.record(Outcome::Timeout);
        tally.record(Outcome::Dropped);
        tally.record(Outcome::Error(SimError::Request {
            mti: "0100".parse().unwrap(),
            source: LinkError::Closed,
        }));
        let report = tally.report(104, Duration::from_secs(2));
        assert_eq!(report.answered, 101);
        assert_eq!(report.answered_by_address, [50, 51]);
        assert_eq!(report.codes["00"], 100);
        assert_eq!(report.codes["91"], 1);
        assert_eq!((report.timeouts, report.errors, report.dropped), (1, 1, 1));
        assert_eq!(report.mismatches, 1);
        assert!((report.throughput - 50.5).abs() < 1e-9);
        let near = |d: Duration, ms: u64| {
            d.abs_diff(Duration::from_millis(ms)) < Duration::from_micros(ms * 2)
        };
        assert!(near(report.latency.p50, 50), "{:?}", report.latency);
        assert!(near(report.latency.p90, 90), "{:?}", report.latency);
        assert!(near(report.latency.max, 100), "{:?}", report.latency);
        let shown = report.to_string();
        assert!(shown.contains("00: 100, 91: 1"), "{shown}");
        assert!(
            shown.contains("first error 0100 request: connection closed"),
            "{shown}"
        );
    }
}
