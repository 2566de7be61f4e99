//! Prometheus metrics: what the hub counts as it runs (requests by MTI,
//! decision, decider and institution; hub and adapter-call latency), and
//! what is read at scrape time (institution states and transitions, SAF
//! depth and dead letters, balance-file age, the store's WAL size, the
//! switch link's connections, refusals, evictions and time-outs). Served at
//! `/metrics`. [`live`] keeps the last minutes second by second for the web
//! application.

pub mod live;

use std::sync::atomic::Ordering;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use self::live::Live;
use crate::iso8583::fields::ResponseCode;
use crate::link::EndpointStats;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    mti: String,
    code: String,
    decided_by: String,
    institution: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MtiLabels {
    mti: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    institution: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InstitutionLabels {
    institution: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    institution: String,
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchLabels {
    switch: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchStateLabels {
    switch: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchReasonLabels {
    switch: String,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SwitchLimitLabels {
    switch: String,
    limit: &'static str,
}

/// Latency buckets: 0.25 ms to about 4 s, doubling.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The hub's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    hub_seconds: Family<MtiLabels, Histogram>,
    adapter_seconds: Family<CallLabels, Histogram>,
    state: Family<StateLabels, Gauge>,
    transitions: Family<InstitutionLabels, Gauge>,
    saf_pending: Family<InstitutionLabels, Gauge>,
    saf_dead: Family<InstitutionLabels, Gauge>,
    balance_age: Family<InstitutionLabels, Gauge>,
    store_wal_bytes: Gauge,
    store_read_errors: Counter,
    link_connections: Family<SwitchStateLabels, Gauge>,
    link_accepted: Family<SwitchLabels, Counter>,
    link_refused: Family<SwitchReasonLabels, Counter>,
    link_evicted: Family<SwitchLabels, Counter>,
    link_timeouts: Family<SwitchLimitLabels, Counter>,
    /// The last minutes, second by second (the web application's).
    live: Live,
}

/// An institution as operators see it now (the API lists these; metrics
/// are set from them at scrape time).
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Institution)]
pub struct InstitutionSnapshot {
    pub id: String,
    #[schema(value_type = crate::standin::state::InstitutionState)]
    pub state: &'static str,
    pub saf_paused: bool,
    pub transitions: u64,
    #[schema(minimum = 0)]
    pub saf_pending: i64,
    #[schema(minimum = 0)]
    pub saf_dead: i64,
    /// The current balance file's as-of (RFC 3339) and rows; `None`: no file.
    #[schema(format = DateTime)]
    pub balances_as_of: Option<String>,
    #[schema(minimum = 0)]
    pub balances_rows: Option<i64>,
    /// Seconds since that as-of.
    #[serde(skip)]
    pub balance_age_secs: Option<i64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("cardhub");
        let requests = Family::<RequestLabels, Counter>::default();
        let hub_seconds =
            Family::<MtiLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let adapter_seconds =
            Family::<CallLabels, Histogram>::new_with_constructor(latency as fn() -> Histogram);
        let state = Family::<StateLabels, Gauge>::default();
        let transitions = Family::<InstitutionLabels, Gauge>::default();
        let saf_pending = Family::<InstitutionLabels, Gauge>::default();
        let saf_dead = Family::<InstitutionLabels, Gauge>::default();
        let balance_age = Family::<InstitutionLabels, Gauge>::default();
        let store_wal_bytes = Gauge::default();
        let store_read_errors = Counter::default();
        let link_connections = Family::<SwitchStateLabels, Gauge>::default();
        let link_accepted = Family::<SwitchLabels, Counter>::default();
        let link_refused = Family::<SwitchReasonLabels, Counter>::default();
        let link_evicted = Family::<SwitchLabels, Counter>::default();
        let link_timeouts = Family::<SwitchLimitLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by MTI, DE 39, who decided and institution",
            requests.clone(),
        );
        registry.register(
            "hub_seconds",
            "Time from a request's arrival to its journaled decision",
            hub_seconds.clone(),
        );
        registry.register(
            "adapter_call_seconds",
            "Time of online account-system calls, by outcome",
            adapter_seconds.clone(),
        );
        registry.register(
            "institution_state",
            "1 for the state each institution is in",
            state.clone(),
        );
        registry.register(
            "institution_transitions",
            "State transitions since start",
            transitions.clone(),
        );
        registry.register(
            "saf_pending",
            "Store-and-forward items waiting",
            saf_pending.clone(),
        );
        registry.register(
            "saf_dead",
            "Store-and-forward dead letters",
            saf_dead.clone(),
        );
        registry.register(
            "balance_file_age_seconds",
            "Age of the current balance file's as-of",
            balance_age.clone(),
        );
        registry.register(
            "store_wal_bytes",
            "Size of the store's WAL file",
            store_wal_bytes.clone(),
        );
        registry.register(
            "store_read_errors",
            "Journal reads that failed while deciding a request (each answered 96)",
            store_read_errors.clone(),
        );
        registry.register(
            "link_connections",
            "Connections of a listening switch endpoint now: open (holding a slot), signed_on (of those, signed on or past their first frame)",
            link_connections.clone(),
        );
        registry.register(
            "link_accepted",
            "Connections a listening switch endpoint admitted",
            link_accepted.clone(),
        );
        registry.register(
            "link_refused",
            "Connections refused at accept, by reason (not_allowed, per_address, full)",
            link_refused.clone(),
        );
        registry.register(
            "link_evicted",
            "Connections not yet signed on closed to make room for a newcomer",
            link_evicted.clone(),
        );
        registry.register(
            "link_timeouts",
            "Connections closed on a time limit (sign_on, idle, frame)",
            link_timeouts.clone(),
        );
        Metrics {
            registry,
            requests,
            hub_seconds,
            adapter_seconds,
            state,
            transitions,
            saf_pending,
            saf_dead,
            balance_age,
            store_wal_bytes,
            store_read_errors,
            link_connections,
            link_accepted,
            link_refused,
            link_evicted,
            link_timeouts,
            live: Live::default(),
        }
    }
}

