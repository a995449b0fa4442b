//! `dnsrecall annotate` on CSV and NDJSON flows, and `POST /annotate`,
//! with the expected names computed here from the generated records.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use util::TestDir;

/// (name, address, first, last)
type Rec = (String, String, u64, u64);

const SLACK: u64 = 3600;
const T0: u64 = 1_700_000_000;

/// Eight addresses, each pointed at by up to seven names over time windows
/// that overlap or not; a few addresses repeat a name in two windows.
fn records() -> Vec<Rec> {
    let mut out = Vec::new();
    for a in 0..8u64 {
        let address = if a == 7 {
            "2001:db8::7".to_string()
        } else {
            format!("192.0.2.{a}")
        };
        for n in 0..(a % 7 + 1) {
            let first = T0 + n * 20_000 + a * 1_000;
            let last = first + 5_000 + n * 3_000;
            out.push((format!("h{n}.a{a}.example"), address.clone(), first, last));
        }
        if a % 3 == 0 {
            out.push((
                format!("h0.a{a}.example"),
                address.clone(),
                T0 + 300_000,
                T0 + 301_000,
            ));
        }
    }
    out
}

fn cof(records: &[Rec]) -> String {
    records
        .iter()
        .map(|(name, address, first, last)| {
            let rrtype = if address.contains(':') { "AAAA" } else { "A" };
            serde_json::json!({"rrname": name, "rrtype": rrtype, "rdata": address,
                "time_first": first, "time_last": last})
            .to_string()
                + "\n"
        })
        .collect()
}

/// The names expected for `address` at `time`: windows widened by the
/// slack, most recently seen first (then by name), no repeats, at most `max`.
fn expected(records: &[Rec], address: &str, time: u64, max: usize) -> Vec<String> {
    // The store aggregates sightings of one record: first = min, last = max.
    let mut merged: std::collections::BTreeMap<(String, String), (u64, u64)> = Default::default();
    for (name, address, first, last) in records {
        let slot = merged
            .entry((name.clone(), address.clone()))
            .or_insert((*first, *last));
        *slot = (slot.0.min(*first), slot.1.max(*last));
    }
    let records: Vec<Rec> = merged
        .into_iter()
        .map(|((n, a), (f, l))| (n, a, f, l))
        .collect();
    let mut hits: Vec<&Rec> = records
        .iter()
        .filter(|r| r.1 == address && r.2 - SLACK <= time && time <= r.3 + SLACK)
        .collect();
    hits.sort_by(|a, b| b.3.cmp(&a.3).then(a.0.cmp(&b.0)));
    let mut names: Vec<String> = Vec::new();
    for hit in hits {
        if !names.contains(&hit.0) && names.len() < max {
            names.push(hit.0.clone());
        }
    }
    names
}

/// (src, dst, time) flows over every address, at times inside, near and
/// outside the windows, plus unknown addresses.
fn flows() -> Vec<(String, String, u64)> {
    let mut addresses: Vec<String> = (0..8).map(|a| format!("192.0.2.{a}")).collect();
    addresses[7] = "2001:db8::7".into();
    addresses.push("203.0.113.9".into());
    let mut out = Vec::new();
    for (i, dst) in addresses.iter().enumerate() {
        for step in 0..40u64 {
            let time = T0 - 5_000 + step * 8_000;
            let src = addresses[(i + step as usize) % addresses.len()].clone();
            out.push((src, dst.clone(), time));
        }
    }
    out
}

fn setup() -> (TestDir, Vec<Rec>) {
    let dir = TestDir::new();
    let records = records();
    let file = dir.path("records.ndjson");
    std::fs::write(&file, cof(&records)).unwrap();
    dir.import(&[&file]);
    (dir, records)
}

