//! Render + parse per call, without the network: the canonical adapter's
//! Authorize (SOAP 1.1 envelope out, AuthorizeResponse in). Run:
//! `cargo bench --bench adapter`.
//!
//! With `ADAPTER_CALLS=N` in the environment the binary skips criterion and
//! makes N render + parse calls in [`calls`], for instruction counts that a
//! noisy machine does not blur (docs/performance.md):
//! `ADAPTER_CALLS=10000 valgrind --tool=callgrind --toggle-collect='*adapter::calls*' <bench binary>`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cardhub_core::account::AccountRequest;
use cardhub_core::adapter::Adapter;
use cardhub_core::adapter::file::Operation;
use criterion::{Criterion, Throughput, criterion_group};

/// The canonical adapter, its Authorize answer, a request.
struct Setup {
    canonical: Adapter,
    answer: Vec<u8>,
    request: AccountRequest,
}

fn setup() -> Setup {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let canonical = Adapter::load(&repo.join("adapters/canonical.toml")).unwrap();
    let answer =
        std::fs::read(repo.join("fixtures/soap/canonical/authorize-response.soap11.xml")).unwrap();
    let request = support::account_request("A-1001", Duration::from_secs(3600));
    Setup {
        canonical,
        answer,
        request,
    }
}

fn render(s: &Setup) -> Vec<u8> {
    s.canonical
        .encode_request(Operation::Authorize, black_box(&s.request))
        .unwrap()
}

fn parse(s: &Setup) -> cardhub_core::account::AccountAnswer {
    s.canonical
        .decode_answer(Operation::Authorize, 200, black_box(&s.answer), &s.request)
        .unwrap()
}

fn adapter(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let s = setup();
    let mut group = c.benchmark_group("canonical_authorize");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render", |b| b.iter(|| render(&s)));
    group.bench_function("parse", |b| b.iter(|| parse(&s)));
    group.bench_function("render+parse", |b| b.iter(|| (render(&s).len(), parse(&s))));
    group.finish();
}

/// `n` render + parse calls: what callgrind counts.
#[inline(never)]
fn calls(s: &Setup, n: u64) {
    for _ in 0..n {
        black_box((render(s).len(), parse(s)));
    }
}

criterion_group!(benches, adapter);

fn main() {
    if let Some(n) = std::env::var("ADAPTER_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let _guard = runtime.enter();
        let s = setup();
        calls(&s, n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