impl Metrics {
    /// Counts an answered request and its time in the hub.
    pub fn request(
        &self,
        mti: &str,
        code: &str,
        decided_by: &str,
        institution: &str,
        seconds: f64,
    ) {
        let labels = RequestLabels {
            mti: mti.to_string(),
            code: code.to_string(),
            decided_by: decided_by.to_string(),
            institution: institution.to_string(),
        };
        self.requests.get_or_create(&labels).inc();
        let mti = MtiLabels {
            mti: mti.to_string(),
        };
        self.hub_seconds.get_or_create(&mti).observe(seconds);
        let approved = ResponseCode::new(code).is_ok_and(|c| c.is_approval());
        let stand_in = decided_by == crate::journal::decision::DecidedBy::StandIn.as_str();
        self.live.record(approved, stand_in, seconds);
    }

    /// The last minutes of traffic, second by second.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// Counts a journal read that failed while deciding a request.
    pub fn store_read_error(&self) {
        self.store_read_errors.inc();
    }

    /// Times an online account-system call (`outcome`: answered, timeout, ...).
    pub fn adapter_call(&self, institution: &str, outcome: &str, seconds: f64) {
        let labels = CallLabels {
            institution: institution.to_string(),
            outcome: outcome.to_string(),
        };
        self.adapter_seconds.get_or_create(&labels).observe(seconds);
    }

