//! Decode-only throughput of the dnstap source: dnstap protobuf (prost,
//! zero-copy) → DNS response → passive DNS entries (`dnsrecall_core::decode`),
//! one core, no I/O and no store. Mirrors the per-frame work of
//! `sources/dnstap.rs` (message type filter, identity → sensor, query_zone →
//! bailiwick).
//!
//! Input: the first 200k frames of `$DNSRECALL_BENCH_DNSTAP` (e.g. the file
//! from bench/dnstap/gen.py), else the unbound resolver capture of the shared
//! data replicated to 100k frames.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnsrecall_core::decode::{ResponseContext, decode_response};
use dnsrecall_core::{Entry, Name};
use dnsrecall_dnstap::{FileReader, decode_dnstap};

const FALLBACK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/dnstap/unbound/unbound_resolver.dnstap"
);

fn frames() -> Vec<Bytes> {
    let (path, limit, replicate) = match std::env::var("DNSRECALL_BENCH_DNSTAP") {
        Ok(path) => (path, 200_000, false),
        Err(_) => (FALLBACK.to_string(), 100_000, true),
    };
    let file = std::fs::File::open(&path).expect("bench input");
    let mut frames: Vec<Bytes> = FileReader::new(std::io::BufReader::new(file))
        .take(limit)
        .collect::<Result<_, _>>()
        .expect("valid file");
    if replicate {
        let base = frames.clone();
        while frames.len() < limit {
            frames.extend(base.iter().cloned());
        }
    }
    frames
}

fn decode(c: &mut Criterion) {
    let frames = frames();
    let mut group = c.benchmark_group("dnstap_source");
    group.throughput(Throughput::Elements(frames.len() as u64));
    group.sample_size(10);
    group.bench_function("frames_to_entries", |b| {
        b.iter(|| {
            let mut out: Vec<Entry> = Vec::with_capacity(8192);
            let mut context = ResponseContext::default();
            let mut identity: Option<Bytes> = None;
            let mut zone: Option<Bytes> = None;
            let mut entries = 0usize;
            for frame in &frames {
                let tap = decode_dnstap(frame.clone()).expect("dnstap");
                let Some(message) = tap.message else { continue };
                if message.r#type % 2 == 1 {
                    continue;
                }
                let Some(response) = message.response_message else {
                    continue;
                };
                if tap.identity != identity {
                    context.sensor_id = tap
                        .identity
                        .as_deref()
                        .map(|i| Arc::from(String::from_utf8_lossy(i).as_ref()));
                    identity = tap.identity;
                }
                if message.query_zone != zone {
                    context.bailiwick = message
                        .query_zone
                        .as_deref()
                        .and_then(|z| Name::from_wire(z).ok());
                    zone = message.query_zone;
                }
                context.time = message.response_time_sec.unwrap_or(0);
                let _ = decode_response(&response, &context, &mut out);
                if out.len() >= 4096 {
                    entries += out.len();
                    black_box(&out);
                    out.clear();
                }
            }
            black_box(entries + out.len())
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
