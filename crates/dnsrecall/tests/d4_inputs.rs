//! The D4 inputs through the real binary (issue #13): `[[inputs]] kind =
//! "d4"` reading a private, persistent `redis-server` queue with junk
//! lines, good lines and the server killed mid-stream (nothing lost after
//! its restart), and `[[inputs]] kind = "cof-websocket"` following a
//! Python `websockets` server (crates/dnsrecall-redis/tests/support/
//! ws_server.py, the venv named by DNSRECALL_TEST_PYTHON) that sends the
//! shared COF samples, drops the connection mid-stream, or sends junk.

mod util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dnsrecall_testkit::redis::{RedisServer, redis_cli};
use util::{Server, TestDir};

const UUID: &str = "6072e072-bfaa-4395-9bb1-cdb3b470d715";

fn queue_key() -> String {
    format!("analyzer:8:{UUID}")
}

fn processing_key() -> String {
    format!("{}:processing:dnsrecall", queue_key())
}

fn cli(redis: &RedisServer, args: &[&str]) -> String {
    let port = redis.port().to_string();
    let mut all = vec!["-p", port.as_str(), "-n", "2"];
    all.extend_from_slice(args);
    redis_cli(&all)
}

/// LPUSHes lines as d4-core does (one line per element).
fn push(redis: &RedisServer, lines: &[Vec<u8>]) {
    let client = redis::Client::open(redis.url(2)).unwrap();
    let mut connection = client.get_connection().unwrap();
    for chunk in lines.chunks(500) {
        let mut pipe = redis::pipe();
        for line in chunk {
            pipe.cmd("LPUSH").arg(queue_key()).arg(line.as_slice());
        }
        let () = pipe.query(&mut connection).unwrap();
    }
}

fn length(redis: &RedisServer, key: &str) -> u64 {
    cli(redis, &["LLEN", key])
        .trim()
        .parse()
        .unwrap_or(u64::MAX)
}

