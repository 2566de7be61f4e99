//! Render + parse per call, without the network: the canonical adapter's
//! Authorize (SOAP 1.1 envelope out, AuthorizeResponse in). Other shipped
//! adapters are measured when present. Run: `cargo bench --bench adapter`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use cardhub::adapter::Adapter;
use cardhub::adapter::file::Operation;
use cardhub::hub::account_system::AccountRequest;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn request() -> AccountRequest {
    support::account_request("A-1001", Duration::from_secs(3600))
}

fn adapter(c: &mut Criterion) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let canonical = Adapter::load(&repo.join("adapters/canonical.toml")).unwrap();
    let answer =
        std::fs::read(repo.join("fixtures/soap/canonical/authorize-response.soap11.xml")).unwrap();
    let req = request();

    let mut group = c.benchmark_group("canonical_authorize");
    group.throughput(Throughput::Elements(1));
    group.bench_function("render", |b| {
        b.iter(|| {
            canonical
                .encode_request(Operation::Authorize, black_box(&req))
                .unwrap()
        })
    });
    group.bench_function("parse", |b| {
        b.iter(|| {
            canonical
                .decode_answer(Operation::Authorize, 200, black_box(&answer), &req)
                .unwrap()
        })
    });
    group.bench_function("render+parse", |b| {
        b.iter(|| {
            let out = canonical
                .encode_request(Operation::Authorize, black_box(&req))
                .unwrap();
            let a = canonical
                .decode_answer(Operation::Authorize, 200, black_box(&answer), &req)
                .unwrap();
            (out.len(), a)
        })
    });
    group.finish();
}

criterion_group!(benches, adapter);
criterion_main!(benches);
