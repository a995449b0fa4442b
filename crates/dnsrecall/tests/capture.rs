//! Packet capture end to end with the real binary: `import` of every shared
//! capture against its reference decoding (tshark + dnspython), a truncated
//! capture, and a live capture on `lo` of a fenced local unbound queried
//! over UDP and TCP.
//!
//! Needs (installed by `scripts/test.sh`): `unbound`, `kdig`
//! (knot-dnsutils), `dig` (dnsutils), `editcap` (wireshark-common),
//! libpcap, and root (or CAP_NET_RAW) for the live capture. A missing tool
//! fails the test; nothing is skipped.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{TestDir, encode, free_port, test_data};

/// The ports the reference decodings treated as DNS (53 plus tshark's
/// decode-as list in `tools/extract_rr.py`).
/// Every record the captures carry, as the reference lists them: upstream
/// answers (RD clear) from servers the built-in root hints do not know are
/// kept rather than dropped as out of bailiwick (reconstruction is tested
/// on its own below).
const REFERENCE_CONFIG: &str = "[capture]\nports = [53, 1053, 5300, 5301, 8053]\n\
    [pipeline.bailiwick]\nout_of_bailiwick = \"keep\"\n";

/// (rrname, rrtype, normalised rdata)
type Key = (String, String, String);
/// Key → (time_first, time_last, count)
type Records = BTreeMap<Key, (u64, u64, u64)>;

/// How a reference rdata (dnspython) and ours (`domain`, dig style) are
/// compared. Each rule is a spelling difference, never a content one:
///
/// 1. RRSIG expiration/inception: dnspython writes `YYYYMMDDHHMMSS`, we write
///    the serial number (seconds); both are RFC 4034 §3.2 presentation
///    forms. Ours are converted to `YYYYMMDDHHMMSS` (UTC).
/// 2. TLSA/SSHFP (and other hex-bearing types): we wrap the hex in `( ... )`
///    (zone-file grouping); parentheses are dropped.
/// 3. SVCB/HTTPS: dnspython quotes every SvcParam value (`alpn="h2"`), we do
///    not; double quotes are dropped for these two types.
/// 4. LOC: dnspython writes `-2.00m 0.00m`, we write `-2m 0m`; tokens that are
///    a number with an `m` unit are compared as numbers.
/// 5. Names inside rdata: our SRV target has no trailing dot
///    (`sip.example.test`), dnspython's has; a trailing dot is dropped from
///    every token (outside TXT/SPF strings, where a dot is data).
/// 6. Whitespace is removed entirely: dnspython cuts base64 (DNSKEY, RRSIG)
///    and hex (DS, NSEC3, `\#` data) into space-separated chunks.
/// 7. Case: folded, except TXT/SPF/HINFO/CAA strings and base64 types (base64
///    is case-sensitive; lower-casing it could hide a real difference).
fn normalise(rrtype: &str, rdata: &str) -> String {
    let text_type = matches!(rrtype, "TXT" | "SPF" | "HINFO" | "CAA");
    let keep_case = text_type
        || matches!(
            rrtype,
            "DNSKEY" | "RRSIG" | "CDNSKEY" | "KEY" | "SIG" | "OPENPGPKEY" | "DHCID"
        );
    let mut out = String::new();
    for (index, token) in rdata.split_whitespace().enumerate() {
        let mut token = token.to_string();
        if rrtype == "RRSIG"
            && (index == 4 || index == 5)
            && token.len() <= 10
            && let Some(time) = token
                .parse::<i64>()
                .ok()
                .and_then(|t| jiff::Timestamp::from_second(t).ok())
        {
            token = time.strftime("%Y%m%d%H%M%S").to_string();
        }
        if !text_type {
            token.retain(|c| c != '(' && c != ')');
        }
        if matches!(rrtype, "SVCB" | "HTTPS") {
            token.retain(|c| c != '"');
        }
        if rrtype == "LOC"
            && let Some(value) = token.strip_suffix('m').and_then(|n| n.parse::<f64>().ok())
        {
            token = format!("{value}m");
        }
        if !text_type && token.len() > 1 && token.ends_with('.') {
            token.pop();
        }
        out.push_str(&token);
    }
    if keep_case {
        out
    } else {
        out.to_ascii_lowercase()
    }
}

