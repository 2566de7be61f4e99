//! Prometheus metrics: what the hub counts as it runs (requests by MTI,
//! decision, decider and institution; hub and adapter-call latency), and
//! what is read at scrape time (institution states and transitions, SAF
//! depth and dead letters, balance-file age, the store's WAL size). Served
//! at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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
}

/// An institution as operators see it now (the API lists these; metrics
/// are set from them at scrape time).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct InstitutionSnapshot {
    pub id: String,
    pub state: &'static str,
    pub saf_paused: bool,
    pub transitions: u64,
    pub saf_pending: i64,
    pub saf_dead: i64,
    /// The current balance file's as-of (RFC 3339) and rows; `None`: no file.
    pub balances_as_of: Option<String>,
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
    /// (`wal_bytes`: [`crate::store::Store::wal_bytes`]).
    pub fn render(&self, institutions: &[InstitutionSnapshot], wal_bytes: u64) -> String {
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
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
