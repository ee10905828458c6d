//! Micro-benchmarks of the pure steps on the webhook path:
//! `cargo bench --bench webhook`.

use std::hint::black_box;

use casapay_recon::casapay::{event, signature};
use casapay_recon::domain::Secret;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn body(size: usize) -> String {
    let base = r#"{"id":"evt_1","object":"event","type":"payment_request.succeeded","created":1709251200,"livemode":false,"data":{"object":{"id":"preq_abc123","object":"payment_request","payment_agreement":"pa_abc123","amount":120000,"currency":"eur","status":"succeeded","attempts":1,"metadata":{"property_id":"prop_456","period":"2025-03"},"created":1709251200,"livemode":false,"description":"PAD"}}}"#;
    let pad = size.saturating_sub(base.len() - 3);
    base.replace("PAD", &"x".repeat(pad))
}

fn verify(c: &mut Criterion) {
    let secrets = [Secret::new("whsec_test_5WbX5kEWLlfzsGNjH64I8lOOqUB6e8FH")];
    let mut group = c.benchmark_group("signature::verify");
    for size in [256, 1024, 4096] {
        let body = body(size);
        let header = signature::sign(&secrets[0], 1_709_251_200, body.as_bytes());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            b.iter(|| {
                signature::verify(
                    Some(black_box(&header)),
                    body.as_bytes(),
                    &secrets,
                    1_709_251_260,
                    300,
                )
            })
        });
    }
    group.finish();
}

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("event::parse");
    for size in [512, 4096] {
        let body = body(size);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &body, |b, body| {
            b.iter(|| event::parse(black_box(body.as_bytes())))
        });
    }
    group.finish();
}

criterion_group!(benches, verify, parse);
criterion_main!(benches);
