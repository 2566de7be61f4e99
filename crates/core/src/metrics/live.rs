//! The last minutes of traffic, one sample a second, for the web
//! application's dashboard and plots: requests, approvals, stand-in
//! decisions and the latency percentiles of each second. Bounded: the
//! history keeps [`HISTORY_SECONDS`] samples and drops the oldest; the
//! second under way is one latency histogram.
//!
//! The hub records into it as it answers ([`super::Metrics::request`]); a
//! sampler task ([`Live::sample_every_second`]) closes a second once a
//! second. Nothing here is durable: a restart starts an empty history.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;

/// Samples kept: five minutes.
pub const HISTORY_SECONDS: usize = 300;
/// Largest latency told apart (longer ones count as this): one minute.
const LATENCY_MAX_US: u64 = 60_000_000;

/// One closed second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The second's end, Unix seconds.
    pub at: i64,
    pub requests: u64,
    pub approved: u64,
    pub stand_in: u64,
    /// Latency percentiles of the second's requests (0 without requests).
    pub p50_us: u64,
    pub p99_us: u64,
}

/// The traffic history: the second under way and the closed ones.
pub struct Live {
    /// Locked briefly by every answered request and by the sampler.
    inner: Mutex<Inner>,
}

struct Inner {
    requests: u64,
    approved: u64,
    stand_in: u64,
    latency: Histogram<u64>,
    /// Requests since start, the open second included.
    total: u64,
    history: VecDeque<Sample>,
}

/// A window of the history summed up.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Requests answered since start (the second under way included).
    pub total: u64,
    /// Requests in the window and their rate.
    pub requests: u64,
    pub per_second: f64,
    pub approved: u64,
    pub stand_in: u64,
    /// The window's highest per-second percentiles (0 without traffic).
    pub p50_us: u64,
    pub p99_us: u64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            inner: Mutex::new(Inner {
                requests: 0,
                approved: 0,
                stand_in: 0,
                // Bounds and precision are constants that hdrhistogram accepts.
                latency: Histogram::new_with_bounds(1, LATENCY_MAX_US, 2)
                    .unwrap_or_else(|e| unreachable!("latency histogram bounds: {e}")),
                total: 0,
                history: VecDeque::with_capacity(HISTORY_SECONDS),
            }),
        }
    }
}

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts one answered request in the second under way.
    pub fn record(&self, approved: bool, stand_in: bool, seconds: f64) {
        let us = (seconds * 1e6).clamp(1.0, LATENCY_MAX_US as f64) as u64;
        let mut inner = self.lock();
        inner.requests += 1;
        inner.total += 1;
        inner.approved += u64::from(approved);
        inner.stand_in += u64::from(stand_in);
        inner.latency.saturating_record(us);
    }

    /// Closes the second under way as the sample of `at` (Unix seconds),
    /// dropping the oldest sample past [`HISTORY_SECONDS`].
    pub fn close_second(&self, at: i64) {
        let mut inner = self.lock();
        let (p50_us, p99_us) = if inner.latency.is_empty() {
            (0, 0)
        } else {
            (
                inner.latency.value_at_quantile(0.5),
                inner.latency.value_at_quantile(0.99),
            )
        };
        let sample = Sample {
            at,
            requests: inner.requests,
            approved: inner.approved,
            stand_in: inner.stand_in,
            p50_us,
            p99_us,
        };
        if inner.history.len() == HISTORY_SECONDS {
            inner.history.pop_front();
        }
        inner.history.push_back(sample);
        inner.requests = 0;
        inner.approved = 0;
        inner.stand_in = 0;
        inner.latency.reset();
    }

    /// The closed samples, oldest first.
    pub fn history(&self) -> Vec<Sample> {
        self.lock().history.iter().copied().collect()
    }

    /// The last `seconds` closed samples summed up.
    pub fn summary(&self, seconds: usize) -> Summary {
        let inner = self.lock();
        let window: Vec<&Sample> = inner.history.iter().rev().take(seconds).collect();
        let requests = window.iter().map(|s| s.requests).sum();
        Summary {
            total: inner.total,
            requests,
            per_second: if window.is_empty() {
                0.0
            } else {
                requests as f64 / window.len() as f64
            },
            approved: window.iter().map(|s| s.approved).sum(),
            stand_in: window.iter().map(|s| s.stand_in).sum(),
            p50_us: window.iter().map(|s| s.p50_us).max().unwrap_or(0),
            p99_us: window.iter().map(|s| s.p99_us).max().unwrap_or(0),
        }
    }

    /// The sampler role: closes a second every second until `shutdown`.
    pub async fn sample_every_second(&self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => self.close_second(jiff::Timestamp::now().as_second()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_sampled_and_the_history_is_bounded() {
        let live = Live::default();
        live.record(true, false, 0.002);
        live.record(false, true, 0.004);
        live.close_second(100);
        let history = live.history();
        assert_eq!(history.len(), 1);
        let s = history[0];
        assert_eq!((s.at, s.requests, s.approved, s.stand_in), (100, 2, 1, 1));
        assert!((1_990..=2_010).contains(&s.p50_us), "{s:?}");
        assert!((3_980..=4_020).contains(&s.p99_us), "{s:?}");
        live.close_second(101);
        assert_eq!(live.history()[1].requests, 0);
        assert_eq!(live.history()[1].p99_us, 0);
        for at in 102..102 + HISTORY_SECONDS as i64 {
            live.close_second(at);
        }
        let history = live.history();
        assert_eq!(history.len(), HISTORY_SECONDS);
        assert_eq!(history[0].at, 102);
    }

    #[test]
    fn a_summary_adds_up_its_window() {
        let live = Live::default();
        for _ in 0..4 {
            live.record(true, false, 0.001);
        }
        live.close_second(1);
        live.record(true, true, 0.010);
        live.close_second(2);
        live.record(false, false, 0.001);
        let last = live.summary(1);
        assert_eq!((last.total, last.requests, last.stand_in), (6, 1, 1));
        let both = live.summary(60);
        assert_eq!((both.requests, both.approved), (5, 5));
        assert!((both.per_second - 2.5).abs() < f64::EPSILON);
        assert!(both.p99_us >= 9_900, "{both:?}");
    }
}
