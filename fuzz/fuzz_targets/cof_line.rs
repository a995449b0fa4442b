//! COF NDJSON lines (`dnsrecall_core::cof::parse_line`); whatever parses is
//! written back with `write_line` and must read back to the same entries.
#![no_main]

use dnsrecall_core::cof::{CofStyle, parse_line, write_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = parse_line(text) else {
        return;
    };
    for entry in &parsed.entries {
        let mut out = Vec::new();
        write_line(entry, &CofStyle::default(), &mut out);
        let line = String::from_utf8(out).expect("COF output is UTF-8");
        let again = match parse_line(line.trim_end()) {
            Ok(again) => again,
            Err(e) => panic!("{text:?} parsed, its export {line:?} does not: {e}"),
        };
        assert_eq!(again.entries.len(), 1, "{line}");
        assert_eq!(again.entries[0].record, entry.record, "{text:?} → {line:?}");
        assert_eq!(again.entries[0].seen.count, entry.seen.count);
    }
});
