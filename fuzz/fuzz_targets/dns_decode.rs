//! DNS response → passive DNS entries (`dnsrecall_core::decode`), under each
//! additional-section policy, with and without a bailiwick.
#![no_main]

use dnsrecall_core::Name;
use dnsrecall_core::decode::{AdditionalPolicy, ResponseContext, decode_response, peek_question};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, wire)) = data.split_first() else {
        return;
    };
    let additional = match selector % 3 {
        0 => AdditionalPolicy::InBailiwick,
        1 => AdditionalPolicy::Always,
        _ => AdditionalPolicy::Never,
    };
    let bailiwick = match (selector >> 2) % 3 {
        0 => None,
        1 => Some(Name::root()),
        _ => Name::from_presentation("example.com").ok(),
    };
    let context = ResponseContext {
        time: 1_700_000_000,
        sensor_id: None,
        bailiwick,
        additional,
    };
    let _ = peek_question(wire);
    let mut out = Vec::new();
    match decode_response(wire, &context, &mut out) {
        Ok(summary) => {
            assert_eq!(
                summary.records,
                out.len(),
                "summary counts every emitted entry"
            );
            for entry in &out {
                // Everything decoded must render.
                let _ = entry.record.rdata.to_presentation(entry.record.rrtype);
                let _ = entry.record.rrname.to_fqdn();
            }
        }
        Err(_) => assert!(out.is_empty(), "a failed decode leaves no entries"),
    }
});
