//! dnstap protobuf decode and everything done with a decoded message: the
//! dnstap-receiver-style text/JSON/YAML views (with the latency table) and
//! the DNS summary of its payloads.
#![no_main]

use std::time::Duration;

use bytes::Bytes;
use dnsrecall_dnstap::output::{LatencyTable, MessageView};
use dnsrecall_dnstap::{decode_dnstap, dns};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dns::summarize(data);
    let Ok(tap) = decode_dnstap(Bytes::copy_from_slice(data)) else {
        return;
    };
    let mut latency = LatencyTable::new(16, Duration::from_secs(60));
    for _ in 0..2 {
        if let Some(view) = MessageView::new(&tap, Some(&mut latency)) {
            let _ = view.to_text();
            let json = view.to_json();
            assert!(
                serde_json::from_str::<serde_json::Value>(&json).is_ok(),
                "{json}"
            );
            let _ = view.to_yaml();
        }
    }
    if let Some(message) = &tap.message {
        let _ = (message.kind(), message.family(), message.protocol());
        let _ = (message.query_ip(), message.response_ip());
        for payload in [&message.query_message, &message.response_message]
            .into_iter()
            .flatten()
        {
            let _ = dns::summarize(payload);
        }
    }
});
