//! Message outputs of the file side, end to end through `serve`: the real
//! `fstrm_replay` sends unbound's dnstap capture to our unix socket, and
//! every `[[outputs]]` kind/format/filter writes what it should.
//!
//! The expected values come from `dnstap-ldns` (its quiet text rendering of
//! the same capture, `tests/data/dnstap/unbound/*.dnstap.txt`, one line per
//! message: time, type mnemonic, address, transport, length, qname, class,
//! qtype), never from our own rendering; the dnstap copy is read back by
//! `dnstap-ldns` itself.

mod util;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use util::{Server, TestDir, free_port, test_data};

const CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";

fn capture(name: &str) -> PathBuf {
    test_data().join("dnstap/unbound").join(name)
}

/// One line of `dnstap-ldns -q`.
#[derive(Debug, Clone)]
struct LdnsLine {
    kind: String,
    length: String,
    qname: String,
    qtype: String,
}

fn ldns_lines(text: &str) -> Vec<LdnsLine> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let quoted = line.split('"').nth(1).expect("quoted qname").to_string();
            LdnsLine {
                kind: fields[2].to_string(),
                length: fields[5].to_string(),
                qname: quoted,
                qtype: fields.last().expect("qtype").to_string(),
            }
        })
        .collect()
}

fn full_type(mnemonic: &str) -> &'static str {
    match mnemonic {
        "CQ" => "CLIENT_QUERY",
        "CR" => "CLIENT_RESPONSE",
        "RQ" => "RESOLVER_QUERY",
        "RR" => "RESOLVER_RESPONSE",
        "FQ" => "FORWARDER_QUERY",
        "FR" => "FORWARDER_RESPONSE",
        "AQ" => "AUTH_QUERY",
        "AR" => "AUTH_RESPONSE",
        other => panic!("unexpected dnstap-ldns type {other}"),
    }
}

