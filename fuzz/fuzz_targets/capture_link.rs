//! The packet decoder (`dnsrecall_capture::Decoder`) fed frames of any link
//! type: the input is a sequence of `[linktype selector][len][frame]`
//! records, so fragments and TCP segments of one packet train meet in one
//! decoder (link layers, tunnels, IPv6 extension headers, defragmentation,
//! DNS-over-TCP reassembly).
#![no_main]

use std::sync::Arc;

use dnsrecall_capture::{CaptureConfig, Decoder, Metrics, linktype};
use libfuzzer_sys::fuzz_target;

const LINKTYPES: [u32; 15] = [
    linktype::NULL,
    linktype::ETHERNET,
    linktype::PPP,
    linktype::DLT_RAW_12,
    linktype::DLT_RAW_14,
    linktype::PPP_HDLC,
    linktype::PPP_ETHER,
    linktype::RAW,
    linktype::LOOP,
    linktype::LINUX_SLL,
    linktype::IPV4,
    linktype::IPV6,
    linktype::LINUX_SLL2,
    // Unsupported ones must be counted, not crash.
    147,
    0xffff_ffff,
];

fuzz_target!(|data: &[u8]| {
    let config = CaptureConfig {
        frag_max_datagrams: 4,
        frag_max_bytes: 8 << 10,
        tcp_max_streams: 4,
        tcp_max_bytes: 140 << 10,
        ..CaptureConfig::default()
    };
    let mut decoder = Decoder::new(&config, Arc::new(Metrics::new()));
    let mut emitted = 0usize;
    let mut emit = |payload: dnsrecall_capture::DnsPayload| {
        assert!(payload.message.len() <= 65_535);
        emitted += 1;
    };
    let mut rest = data;
    let mut ts = 1_700_000_000u64;
    while rest.len() >= 3 {
        let link = LINKTYPES[usize::from(rest[0]) % LINKTYPES.len()];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])) % 2048;
        let body = &rest[3..];
        let frame = &body[..len.min(body.len())];
        // Time moves on by up to 255 s per frame so timeouts fire too.
        ts += u64::from(rest[0] >> 4) * 16;
        decoder.decode(ts, 0, link, frame, &mut emit);
        rest = &body[frame.len()..];
    }
    decoder.finish(&mut emit);
    assert!(emitted <= data.len());
});
