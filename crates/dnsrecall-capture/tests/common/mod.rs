//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dnsrecall_capture::{CaptureConfig, DnsPayload, PcapFileReader};

/// The repository's captures (`tests/data/pcap`, see tests/data/README.md).
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data/pcap");

/// Ports the reference decodings treated as DNS (53 plus tshark decode-as).
pub fn reference_config() -> CaptureConfig {
    CaptureConfig::with_ports([53, 1053, 5300, 5301, 8053])
}

/// Every capture under the shared data folder, sorted.
pub fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(DATA).expect("shared pcap folder") {
        let dir = dir.expect("dir entry").path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).expect("source folder") {
            let f = f.expect("file entry").path();
            if f.extension().is_some_and(|e| e == "pcap") {
                out.push(f);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no captures found in {DATA}");
    out
}

/// All payloads of a file plus the errors, in order.
pub fn read_all(path: &Path, config: &CaptureConfig) -> (Vec<DnsPayload>, Vec<String>) {
    let reader = PcapFileReader::open(path, config).expect("open capture");
    let mut payloads = Vec::new();
    let mut errors = Vec::new();
    for item in reader {
        match item {
            Ok(p) => payloads.push(p),
            Err(e) => errors.push(e.to_string()),
        }
    }
    (payloads, errors)
}

/// The header fields the comparison uses: (src, dst, sport, dport,, id, [QD, AN, NS, AR]).
/// transport, id, [QD, AN, NS, AR], capture time `sec.nsec`).
pub type MsgKey = (String, String, u16, u16, String, u16, [u16; 4], String);

pub fn key_of(p: &DnsPayload) -> MsgKey {
    let m = &p.message;
    let c = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]);
    (
        p.src.to_string(),
        p.dst.to_string(),
        p.sport,
        p.dport,
        p.transport.as_str().to_string(),
        c(0),
        [c(4), c(6), c(8), c(10)],
        format!("{}.{:09}", p.ts_sec, p.ts_nsec),
    )
}

/// The `kind: msg` lines of an expected file, as keys.
pub fn expected_msgs(path: &Path) -> Vec<(MsgKey, u64)> {
    let mut exp = path.as_os_str().to_owned();
    exp.push(".expected.jsonl");
    let text = std::fs::read_to_string(&exp).expect("expected.jsonl");
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("json line");
        if v["kind"] != "msg" {
            continue;
        }
        let s = |k: &str| v[k].as_str().expect("string field").to_string();
        let n = |k: &str| v[k].as_u64().expect("number field") as u16;
        let counts = v["counts"].as_array().expect("counts");
        let c = |i: usize| counts[i].as_u64().expect("count") as u16;
        out.push((
            (
                s("src"),
                s("dst"),
                n("sport"),
                n("dport"),
                s("transport"),
                n("id"),
                [c(0), c(1), c(2), c(3)],
                s("ts"),
            ),
            v["frame"].as_u64().expect("frame"),
        ));
    }
    out
}