#[test]
fn annotates_csv() {
    let (dir, records) = setup();
    let flows = flows();
    let mut csv = String::from("ts,src_ip,bytes,dst_ip\n");
    for (i, (src, dst, time)) in flows.iter().enumerate() {
        // Half the times as ISO 8601.
        let time = if i % 2 == 0 {
            time.to_string()
        } else {
            jiff::Timestamp::from_second(*time as i64)
                .unwrap()
                .to_string()
        };
        csv.push_str(&format!("{time},{src},{i},{dst}\n"));
    }
    csv.push_str("12,not-an-ip,0,192.0.2.1\n");
    csv.push_str("soon,192.0.2.1,0,192.0.2.1\n");
    csv.push_str("12,192.0.2.1\n");
    let input = dir.path("flows.csv");
    std::fs::write(&input, &csv).unwrap();
    let output = dir.run(&[
        "annotate",
        "--max-names",
        "3",
        "--cache-size",
        "4",
        input.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("ts,src_ip,bytes,dst_ip,src_names,dst_names")
    );
    let mut annotated = 0;
    for ((src, dst, time), line) in flows.iter().zip(lines.by_ref()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 6, "{line}");
        let split = |f: &str| {
            if f.is_empty() {
                vec![]
            } else {
                f.split(';').map(str::to_string).collect::<Vec<_>>()
            }
        };
        let (want_src, want_dst) = (
            expected(&records, src, *time, 3),
            expected(&records, dst, *time, 3),
        );
        assert_eq!(split(fields[4]), want_src, "{line}");
        assert_eq!(split(fields[5]), want_dst, "{line}");
        annotated += usize::from(!want_src.is_empty() || !want_dst.is_empty());
    }
    assert_eq!(lines.next(), None, "rejected lines are not written");
    assert!(
        annotated > 50,
        "the data should annotate many flows ({annotated})"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let total = flows.len() + 3;
    assert!(
        stderr.contains(&format!(
            "{total} flows read, {annotated} annotated, 3 rejected"
        )),
        "{stderr}"
    );
    let file = input.display().to_string();
    for place in [
        format!("{file}:{}: bad_address", flows.len() + 2),
        format!("{file}:{}: bad_time", flows.len() + 3),
        format!("{file}:{}: missing_field", flows.len() + 4),
    ] {
        assert!(stderr.contains(&place), "{place} in {stderr}");
    }
}

#[test]
fn annotates_ndjson_from_stdin() {
    let (dir, records) = setup();
    let flows = flows();
    let mut input = String::new();
    for (src, dst, time) in &flows {
        input.push_str(
            &serde_json::json!({"saddr": src, "daddr": dst, "when": time, "proto": 6}).to_string(),
        );
        input.push('\n');
    }
    input.push_str("{\"saddr\": \n");
    let mut child = dir
        .command(&[
            "annotate",
            "--src-field",
            "saddr",
            "--dst-field",
            "daddr",
            "--time-field",
            "when",
            "--slack",
            "3600",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), flows.len());
    for ((src, dst, time), line) in flows.iter().zip(&lines) {
        assert_eq!(line["proto"], 6, "original fields kept: {line}");
        assert_eq!(
            line["src_names"],
            serde_json::json!(expected(&records, src, *time, 5)),
            "{line}"
        );
        assert_eq!(
            line["dst_names"],
            serde_json::json!(expected(&records, dst, *time, 5)),
            "{line}"
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("<stdin>:{}: bad_json", flows.len() + 1)),
        "{stderr}"
    );
}

/// A plain HTTP/1.1 POST of a JSON body; (status, body).
fn post(port: u16, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn http_endpoint() {
    let (dir, records) = setup();
    let server = dir.serve(&[]);
    let time = T0 + 62_000;
    let request = serde_json::json!({"ips": ["192.0.2.5", "2001:db8::7", "203.0.113.9", "192.0.2.3"], "time": time, "max_names": 2});
    let (status, body) = post(server.port, "/annotate", request.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    for ip in ["192.0.2.5", "2001:db8::7", "203.0.113.9", "192.0.2.3"] {
        assert_eq!(
            answer[ip],
            serde_json::json!(expected(&records, ip, time, 2)),
            "{ip}: {body}"
        );
    }
    assert!(
        answer["192.0.2.5"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{body}"
    );
    // Without a time: every name, most recently seen first.
    let (status, body) = post(server.port, "/annotate", br#"{"ips":["192.0.2.0"]}"#);
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["192.0.2.0"],
        serde_json::json!(["h0.a0.example"])
    );
    // Bad bodies.
    let too_many = serde_json::json!({"ips": vec!["192.0.2.1"; 10_001]}).to_string();
    for bad in [
        &br#"{"ips":["192.0.2.300"]}"#[..],
        br#"{"ips":"192.0.2.1"}"#,
        br#"{"ips":["192.0.2.1"],"time":-5}"#,
        br#"{"ips":["192.0.2.1"],"max_names":0}"#,
        br#"not json"#,
        too_many.as_bytes(),
    ] {
        let (status, body) = post(server.port, "/annotate", bad);
        assert_eq!(
            status,
            400,
            "{}: {body}",
            String::from_utf8_lossy(&bad[..bad.len().min(60)])
        );
        assert!(body.contains("error"), "{body}");
    }
    let huge = format!("{{\"ips\":[\"{}\"]}}", "1".repeat(2 << 20));
    let (status, _) = post(server.port, "/annotate", huge.as_bytes());
    assert_eq!(status, 413);
}
