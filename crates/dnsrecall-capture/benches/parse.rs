//! Packets per second through the parse path (link → IP → UDP/TCP → DNS
//! message), on the unbound loopback capture replicated in memory to at
//! least 200k packets. File I/O is not measured.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnsrecall_capture::{CaptureConfig, Decoder, Metrics};
use pcap_parser::{PcapBlockOwned, PcapError};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/pcap/unbound/unbound_lo.pcap"
);
const TARGET_PACKETS: usize = 200_000;

/// The capture's frames with their timestamps and link type.
fn load() -> (u32, Vec<(u64, u32, Vec<u8>)>) {
    let file = std::fs::File::open(CAPTURE).expect("shared capture");
    let mut reader = pcap_parser::create_reader(1 << 20, file).expect("pcap reader");
    let mut linktype = 1;
    let mut frames = Vec::new();
    loop {
        match reader.next() {
            Ok((offset, block)) => {
                match block {
                    PcapBlockOwned::LegacyHeader(h) => linktype = h.network.0 as u32,
                    PcapBlockOwned::Legacy(b) => {
                        frames.push((u64::from(b.ts_sec), b.ts_usec * 1000, b.data.to_vec()))
                    }
                    PcapBlockOwned::NG(_) => {}
                }
                reader.consume(offset);
            }
            Err(PcapError::Eof) => break,
            Err(PcapError::Incomplete(_)) => reader.refill().expect("refill"),
            Err(e) => panic!("reading {CAPTURE}: {e:?}"),
        }
    }
    (linktype, frames)
}

fn parse(c: &mut Criterion) {
    let (linktype, frames) = load();
    // Replicate, shifting time forward each round so TCP and pairing state
    // see a plausible, advancing clock.
    let span =
        frames.last().map(|f| f.0).unwrap_or(0) - frames.first().map(|f| f.0).unwrap_or(0) + 1;
    let mut packets = Vec::with_capacity(TARGET_PACKETS + frames.len());
    let mut round = 0;
    while packets.len() < TARGET_PACKETS {
        for (sec, nsec, data) in &frames {
            packets.push((sec + round * span, *nsec, data.as_slice()));
        }
        round += 1;
    }
    let config = CaptureConfig::with_ports([53, 5300, 5301]);

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(packets.len() as u64));
    group.sample_size(20);
    group.bench_function("unbound_lo_replicated", |b| {
        b.iter(|| {
            let mut decoder = Decoder::new(&config, Arc::new(Metrics::new()));
            let mut messages = 0usize;
            for (sec, nsec, data) in &packets {
                decoder.decode(*sec, *nsec, linktype, data, &mut |p| {
                    messages += black_box(p.message.len()).min(1)
                });
            }
            black_box(messages)
        })
    });
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