    /// The text exposition, with the scrape-time values set first
    /// (`wal_bytes`: [`crate::store::Store::wal_bytes`]; `link`:
    /// [`crate::link::LinkStats::all`]).
    pub fn render(
        &self,
        institutions: &[InstitutionSnapshot],
        wal_bytes: u64,
        link: &[EndpointStats],
    ) -> String {
        self.store_wal_bytes
            .set(i64::try_from(wal_bytes).unwrap_or(i64::MAX));
        for i in institutions {
            let id = InstitutionLabels {
                institution: i.id.clone(),
            };
            for state in crate::standin::state::InstitutionState::ALL {
                let labels = StateLabels {
                    institution: i.id.clone(),
                    state: state.as_str().to_string(),
                };
                self.state
                    .get_or_create(&labels)
                    .set(i64::from(state.as_str() == i.state));
            }
            self.transitions
                .get_or_create(&id)
                .set(i.transitions as i64);
            self.saf_pending.get_or_create(&id).set(i.saf_pending);
            self.saf_dead.get_or_create(&id).set(i.saf_dead);
            if let Some(age) = i.balance_age_secs {
                self.balance_age.get_or_create(&id).set(age);
            }
        }
        for endpoint in link {
            self.set_link(endpoint);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Metrics {
    /// Sets one switch endpoint's series from its stats (the link counts;
    /// these mirror its totals at scrape time).
    fn set_link(&self, endpoint: &EndpointStats) {
        let s = &endpoint.stats;
        let switch = || endpoint.switch.clone();
        let set = |counter: &Counter, total: u64| counter.inner().store(total, Ordering::Relaxed);
        if endpoint.listening {
            for (state, now) in [("open", s.open), ("signed_on", s.established)] {
                let labels = SwitchStateLabels {
                    switch: switch(),
                    state,
                };
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                self.link_connections.get_or_create(&labels).set(now);
            }
            let labels = SwitchLabels { switch: switch() };
            set(&self.link_accepted.get_or_create(&labels), s.accepted);
        }
        for (reason, total) in [
            ("not_allowed", s.refused_not_allowed),
            ("per_address", s.refused_per_address),
            ("full", s.refused_full),
        ] {
            let labels = SwitchReasonLabels {
                switch: switch(),
                reason,
            };
            set(&self.link_refused.get_or_create(&labels), total);
        }
        let labels = SwitchLabels { switch: switch() };
        set(&self.link_evicted.get_or_create(&labels), s.evicted);
        for (limit, total) in [
            ("sign_on", s.sign_on_timeouts),
            ("idle", s.idle_timeouts),
            ("frame", s.frame_timeouts),
        ] {
            let labels = SwitchLimitLabels {
                switch: switch(),
                limit,
            };
            set(&self.link_timeouts.get_or_create(&labels), total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::ConnectionStats;

    #[test]
    fn counts_and_snapshots_are_rendered() {
        let m = Metrics::default();
        m.request("0100", "00", "stand_in", "bank-a", 0.002);
        m.request("0100", "00", "stand_in", "bank-a", 0.003);
        m.adapter_call("bank-a", "timeout", 1.5);
        let text = m.render(
            &[InstitutionSnapshot {
                id: "bank-a".into(),
                state: "closed",
                transitions: 2,
                saf_pending: 7,
                saf_dead: 1,
                balance_age_secs: Some(3600),
                ..InstitutionSnapshot::default()
            }],
            4096,
            &[EndpointStats {
                switch: "visa".into(),
                listening: true,
                stats: ConnectionStats {
                    open: 3,
                    established: 2,
                    accepted: 9,
                    refused_per_address: 4,
                    evicted: 1,
                    idle_timeouts: 5,
                    ..ConnectionStats::default()
                },
            }],
        );
        assert!(text.contains(
            "cardhub_requests_total{mti=\"0100\",code=\"00\",decided_by=\"stand_in\",institution=\"bank-a\"} 2"
        ), "{text}");
        assert!(
            text.contains("cardhub_hub_seconds_count{mti=\"0100\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("cardhub_institution_state{institution=\"bank-a\",state=\"closed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("cardhub_institution_state{institution=\"bank-a\",state=\"open\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("cardhub_saf_pending{institution=\"bank-a\"} 7"),
            "{text}"
        );
        assert!(
            text.contains("cardhub_balance_file_age_seconds{institution=\"bank-a\"} 3600"),
            "{text}"
        );
        assert!(text.contains("cardhub_store_wal_bytes 4096"), "{text}");
        for line in [
            "cardhub_link_connections{switch=\"visa\",state=\"open\"} 3",
            "cardhub_link_connections{switch=\"visa\",state=\"signed_on\"} 2",
            "cardhub_link_accepted_total{switch=\"visa\"} 9",
            "cardhub_link_refused_total{switch=\"visa\",reason=\"per_address\"} 4",
            "cardhub_link_refused_total{switch=\"visa\",reason=\"full\"} 0",
            "cardhub_link_evicted_total{switch=\"visa\"} 1",
            "cardhub_link_timeouts_total{switch=\"visa\",limit=\"idle\"} 5",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
    }
}
