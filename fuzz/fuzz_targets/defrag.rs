//! IP defragmentation (`dnsrecall_capture::defrag::Defragmenter`) driven
//! directly: overlapping, duplicate, out-of-order and oversized fragments of
//! a few datagrams, with time jumps, against tight bounds.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use dnsrecall_capture::Metrics;
use dnsrecall_capture::defrag::{Defragmenter, FragKey, Fragment};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Op {
    datagram: u8,
    offset: u16,
    more: bool,
    len: u16,
    fill: u8,
    advance_secs: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_datagrams: u8,
    max_bytes: u16,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let metrics = Metrics::new();
    let max_bytes = usize::from(input.max_bytes) * 4;
    let mut defrag = Defragmenter::new(usize::from(input.max_datagrams), max_bytes, 30);
    let mut now = 1_700_000_000_000_000_000u64;
    for op in input.ops.iter().take(512) {
        now += u64::from(op.advance_secs) * 1_000_000_000;
        let payload = vec![op.fill; usize::from(op.len % 4096)];
        let frag = Fragment {
            key: FragKey {
                src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, op.datagram % 4)),
                dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
                id: u32::from(op.datagram % 8),
                protocol: 17,
            },
            offset: u32::from(op.offset) * 8,
            more: op.more,
            payload: &payload,
        };
        if let Some(datagram) = defrag.push(now, frag, &metrics) {
            assert!(datagram.len() <= 65_535 + 8 * 8191);
            defrag.recycle(datagram);
        }
        assert!(defrag.len() <= usize::from(input.max_datagrams).max(1));
        assert!(defrag.buffered_bytes() <= max_bytes);
    }
    defrag.sweep(now + 3_600_000_000_000, &metrics);
    assert!(defrag.is_empty());
    defrag.clear(&metrics);
    assert_eq!(defrag.buffered_bytes(), 0);
});
