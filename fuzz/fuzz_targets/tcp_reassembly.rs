//! DNS-over-TCP reassembly (`dnsrecall_capture::tcp::TcpReassembler`) driven
//! directly: segments of a few connections with chosen sequence numbers
//! (gaps, overlaps, retransmissions, wrap-around), flags and time jumps.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use arbitrary::Arbitrary;
use dnsrecall_capture::Metrics;
use dnsrecall_capture::tcp::{Segment, StreamKey, TcpReassembler};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Op {
    stream: u8,
    seq_delta: i16,
    syn: bool,
    fin: bool,
    rst: bool,
    payload: Vec<u8>,
    advance_secs: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    isn: u32,
    max_streams: u8,
    max_bytes: u32,
    ops: Vec<Op>,
}

fuzz_target!(|input: Input| {
    let metrics = Metrics::new();
    let max_bytes = (input.max_bytes % (1 << 20)) as usize;
    let mut tcp = TcpReassembler::new(usize::from(input.max_streams), 0, max_bytes, 60);
    let mut now = 1_700_000_000_000_000_000u64;
    let mut seqs = [input.isn; 4];
    let mut emitted = 0usize;
    let mut emit = |m: dnsrecall_capture::tcp::TcpMessage| {
        assert!(m.message.len() <= 65_535);
        emitted += 1;
    };
    for op in input.ops.iter().take(256) {
        now += u64::from(op.advance_secs) * 1_000_000_000;
        let s = usize::from(op.stream % 4);
        let key = StreamKey {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, s as u8)),
            dst: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1)),
            sport: 50_000 + s as u16,
            dport: 53,
        };
        let seq = seqs[s].wrapping_add_signed(i32::from(op.seq_delta));
        tcp.segment(
            now,
            Segment {
                key,
                seq,
                syn: op.syn,
                fin: op.fin,
                rst: op.rst,
                payload: &op.payload,
            },
            &metrics,
            &mut emit,
        );
        seqs[s] = seq.wrapping_add(op.payload.len() as u32);
        assert!(tcp.len() <= usize::from(input.max_streams).max(1));
    }
    tcp.finish(&metrics, &mut emit);
    assert!(tcp.is_empty());
    assert_eq!(tcp.buffered_bytes(), 0);
});
