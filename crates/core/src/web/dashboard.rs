//! The dashboard: the last minute's traffic (requests per second,
//! approvals, stand-in share, latency percentiles), the institutions'
//! states and SAF depth, and plots of the last minutes drawn as SVG on the
//! server from the metrics' second-by-second history
//! ([`crate::metrics::live`]). `/live` renders the live part alone; the
//! page's script swaps it in every 2 s.

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::session::Signed;
use super::{Chrome, Section, Web, WebError, html, read};
use crate::metrics::InstitutionSnapshot;
use crate::metrics::live::{HISTORY_SECONDS, Sample, Summary};

/// The seconds the figures sum up.
const WINDOW_SECONDS: usize = 60;
/// A plot's drawing area, in SVG units.
const PLOT_WIDTH: u32 = 600;
const PLOT_HEIGHT: u32 = 160;

/// What the live part shows.
struct LiveView {
    at: String,
    summary: Summary,
    per_second: String,
    approval_share: String,
    stand_in_share: String,
    p50: String,
    p99: String,
    saf_pending: i64,
    saf_dead: i64,
    institutions: Vec<InstitutionSnapshot>,
    minutes: usize,
    plots: Vec<Plot>,
}

/// A line plot over the history.
struct Plot {
    title: &'static str,
    description: String,
    peak: String,
    width: u32,
    height: u32,
    lines: Vec<Line>,
}

/// One series: SVG polyline points (numbers only).
struct Line {
    name: &'static str,
    class: &'static str,
    points: String,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    live: LiveView,
}

#[derive(Template)]
#[template(path = "live.html")]
struct Live {
    live: LiveView,
}

pub(super) async fn page(State(web): State<Web>, signed: Signed) -> Result<Response, WebError> {
    html(&Dashboard {
        chrome: Chrome::new(Section::Dashboard, &signed),
        live: view(&web, &signed).await?,
    })
}

pub(super) async fn live(State(web): State<Web>, signed: Signed) -> Result<Response, WebError> {
    html(&Live {
        live: view(&web, &signed).await?,
    })
}

/// The figures now. Traffic is the whole hub's; institutions and SAF depth
/// are those the user may see.
async fn view(web: &Web, signed: &Signed) -> Result<LiveView, WebError> {
    let hub = web.hub.clone();
    let mut institutions = read(move || crate::backoffice::institutions::snapshots(&hub)).await?;
    institutions.retain(|i| signed.actor().sees_institution(&i.id));
    let live = web.hub.metrics().live();
    let summary = live.summary(WINDOW_SECONDS);
    let history = live.history();
    Ok(LiveView {
        at: jiff::Timestamp::now().strftime("%H:%M:%S UTC").to_string(),
        per_second: format!("{:.1}", summary.per_second),
        approval_share: share(summary.approved, summary.requests),
        stand_in_share: share(summary.stand_in, summary.requests),
        p50: micros(summary.p50_us),
        p99: micros(summary.p99_us),
        saf_pending: institutions.iter().map(|i| i.saf_pending).sum(),
        saf_dead: institutions.iter().map(|i| i.saf_dead).sum(),
        summary,
        institutions,
        minutes: HISTORY_SECONDS / 60,
        plots: vec![traffic(&history), latency(&history)],
    })
}

/// `part` of `whole` as a percentage, or a dash without any.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1} %", part as f64 * 100.0 / whole as f64)
    }
}

/// A latency for people: µs below a millisecond, else ms.
fn micros(us: u64) -> String {
    match us {
        0 => "–".into(),
        1..1_000 => format!("{us} µs"),
        _ => format!("{:.1} ms", us as f64 / 1_000.0),
    }
}

fn traffic(history: &[Sample]) -> Plot {
    let peak = history.iter().map(|s| s.requests).max().unwrap_or(0);
    let total: u64 = history.iter().map(|s| s.requests).sum();
    Plot {
        title: "Requests per second",
        description: format!(
            "{total} requests in the last {} seconds, at most {peak} in one second; \
             stand-in decisions drawn apart",
            history.len()
        ),
        peak: format!("{peak}/s"),
        width: PLOT_WIDTH,
        height: PLOT_HEIGHT,
        lines: vec![
            line("all", "requests", history, peak, |s| s.requests),
            line("stand-in", "stand-in", history, peak, |s| s.stand_in),
        ],
    }
}

fn latency(history: &[Sample]) -> Plot {
    let peak = history.iter().map(|s| s.p99_us).max().unwrap_or(0);
    Plot {
        title: "Latency",
        description: format!(
            "p50 and p99 of each second's requests over the last {} seconds; highest p99 {}",
            history.len(),
            micros(peak)
        ),
        peak: micros(peak),
        width: PLOT_WIDTH,
        height: PLOT_HEIGHT,
        lines: vec![
            line("p50", "p50", history, peak, |s| s.p50_us),
            line("p99", "p99", history, peak, |s| s.p99_us),
        ],
    }
}

/// The series `value` of `history`, scaled to `peak`, right-aligned so the
/// newest second is at the right edge.
fn line(
    name: &'static str,
    class: &'static str,
    history: &[Sample],
    peak: u64,
    value: impl Fn(&Sample) -> u64,
) -> Line {
    let step = f64::from(PLOT_WIDTH) / (HISTORY_SECONDS - 1) as f64;
    let offset = HISTORY_SECONDS.saturating_sub(history.len());
    let height = f64::from(PLOT_HEIGHT);
    let points = history
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let x = (offset + i) as f64 * step;
            let y = if peak == 0 {
                height
            } else {
                height - value(s) as f64 / peak as f64 * (height - 4.0)
            };
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ");
    Line {
        name,
        class,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: i64, requests: u64) -> Sample {
        Sample {
            at,
            requests,
            approved: requests,
            stand_in: 0,
            p50_us: 0,
            p99_us: 0,
        }
    }

    #[test]
    fn a_series_is_scaled_to_its_peak_and_ends_at_the_right_edge() {
        let history = [sample(1, 0), sample(2, 5), sample(3, 10)];
        let l = line("all", "requests", &history, 10, |s| s.requests);
        let points: Vec<&str> = l.points.split(' ').collect();
        assert_eq!(points.len(), 3);
        assert_eq!(points[2], "600.0,4.0");
        assert!(points[0].ends_with(",160.0"), "{points:?}");
        assert!(points[1].ends_with(",82.0"), "{points:?}");
    }

    #[test]
    fn shares_and_latencies_read_as_people_write_them() {
        assert_eq!(share(1, 4), "25.0 %");
        assert_eq!(share(0, 0), "–");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(2_500), "2.5 ms");
    }
}