fn wait_until(what: &str, seconds: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the first `/metrics` series named `name` whose labels
/// contain `labels`.
fn metric(server: &Server, name: &str, labels: &str) -> Option<u64> {
    let body = server.get("/metrics", &[]).body;
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.starts_with(&format!("{name}{{")) && line.contains(labels))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A good passivedns line (D4 sensors' default layout `SMcsCQTAtn`).
fn good_line(i: u64) -> (Vec<u8>, (String, String), (u64, u64)) {
    let name = format!("q{}.d4queue.example", i % 97);
    let address = format!("203.0.113.{}", i % 11);
    let time = 1_700_000_000 + (i * 7_919) % 100_000;
    let line = format!("{time}.250000||10.0.0.1||10.0.0.53||IN||{name}.||A||{address}||300||1");
    (line.into_bytes(), (name, address), (time, 1))
}

/// Exported records (COF lines) → (name, rdata) → (first, last, count).
fn exported(dir: &TestDir, config: &str) -> BTreeMap<(String, String), (u64, u64, u64)> {
    let output = dir.run(&["--config", config, "export"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                (
                    value["rrname"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches('.')
                        .to_string(),
                    value["rdata"].as_str().unwrap().to_string(),
                ),
                (
                    value["time_first"].as_u64().unwrap(),
                    value["time_last"].as_u64().unwrap(),
                    value["count"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn d4_queue_input_counts_junk_and_loses_nothing_when_its_redis_dies_mid_stream() {
    let mut queue = RedisServer::start_persistent();
    let store = RedisServer::start();
    let dir = TestDir::new();
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nkind = \"redis\"\nurl = \"{}\"\n\n\
             [[inputs]]\nkind = \"d4\"\nserver = \"{}\"\nuuid = \"{UUID}\"\n\
             batch_lines = 40\nmax_line_bytes = 2048\nidle_ms = 50\n",
            store.url(0),
            queue.url(2)
        ),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let server_label = format!("server=\"{}\"", queue.url(2));
    let mut expected: BTreeMap<(String, String), (u64, u64, u64)> = BTreeMap::new();
    let mut expect = |(_, key, (time, count)): &(Vec<u8>, (String, String), (u64, u64))| {
        let slot = expected.entry(key.clone()).or_insert((u64::MAX, 0, 0));
        slot.0 = slot.0.min(*time);
        slot.1 = slot.1.max(*time);
        slot.2 += count;
    };

    // 1. Junk around good lines.
    let mut first: Vec<Vec<u8>> = Vec::new();
    for i in 0..100 {
        let line = good_line(i);
        expect(&line);
        first.push(line.0);
    }
    first.insert(10, b"\xff\xfe not UTF-8".to_vec());
    first.insert(20, vec![b'x'; 4096]);
    first.insert(
        30,
        b"1700000000.1||10.0.0.1||10.0.0.53||IN||bad.example.||NOTATYPE||x||1||1".to_vec(),
    );
    first.insert(40, b"only||three||fields".to_vec());
    first.insert(
        50,
        b"1700000000.1||10.0.0.1||10.0.0.53||IN||gone.example.||A||NXDOMAIN||1||1".to_vec(),
    );
    push(&queue, &first);
    let server = dir.serve(&["--config", &config]);
    wait_until("the first lines to be committed", 60, || {
        length(&queue, &queue_key()) == 0 && length(&queue, &processing_key()) == 0
    });
    for (name, labels, value) in [
        ("dnsrecall_d4_queue_lines_total", server_label.clone(), 105),
        (
            "dnsrecall_d4_queue_lines_not_utf8_total",
            server_label.clone(),
            1,
        ),
        (
            "dnsrecall_d4_queue_lines_too_long_total",
            server_label.clone(),
            1,
        ),
        (
            "dnsrecall_d4_queue_lines_skipped_total",
            "reason=\"bad_rrtype\"".to_string(),
            1,
        ),
        (
            "dnsrecall_d4_queue_lines_skipped_total",
            "reason=\"field_count\"".to_string(),
            1,
        ),
        (
            "dnsrecall_d4_queue_lines_skipped_total",
            "reason=\"error_response\"".to_string(),
            1,
        ),
    ] {
        assert_eq!(
            metric(&server, name, &labels),
            Some(value),
            "{name}{{{labels}}}"
        );
    }

    // 2. The queue's Redis killed while batches are in flight, restarted
    //    from its append-only file; more lines after the restart.
    let mut second = Vec::new();
    for i in 100..3_000 {
        let line = good_line(i);
        expect(&line);
        second.push(line.0);
    }
    push(&queue, &second);
    wait_until("ingest to start on the second part", 60, || {
        length(&queue, &queue_key()) < 2_800
    });
    queue.kill();
    std::thread::sleep(Duration::from_millis(300));
    queue.restart();
    let mut third = Vec::new();
    for i in 3_000..3_500 {
        let line = good_line(i);
        expect(&line);
        third.push(line.0);
    }
    push(&queue, &third);
    wait_until("every line to be committed after the restart", 120, || {
        length(&queue, &queue_key()) == 0 && length(&queue, &processing_key()) == 0
    });
    assert!(
        metric(
            &server,
            "dnsrecall_d4_queue_connection_errors_total",
            &server_label
        )
        .is_some_and(|errors| errors >= 1),
        "the kill was noticed"
    );
    assert!(server.stop(), "serve exits cleanly on SIGTERM");

    // Every record, with exact first/last seen; counts at least the
    // lines' (a batch stored but not committed when the server died is
    // delivered again: at least once, never lost).
    let stored = exported(&dir, &config);
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    let mut extra = 0;
    for (key, (first, last, count)) in &expected {
        let (got_first, got_last, got_count) = stored[key];
        assert_eq!((got_first, got_last), (*first, *last), "{key:?}");
        assert!(got_count >= *count, "{key:?}: {got_count} < {count}");
        extra += got_count - count;
    }
    assert!(
        extra <= 2 * 40,
        "at most a batch or two delivered twice: {extra}"
    );
}

//---- cof-websocket ----------------------------------------------------------

const SAMPLES: [&str; 2] = [
    "cof/pdns-qof_data.ndjson",
    "cof/cof-draft-08_examples.ndjson",
];

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dnsrecall-test-venv/bin/python")
    })
}

struct WsServer(Child);

impl Drop for WsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn samples() -> Vec<PathBuf> {
    SAMPLES.iter().map(|s| dnsrecall_testkit::data(s)).collect()
}

fn start_ws(mode: &str) -> (WsServer, u16) {
    let port = dnsrecall_testkit::free_port();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../dnsrecall-redis/tests/support/ws_server.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(port.to_string())
        .arg(mode)
        .args(samples())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} (scripts/test.sh makes the venv): {e}",
                python()
            )
        });
    let stdout = child.stdout.take().unwrap();
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), "READY", "websocket server did not start");
    (WsServer(child), port)
}

