//! The COF websocket input against a local Python `websockets` server
//! (tests/support/ws_server.py; the venv named by DNSRECALL_TEST_PYTHON,
//! installed by scripts/test.sh): the shared COF samples, a server that
//! drops the connection mid-stream, a server that sends junk.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use dnsrecall_core::{Entry, cof};
use dnsrecall_redis::websocket::{self, CofWebsocketConfig, WebsocketCounters};
use tokio::sync::{mpsc, oneshot};

const SAMPLES: [&str; 2] = [
    "cof/pdns-qof_data.ndjson",
    "cof/cof-draft-08_examples.ndjson",
];

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dnsrecall-test-venv/bin/python")
    })
}

fn start_server(mode: &str) -> (Server, u16) {
    start_server_with(mode, &[])
}

fn start_server_with(mode: &str, env: &[(&str, &std::path::Path)]) -> (Server, u16) {
    let port = dnsrecall_testkit::free_port();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/ws_server.py");
    let mut command = Command::new(python());
    command
        .arg(script)
        .arg(port.to_string())
        .arg(mode)
        .args(SAMPLES.iter().map(|s| dnsrecall_testkit::data(s)))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command.spawn().unwrap_or_else(|e| {
        panic!(
            "cannot run {} (scripts/test.sh installs websockets in the venv): {e}",
            python()
        )
    });
    let stdout = child.stdout.take().expect("piped stdout");
    let mut ready = String::new();
    BufReader::new(stdout).read_line(&mut ready).unwrap();
    assert_eq!(
        ready.trim(),
        "READY",
        "ws_server.py did not start (is `websockets` installed in the venv?)"
    );
    (Server(child), port)
}

/// Every record of the samples, as `(rrname, rrtype, rdata)`.
fn expected() -> Vec<(String, u16, String)> {
    let mut out = Vec::new();
    for sample in SAMPLES {
        let text = std::fs::read_to_string(dnsrecall_testkit::data(sample)).unwrap();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let parsed = cof::parse_line(line).expect("samples are valid COF");
            out.extend(parsed.entries.iter().map(key));
        }
    }
    out.sort();
    out
}

fn key(entry: &Entry) -> (String, u16, String) {
    (
        entry.record.rrname.to_dotless(),
        entry.record.rrtype.0,
        entry.record.rdata_text(),
    )
}

/// Runs the input until `want` entries arrived (or 20 s passed).
async fn collect(url: String, want: usize) -> (Vec<(String, u16, String)>, Arc<WebsocketCounters>) {
    let mut config = CofWebsocketConfig::new(url);
    config.reconnect_min_ms = 50;
    let counters = Arc::new(WebsocketCounters::default());
    let (sink, mut entries) = mpsc::channel(4);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = {
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            websocket::run(&config, &counters, sink, async {
                let _ = stopped.await;
            })
            .await
        })
    };
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while got.len() < want {
        match tokio::time::timeout_at(deadline, entries.recv()).await {
            Ok(Some(batch)) => got.extend(batch.iter().map(key)),
            _ => break,
        }
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    got.sort();
    (got, counters)
}

#[tokio::test]
async fn the_cof_samples_arrive_one_message_each() {
    let (_server, port) = start_server("samples");
    let want = expected();
    let (got, counters) = collect(format!("ws://127.0.0.1:{port}"), want.len()).await;
    assert_eq!(got, want);
    assert_eq!(counters.connections.load(Ordering::Relaxed), 1);
    assert!(counters.rejected().is_empty(), "{:?}", counters.rejected());
    let metrics = counters.metrics();
    assert!(
        metrics
            .iter()
            .any(|m| m.0 == "dnsrecall_cof_websocket_messages_total" && m.2 == 7)
    );
}

#[tokio::test]
async fn a_dropped_connection_is_followed_again() {
    let (_server, port) = start_server("drop");
    let want = expected();
    let (got, counters) = collect(format!("ws://127.0.0.1:{port}"), want.len()).await;
    assert_eq!(got, want, "nothing sent by the server is missing");
    assert!(counters.connections.load(Ordering::Relaxed) >= 2);
    assert!(counters.disconnects.load(Ordering::Relaxed) >= 1);
}

#[tokio::test]
async fn junk_is_counted_and_the_stream_goes_on() {
    let (_server, port) = start_server("junk");
    let want = expected();
    let (got, counters) = collect(format!("ws://127.0.0.1:{port}"), want.len()).await;
    assert_eq!(got, want);
    let rejected = counters.rejected();
    assert_eq!(rejected.get("invalid_json"), Some(&2), "{rejected:?}");
    assert_eq!(rejected.get("missing_field"), Some(&1), "{rejected:?}");
    assert_eq!(rejected.get("line_too_long"), Some(&1), "{rejected:?}");
    assert_eq!(rejected.get("not_utf8"), Some(&1), "{rejected:?}");
    assert_eq!(
        counters.connections.load(Ordering::Relaxed),
        1,
        "junk never drops the connection"
    );
}

#[tokio::test]
async fn a_server_that_is_not_there_is_retried_with_backoff() {
    let port = dnsrecall_testkit::free_port();
    let mut config = CofWebsocketConfig::new(format!("ws://127.0.0.1:{port}"));
    config.reconnect_min_ms = 20;
    config.reconnect_max_ms = 80;
    let counters = WebsocketCounters::default();
    let (sink, _entries) = mpsc::channel(1);
    websocket::run(
        &config,
        &counters,
        sink,
        tokio::time::sleep(Duration::from_millis(600)),
    )
    .await
    .unwrap();
    let errors = counters.connect_errors.load(Ordering::Relaxed);
    // 20 + 40 + 80 + 80 ... ms: several attempts, far fewer than a busy loop.
    assert!((3..=20).contains(&errors), "{errors} attempts");
    let bad = websocket::run(
        &CofWebsocketConfig::new("http://x"),
        &counters,
        mpsc::channel(1).0,
        async {},
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn wss_with_an_untrusted_certificate_is_refused_and_counted() {
    // A self-signed certificate: the TLS path runs (crypto provider, Mozilla
    // roots) and refuses it, counting each attempt.
    let dir = std::env::temp_dir().join(format!("dnsrecall-wss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl");
    assert!(status.success());
    let (_server, port) = start_server_with("samples", &[("WS_CERT", &cert), ("WS_KEY", &key)]);
    let mut config = CofWebsocketConfig::new(format!("wss://localhost:{port}"));
    config.reconnect_min_ms = 20;
    let counters = WebsocketCounters::default();
    websocket::run(
        &config,
        &counters,
        mpsc::channel(1).0,
        tokio::time::sleep(Duration::from_millis(400)),
    )
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(counters.connect_errors.load(Ordering::Relaxed) >= 1);
    assert_eq!(counters.connections.load(Ordering::Relaxed), 0);
    assert_eq!(counters.messages.load(Ordering::Relaxed), 0);
}
