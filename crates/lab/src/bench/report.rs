//! The report of `cardhub bench`: each measured run with its expected
//! answers, CPU per request and ratios to the floor, for people or as JSON;
//! and the runs that measured failures instead of decisions.

use std::time::Duration;

use serde_json::json;

use super::Scenario;
use crate::sim::FloodReport;

/// The share of requests that must get the expected answer.
const MIN_EXPECTED_SHARE: f64 = 0.9;

/// One measured run.
pub(super) struct Measured {
    pub(super) scenario: Scenario,
    pub(super) report: FloodReport,
    /// Authorize calls the reference account system received during the
    /// run (none for the floor).
    pub(super) authorizations: Option<u64>,
    /// CPU time each process used during the run, where the system tells
    /// (Linux): the simulator first, then the hubs, then the other
    /// children and the database server.
    pub(super) cpu: Vec<Cpu>,
}

/// CPU time one process used during a run.
pub(super) struct Cpu {
    pub(super) name: String,
    pub(super) used: Duration,
    /// The answers it gave, for a hub instance: its CPU per request is
    /// over those. `None`: over all the run's requests.
    pub(super) answered: Option<u64>,
}

/// A scenario against the floor: its throughput divided by the floor's,
/// its p99 latency divided by the floor's.
pub(super) struct Ratio {
    scenario: Scenario,
    throughput: f64,
    p99: f64,
}

/// The whole report.
pub(super) struct Report {
    /// `concurrency N` or `rate N/s`.
    pub(super) pace: String,
    /// `sqlite` or `postgresql`.
    pub(super) store: &'static str,
    /// Hub instances of each scenario.
    pub(super) instances: u8,
    /// Connections to each instance.
    pub(super) connections: usize,
    pub(super) cards: u32,
    pub(super) warm_up: u64,
    /// Logical CPUs of the machine, shared by the three processes.
    pub(super) cpus: usize,
    /// /proc/loadavg at the start, where there is one.
    pub(super) load_average: Option<String>,
    pub(super) scenarios: Vec<Measured>,
    pub(super) ratios_to_floor: Vec<Ratio>,
}

impl Measured {
    /// Share of the requests answered with the scenario's expected code.
    fn expected_share(&self) -> f64 {
        let r = &self.report;
        let expected = r.codes.get(self.scenario.expected_code()).copied();
        expected.unwrap_or(0) as f64 / r.requests.max(1) as f64
    }

    /// CPU microseconds per request of each process: a hub's over the
    /// requests it answered, the others' over all.
    fn cpu_per_request(&self) -> Vec<(&str, f64)> {
        self.cpu
            .iter()
            .map(|c| {
                let requests = c.answered.unwrap_or(self.report.requests).max(1) as f64;
                (c.name.as_str(), c.used.as_secs_f64() * 1e6 / requests)
            })
            .collect()
    }

    /// The answers of each hub instance.
    fn answered_by_instance(&self) -> Vec<(&str, u64)> {
        let hubs = self.cpu.iter();
        hubs.filter_map(|c| Some((c.name.as_str(), c.answered?)))
            .collect()
    }

