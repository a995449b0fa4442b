//! The dedup cache loses nothing and stays within its byte bound.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_pipeline::{DedupCache, DedupConfig};
use proptest::prelude::*;

fn aggregate(entries: impl IntoIterator<Item = Entry>) -> HashMap<Record, Seen> {
    let mut map: HashMap<Record, Seen> = HashMap::new();
    for entry in entries {
        match map.get_mut(&entry.record) {
            Some(seen) => seen.merge(&entry.seen),
            None => {
                map.insert(entry.record, entry.seen);
            }
        }
    }
    map
}

fn record_strategy() -> impl Strategy<Value = Record> {
    (
        prop_oneof![
            Just("a.test"),
            Just("b.test"),
            Just("www.example.com"),
            Just("x.y.z.example.org"),
            Just(".")
        ],
        prop_oneof![Just(Rtype::A), Just(Rtype::TXT)],
        proptest::option::of(prop_oneof![Just("test"), Just("example.com")]),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|mut v| {
            v.truncate(v.len() % 3 * 20);
            v
        }),
        any::<bool>(),
    )
        .prop_map(|(name, rtype, bailiwick, rdata, text)| Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: bailiwick.map(|b| Name::from_presentation(b).unwrap()),
            rdata: if text {
                Rdata::Text(String::from_utf8_lossy(&rdata).into())
            } else {
                Rdata::Wire(rdata.into_boxed_slice())
            },
        })
}

fn seen_strategy() -> impl Strategy<Value = Seen> {
    (
        0u64..1000,
        0u64..50,
        1u64..5,
        proptest::option::of(prop_oneof![Just("s1"), Just("s2")]),
    )
        .prop_map(|(first, span, count, sensor)| Seen {
            time_first: first,
            time_last: first + span,
            count,
            zone_times: None,
            sensor_id: sensor.map(Arc::from),
        })
}

#[derive(Debug, Clone)]
enum Op {
    Observe(Record, Seen),
    Tick(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (record_strategy(), seen_strategy()).prop_map(|(r, s)| Op::Observe(r, s)),
        1 => (0u64..100).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Whatever the bounds, evictions + flushes + the final drain add up to
    /// the naive aggregation of the input.
    #[test]
    fn emitted_aggregate_equals_input_aggregate(
        ops in proptest::collection::vec(op_strategy(), 0..200),
        max_entries in prop_oneof![Just(1usize), 1usize..8, Just(1_000_000)],
        max_bytes in prop_oneof![0usize..600, 600usize..4000, Just(1usize << 30)],
        step in prop_oneof![1usize..4, Just(usize::MAX)],
    ) {
        let mut cache = DedupCache::new(&DedupConfig { max_entries, max_bytes, flush_interval_secs: 10 }).unwrap();
        let mut out = Vec::new();
        let mut input = Vec::new();
        for op in ops {
            match op {
                Op::Observe(record, seen) => {
                    input.push(Entry { record: record.clone(), seen: seen.clone() });
                    cache.insert(Entry { record, seen }, &mut out);
                    prop_assert!(cache.bytes() <= max_bytes, "{} > {}", cache.bytes(), max_bytes);
                    prop_assert!(cache.len() <= max_entries);
                }
                Op::Tick(now) => {
                    // Flushed and drained in steps of `step` entries, as
                    // the store writer does, or all at once.
                    cache.set_clock(now);
                    let cutoff = now.saturating_sub(10);
                    while cache.flush_older_than_at_most(cutoff, step, &mut out) == step {}
                    prop_assert!(cache.flush_older_than(cutoff, &mut out) == 0);
                }
            }
        }
        while cache.drain_at_most(step, &mut out) > 0 {}
        prop_assert_eq!(cache.len(), 0);
        let metrics = cache.metrics();
        prop_assert_eq!(metrics.output.get(), out.len() as u64);
        prop_assert_eq!(metrics.hits.get() + metrics.misses.get(), input.len() as u64);
        prop_assert_eq!(aggregate(out), aggregate(input));
    }
}

/// 10M distinct names through a 4 MiB cache: the byte accounting never
/// exceeds the bound and every observation comes out.
#[test]
fn ten_million_distinct_names_stay_within_four_mebibytes() {
    const NAMES: u64 = 10_000_000;
    const MAX_BYTES: usize = 4 << 20;
    let started = Instant::now();
    let config = DedupConfig {
        max_entries: 1_000_000,
        max_bytes: MAX_BYTES,
        flush_interval_secs: 10,
    };
    let mut cache = DedupCache::new(&config).unwrap();
    let mut out = Vec::with_capacity(1 << 16);
    let mut emitted = 0u64;
    let mut counted = 0u64;
    let mut peak = 0usize;
    let mut wire = Vec::with_capacity(64);
    for i in 0..NAMES {
        // n<i>.example.test., built in wire form directly.
        wire.clear();
        let label = format!("n{i}");
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
        wire.extend_from_slice(b"\x07example\x04test\x00");
        let entry = Entry {
            record: Record {
                rrname: Name::from_wire(&wire).unwrap(),
                rrtype: Rtype::A,
                bailiwick: None,
                rdata: Rdata::Wire(Box::new((i as u32).to_be_bytes())),
            },
            seen: Seen::once(i),
        };
        cache.insert(entry, &mut out);
        let bytes = cache.bytes();
        peak = peak.max(bytes);
        assert!(
            bytes <= MAX_BYTES,
            "after insert {i}: {bytes} bytes > {MAX_BYTES}"
        );
        if out.len() >= 1 << 16 {
            emitted += out.len() as u64;
            counted += out.iter().map(|e| e.seen.count).sum::<u64>();
            out.clear();
        }
    }
    let held = cache.len();
    cache.drain_all(&mut out);
    emitted += out.len() as u64;
    counted += out.iter().map(|e| e.seen.count).sum::<u64>();
    assert_eq!(emitted, NAMES);
    assert_eq!(counted, NAMES);
    assert!(
        held > 10_000,
        "a 4 MiB cache should hold more than {held} small entries"
    );
    assert!(peak > MAX_BYTES / 2, "peak {peak} suspiciously low");
    eprintln!(
        "10M names: peak {peak} bytes, {held} entries held at the end, {:?}",
        started.elapsed()
    );
}
