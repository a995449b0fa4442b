//! Traffic statistics end to end (issue 12): the real `dnsrecall serve`
//! with `[stats]` on and API keys, unbound's dnstap files streamed in by
//! `fstrm_replay` over loopback TCP; `/counters`, `/tables`, `/streams`,
//! `/stats/counters`, `/metrics` and `DELETE /reset` answer what this test
//! counts on its own from the same files, and nothing answers without a
//! key.
//!
//! The test's own counts come from the reference decoding next to each
//! capture (`.expected.jsonl`, written with dnspython: one `dnstap` line
//! per frame with its type, identity, addresses and transport, one `msg`
//! line per response with rcode, qname and qtype) and, for bytes, from the
//! frames' protobuf read with `prost`. Exact values are compared exactly;
//! unique clients (a HyperLogLog) within three of its stated standard
//! errors. The field-by-field comparison with the real dnstap-receiver is
//! `crates/dnsrecall-http/tests/stats.rs` (same frames, same routes).

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{Server, TestDir, free_port, test_data};

const KEY: &str = "stats-e2e-key";

fn files() -> Vec<PathBuf> {
    [
        "unbound_resolver.dnstap",
        "unbound_auth.dnstap",
        "unbound_dnsperf_resolver.dnstap",
    ]
    .iter()
    .map(|f| test_data().join("dnstap/unbound").join(f))
    .collect()
}

/// What the test counts itself, per stream (identity) and over all.
#[derive(Default, Debug, Clone)]
struct Truth {
    queries: u64,
    responses: u64,
    /// "query/udp", "response/inet6", ... as dnstap-receiver names them.
    by_name: BTreeMap<String, u64>,
    /// (rcode lower-case, qname) of responses.
    response_qnames: BTreeMap<(String, String), u64>,
    clients: BTreeSet<String>,
    bytes: [u64; 2],
}

impl Truth {
    fn add_name(&mut self, name: String) {
        *self.by_name.entry(name).or_default() += 1;
    }
}