    fn json(&self) -> serde_json::Value {
        let r = &self.report;
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        json!({
            "scenario": self.scenario,
            "expected_code": self.scenario.expected_code(),
            "expected_share": self.expected_share(),
            "requests": r.requests,
            "answered": r.answered,
            "codes": r.codes,
            "timeouts": r.timeouts,
            "errors": r.errors,
            "mismatches": r.mismatches,
            "dropped": r.dropped,
            "first_error": r.first_error,
            "throughput_per_s": r.throughput,
            "elapsed_s": r.elapsed.as_secs_f64(),
            "latency_ms": {
                "p50": ms(r.latency.p50),
                "p90": ms(r.latency.p90),
                "p99": ms(r.latency.p99),
                "p999": ms(r.latency.p999),
                "max": ms(r.latency.max),
            },
            "account_system_authorizations": self.authorizations,
            "cpu_us_per_request": self.cpu_per_request().into_iter()
                .map(|(name, us)| (name.to_string(), json!(us)))
                .collect::<serde_json::Map<_, _>>(),
            "answered_by_instance": self.answered_by_instance().into_iter()
                .map(|(name, n)| (name.to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
        })
    }
}

/// The scenarios answered with their expected code for less than
/// [`MIN_EXPECTED_SHARE`] of their requests, each said in a line.
pub(super) fn failures(scenarios: &[Measured]) -> Vec<String> {
    scenarios
        .iter()
        .filter(|m| m.expected_share() < MIN_EXPECTED_SHARE)
        .map(|m| {
            let r = &m.report;
            format!(
                "{}: {:.1} % of requests answered {} (codes {:?}, {} timeouts, {} errors{})",
                m.scenario.title(),
                m.expected_share() * 100.0,
                m.scenario.expected_code(),
                r.codes,
                r.timeouts,
                r.errors,
                r.first_error
                    .as_deref()
                    .map(|e| format!(", first: {e}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Each scenario's throughput and p99 against the floor's, when the floor ran.
pub(super) fn ratios(scenarios: &[Measured]) -> Vec<Ratio> {
    let Some(floor) = scenarios.iter().find(|m| m.scenario == Scenario::Floor) else {
        return Vec::new();
    };
    scenarios
        .iter()
        .filter(|m| m.scenario != Scenario::Floor)
        .map(|m| Ratio {
            scenario: m.scenario,
            throughput: m.report.throughput / floor.report.throughput.max(f64::MIN_POSITIVE),
            p99: m.report.latency.p99.as_secs_f64()
                / floor.report.latency.p99.as_secs_f64().max(1e-6),
        })
        .collect()
}

impl Report {
    pub(super) fn json(&self) -> serde_json::Value {
        json!({
            "pace": self.pace,
            "store": self.store,
            "instances": self.instances,
            "connections": self.connections,
            "cards": self.cards,
            "warm_up": self.warm_up,
            "cpus": self.cpus,
            "load_average": self.load_average,
            "scenarios": self.scenarios.iter().map(Measured::json).collect::<Vec<_>>(),
            "ratios_to_floor": self.ratios_to_floor.iter().map(|r| json!({
                "scenario": r.scenario,
                "throughput": r.throughput,
                "p99": r.p99,
            })).collect::<Vec<_>>(),
        })
    }

    /// The report for people.
    pub(super) fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "cardhub bench: simulator, hub and reference account system as separate processes on loopback; \
             {} hub instance(s) on {}; {}, {} connection(s) per instance, {} cards, {} warm-up requests \
             per scenario; {} CPUs, load average {}",
            self.instances,
            self.store,
            self.pace,
            self.connections,
            self.cards,
            self.warm_up,
            self.cpus,
            self.load_average.as_deref().unwrap_or("unknown")
        );
        for m in &self.scenarios {
            let _ = writeln!(
                out,
                "\n== {} ({})\n{}\nexpected    {:.1} % of requests answered {}",
                m.scenario.title(),
                m.scenario.description(),
                m.report,
                m.expected_share() * 100.0,
                m.scenario.expected_code()
            );
            let cpu: Vec<String> = m
                .cpu_per_request()
                .iter()
                .map(|(name, us)| format!("{name} {us:.0}"))
                .collect();
            if !cpu.is_empty() {
                let _ = writeln!(out, "cpu         µs per request: {}", cpu.join(", "));
            }
            let answered = m.answered_by_instance();
            if answered.len() > 1 {
                let answered: Vec<String> = answered
                    .iter()
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                let _ = writeln!(out, "instances   answers: {}", answered.join(", "));
            }
            if let Some(calls) = m.authorizations {
                let _ = writeln!(
                    out,
                    "bank        {calls} Authorize calls reached the reference account system"
                );
            }
        }
        if !self.ratios_to_floor.is_empty() {
            let _ = writeln!(out, "\nagainst the floor   throughput   p99");
            for r in &self.ratios_to_floor {
                let _ = writeln!(
                    out,
                    "{:<19} {:>10.3}   {:>5.1} ×",
                    r.scenario.title(),
                    r.throughput,
                    r.p99
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(scenario: Scenario, codes: &[(&str, u64)], timeouts: u64) -> Measured {
        let codes: std::collections::BTreeMap<String, u64> =
            codes.iter().map(|(c, n)| (c.to_string(), *n)).collect();
        let answered = codes.values().sum::<u64>();
        Measured {
            scenario,
            report: FloodReport {
                requests: answered + timeouts,
                answered,
                codes,
                timeouts,
                ..FloodReport::default()
            },
            authorizations: None,
            cpu: Vec::new(),
        }
    }

    #[test]
    fn runs_of_declines_or_timeouts_are_failures_and_the_floor_expects_91() {
        let good = [
            run(Scenario::Floor, &[("91", 100)], 0),
            run(Scenario::Online, &[("00", 95), ("51", 5)], 0),
            run(Scenario::StandIn, &[("00", 90)], 10),
        ];
        assert!(failures(&good).is_empty(), "{:?}", failures(&good));
        let bad = [
            run(Scenario::Floor, &[("00", 100)], 0),
            run(Scenario::Online, &[("00", 40), ("61", 60)], 0),
            run(Scenario::StandIn, &[("00", 89)], 11),
        ];
        let failed = failures(&bad);
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed[0].starts_with("link-only floor: 0.0 % of requests answered 91"));
        assert!(failed[1].starts_with("online: 40.0 % of requests answered 00"));
        assert!(failed[2].contains("11 timeouts"), "{}", failed[2]);
    }
}