fn replay(file: &Path, socket: &Path) {
    let output = Command::new("fstrm_replay")
        .args(["-t", CONTENT_TYPE, "-r"])
        .arg(file)
        .arg("-u")
        .arg(socket)
        .output()
        .expect("fstrm_replay (apt-get install fstrm-bin)");
    assert!(
        output.status.success(),
        "fstrm_replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn line_count(path: &Path) -> usize {
    read(path).lines().count()
}

/// `serve` with `config` written to the test dir; stderr in `serve.log`.
fn serve_with(dir: &TestDir, config: &str) -> Server {
    let config_path = dir.path("dnsrecall.toml");
    std::fs::write(&config_path, config).expect("config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path("serve.log")).expect("log");
    let child = dir
        .command(&[
            "--config",
            config_path.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start serve");
    let server = Server { child, port };
    wait_until("serve to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    server
}

/// The value of one sample of `/metrics` (0 when absent).
fn metric(server: &Server, name: &str, labels: &[(&str, &str)]) -> u64 {
    let body = server.get("/metrics", &[]).body;
    body.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .find(|l| {
            let rest = &l[name.len()..];
            (rest.starts_with('{') || rest.starts_with(' '))
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

#[test]
fn every_file_format_filter_and_the_metrics_line() {
    let dir = TestDir::new();
    let socket = dir.path("tap.sock");
    let config = format!(
        r#"
[dnstap]
unix = "{socket}"

[[outputs]]
kind = "file"
format = "json"
path = "all.json"

[[outputs]]
kind = "file"
format = "text"
target = "responses.txt"
name = "client-responses"
message_types = ["CLIENT_RESPONSE"]

[[outputs]]
kind = "file"
format = "yaml"
path = "soa.yaml"
qtypes = ["SOA"]

[[outputs]]
kind = "file"
format = "text"
path = "template.txt"
template = "operation qname qtype length-unit {{end}}"

[[outputs]]
kind = "file"
format = "text"
path = "sampled.txt"
name = "sampled"
sample = 10

[[outputs]]
kind = "file"
format = "text"
path = "www.txt"
qname_regex = "www\\."
identity_regex = "resolver\\."

[[outputs]]
kind = "file"
format = "dnstap"
path = "copy.fstrm"

[[outputs]]
kind = "metrics"
path = "metrics.log"
interval = 1
"#,
        socket = socket.display()
    );
    let server = serve_with(&dir, &config);
    wait_until("the dnstap socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let file = capture("unbound_resolver.dnstap");
    replay(&file, &socket);
    let expected = ldns_lines(&read(&capture("unbound_resolver.dnstap.txt")));
    assert_eq!(expected.len(), 534);
    wait_until("every message in all.json", Duration::from_secs(30), || {
        line_count(&dir.path("all.json")) == expected.len()
    });
    let responses = expected.iter().filter(|l| l.kind == "CR").count();
    assert_eq!(
        metric(
            &server,
            "dnsrecall_output_filtered_total",
            &[("output", "client-responses"), ("filter", "message_type")]
        ),
        (expected.len() - responses) as u64
    );
    assert_eq!(
        metric(
            &server,
            "dnsrecall_output_offered_total",
            &[("output", "sampled")]
        ),
        expected.len().div_ceil(10) as u64
    );
    // A metrics line with every query counted appears within a few intervals.
    let queries = expected.iter().filter(|l| l.kind.ends_with('Q')).count();
    wait_until("the metrics line", Duration::from_secs(10), || {
        read(&dir.path("metrics.log"))
            .lines()
            .any(|l| l.contains(&format!(" {queries} QUERIES, ")))
    });
    assert!(
        server.stop(),
        "serve exit: {}",
        read(&dir.path("serve.log"))
    );

    // JSON: dnstap-receiver's keys, one object per message, in order.
    let keys = [
        "identity",
        "qname",
        "rrtype",
        "query-ip",
        "query-port",
        "response-ip",
        "response-port",
        "latency",
        "message",
        "family",
        "protocol",
        "length",
        "timestamp",
        "type",
        "rcode",
        "id",
        "datetime",
    ];
    let json = read(&dir.path("all.json"));
    for (line, want) in json.lines().zip(&expected) {
        let value: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let object = value.as_object().expect("an object");
        let got: Vec<&str> = object.keys().map(String::as_str).collect();
        let mut sorted_keys = keys.to_vec();
        sorted_keys.sort_unstable();
        assert_eq!(got, sorted_keys, "{line}");
        assert_eq!(value["message"], full_type(&want.kind), "{line}");
        assert_eq!(value["qname"], want.qname.as_str(), "{line}");
        assert_eq!(value["rrtype"], want.qtype.as_str(), "{line}");
        assert_eq!(
            format!("{}b", value["length"].as_u64().expect("length")),
            want.length
        );
        assert_eq!(value["identity"], "resolver.unbound.test");
    }
    // The text output got the client responses only.
    let text = read(&dir.path("responses.txt"));
    assert_eq!(text.lines().count(), responses);
    assert!(
        text.lines()
            .all(|l| l.split(' ').nth(2) == Some("CLIENT_RESPONSE"))
    );
    // YAML: one document per SOA question.
    let soa = expected.iter().filter(|l| l.qtype == "SOA").count();
    assert!(soa > 0);
    assert_eq!(read(&dir.path("soa.yaml")).matches("---\n").count(), soa);
    // The template, line by line.
    let template = read(&dir.path("template.txt"));
    let wanted: Vec<String> = expected
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} end",
                full_type(&l.kind),
                l.qname.trim_end_matches('.'),
                l.qtype,
                l.length
            )
        })
        .collect();
    assert_eq!(template.lines().collect::<Vec<_>>(), wanted);
    assert_eq!(
        line_count(&dir.path("sampled.txt")),
        expected.len().div_ceil(10)
    );
    let www = expected
        .iter()
        .filter(|l| l.qname.starts_with("www."))
        .count();
    assert!(www > 0);
    assert_eq!(line_count(&dir.path("www.txt")), www);
    // The dnstap copy reads back the same through dnstap-ldns.
    let ldns = Command::new("dnstap-ldns")
        .args(["-q", "-r"])
        .arg(dir.path("copy.fstrm"))
        .output()
        .expect("dnstap-ldns (apt-get install dnstap-ldns)");
    assert!(
        ldns.status.success(),
        "{}",
        String::from_utf8_lossy(&ldns.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&ldns.stdout),
        read(&capture("unbound_resolver.dnstap.txt"))
    );
}

/// `None` when the file is gone or unreadable: the server may be shifting
/// `.1.gz` to `.2.gz` right now, so callers poll again.
fn try_gunzip(path: &Path) -> Option<String> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).ok()?)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

fn gunzip(path: &Path) -> String {
    try_gunzip(path).unwrap_or_else(|| panic!("{} is not a whole gzip file", path.display()))
}

#[test]
fn rotation_gzips_and_sighup_reopens() {
    let dir = TestDir::new();
    let socket = dir.path("tap.sock");
    let log = dir.path("log.txt");
    let config = format!(
        "[dnstap]\nunix = \"{}\"\n\n[[outputs]]\nkind = \"file\"\nformat = \"text\"\n\
         path = \"log.txt\"\nmax_size = 8000\nmax_files = 100\ncompress = true\n",
        socket.display()
    );
    let server = serve_with(&dir, &config);
    wait_until("the dnstap socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let expected = ldns_lines(&read(&capture("unbound_resolver.dnstap.txt")));
    replay(&capture("unbound_resolver.dnstap"), &socket);
    let rotated = |n: usize| dir.path(&format!("log.txt.{n}.gz"));
    // Read while the server may rotate: a copy that moves under us makes
    // this read fail, and the waits below read again.
    let try_all_lines = || {
        let mut text = String::new();
        let mut n = 1;
        while rotated(n).exists() {
            n += 1;
        }
        for k in (1..n).rev() {
            text.push_str(&try_gunzip(&rotated(k))?);
        }
        text.push_str(&read(&log));
        Some(text)
    };
    let line_total = || try_all_lines().map(|text| text.lines().count());
    let all_lines = || try_all_lines().expect("the rotated copies, once the server is idle");
    wait_until("every line", Duration::from_secs(30), || {
        line_total() == Some(expected.len())
    });
    assert!(rotated(2).exists(), "several rotations at 8000 bytes");
    for (n, size) in (1..).map(|n| (n, std::fs::metadata(rotated(n)))) {
        let Ok(_) = size else { break };
        assert!(
            gunzip(&rotated(n)).len() <= 8000,
            "rotated copy {n} too big"
        );
    }
    let lines: Vec<String> = all_lines().lines().map(str::to_string).collect();
    for (line, want) in lines.iter().zip(&expected) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[2], full_type(&want.kind), "{line}");
        assert_eq!(fields[9], want.qname, "{line}");
    }
    // logrotate: move the file away, SIGHUP, and new messages go to a new file.
    let moved = dir.path("moved.txt");
    std::fs::rename(&log, &moved).unwrap();
    let before = line_count(&moved);
    let status = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status()
        .expect("kill");
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(1500));
    replay(&capture("unbound_auth.dnstap"), &socket);
    let auth = ldns_lines(&read(&capture("unbound_auth.dnstap.txt")));
    wait_until("the auth messages", Duration::from_secs(30), || {
        line_total().map(|total| total + before) == Some(expected.len() + auth.len())
    });
    assert_eq!(line_count(&moved), before, "the moved file is left alone");
    assert!(
        read(&moved)
            .lines()
            .all(|l| l.contains(" resolver.unbound.test "))
    );
    let current = read(&log);
    assert!(!current.is_empty());
    assert!(
        current.lines().all(|l| l.contains(" auth.unbound.test ")),
        "after SIGHUP the new file has the new messages only"
    );
    assert!(
        server.stop(),
        "serve exit: {}",
        read(&dir.path("serve.log"))
    );
}

#[test]
fn a_stuck_output_drops_and_counts_while_the_store_gets_everything() {
    let dir = TestDir::new();
    let socket = dir.path("tap.sock");
    let fifo = dir.path("stuck.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    // A reader that opens the pipe and never reads: the writer fills the
    // pipe buffer, then blocks; the output's queue fills behind it.
    let mut reader = Command::new("sh")
        .arg("-c")
        .arg(format!("exec sleep 600 < '{}'", fifo.display()))
        .spawn()
        .expect("sh");
    let config = format!(
        "[dnstap]\nunix = \"{}\"\n\n[[outputs]]\nkind = \"file\"\nformat = \"json\"\n\
         path = \"{}\"\nname = \"stuck\"\nqueue_size = 16\nflush_timeout_secs = 1\n\n\
         [[outputs]]\nkind = \"file\"\nformat = \"json\"\npath = \"fine.json\"\n",
        socket.display(),
        fifo.display()
    );
    let server = serve_with(&dir, &config);
    wait_until("the dnstap socket", Duration::from_secs(10), || {
        socket.exists()
    });
    let mut sent = 0;
    for _ in 0..3 {
        replay(&capture("unbound_resolver.dnstap"), &socket);
        sent += 534;
    }
    wait_until("the healthy output", Duration::from_secs(30), || {
        line_count(&dir.path("fine.json")) == sent
    });
    let dropped = metric(
        &server,
        "dnsrecall_output_dropped_total",
        &[("output", "stuck"), ("reason", "queue_full")],
    );
    let offered = metric(
        &server,
        "dnsrecall_output_offered_total",
        &[("output", "stuck")],
    );
    assert_eq!(offered, sent as u64, "every message offered");
    assert!(dropped > 0, "a stuck output drops");
    // Shutdown does not wait for the stuck output beyond its deadline.
    let started = Instant::now();
    let stopped = server.stop();
    assert!(stopped, "serve exit: {}", read(&dir.path("serve.log")));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        started.elapsed()
    );
    let _ = reader.kill();
    let _ = reader.wait();
    let log = read(&dir.path("serve.log"));
    assert!(log.contains("flush deadline"), "{log}");
    // The store got everything: as many entries as an import of the same
    // three copies stores.
    let stored: u64 = log
        .lines()
        .find(|l| l.contains("store writer finished"))
        .and_then(|l| l.split("entries=").nth(1))
        .and_then(|v| v.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no store summary in {log}"));
    let file = capture("unbound_resolver.dnstap");
    let imported = TestDir::new().import(&[&file, &file, &file]);
    assert_eq!(Some(stored), imported["records"].as_u64(), "{imported}");
}
