//! Arbitrary bytes as a dnstap protobuf, then through the message view.
#![no_main]

use bytes::Bytes;
use dnsrecall_dnstap::decode_dnstap;
use dnsrecall_dnstap::output::{LatencyTable, MessageView};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tap) = decode_dnstap(Bytes::copy_from_slice(data)) {
        let mut latency = LatencyTable::new(16, std::time::Duration::from_secs(1));
        if let Some(view) = MessageView::new(&tap, Some(&mut latency)) {
            let _ = view.to_text();
            let _ = view.to_json();
            let _ = view.to_yaml();
        }
    }
});