fn normalise_type(rrtype: &str) -> String {
    match rrtype.strip_prefix("TYPE") {
        Some(number) if number.parse::<u16>().is_ok() => number.to_string(),
        _ => rrtype.to_string(),
    }
}

fn name_key(rrname: &str) -> String {
    let lower = rrname.to_ascii_lowercase();
    match lower.strip_suffix('.') {
        Some(stripped) if !stripped.is_empty() => stripped.to_string(),
        _ => lower,
    }
}

/// The records a reference decoding says a correct importer stores: every
/// `kind: rr` line of class IN (OPT is not listed; TSIG/TKEY are
/// transaction pseudo-records, not data), a sighting per line, times in
/// capture seconds.
fn expected_records(capture: &Path) -> Records {
    let mut file = capture.as_os_str().to_owned();
    file.push(".expected.jsonl");
    let text = std::fs::read_to_string(&file).expect("expected.jsonl");
    let mut records = Records::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        if v["kind"] != "rr"
            || v["rrclass"] != "IN"
            || matches!(v["rrtype"].as_str(), Some("TSIG" | "TKEY"))
        {
            continue;
        }
        let s = |k: &str| {
            v[k].as_str()
                .unwrap_or_else(|| panic!("{k} in {line}"))
                .to_string()
        };
        let ts: u64 = s("ts")
            .split('.')
            .next()
            .and_then(|t| t.parse().ok())
            .expect("ts");
        let rrtype = normalise_type(&s("rrtype"));
        let key = (
            name_key(&s("rrname")),
            rrtype.clone(),
            normalise(&rrtype, &s("rdata")),
        );
        let slot = records.entry(key).or_insert((u64::MAX, 0, 0));
        slot.0 = slot.0.min(ts);
        slot.1 = slot.1.max(ts);
        slot.2 += 1;
    }
    records
}