/// Sample lines as the server sends them (non-empty lines).
fn sample_lines() -> usize {
    samples()
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum()
}

/// The records `import` stores from the sample files (the reference).
fn imported_samples() -> Vec<String> {
    let dir = TestDir::new();
    let files = samples();
    dir.import(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    export_sorted(&dir, &[])
}

fn export_sorted(dir: &TestDir, args: &[&str]) -> Vec<String> {
    let mut all = args.to_vec();
    all.push("export");
    let output = dir.run(&all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// Serves with a cof-websocket input on `mode`'s server until `messages`
/// messages arrived, then stops and returns the stored records and the
/// rejected-line counts by reason.
fn follow(mode: &str, messages: u64) -> (Vec<String>, BTreeMap<String, u64>) {
    let (_ws, port) = start_ws(mode);
    let dir = TestDir::new();
    let config = dir.path("dnsrecall.toml");
    let url = format!("ws://127.0.0.1:{port}");
    std::fs::write(
        &config,
        format!("[[inputs]]\nkind = \"cof-websocket\"\nurl = \"{url}\"\nreconnect_min_ms = 50\n"),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();
    let server = dir.serve(&["--config", &config]);
    let label = format!("url=\"{url}\"");
    wait_until(
        &format!("{messages} websocket messages ({mode})"),
        60,
        || metric(&server, "dnsrecall_cof_websocket_messages_total", &label) == Some(messages),
    );
    let body = server.get("/metrics", &[]).body;
    let mut rejected = BTreeMap::new();
    for line in body
        .lines()
        .filter(|l| l.starts_with("dnsrecall_cof_websocket_lines_rejected_total{"))
    {
        let reason = line
            .split("reason=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_string();
        let value = line.rsplit(' ').next().unwrap().parse().unwrap();
        rejected.insert(reason, value);
    }
    if mode == "drop" {
        assert!(
            metric(&server, "dnsrecall_cof_websocket_disconnects_total", &label)
                .is_some_and(|n| n >= 1)
        );
        assert!(
            metric(&server, "dnsrecall_cof_websocket_connections_total", &label)
                .is_some_and(|n| n >= 2),
            "reconnected"
        );
    }
    assert!(server.stop(), "serve exits cleanly on SIGTERM");
    (export_sorted(&dir, &["--config", &config]), rejected)
}

#[test]
fn cof_websocket_input_stores_what_import_stores_through_drops_and_junk() {
    let reference = imported_samples();
    assert!(reference.len() >= 5, "{}", reference.len());
    let lines = sample_lines() as u64;

    // Sample lines the COF parser refuses (if any) are refused by both.
    let (stored, baseline) = follow("samples", lines);
    assert_eq!(stored, reference);

    // The first connection is aborted after three lines; the rest comes
    // over the next one.
    let (stored, _) = follow("drop", lines);
    assert_eq!(stored, reference);

    // Five junk messages (one holding two good lines around a JSON array):
    // counted by reason, the good lines all stored.
    let (stored, rejected) = follow("junk", lines + 3);
    assert_eq!(stored, reference);
    assert_eq!(
        rejected.values().sum::<u64>(),
        baseline.values().sum::<u64>() + 5,
        "{rejected:?}"
    );
    for reason in ["line_too_long", "not_utf8"] {
        assert_eq!(
            rejected.get(reason).copied().unwrap_or(0),
            baseline.get(reason).copied().unwrap_or(0) + 1,
            "{rejected:?}"
        );
    }
}