fn expected_lines(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{}.expected.jsonl", file.display()))
        .expect("expected jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Payload bytes of each frame's DNS message, by frame number (1-based).
fn payload_bytes(file: &Path) -> Vec<(bool, u64)> {
    use prost::Message as _;
    let bytes = std::fs::read(file).expect("capture");
    dnsrecall_dnstap::FileReader::new(&bytes[..])
        .map(|frame| {
            let frame = frame.expect("frame");
            let tap = dnsrecall_dnstap::proto::Dnstap::decode(&frame[..]).expect("protobuf");
            let message = tap.message.expect("message");
            match (&message.query_message, &message.response_message) {
                (_, Some(response)) if message.r#type % 2 == 0 => (false, response.len() as u64),
                (Some(query), _) => (true, query.len() as u64),
                _ => (false, 0),
            }
        })
        .collect()
}

/// Global and per-identity truth over the files.
fn count(files: &[PathBuf]) -> (Truth, BTreeMap<String, Truth>) {
    let mut global = Truth::default();
    let mut streams: BTreeMap<String, Truth> = BTreeMap::new();
    for file in files {
        let lines = expected_lines(file);
        let payloads = payload_bytes(file);
        let mut identity_of_frame = BTreeMap::new();
        for line in lines.iter().filter(|l| l["kind"] == "dnstap") {
            let identity = line["identity"].as_str().expect("identity").to_string();
            let frame = line["frame"].as_u64().expect("frame");
            identity_of_frame.insert(frame, identity.clone());
            let kind = line["type"].as_str().expect("type");
            let query = kind.ends_with("_QUERY");
            let direction = if query { "query" } else { "response" };
            let (payload_is_query, bytes) = payloads[(frame - 1) as usize];
            assert_eq!(payload_is_query, query, "frame {frame}");
            for truth in [&mut global, streams.entry(identity).or_default()] {
                if query {
                    truth.queries += 1;
                } else {
                    truth.responses += 1;
                }
                truth.bytes[usize::from(!query)] += bytes;
                let transport = line["socket_protocol"].as_str().expect("protocol");
                truth.add_name(format!("{direction}/{}", transport.to_ascii_lowercase()));
                let family = line["socket_family"].as_str().expect("family");
                truth.add_name(format!("{direction}/{}", family.to_ascii_lowercase()));
                truth.clients.insert(line["query_address"].to_string());
            }
        }
        for line in lines.iter().filter(|l| l["kind"] == "msg") {
            let frame = line["frame"].as_u64().expect("frame");
            let identity = identity_of_frame[&frame].clone();
            let rcode = line["rcode"].as_str().expect("rcode").to_ascii_lowercase();
            let qname = line["qname"].as_str().expect("qname").to_ascii_lowercase();
            for truth in [&mut global, streams.entry(identity).or_default()] {
                truth.add_name(format!("response/{rcode}"));
                *truth
                    .response_qnames
                    .entry((rcode.clone(), qname.clone()))
                    .or_default() += 1;
            }
        }
    }
    (global, streams)
}

fn with_key(server: &Server, path: &str) -> Value {
    let answer = server.get(path, &[("X-API-Key", KEY)]);
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", answer.body))
}

/// A bodiless request of any method: the status code.
fn request(server: &Server, method: &str, path: &str, key: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let header = key.map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status")
}

/// The value of a `/metrics` sample with exactly these labels.
fn metric(text: &str, name: &str, labels: &str) -> Option<u64> {
    let prefix = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
}

fn replay(file: &Path, port: u16) {
    let output = Command::new("fstrm_replay")
        .args(["-t", "protobuf:dnstap.Dnstap", "-r"])
        .arg(file)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .output()
        .expect("fstrm_replay (apt-get install fstrm-bin)");
    assert!(
        output.status.success(),
        "fstrm_replay: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn serve_with_stats_counts_streamed_frames_exactly() {
    let files = files();
    let (global, streams) = count(&files);
    assert!(global.queries > 100 && global.responses > 100, "{global:?}");
    assert_eq!(streams.len(), 2, "{:?}", streams.keys());

    let dir = TestDir::new();
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!("[api]\napi_keys = [\"{KEY}\"]\n\n[stats]\nmemory_bound = 16777216\n"),
    )
    .expect("config");
    let dnstap_port = free_port();
    let tcp = format!("127.0.0.1:{dnstap_port}");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = dir
        .command(&[
            "--config",
            config.to_str().expect("path"),
            "serve",
            "--listen",
            &listen,
            "--dnstap-tcp",
            &tcp,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start serve");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", dnstap_port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Keys: every statistics route refuses a request without one.
    for path in [
        "/counters",
        "/tables",
        "/streams",
        "/stats/counters",
        "/metrics",
    ] {
        assert_eq!(request(&server, "GET", path, None), 401, "{path}");
        assert_eq!(request(&server, "GET", path, Some("wrong")), 401, "{path}");
    }
    assert_eq!(request(&server, "DELETE", "/reset", None), 401);

    for file in &files {
        replay(file, dnstap_port);
    }
    // The statistics thread counts behind the inputs: wait for all.
    let total = global.queries + global.responses;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let counters = with_key(&server, "/counters");
        let seen = counters["counters"]["query"].as_u64().unwrap_or(0)
            + counters["counters"]["response"].as_u64().unwrap_or(0);
        if seen >= total {
            assert_eq!(seen, total);
            break;
        }
        assert!(Instant::now() < deadline, "counted {seen} of {total}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // /counters (dnstap-receiver's), over all streams and per stream.
    let mut scopes: Vec<(Option<&str>, &Truth)> = vec![(None, &global)];
    scopes.extend(
        streams
            .iter()
            .map(|(name, truth)| (Some(name.as_str()), truth)),
    );
    for (stream, truth) in &scopes {
        let mut names: Vec<String> = truth.by_name.keys().cloned().collect();
        names.extend(["query/bytes", "response/bytes", "response/servfail"].map(String::from));
        let mut path = format!("/counters?more={}", names.join(","));
        if let Some(stream) = stream {
            path.push_str(&format!("&stream={stream}"));
        }
        let answer = with_key(&server, &path);
        let counters = &answer["counters"];
        let label = format!("{path}: {counters}");
        assert_eq!(counters["query"], truth.queries, "{label}");
        assert_eq!(counters["response"], truth.responses, "{label}");
        for (name, &n) in &truth.by_name {
            assert_eq!(counters[name], n, "{label} {name}");
        }
        let servfail = truth.by_name.get("response/servfail").copied().unwrap_or(0);
        assert_eq!(counters["response/servfail"], servfail, "{label}");
        assert_eq!(counters["query/bytes"], truth.bytes[0], "{label}");
        assert_eq!(counters["response/bytes"], truth.bytes[1], "{label}");
        // Unique clients: a HyperLogLog, within 3 standard errors (0.81 %
        // each at the default precision), at least 1.
        let clients = counters["clients"].as_u64().expect("clients") as f64;
        let exact = truth.clients.len() as f64;
        assert!(
            (clients - exact).abs() <= (3.0 * 0.0081 * exact).max(1.0),
            "{label}: clients {clients} vs {exact}"
        );
    }

    // /tables: names per rcode of responses, every row (n large), per
    // stream; the test's counts are dnspython's.
    let rcodes = ["noerror", "nxdomain", "servfail", "refused"];
    let more: Vec<String> = rcodes.iter().map(|r| format!("{r}/response")).collect();
    for (name, truth) in &streams {
        let path = format!("/tables?n=100000&more={}&stream={name}", more.join(","));
        let answer = with_key(&server, &path);
        for rcode in rcodes {
            let rows = answer["tables"]["domains"][format!("{rcode}/response")]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: {answer}"));
            let got: BTreeMap<String, u64> = rows
                .iter()
                .map(|row| {
                    (
                        row[0].as_str().expect("name").to_string(),
                        row[1].as_u64().expect("count"),
                    )
                })
                .collect();
            let want: BTreeMap<String, u64> = truth
                .response_qnames
                .iter()
                .filter(|((r, _), _)| r == rcode)
                .map(|((_, qname), &n)| (qname.clone(), n))
                .collect();
            assert_eq!(got, want, "{path} {rcode}");
        }
    }

    // /streams: the identities seen.
    let answer = with_key(&server, "/streams");
    let listed: BTreeSet<String> = answer["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| s.as_str().expect("stream").to_string())
        .collect();
    assert_eq!(listed, streams.keys().cloned().collect::<BTreeSet<_>>());

    // Our own counters say the tables are exact here (never full).
    let ours = with_key(&server, "/stats/counters");
    assert_eq!(ours["queries"], global.queries, "{ours}");
    assert_eq!(ours["responses"], global.responses, "{ours}");

    // /metrics: per-stream message counts, and no message dropped on the
    // way to the statistics thread.
    let metrics = server.get("/metrics", &[("X-API-Key", KEY)]);
    assert_eq!(metrics.status, 200);
    for (name, truth) in &streams {
        for (direction, n) in [("query", truth.queries), ("response", truth.responses)] {
            let labels = format!("stream=\"{name}\",direction=\"{direction}\"");
            assert_eq!(
                metric(&metrics.body, "dnsrecall_stats_messages_total", &labels),
                Some(n),
                "{labels}"
            );
        }
    }
    assert_eq!(
        metrics
            .body
            .lines()
            .find_map(|l| l.strip_prefix("dnsrecall_stats_output_dropped_total "))
            .map(str::trim),
        Some("0"),
        "{}",
        metrics.body
    );

    // DELETE /reset: nothing counted afterwards, the streams stay known.
    assert_eq!(request(&server, "DELETE", "/reset", Some(KEY)), 204);
    let after = with_key(&server, "/counters");
    assert_eq!(after["counters"]["query"], 0, "{after}");
    assert_eq!(after["counters"]["response"], 0, "{after}");
    assert_eq!(
        with_key(&server, "/streams")["streams"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert!(server.stop());
}
