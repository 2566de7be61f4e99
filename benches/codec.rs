//! Decode and encode of a typical BASE24 0100 (the pyiso8583 fixture: 22
//! fields, 297 bytes). Run: `cargo bench --bench codec`.

use std::hint::black_box;

use cardhub_core::iso8583::Dialect;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn codec(c: &mut Criterion) {
    let dialect = Dialect::shipped("base24").unwrap().unwrap();
    let hex_text = include_str!("../fixtures/iso8583/base24/0100.hex");
    let bytes = hex::decode(hex_text.trim()).unwrap();
    let msg = dialect.decode(&bytes).unwrap();

    let mut group = c.benchmark_group("base24_0100");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode", |b| {
        b.iter(|| dialect.decode(black_box(&bytes)).unwrap())
    });
    let mut out = Vec::with_capacity(512);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            dialect.encode_into(black_box(&msg), &mut out).unwrap();
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
