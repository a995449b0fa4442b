//! pcap and pcapng files (plain; gzip is a wrapper around the same reader)
//! through `PcapFileReader`: block parsing, every link layer, IP, UDP/TCP,
//! defragmentation and reassembly, with small bounds so eviction runs too.
#![no_main]

use std::sync::Arc;

use dnsrecall_capture::{CaptureConfig, Metrics, PcapFileReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = CaptureConfig {
        frag_max_datagrams: 8,
        frag_max_bytes: 16 << 10,
        tcp_max_streams: 8,
        tcp_max_bytes: 256 << 10,
        ..CaptureConfig::default()
    };
    let Ok(reader) = PcapFileReader::from_reader(
        "fuzz.pcap",
        std::io::Cursor::new(data.to_vec()),
        &config,
        Arc::new(Metrics::new()),
    ) else {
        return;
    };
    for (n, item) in reader.enumerate() {
        match item {
            Ok(payload) => assert!(payload.message.len() <= 65_535),
            Err(_) => break,
        }
        assert!(n <= data.len(), "more messages than input bytes");
    }
});
