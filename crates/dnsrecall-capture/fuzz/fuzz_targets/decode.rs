//! Arbitrary bytes as an Ethernet frame (then a few other link types), and
//! as a whole capture file. Run: `cargo +nightly fuzz run decode`.

#![no_main]

use std::sync::Arc;

use dnsrecall_capture::{CaptureConfig, Decoder, Metrics, PcapFileReader, linktype};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = CaptureConfig::with_ports([53, 5353]);
    let metrics = Arc::new(Metrics::new());
    let mut decoder = Decoder::new(&config, metrics.clone());
    for (i, lt) in [linktype::ETHERNET, linktype::RAW, linktype::LINUX_SLL2, linktype::NULL]
        .into_iter()
        .enumerate()
    {
        // Feed twice so TCP and fragment state sees a second packet.
        decoder.decode(1, i as u32, lt, data, &mut |_| {});
        decoder.decode(2, i as u32, lt, data, &mut |_| {});
    }
    decoder.finish(&mut |_| {});

    let source = std::io::Cursor::new(data.to_vec());
    if let Ok(reader) = PcapFileReader::from_reader("fuzz", source, &config, metrics) {
        for item in reader.take(100_000) {
            let _ = item;
        }
    }
});
