//! annotate's flow lines (`dnsrecall_query::annotate::flows`): a file in CSV
//! (header first) or NDJSON, format detected as the CLI does, read line by
//! line with a small line limit.
#![no_main]

use dnsrecall_query::annotate::flows::{FlowFields, FlowFormat, FlowReader, Line, csv_fields};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let fields = FlowFields {
        src: "src".to_string(),
        dst: "dst".to_string(),
        time: "time".to_string(),
    };
    for format in [
        FlowFormat::detect(data),
        FlowFormat::Csv,
        FlowFormat::Ndjson,
    ] {
        let mut reader = FlowReader::new(format, fields.clone(), 512);
        for raw in data.split_inclusive(|&b| b == b'\n') {
            match reader.line(raw) {
                Ok(Line::Flow(flow)) => assert!(flow.line.len() <= 512),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = csv_fields(text);
    }
});
