//! Frame Streams files (unidirectional: START, data frames, STOP) through
//! `dnsrecall_dnstap::FileReader`, with a small frame cap so the limit path
//! is reached too.
#![no_main]

use dnsrecall_dnstap::framestream::{FileReader, FrameConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cap, bytes)) = data.split_first() else {
        return;
    };
    let config = FrameConfig {
        max_data_frame_length: if cap & 1 == 0 {
            1 << 20
        } else {
            usize::from(cap) * 4
        },
        ..FrameConfig::default()
    };
    let mut reader = FileReader::with_config(bytes, &config);
    let mut frames = 0usize;
    while let Ok(Some(frame)) = reader.next_data() {
        assert!(frame.len() <= config.max_data_frame_length);
        frames += 1;
        assert!(frames <= bytes.len(), "more frames than input bytes");
    }
});
