//! passivedns `||` lines (`dnsrecall_core::passivedns::parse_line`) under the
//! default layout and under a layout and delimiter taken from the input.
#![no_main]

use std::sync::Arc;

use dnsrecall_core::passivedns::{Layout, Line, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let sensor: Arc<str> = Arc::from("fuzz");
    check(&Layout::default(), text, &sensor);
    // `fields\tdelimiter\tline`: a configured layout.
    let mut parts = text.splitn(3, '\t');
    if let (Some(fields), Some(delimiter), Some(line)) = (parts.next(), parts.next(), parts.next())
    {
        if let Ok(layout) = Layout::new(fields, delimiter) {
            check(&layout, line, &sensor);
        }
    }
});

fn check(layout: &Layout, line: &str, sensor: &Arc<str>) {
    if let Ok(Line::Record(entry)) = parse_line(layout, line, Some(sensor)) {
        assert!(
            entry.seen.count >= 1,
            "a record counts at least one sighting"
        );
        assert!(entry.seen.time_first <= entry.seen.time_last);
        let _ = entry.record.rdata.to_presentation(entry.record.rrtype);
    }
}
