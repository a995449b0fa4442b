//! DNSDB query parameters and time fences (`dnsrecall_query::dnsdb::params`):
//! `name=value` pairs separated by `&`, values as given.
#![no_main]

use std::collections::HashMap;

use dnsrecall_query::TimeFence;
use dnsrecall_query::dnsdb::{parse_bool, parse_params, parse_time};
use libfuzzer_sys::fuzz_target;

const NOW: u64 = 1_700_000_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut raw = HashMap::new();
    for pair in text.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        raw.insert(name.to_string(), value.to_string());
    }
    if let Ok(params) = parse_params(&raw, 10_000, NOW) {
        assert!(params.limit <= 10_000, "limit is capped");
    }
    let _ = parse_time(text, NOW);
    let _ = parse_bool(text);
    let (after, before) = text.split_once(',').unwrap_or((text, ""));
    if let Ok(fence) = TimeFence::parse(Some(after), Some(before), text.len() % 2 == 0, NOW) {
        let mut params = dnsrecall_query::Params::with_limit(1);
        fence.apply(&mut params);
    }
});
