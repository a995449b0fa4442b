//! Observations per second through filter + dedup.
//!
//! `cargo bench -p dnsrecall-pipeline --bench pipeline`

use std::hint::black_box;
use std::sync::Arc;

use arc_swap::ArcSwap;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_pipeline::{FilterSet, Pipeline, PipelineConfig};

const BATCH: usize = 100_000;

fn entry(i: usize, time: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(&format!("host{i}.zone{}.example.com", i % 97))
                .unwrap(),
            rrtype: Rtype::A,
            bailiwick: Some(Name::from_presentation("example.com").unwrap()),
            rdata: Rdata::Wire(Box::new((i as u32).to_be_bytes())),
        },
        seen: Seen::once(time),
    }
}

/// `BATCH` observations of which `distinct` are different records.
fn stream(distinct: usize) -> Vec<Entry> {
    (0..BATCH).map(|i| entry(i % distinct, i as u64)).collect()
}

fn filters() -> Arc<ArcSwap<FilterSet>> {
    let deny =
        "subdomain:ads.example.net\nsubdomain:tracker.test\nexact:www.blocked.example\ntype:ANY\n";
    let set = FilterSet::from_texts(&[], &[("deny".into(), deny.to_string())]).unwrap();
    Arc::new(ArcSwap::from_pointee(set))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter+dedup");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, distinct) in [("90%_repeats", BATCH / 10), ("0%_repeats", BATCH)] {
        let input = stream(distinct);
        group.bench_function(label, |b| {
            b.iter_batched(
                || {
                    let pipeline = Pipeline::new(&PipelineConfig::default(), filters()).unwrap();
                    (pipeline, input.clone(), Vec::with_capacity(BATCH))
                },
                |(mut pipeline, entries, mut out)| {
                    pipeline.process_records(entries, Some("bench"), &mut out);
                    pipeline.finish(&mut out);
                    black_box(out.len());
                    (pipeline, out)
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
