//! Three behaviours that changed with the architecture refactor (#9),
//! reviewed and kept on purpose (docs/ARCHITECTURE.md, "Behaviour changes
//! of the refactor"); each test fails under the previous behaviour.
//!
//! 1. A 16-byte dnstap address with `socket_family` INET is the IPv4
//!    address in its last four bytes, for the pipeline too (it was read as
//!    an IPv6 address there, while the logs already showed IPv4): a
//!    `client:` filter on the IPv4 network matches it.
//! 2. A dnstap payload without a message reaches no message output, dnstap
//!    files included (it used to be copied to dnstap-format files only); it
//!    is counted as `dnsrecall_ingest_dnstap_no_message_total`.
//! 3. `[[dnstap.outputs]]` is an alias of `[[outputs]] kind = "file"`, so it
//!    also logs captured packets (it logged dnstap frames only).

mod util;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dnsrecall_dnstap::proto::{Dnstap, Message, SocketFamily, dnstap, message};
use prost::Message as _;
use util::{Server, TestDir, free_port, test_data};

const CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";

/// `serve --config CONFIG` with its log in `serve.log`.
fn serve(dir: &TestDir, config: &str, extra: &[&str]) -> Server {
    let config_path = dir.path("dnsrecall.toml");
    std::fs::write(&config_path, config).expect("write config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["--config", config_path.to_str().expect("utf-8 path")];
    args.extend_from_slice(&["serve", "--listen", listen.as_str()]);
    args.extend_from_slice(extra);
    let log = std::fs::File::create(dir.path("serve.log")).expect("log file");
    let child = dir
        .command(&[])
        .args(&args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start serve");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            std::fs::read_to_string(dir.path("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

/// The value of an unlabelled sample in `/metrics`.
fn metric(server: &Server, name: &str) -> Option<u64> {
    let body = server.get("/metrics", &[]).body;
    body.lines().find_map(|line| {
        line.strip_prefix(name)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// Polls `/metrics` until `name` reaches `target`.
fn wait_metric(server: &Server, name: &str, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = metric(server, name);
        if value == Some(target) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {value:?}, expected {target}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Frame Streams unidirectional sender over TCP.
fn send_frames(port: u16, payloads: &[Vec<u8>]) {
    let be = |v: u32| v.to_be_bytes();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to dnstap input");
    let ct = CONTENT_TYPE.as_bytes();
    let mut out = Vec::new();
    // START with the content type.
    out.extend_from_slice(&be(0));
    out.extend_from_slice(&be(12 + ct.len() as u32));
    out.extend_from_slice(&be(2));
    out.extend_from_slice(&be(1));
    out.extend_from_slice(&be(ct.len() as u32));
    out.extend_from_slice(ct);
    for payload in payloads {
        out.extend_from_slice(&be(payload.len() as u32));
        out.extend_from_slice(payload);
    }
    // STOP.
    for v in [0u32, 4, 3] {
        out.extend_from_slice(&be(v));
    }
    stream.write_all(&out).expect("send frames");
}

/// A CLIENT_RESPONSE for `LABEL.example.test A 192.0.2.1`, from the client
/// address given as raw bytes.
fn response(label: &str, family: SocketFamily, query_address: &[u8]) -> Vec<u8> {
    let mut wire = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    wire.push(label.len() as u8);
    wire.extend_from_slice(label.as_bytes());
    wire.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
    wire.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    Dnstap {
        identity: Some(Bytes::from_static(b"behaviour")),
        version: None,
        extra: None,
        r#type: dnstap::Type::Message as i32,
        message: Some(Message {
            r#type: message::Type::ClientResponse as i32,
            socket_family: Some(family as i32),
            query_address: Some(Bytes::copy_from_slice(query_address)),
            response_address: Some(Bytes::from_static(&[198, 51, 100, 53])),
            response_time_sec: Some(1_700_000_000),
            response_message: Some(wire.into()),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn stored_names(dir: &TestDir) -> Vec<String> {
    let output = dir.run(&["export"]);
    assert!(output.status.success(), "export failed");
    let mut names: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let record: serde_json::Value = serde_json::from_str(line).expect("COF line");
            record["rrname"].as_str().expect("rrname").to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn inet_address_in_sixteen_bytes_is_the_ipv4_address_for_filters() {
    let dir = TestDir::new();
    let deny = dir.path("deny.txt");
    std::fs::write(&deny, "client:192.0.2.0/24\n").expect("deny list");
    let config = format!(
        "[pipeline.filter]\ndeny = [\"{}\"]\npoll_interval_ms = 0\n",
        deny.display()
    );
    let tap_port = free_port();
    let tap = format!("127.0.0.1:{tap_port}");
    let server = serve(&dir, &config, &["--dnstap-tcp", &tap]);
    // 192.0.2.1 in the last four of sixteen bytes (older CoreDNS), and a
    // client outside the denied network in four bytes.
    let mut padded = [0u8; 16];
    padded[12..].copy_from_slice(&[192, 0, 2, 1]);
    send_frames(
        tap_port,
        &[
            response("padded", SocketFamily::Inet, &padded),
            response("plain", SocketFamily::Inet, &[203, 0, 113, 9]),
        ],
    );
    wait_metric(&server, "dnsrecall_ingest_dnstap_responses_total", 2);
    assert!(server.stop(), "serve exits cleanly");
    assert_eq!(
        stored_names(&dir),
        ["plain.example.test"],
        "the padded IPv4 client is in the denied network"
    );
}

#[test]
fn frames_without_a_message_reach_no_output() {
    let dir = TestDir::new();
    let copy = dir.path("copy.fstrm");
    let json = dir.path("log.json");
    let config = format!(
        "[[dnstap.outputs]]\nformat = \"dnstap\"\ntarget = \"{}\"\n\n\
         [[outputs]]\nkind = \"file\"\nformat = \"json\"\ntarget = \"{}\"\n",
        copy.display(),
        json.display()
    );
    let tap_port = free_port();
    let tap = format!("127.0.0.1:{tap_port}");
    let server = serve(&dir, &config, &["--dnstap-tcp", &tap]);
    let first = response("first", SocketFamily::Inet, &[203, 0, 113, 1]);
    let empty = Dnstap {
        identity: Some(Bytes::from_static(b"behaviour")),
        version: None,
        extra: Some(Bytes::from_static(b"no message here")),
        r#type: dnstap::Type::Message as i32,
        message: None,
    }
    .encode_to_vec();
    let last = response("last", SocketFamily::Inet, &[203, 0, 113, 2]);
    send_frames(tap_port, &[first.clone(), empty, last.clone()]);
    wait_metric(&server, "dnsrecall_ingest_dnstap_no_message_total", 1);
    wait_metric(&server, "dnsrecall_ingest_dnstap_responses_total", 2);
    assert!(server.stop(), "serve exits cleanly");

    let file = std::fs::File::open(&copy).expect("dnstap copy written");
    let mut reader = dnsrecall_dnstap::framestream::FileReader::new(std::io::BufReader::new(file));
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_data().expect("a valid Frame Streams file") {
        frames.push(frame.to_vec());
    }
    assert_eq!(frames, [first, last], "the two messages, byte for byte");
    let logged = std::fs::read_to_string(&json).expect("JSON log written");
    assert_eq!(logged.lines().count(), 2, "{logged}");
}

/// `kind: msg` lines of a capture's reference decoding: its DNS responses.
fn reference_responses(expected: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(expected).expect("reference decoding");
    let mut names: Vec<String> = text
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON line"))
        .filter(|value| value["kind"] == "msg")
        .map(|value| value["qname"].as_str().expect("qname").to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn dnstap_outputs_alias_logs_captured_packets() {
    let dir = TestDir::new();
    let pcap = test_data().join("pcap/go-dnscollector/dnsdump_udp.pcap");
    let expected = reference_responses(&pcap.with_extension("pcap.expected.jsonl"));
    assert!(!expected.is_empty());
    let json = dir.path("log.json");
    let config = format!(
        "[capture]\nfiles = [\"{}\"]\n\n[[dnstap.outputs]]\nformat = \"json\"\ntarget = \"{}\"\n",
        pcap.display(),
        json.display()
    );
    let server = serve(&dir, &config, &[]);
    wait_metric(
        &server,
        "dnsrecall_ingest_capture_responses_total",
        expected.len() as u64,
    );
    assert!(server.stop(), "serve exits cleanly");
    let logged = std::fs::read_to_string(&json).expect("JSON log written");
    let mut responses: Vec<String> = logged
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON line"))
        .filter(|value| value["type"] == "response")
        .map(|value| value["qname"].as_str().expect("qname").to_string())
        .collect();
    responses.sort();
    assert_eq!(responses, expected, "every captured response is logged");
}