/// Our records of these names, asked from the server one name at a time.
fn served_records(server: &util::Server, names: &BTreeSet<String>) -> Records {
    let mut records = Records::new();
    for name in names {
        let query = if name.is_empty() || name == "." {
            ".".to_string()
        } else {
            encode(name)
        };
        let response = server.get(&format!("/query/{query}"), &[]);
        assert_eq!(response.status, 200, "/query/{name}: {}", response.body);
        for line in response.lines() {
            let s = |k: &str| {
                line[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{k} in {line}"))
                    .to_string()
            };
            let n = |k: &str| line[k].as_u64().unwrap_or_else(|| panic!("{k} in {line}"));
            let rrtype = match &line["rrtype"] {
                serde_json::Value::Number(n) => n.to_string(),
                other => other.as_str().expect("rrtype").to_string(),
            };
            let key = (
                name_key(&s("rrname")),
                rrtype.clone(),
                normalise(&rrtype, &s("rdata")),
            );
            if name_key(&key.0) != name_key(name) {
                continue;
            }
            let previous =
                records.insert(key.clone(), (n("time_first"), n("time_last"), n("count")));
            assert!(previous.is_none(), "{key:?} served twice");
        }
    }
    records
}

/// Every record in the store (COF export), to catch records under names
/// the reference does not have.
fn exported_keys(dir: &TestDir) -> BTreeSet<Key> {
    exported_with_bailiwick(dir)
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// A legitimate difference from the reference, one record at a time:
/// (capture file name, rrname, rrtype, what differs, why).
const DOCUMENTED_DIFFERENCES: &[(&str, &str, &str, &str, &str)] = &[];

fn captures() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = test_data().join("pcap");
    for dir in std::fs::read_dir(&root).expect("shared pcap folder") {
        let dir = dir.expect("entry").path();
        for file in std::fs::read_dir(&dir).expect("source folder") {
            let file = file.expect("entry").path();
            if file.extension().is_some_and(|e| e == "pcap") {
                out.push(file);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn import_matches_reference_decodings() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for capture in captures() {
        let file_name = capture
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let expected = expected_records(&capture);
        let dir = TestDir::new();
        let config = dir.path("dnsrecall.toml");
        std::fs::write(&config, REFERENCE_CONFIG).expect("config");
        let output = dir
            .command(&[
                "--config",
                config.to_str().expect("utf-8 path"),
                "import",
                "--json-summary",
            ])
            .arg(&capture)
            .output()
            .expect("run import");
        assert!(
            output.status.success(),
            "{file_name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
        let sightings: u64 = expected.values().map(|v| v.2).sum();
        assert!(
            summary["messages"].as_u64().unwrap_or(0) > 0,
            "{file_name}: no packets counted: {summary}"
        );

        let names: BTreeSet<String> = expected.keys().map(|k| k.0.clone()).collect();
        let served = if names.is_empty() {
            Records::new()
        } else {
            let server = dir.serve(&[]);
            let served = served_records(&server, &names);
            assert!(server.stop(), "serve did not exit cleanly");
            served
        };
        let exported = exported_keys(&dir);
        for (key, value) in &expected {
            match served.get(key) {
                None => problems.push(format!("{file_name}: missing {key:?} {value:?}")),
                Some(ours) if ours != value => problems.push(format!(
                    "{file_name}: {key:?}: ours {ours:?} reference {value:?}"
                )),
                Some(_) => {}
            }
        }
        for key in exported.iter().filter(|k| !expected.contains_key(*k)) {
            problems.push(format!("{file_name}: extra {key:?}"));
        }
        if problems.is_empty() {
            assert_eq!(
                summary["records"].as_u64(),
                Some(sightings),
                "{file_name}: {summary}"
            );
        }
        checked += 1;
    }
    let undocumented: Vec<&String> = problems
        .iter()
        .filter(|p| {
            !DOCUMENTED_DIFFERENCES
                .iter()
                .any(|(file, name, rrtype, what, _)| {
                    p.starts_with(&format!("{file}: "))
                        && p.contains(name)
                        && p.contains(rrtype)
                        && p.contains(what)
                })
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "{} differences:\n{}",
        undocumented.len(),
        undocumented
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(checked >= 13, "only {checked} captures");
}

//------------ bailiwick reconstruction on a real resolver capture -------------

/// Keys of the records of `unbound_lo.pcap`'s reference, split by whether
/// some response carrying them had RD set (a resolver answering a stub) and
/// whether some had it clear (the auth-like server answering the resolver).
fn keys_by_rd(capture: &Path) -> (BTreeSet<Key>, BTreeSet<Key>) {
    let mut file = capture.as_os_str().to_owned();
    file.push(".expected.jsonl");
    let text = std::fs::read_to_string(&file).expect("expected.jsonl");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let mut rd_of_frame = BTreeMap::new();
    for v in lines.iter().filter(|v| v["kind"] == "msg") {
        let rd = v["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "rd");
        rd_of_frame.insert((v["frame"].as_u64().expect("frame"), v["id"].as_u64()), rd);
    }
    let (mut recursive, mut upstream) = (BTreeSet::new(), BTreeSet::new());
    for v in lines
        .iter()
        .filter(|v| v["kind"] == "rr" && v["rrclass"] == "IN")
    {
        let rrtype = normalise_type(v["rrtype"].as_str().expect("rrtype"));
        let key = (
            name_key(v["rrname"].as_str().expect("rrname")),
            rrtype.clone(),
            normalise(&rrtype, v["rdata"].as_str().expect("rdata")),
        );
        let frame = (v["frame"].as_u64().expect("frame"), v["id"].as_u64());
        if rd_of_frame[&frame] {
            recursive.insert(key);
        } else {
            upstream.insert(key);
        }
    }
    (recursive, upstream)
}

/// (key, bailiwick) of every exported record.
fn exported_with_bailiwick(dir: &TestDir) -> Vec<(Key, Option<String>)> {
    let output = dir.run(&["export"]);
    assert!(
        output.status.success(),
        "export: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("COF line");
            let rrtype = match &v["rrtype"] {
                serde_json::Value::Number(n) => n.to_string(),
                other => other.as_str().expect("rrtype").to_string(),
            };
            let key = (
                name_key(v["rrname"].as_str().expect("rrname")),
                rrtype.clone(),
                normalise(&rrtype, v["rdata"].as_str().expect("rdata")),
            );
            (key, v["bailiwick"].as_str().map(name_key))
        })
        .collect()
}

/// Imports `capture` into `dir` with this configuration; the records
/// stored, with their bailiwicks.
fn import_with_config(dir: &TestDir, capture: &Path, config: &str) -> Vec<(Key, Option<String>)> {
    let file = dir.path("dnsrecall.toml");
    std::fs::write(&file, config).expect("config");
    let output = dir
        .command(&["--config", file.to_str().expect("path"), "import"])
        .arg(capture)
        .output()
        .expect("import");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exported_with_bailiwick(dir)
}

/// Captured upstream answers (RD clear) are verified by reconstruction:
/// with the built-in IANA hints the lab's server (127.0.0.1/::1) is known
/// for no zone, so its records are dropped as out of bailiwick, while the
/// resolver's answers to stubs (RD set) are kept unverified. With hints
/// naming the lab's server as the root, every upstream record is kept, each
/// with a bailiwick that encloses its name.
#[test]
fn captured_upstream_answers_are_verified_by_reconstruction() {
    let capture = test_data().join("pcap/unbound/unbound_lo.pcap");
    let (recursive, upstream) = keys_by_rd(&capture);
    let upstream_only: BTreeSet<&Key> = upstream.difference(&recursive).collect();
    assert!(upstream_only.len() > 20, "the capture has upstream answers");
    let ports = "[capture]\nports = [5300, 5301]\n";

    // Default policy, built-in hints.
    let dir = TestDir::new();
    let stored = import_with_config(&dir, &capture, ports);
    let keys: BTreeSet<Key> = stored.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, recursive, "exactly the answers given to stubs");
    assert!(stored.iter().all(|(_, b)| b.is_none()));

    // The lab's root hints.
    let dir = TestDir::new();
    let hints = dir.path("lab.hints");
    std::fs::write(
        &hints,
        ".  3600000 NS lab-root.\nlab-root. 3600000 A 127.0.0.1\nlab-root. 3600000 AAAA ::1\n",
    )
    .expect("hints");
    let config = format!(
        "{ports}[pipeline.bailiwick]\nroot_hints = {:?}\n",
        hints.to_str().expect("path")
    );
    let stored = import_with_config(&dir, &capture, &config);
    let keys: BTreeSet<Key> = stored.iter().map(|(k, _)| k.clone()).collect();
    let all: BTreeSet<Key> = recursive.union(&upstream).cloned().collect();
    assert_eq!(keys, all, "every record kept");
    for key in &upstream_only {
        let bailiwicks: Vec<&Option<String>> = stored
            .iter()
            .filter(|(k, _)| k == *key)
            .map(|(_, b)| b)
            .collect();
        assert!(
            bailiwicks.iter().all(|b| b.is_some()),
            "{key:?} came only from upstream answers: {bailiwicks:?}"
        );
    }
    for (key, bailiwick) in &stored {
        if let Some(zone) = bailiwick {
            let name = &key.0;
            assert!(
                zone == "." || name == zone || name.ends_with(&format!(".{zone}")),
                "{name} is not under its bailiwick {zone}"
            );
        }
    }
}

//------------ crafted, truncated and query-only captures -----------------------

/// A pcap (Ethernet, µs) of UDP packets 10.0.0.2:53 → 10.0.0.1:40000
/// carrying these DNS messages, one second apart from `start`.
fn udp_pcap(start: u32, messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65_535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, message) in messages.iter().enumerate() {
        let udp_len = 8 + message.len();
        let ip_len = 20 + udp_len;
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00]);
        frame.extend_from_slice(&[
            0x45,
            0,
            (ip_len >> 8) as u8,
            ip_len as u8,
            0,
            1,
            0x40,
            0,
            64,
            17,
            0,
            0,
        ]);
        frame.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
        frame.extend_from_slice(&53u16.to_be_bytes());
        frame.extend_from_slice(&40_000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(message);
        out.extend_from_slice(&(start + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// A response for `name` A with these answer bytes (after the question).
fn response(id: u16, name: &str, ancount: u16, answers: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&[0x81, 0x80, 0, 1]);
    m.extend_from_slice(&ancount.to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(answers);
    m
}

/// One A record answering the question (compressed owner).
const A_192_0_2_1: &[u8] = &[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 4, 192, 0, 2, 1];

#[test]
fn malformed_responses_are_counted_not_fatal() {
    let dir = TestDir::new();
    let mut query = response(7, "q.example", 0, &[]);
    query[2] = 0x01; // QR=0
    let messages = vec![
        response(1, "good.example", 1, A_192_0_2_1),
        // AN=1 but the record stops after its owner: bad_record.
        response(2, "cut.example", 1, &A_192_0_2_1[..6]),
        // An A record with 5 bytes of rdata: bad_rdata.
        response(
            3,
            "five.example",
            1,
            &[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0x2c, 0, 5, 192, 0, 2, 1, 9],
        ),
        query,
        response(4, "good.example", 1, A_192_0_2_1),
    ];
    let file = dir.path("crafted.pcap");
    std::fs::write(&file, udp_pcap(1_700_000_000, &messages)).expect("write");
    let summary = dir.import(&[file.as_path()]);
    assert_eq!(summary["messages"], 5, "{summary}");
    assert_eq!(summary["responses"], 4, "{summary}");
    assert_eq!(summary["records"], 2, "{summary}");
    assert_eq!(summary["rejected"]["bad_record"], 1, "{summary}");
    assert_eq!(summary["rejected"]["bad_rdata"], 1, "{summary}");
    let first = summary["first_rejects"].to_string();
    assert!(
        first.contains("crafted.pcap:2:") && first.contains("crafted.pcap:3:"),
        "{first}"
    );
    let exported = exported_keys(&dir);
    assert_eq!(
        exported.into_iter().collect::<Vec<_>>(),
        vec![(
            "good.example".to_string(),
            "A".to_string(),
            "192.0.2.1".to_string()
        )]
    );
    // --strict turns rejects into exit status 1.
    let strict = dir.run(&["import", "--strict", file.to_str().expect("path")]);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn query_only_captures_store_nothing() {
    let root = test_data().join("pcap/go-dnscollector");
    for name in [
        "dnsdump_ip4_fragmented_query.pcap",
        "dnsdump_ip6_fragmented_query.pcap",
    ] {
        let dir = TestDir::new();
        let summary = dir.import(&[root.join(name).as_path()]);
        assert_eq!(summary["records"], 0, "{name}: {summary}");
        assert_eq!(summary["responses"], 0, "{name}: {summary}");
        assert!(exported_keys(&dir).is_empty(), "{name}");
    }
}

/// Byte offsets of the frames of a little-endian pcap.
fn frame_offsets(pcap: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(pcap[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
        at += 16 + len;
    }
    offsets
}

#[test]
fn truncated_capture_keeps_what_came_before_and_fails() {
    let capture = test_data().join("pcap/unbound/unbound_lo.pcap");
    let bytes = std::fs::read(&capture).expect("capture");
    let offsets = frame_offsets(&bytes);
    let cut_frame = offsets.len() / 2; // 0-based index of the frame cut in half
    let cut = offsets[cut_frame] + 30;
    let dir = TestDir::new();
    let truncated = dir.path("truncated.pcap");
    std::fs::write(&truncated, &bytes[..cut]).expect("write");
    let config = dir.path("dnsrecall.toml");
    std::fs::write(&config, REFERENCE_CONFIG).expect("config");
    let output = dir
        .command(&[
            "--config",
            config.to_str().expect("path"),
            "import",
            "--json-summary",
        ])
        .arg(&truncated)
        .output()
        .expect("import");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("truncated.pcap"), "{stderr}");
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
    assert_eq!(summary["io_errors"], 1, "{summary}");
    assert!(
        summary["messages"].as_u64().unwrap_or(0) >= cut_frame as u64 - 1,
        "{summary}"
    );

    // Every record kept is a real one, and every record whose first
    // sighting is well before the cut (slack: a TCP message can span the
    // cut) is there.
    let exported = exported_keys(&dir);
    let full = expected_records(&capture);
    assert!(
        exported.iter().all(|k| full.contains_key(k)),
        "unexpected records"
    );
    let mut file = capture.as_os_str().to_owned();
    file.push(".expected.jsonl");
    let text = std::fs::read_to_string(&file).expect("expected");
    let mut early = BTreeSet::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSON");
        if v["kind"] == "rr"
            && v["rrclass"] == "IN"
            && v["frame"].as_u64().unwrap_or(u64::MAX) + 20 < cut_frame as u64
        {
            let rrtype = normalise_type(v["rrtype"].as_str().expect("rrtype"));
            let rdata = normalise(&rrtype, v["rdata"].as_str().expect("rdata"));
            early.insert((
                name_key(v["rrname"].as_str().expect("rrname")),
                rrtype,
                rdata,
            ));
        }
    }
    assert!(!early.is_empty());
    let lost: Vec<_> = early.difference(&exported).collect();
    assert!(lost.is_empty(), "records before the cut lost: {lost:?}");
}

//------------ live capture on lo -------------------------------------------------

/// A local unbound answering from local-data only, fenced exactly like
/// `tools/gen_unbound_dnstap.sh`'s auth instance: loopback interfaces,
/// loopback access only, never queries anything (do-not-query-address for
/// all of IPv4 and IPv6), killed on drop.
struct Unbound {
    child: Child,
}

impl Unbound {
    fn start(dir: &TestDir, port: u16) -> Unbound {
        let work = dir.path("unbound");
        std::fs::create_dir_all(&work).expect("unbound dir");
        std::fs::write(work.join("empty.hints"), "").expect("hints");
        let w = work.display();
        let conf = format!(
            r#"server:
  verbosity: 1
  interface: 127.0.0.1@{port}
  port: {port}
  do-ip4: yes
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  access-control: 127.0.0.0/8 allow
  chroot: ""
  username: ""
  directory: "{w}"
  pidfile: "{w}/unbound.pid"
  use-syslog: no
  logfile: "{w}/unbound.log"
  module-config: "iterator"
  do-not-query-localhost: yes
  do-not-query-address: 0.0.0.0/0
  do-not-query-address: ::/0
  root-hints: "{w}/empty.hints"
  local-zone: "test." nodefault
  local-zone: "capture.test." static
  local-data: "capture.test. 3600 IN SOA ns1.capture.test. hostmaster.capture.test. 1 7200 3600 1209600 300"
  local-data: "capture.test. 3600 IN NS ns1.capture.test."
  local-data: "ns1.capture.test. 3600 IN A 127.0.0.1"
  local-data: "udp.capture.test. 300 IN A 192.0.2.53"
  local-data: "udp.capture.test. 300 IN AAAA 2001:db8::53"
  local-data: "tcp.capture.test. 300 IN A 192.0.2.54"
  local-data: 'txt.capture.test. 300 IN TXT "over tcp"'
  local-data: "dig.capture.test. 300 IN MX 10 mail.capture.test."
remote-control:
  control-enable: no
"#
        );
        let path = work.join("unbound.conf");
        std::fs::write(&path, conf).expect("unbound.conf");
        let check = Command::new("unbound-checkconf")
            .arg(&path)
            .output()
            .expect("unbound-checkconf (apt-get install unbound)");
        assert!(
            check.status.success(),
            "unbound-checkconf: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        let child = Command::new("unbound")
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start unbound");
        let unbound = Unbound { child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = kdig(port, &["ns1.capture.test", "A"]);
            if out.contains("127.0.0.1") {
                return unbound;
            }
            assert!(
                Instant::now() < deadline,
                "unbound did not answer on port {port}: {out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn kdig(port: u16, args: &[&str]) -> String {
    let output = Command::new("kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+short", "+timeout=2", "+retry=0"])
        .args(args)
        .output()
        .expect("kdig (apt-get install knot-dnsutils)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn dig(port: u16, args: &[&str]) -> String {
    let output = Command::new("dig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(port.to_string())
        .args(["+short", "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (apt-get install dnsutils)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// (rrtype, rdata) of a name, from the server.
fn served_pairs(server: &util::Server, name: &str) -> BTreeSet<(String, String)> {
    server
        .get(&format!("/query/{name}"), &[])
        .lines()
        .iter()
        .map(|l| {
            (
                l["rrtype"].as_str().unwrap_or_default().to_string(),
                l["rdata"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn live_capture_on_loopback() {
    let dir = TestDir::new();
    let port = free_port();
    let _unbound = Unbound::start(&dir, port);
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!("[capture]\nports = [53, {port}]\nsensor_id = \"lo-test\"\n"),
    )
    .expect("config");
    let bpf = format!("port {port}");
    let mut command = dir.command(&[
        "--config",
        config.to_str().expect("path"),
        "--log",
        "info",
        "serve",
    ]);
    let http = free_port();
    let listen = format!("127.0.0.1:{http}");
    let log = dir.path("serve.log");
    let log_file = std::fs::File::create(&log).expect("log file");
    command
        .args(["--listen", &listen, "--capture", "lo", "--bpf", &bpf])
        .stdout(Stdio::null())
        .stderr(log_file);
    let child = command.spawn().expect("serve");
    let server = util::Server { child, port: http };
    // /info answers once the sources (the capture) are started.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", http)).is_ok()
            && server.get("/info", &[]).status == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(kdig(port, &["udp.capture.test", "A"]).contains("192.0.2.53"));
    assert!(kdig(port, &["udp.capture.test", "AAAA"]).contains("2001:db8::53"));
    assert!(kdig(port, &["+tcp", "tcp.capture.test", "A"]).contains("192.0.2.54"));
    assert!(dig(port, &["+tcp", "txt.capture.test", "TXT"]).contains("over tcp"));
    assert!(dig(port, &["dig.capture.test", "MX"]).contains("mail.capture.test"));

    let want: &[(&str, (&str, &str))] = &[
        ("udp.capture.test", ("A", "192.0.2.53")),
        ("udp.capture.test", ("AAAA", "2001:db8::53")),
        ("tcp.capture.test", ("A", "192.0.2.54")),
        ("txt.capture.test", ("TXT", "\"over tcp\"")),
        ("dig.capture.test", ("MX", "10 mail.capture.test.")),
    ];
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let missing: Vec<_> = want
            .iter()
            .filter(|(name, (t, r))| {
                !served_pairs(&server, name).contains(&(t.to_string(), r.to_string()))
            })
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not captured: {missing:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let udp = server.get("/query/udp.capture.test", &[]).lines();
    assert!(
        udp.iter()
            .all(|l| l["sensor_id"] == "lo-test" && l["count"].as_u64() >= Some(1)),
        "{udp:?}"
    );

    // The capture counters are exported at /metrics.
    let metrics = server.get("/metrics", &[]).body;
    let packets: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("dnsrecall_capture_packets_total ")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no capture packets counter:\n{metrics}"));
    assert!(packets >= 10, "{packets} packets for 5 queries and answers");
    // So are the per-input decode counters (once logged at shutdown only).
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name}:\n{metrics}"))
    };
    let responses = counter("dnsrecall_ingest_capture_responses_total ");
    assert!(responses >= 5, "{responses} responses decoded");
    assert!(counter("dnsrecall_ingest_capture_rcodes_total{rcode=\"NOERROR\"} ") >= 1);
    assert!(counter("dnsrecall_ingest_capture_entries_total ") >= 5);

    // A last query right before SIGTERM: the final batch is flushed.
    assert!(kdig(port, &["ns1.capture.test", "A"]).contains("127.0.0.1"));
    let started = Instant::now();
    assert!(server.stop(), "serve did not exit 0 on SIGTERM");
    assert!(started.elapsed() < Duration::from_secs(10), "slow shutdown");
    let output = dir.run(&["query", "--format", "json", "ns1.capture.test"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("127.0.0.1"),
        "last record not flushed: {text}"
    );
    // The final counters, kernel drop counters included, are logged.
    let log = std::fs::read_to_string(&log).expect("serve log");
    assert!(
        log.contains("capture counters")
            && log.contains("final_report")
            && log.contains("kernel_dropped"),
        "{log}"
    );
}
