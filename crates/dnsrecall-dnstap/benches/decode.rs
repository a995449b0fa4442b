//! Decode throughput: Frame Streams codec + prost over the unbound resolver
//! capture replicated to ~100k frames, in frames per second.

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnsrecall_dnstap::framestream::Frame;
use dnsrecall_dnstap::{FileReader, FrameCodec, decode_dnstap};
use tokio_util::codec::{Decoder, Encoder};

const SOURCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/dnstap/unbound/unbound_resolver.dnstap"
);
const TARGET_FRAMES: usize = 100_000;

fn stream() -> (Bytes, usize) {
    let file = std::fs::read(SOURCE).expect("test data");
    let frames: Vec<Bytes> = FileReader::new(&file[..])
        .collect::<Result<_, _>>()
        .expect("valid file");
    let mut codec = FrameCodec::default();
    let mut wire = BytesMut::new();
    let mut count = 0;
    while count < TARGET_FRAMES {
        for frame in &frames {
            codec
                .encode(Frame::Data(frame.clone()), &mut wire)
                .expect("encodable");
            count += 1;
        }
    }
    (wire.freeze(), count)
}

fn decode(c: &mut Criterion) {
    let (wire, count) = stream();
    let mut group = c.benchmark_group("dnstap");
    group.throughput(Throughput::Elements(count as u64));
    group.sample_size(20);
    group.bench_function("codec", |b| {
        b.iter(|| {
            let mut codec = FrameCodec::default();
            let mut buffer = BytesMut::from(&wire[..]);
            let mut frames = 0;
            while let Ok(Some(frame)) = codec.decode(&mut buffer) {
                black_box(frame);
                frames += 1;
            }
            assert_eq!(frames, count);
        })
    });
    group.bench_function("codec+prost", |b| {
        b.iter(|| {
            let mut codec = FrameCodec::default();
            let mut buffer = BytesMut::from(&wire[..]);
            let mut frames = 0;
            while let Ok(Some(Frame::Data(data))) = codec.decode(&mut buffer) {
                black_box(decode_dnstap(data).expect("valid dnstap"));
                frames += 1;
            }
            assert_eq!(frames, count);
        })
    });
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
