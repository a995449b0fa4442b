//! Network message outputs (`[[outputs]] kind = "tcp" | "syslog" | "dnstap"
//! | "kafka" | "nats" | "postgres"`) of `dnsrecall serve`, each against its
//! real peer: a TCP listener run here, rsyslogd, fstrm_capture read back by
//! dnstap-ldns, a second dnsrecall, the tansu Kafka broker read through a
//! confluent-kafka consumer group, the NATS server (core and JetStream) and
//! PostgreSQL. Plus a dead and a slow peer beside a healthy one: their
//! queues fill and drop (counted in /metrics) while the healthy output and
//! the store receive everything.
//!
//! Every test replays the same real unbound dnstap capture with
//! fstrm_replay; what each peer must receive is taken from dnstap-ldns's
//! reading of that capture (`unbound_resolver.dnstap.txt`): message type,
//! length, query name and type of every frame, in order.

mod util;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use util::{Server, TestDir, free_port, test_data};

const CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";

//---- what every peer must see ----

fn capture() -> PathBuf {
    test_data().join("dnstap/unbound/unbound_resolver.dnstap")
}

/// One frame as dnstap-ldns shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    message: String,
    length: u64,
    qname: String,
    qtype: String,
}

fn long_type(short: &str) -> String {
    let (who, what) = short.split_at(1);
    let who = match who {
        "A" => "AUTH",
        "C" => "CLIENT",
        "R" => "RESOLVER",
        "F" => "FORWARDER",
        "S" => "STUB",
        "T" => "TOOL",
        "U" => "UPDATE",
        other => panic!("unknown dnstap-ldns type {other}"),
    };
    let what = if what == "Q" { "QUERY" } else { "RESPONSE" };
    format!("{who}_{what}")
}

/// `2026-11-22 03:52:27.548041 CQ 127.0.0.1 UDP 56b "host.local.test." IN A`
fn parse_ldns_quiet(text: &str) -> Vec<Seen> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let tokens: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(tokens.len(), 9, "unexpected dnstap-ldns line {line:?}");
            Seen {
                message: long_type(tokens[2]),
                length: tokens[5].trim_end_matches('b').parse().expect("length"),
                qname: tokens[6].trim_matches('"').to_string(),
                qtype: tokens[8].to_string(),
            }
        })
        .collect()
}

fn expected() -> Vec<Seen> {
    let text =
        std::fs::read_to_string(test_data().join("dnstap/unbound/unbound_resolver.dnstap.txt"))
            .expect("dnstap-ldns reading of the capture");
    parse_ldns_quiet(&text)
}

/// What a JSON log line (dnstap-receiver keys) says of its frame.
fn seen_json(line: &str) -> Seen {
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"));
    Seen {
        message: value["message"].as_str().expect("message").to_string(),
        length: value["length"].as_u64().expect("length"),
        qname: value["qname"].as_str().expect("qname").to_string(),
        qtype: value["rrtype"].as_str().expect("rrtype").to_string(),
    }
}

/// What a text log line says: `<datetime> <identity> <TYPE> <rcode> <ip>
/// <port> <family> <protocol> <length>b <qname> <rrtype> <latency>`.
fn seen_text(line: &str) -> Seen {
    let tokens: Vec<&str> = line.split(' ').collect();
    assert_eq!(tokens.len(), 12, "unexpected text line {line:?}");
    Seen {
        message: tokens[2].to_string(),
        length: tokens[8].trim_end_matches('b').parse().expect("length"),
        qname: tokens[9].to_string(),
        qtype: tokens[10].to_string(),
    }
}

fn sorted(mut seen: Vec<Seen>) -> Vec<Seen> {
    seen.sort();
    seen
}

//---- serve ----

fn write_config(dir: &TestDir, outputs: &str) -> PathBuf {
    let path = dir.path("dnsrecall.toml");
    std::fs::write(&path, outputs).expect("write config");
    path
}

/// `serve --config CONFIG --dnstap-tcp PORT`, stderr in `serve.log`.
struct Serve {
    server: Server,
    dnstap_port: u16,
}

fn serve(dir: &TestDir, config: &Path, extra: &[&str]) -> Serve {
    let port = free_port();
    let dnstap_port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let dnstap = format!("127.0.0.1:{dnstap_port}");
    let mut args = vec![
        "serve",
        "--config",
        config.to_str().expect("config path"),
        "--listen",
        listen.as_str(),
        "--dnstap-tcp",
        dnstap.as_str(),
    ];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(dir.path("serve.log")).expect("log file");
    let child = dir
        .command(&args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start serve");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || std::net::TcpStream::connect(("127.0.0.1", dnstap_port)).is_err()
    {
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            log_of(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve {
        server,
        dnstap_port,
    }
}

fn log_of(dir: &TestDir) -> String {
    std::fs::read_to_string(dir.path("serve.log")).unwrap_or_default()
}

fn replay(port: u16) {
    let output = Command::new("fstrm_replay")
        .args(["-t", CONTENT_TYPE, "-r"])
        .arg(capture())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .output()
        .expect("fstrm_replay (apt-get install fstrm-bin)");
    assert!(
        output.status.success(),
        "fstrm_replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `/metrics` samples whose name and labels match, summed.
fn metric(server: &Server, name: &str, labels: &[(&str, &str)]) -> u64 {
    let body = server.get("/metrics", &[]).body;
    let mut total = 0;
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(split) => split,
            None => continue,
        };
        let (series_name, series_labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        if series_name != name {
            continue;
        }
        let all = labels
            .iter()
            .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
        if all {
            total += value.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    total
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn observations(server: &Server) -> u64 {
    let info: serde_json::Value =
        serde_json::from_str(&server.get("/info", &[]).body).expect("info JSON");
    info["stats"].as_u64().expect("stats")
}

/// Waits until the store's observation count stops moving; returns it.
fn settled_observations(server: &Server) -> u64 {
    let mut last = u64::MAX;
    let mut stable = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = observations(server);
        if now == last && now > 0 {
            stable += 1;
            if stable >= 10 {
                return now;
            }
        } else {
            stable = 0;
            last = now;
        }
        assert!(Instant::now() < deadline, "observations never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

//---- a TCP peer run here ----

/// Accepts connections on a free port and keeps every byte received.
struct TcpPeer {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
}

impl TcpPeer {
    fn start() -> TcpPeer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let sink = sink.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 65536];
                    while let Ok(n) = stream.read(&mut buffer) {
                        if n == 0 {
                            break;
                        }
                        sink.lock().unwrap().extend_from_slice(&buffer[..n]);
                    }
                });
            }
        });
        TcpPeer { port, received }
    }

    fn text(&self) -> String {
        String::from_utf8(self.received.lock().unwrap().clone()).expect("UTF-8")
    }
}

//---- tcp ----

#[test]
fn tcp_ndjson_and_text_with_a_delimiter_reach_a_collector() {
    let expected = expected();
    let json_peer = TcpPeer::start();
    let text_peer = TcpPeer::start();
    let dir = TestDir::new();
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"tcp\"\nname = \"json-peer\"\naddress = \"127.0.0.1:{}\"\nformat = \"json\"\n\n\
             [[outputs]]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\nformat = \"text\"\ndelimiter = \"\\r\\n\"\n",
            json_peer.port, text_peer.port
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let count = |text: String, delimiter: &str| text.matches(delimiter).count();
    wait_until(
        "both collectors to get every message",
        Duration::from_secs(30),
        || {
            count(json_peer.text(), "\n") >= expected.len()
                && count(text_peer.text(), "\r\n") >= expected.len()
        },
    );
    let json: Vec<Seen> = json_peer.text().lines().map(seen_json).collect();
    assert_eq!(json, expected, "NDJSON in frame order");
    let text = text_peer.text();
    assert!(text.ends_with("\r\n"));
    let text: Vec<Seen> = text.split_terminator("\r\n").map(seen_text).collect();
    assert_eq!(text, expected, "text lines in frame order");
    assert_eq!(
        metric(
            &serve.server,
            "dnsrecall_output_written_total",
            &[("output", "json-peer")]
        ),
        expected.len() as u64
    );
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
}

#[test]
fn tcp_over_tls_to_a_collector_with_a_private_ca() {
    use tokio::io::AsyncReadExt;
    let expected = expected();
    let dir = TestDir::new();
    let certified =
        rcgen::generate_simple_self_signed(vec!["collector.test".to_string()]).expect("cert");
    let cert = dir.path("collector.pem");
    let key = dir.path("collector.key");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = dnsrecall_dnstap::server::tls_server_config(&cert, &key, None).expect("TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let sink = received.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let sink = sink.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                let mut buffer = vec![0u8; 65536];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock().unwrap().extend_from_slice(&buffer[..n]);
                }
            });
        }
    });
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\nformat = \"json\"\n\
             tls = true\ntls_ca = \"collector.pem\"\ntls_server_name = \"collector.test\"\n"
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let lines = || {
        String::from_utf8(received.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    wait_until(
        "the TLS collector to get every message",
        Duration::from_secs(30),
        || lines().len() >= expected.len(),
    );
    let seen: Vec<Seen> = lines().iter().map(|l| seen_json(l)).collect();
    assert_eq!(seen, expected);
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
}

//---- dead and slow peers ----

/// A Frame Streams receiver that sits on the READY for `delay` before
/// accepting (a peer too slow to keep up), then reads until STOP. Returns
/// how many data frames it got.
fn slow_dnstap_receiver(delay: Duration) -> (u16, Arc<Mutex<u64>>) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let frames = Arc::new(Mutex::new(0u64));
    let count = frames.clone();
    std::thread::spawn(move || {
        runtime.block_on(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::time::sleep(delay).await;
                let config = dnsrecall_dnstap::FrameConfig::default();
                let mut session =
                    dnsrecall_dnstap::framestream::ReceiverSession::new(stream, &config);
                if session.handshake().await.is_err() {
                    continue;
                }
                while let Ok(Some(_)) = session.next_data().await {
                    *count.lock().unwrap() += 1;
                }
            }
        });
    });
    (port, frames)
}

#[test]
fn dead_and_slow_peers_drop_and_count_while_others_and_the_store_get_everything() {
    let expected = expected();
    // Reference: the same capture stored without outputs.
    let reference_dir = TestDir::new();
    let reference_config = write_config(&reference_dir, "");
    let reference = serve(&reference_dir, &reference_config, &[]);
    replay(reference.dnstap_port);
    let stored = settled_observations(&reference.server);
    assert!(reference.server.stop());

    let healthy = TcpPeer::start();
    let dead_port = free_port();
    let (slow_port, slow_frames) = slow_dnstap_receiver(Duration::from_secs(4));
    let dir = TestDir::new();
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"tcp\"\naddress = \"127.0.0.1:{}\"\n\n\
             [[outputs]]\nkind = \"tcp\"\nname = \"dead\"\naddress = \"127.0.0.1:{dead_port}\"\nqueue_size = 16\nflush_timeout_secs = 1\n\n\
             [[outputs]]\nkind = \"dnstap\"\nname = \"slow\"\naddress = \"127.0.0.1:{slow_port}\"\nqueue_size = 16\n",
            healthy.port
        ),
    );
    let serve = serve(&dir, &config, &[]);
    let started = Instant::now();
    replay(serve.dnstap_port);
    let replay_time = started.elapsed();
    assert!(
        replay_time < Duration::from_secs(4),
        "ingest waited for a slow output: replay took {replay_time:?}"
    );
    // The store and the healthy output get everything.
    assert_eq!(settled_observations(&serve.server), stored);
    wait_until("the healthy collector", Duration::from_secs(30), || {
        healthy.text().lines().count() >= expected.len()
    });
    let json: Vec<Seen> = healthy.text().lines().map(seen_json).collect();
    assert_eq!(json, expected);

    let total = expected.len() as u64;
    let dead = "dead";
    let dead_dropped = metric(
        &serve.server,
        "dnsrecall_output_dropped_total",
        &[("output", dead), ("reason", "queue_full")],
    );
    assert!(
        dead_dropped >= total - 16 - 256,
        "dead peer: only {dead_dropped} counted as dropped"
    );
    assert_eq!(
        metric(
            &serve.server,
            "dnsrecall_output_written_total",
            &[("output", dead)]
        ),
        0
    );
    assert!(
        metric(
            &serve.server,
            "dnsrecall_output_errors_total",
            &[("output", dead)]
        ) > 0
    );

    // The slow peer accepts after 4 s and gets what its queue kept.
    let slow = "slow";
    wait_until("the slow peer to catch up", Duration::from_secs(30), || {
        let sent = metric(
            &serve.server,
            "dnsrecall_output_written_total",
            &[("output", slow)],
        );
        let dropped = metric(
            &serve.server,
            "dnsrecall_output_dropped_total",
            &[("output", slow), ("reason", "queue_full")],
        );
        sent + dropped == total && *slow_frames.lock().unwrap() == sent
    });
    let slow_dropped = metric(
        &serve.server,
        "dnsrecall_output_dropped_total",
        &[("output", slow), ("reason", "queue_full")],
    );
    assert!(slow_dropped > 0, "the slow peer's queue never filled");
    assert!(*slow_frames.lock().unwrap() > 0);
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
    let log = log_of(&dir);
    assert!(log.contains("output connect failed"), "{log}");
}

//---- dnstap relay ----

/// fstrm_capture on a free TCP port writing `file`.
fn fstrm_capture(file: &Path) -> (Child, u16) {
    let port = free_port();
    let child = Command::new("fstrm_capture")
        .args([
            "-t",
            CONTENT_TYPE,
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-w",
        ])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("fstrm_capture (apt-get install fstrm-bin)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "fstrm_capture did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn stop_child(mut child: Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dnstap_ldns(file: &Path, flag: &str) -> String {
    let output = Command::new("dnstap-ldns")
        .arg("-r")
        .arg(file)
        .arg(flag)
        .output()
        .expect("dnstap-ldns (apt-get install dnstap-ldns)");
    assert!(
        output.status.success(),
        "dnstap-ldns failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn dnstap_relay_to_fstrm_capture_keeps_every_frame_and_rewrites_the_identity() {
    let dir = TestDir::new();
    let kept = dir.path("kept.fstrm");
    let renamed = dir.path("renamed.fstrm");
    let (kept_capture, kept_port) = fstrm_capture(&kept);
    let (renamed_capture, renamed_port) = fstrm_capture(&renamed);
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"dnstap\"\naddress = \"127.0.0.1:{kept_port}\"\n\n\
             [[outputs]]\nkind = \"dnstap\"\naddress = \"127.0.0.1:{renamed_port}\"\nidentity = \"relay.test\"\n"
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let total = expected().len() as u64;
    wait_until("the relays", Duration::from_secs(30), || {
        metric(&serve.server, "dnsrecall_output_written_total", &[]) >= 2 * total
    });
    // Shutdown sends STOP and waits for FINISH: the captures are complete.
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
    stop_child(kept_capture);
    stop_child(renamed_capture);
    let original =
        std::fs::read_to_string(test_data().join("dnstap/unbound/unbound_resolver.dnstap.txt"))
            .unwrap();
    assert_eq!(
        dnstap_ldns(&kept, "-q"),
        original,
        "relayed frames as dnstap-ldns reads them"
    );
    assert_eq!(dnstap_ldns(&renamed, "-q"), original);
    let yaml = dnstap_ldns(&renamed, "-y");
    assert_eq!(
        yaml.matches("identity: \"relay.test\"").count() as u64,
        total,
        "every relayed frame carries the new identity"
    );
    assert!(!yaml.contains("resolver.unbound.test"));
    assert!(dnstap_ldns(&kept, "-y").contains("identity: \"resolver.unbound.test\""));
}

#[test]
fn dnstap_relay_to_a_second_dnsrecall_over_a_unix_socket() {
    let downstream_dir = TestDir::new();
    let socket = downstream_dir.path("dnstap.sock");
    let downstream_config = write_config(&downstream_dir, "");
    let downstream = serve(
        &downstream_dir,
        &downstream_config,
        &["--dnstap-unix", socket.to_str().unwrap()],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "socket not created");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dir = TestDir::new();
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"dnstap\"\naddress = \"{}\"\nidentity = \"relay.test\"\n",
            socket.display()
        ),
    );
    let upstream = serve(&dir, &config, &[]);
    replay(upstream.dnstap_port);
    let stored = settled_observations(&upstream.server);
    wait_until(
        "the second dnsrecall to store as much",
        Duration::from_secs(30),
        || observations(&downstream.server) == stored,
    );
    let info: serde_json::Value =
        serde_json::from_str(&downstream.server.get("/info", &[]).body).unwrap();
    let sensors: Vec<&str> = info["sensors"]
        .as_array()
        .expect("sensors")
        .iter()
        .filter_map(|s| s["sensor_id"].as_str())
        .collect();
    assert_eq!(
        sensors,
        ["relay.test"],
        "the relay's identity is the sensor"
    );
    let export = |dir: &TestDir| {
        let output = dir.run(&["export"]);
        assert!(output.status.success());
        let mut lines: Vec<serde_json::Value> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("sensor_id");
                v
            })
            .collect();
        lines.sort_by_key(|v| v.to_string());
        lines
    };
    let upstream_records = export(&dir);
    assert!(!upstream_records.is_empty());
    assert_eq!(
        export(&downstream_dir),
        upstream_records,
        "same records on both"
    );
    assert!(upstream.server.stop(), "{}", log_of(&dir));
    assert!(downstream.server.stop());
}

//---- syslog ----

struct Rsyslog {
    child: Child,
    output: PathBuf,
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private rsyslogd (no system sockets) listening on UDP and TCP ports
/// and a unix socket, writing `APP|FACILITY|SEVERITY|MSG` lines to a file.
fn rsyslogd(dir: &TestDir, udp: u16, tcp: u16, socket: &Path) -> Rsyslog {
    let work = dir.path("rsyslog");
    std::fs::create_dir_all(&work).unwrap();
    let output = dir.path("syslog.out");
    let config = dir.path("rsyslog.conf");
    std::fs::write(
        &config,
        format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k")
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="{udp}" rcvBufSize="8m")
input(type="imtcp" address="127.0.0.1" port="{tcp}")
input(type="imuxsock" Socket="{socket}" UseSpecialParser="off" ParseHostname="on" RateLimit.Interval="0")
template(name="fields" type="string" string="%app-name%|%syslogfacility-text%|%syslogseverity-text%|%msg%\n")
action(type="omfile" file="{output}" template="fields")
"#,
            work = work.display(),
            socket = socket.display(),
            output = output.display(),
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&config)
        .arg("-i")
        .arg(dir.path("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path("rsyslog.log")).unwrap())
        .spawn()
        .expect("rsyslogd (apt-get install rsyslog)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", tcp)).is_err() || !socket.exists() {
        assert!(
            Instant::now() < deadline,
            "rsyslogd did not start: {}",
            std::fs::read_to_string(dir.path("rsyslog.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Rsyslog { child, output }
}

#[test]
fn syslog_over_udp_tcp_and_unix_to_rsyslog() {
    let expected = expected();
    let dir = TestDir::new();
    let udp = free_port();
    let tcp = free_port();
    let socket = dir.path("syslog.sock");
    let rsyslog = rsyslogd(&dir, udp, tcp, &socket);
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"syslog\"\ntransport = \"udp\"\naddress = \"127.0.0.1:{udp}\"\n\
             framing = \"rfc5424\"\nformat = \"json\"\nfacility = \"local3\"\nseverity = \"notice\"\napp_name = \"dnsr-udp\"\n\n\
             [[outputs]]\nkind = \"syslog\"\ntransport = \"tcp\"\naddress = \"127.0.0.1:{tcp}\"\n\
             framing = \"rfc3164\"\nformat = \"json\"\nfacility = \"daemon\"\napp_name = \"dnsr-tcp\"\n\n\
             [[outputs]]\nkind = \"syslog\"\ntransport = \"unix\"\naddress = \"{}\"\n\
             framing = \"rfc5424\"\nformat = \"text\"\nfacility = \"local7\"\nseverity = \"debug\"\napp_name = \"dnsr-unix\"\n",
            socket.display()
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let by_app = || {
        let text = std::fs::read_to_string(&rsyslog.output).unwrap_or_default();
        let mut by_app: BTreeMap<String, Vec<(String, String, String)>> = BTreeMap::new();
        for line in text.lines() {
            let mut parts = line.splitn(4, '|');
            let (app, facility, severity, message) = (
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
                parts.next().unwrap_or_default(),
            );
            by_app.entry(app.to_string()).or_default().push((
                facility.to_string(),
                severity.to_string(),
                message.trim_start().to_string(),
            ));
        }
        by_app
    };
    wait_until(
        "rsyslog to write every record",
        Duration::from_secs(30),
        || {
            let by_app = by_app();
            ["dnsr-udp", "dnsr-tcp", "dnsr-unix"]
                .iter()
                .all(|app| by_app.get(*app).map_or(0, Vec::len) >= expected.len())
        },
    );
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
    let by_app = by_app();
    for (app, facility, severity) in [
        ("dnsr-udp", "local3", "notice"),
        ("dnsr-tcp", "daemon", "info"),
        ("dnsr-unix", "local7", "debug"),
    ] {
        let records = &by_app[app];
        assert_eq!(records.len(), expected.len(), "{app}");
        assert!(
            records
                .iter()
                .all(|(f, s, _)| f == facility && s == severity),
            "{app}: facility/severity {:?}",
            records.first()
        );
        let seen: Vec<Seen> = records
            .iter()
            .map(|(_, _, m)| {
                if app == "dnsr-unix" {
                    seen_text(m)
                } else {
                    seen_json(m)
                }
            })
            .collect();
        // UDP datagrams may be reordered by nothing on loopback, but
        // rsyslog's inputs run in their own threads: compare as multisets.
        assert_eq!(sorted(seen), sorted(expected.clone()), "{app}");
    }
}

//---- postgres ----

fn psql(sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-d",
            "test",
            "-AtX",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql");
    assert!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}_{}_{}", std::process::id(), nanos % 1_000_000_000)
}

#[test]
fn postgres_table_is_created_and_filled_by_copy() {
    let expected = expected();
    let table = unique("dnsrecall_out");
    let dir = TestDir::new();
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"postgres\"\ndsn = \"postgres://root@127.0.0.1:5432/test\"\nname = \"pg\"\ntable = \"{table}\"\nbatch_size = 100\n"
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let name = "pg";
    wait_until("the rows", Duration::from_secs(30), || {
        metric(
            &serve.server,
            "dnsrecall_output_written_total",
            &[("output", name)],
        ) >= expected.len() as u64
    });
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
    let rows = psql(&format!(
        "SELECT message, length, qname, qtype FROM {table}"
    ));
    let seen: Vec<Seen> = rows
        .lines()
        .map(|row| {
            let fields: Vec<&str> = row.split('|').collect();
            Seen {
                message: fields[0].to_string(),
                length: fields[1].parse().unwrap(),
                qname: fields[2].to_string(),
                qtype: fields[3].to_string(),
            }
        })
        .collect();
    assert_eq!(sorted(seen), sorted(expected.clone()));
    // Typed columns: addresses are inet, the wire message is bytea of the
    // stated length, queries carry no latency.
    let checks = psql(&format!(
        "SELECT count(*) FILTER (WHERE query_ip << '127.0.0.0/8'::inet), \
                count(*) FILTER (WHERE octet_length(wire) = length), \
                count(*) FILTER (WHERE is_query AND latency IS NOT NULL), \
                count(*) FILTER (WHERE time > '2026-01-01'::timestamptz) FROM {table}"
    ));
    let counts: Vec<u64> = checks
        .trim()
        .split('|')
        .map(|c| c.parse().unwrap())
        .collect();
    let total = expected.len() as u64;
    assert_eq!(counts[1], total, "wire length");
    assert_eq!(counts[2], 0, "latency only on responses");
    assert_eq!(counts[3], total, "event times");
    assert!(counts[0] > 0);
    psql(&format!("DROP TABLE {table}"));
}

//---- nats ----

/// A raw NATS protocol client (no client library): enough to subscribe
/// and to ask the JetStream API.
struct NatsProbe {
    reader: BufReader<std::net::TcpStream>,
    writer: std::net::TcpStream,
}

impl NatsProbe {
    fn connect() -> NatsProbe {
        let stream =
            std::net::TcpStream::connect("127.0.0.1:4222").expect("NATS at 127.0.0.1:4222");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut probe = NatsProbe {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        };
        let mut info = String::new();
        probe.reader.read_line(&mut info).unwrap();
        assert!(info.starts_with("INFO"), "{info}");
        probe.send("CONNECT {\"verbose\":false,\"pedantic\":false}\r\nPING\r\n");
        probe.expect_pong();
        probe
    }

    fn send(&mut self, text: &str) {
        use std::io::Write;
        self.writer.write_all(text.as_bytes()).unwrap();
    }

    fn expect_pong(&mut self) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "PONG");
    }

    /// The next MSG's payload (answers PINGs on the way).
    fn next_message(&mut self) -> Vec<u8> {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("NATS read");
            let line = line.trim_end();
            if line == "PING" {
                self.send("PONG\r\n");
                continue;
            }
            if let Some(rest) = line.strip_prefix("MSG ") {
                let size: usize = rest.rsplit(' ').next().unwrap().parse().unwrap();
                let mut payload = vec![0u8; size + 2];
                self.reader.read_exact(&mut payload).unwrap();
                payload.truncate(size);
                return payload;
            }
            assert!(!line.starts_with("-ERR"), "{line}");
        }
    }

    /// A JetStream API request; the JSON answer.
    fn request(&mut self, subject: &str, body: &str) -> serde_json::Value {
        let inbox = unique("_INBOX.probe");
        self.send(&format!(
            "SUB {inbox} 99\r\nPUB {subject} {inbox} {}\r\n{body}\r\n",
            body.len()
        ));
        let answer = self.next_message();
        self.send("UNSUB 99\r\n");
        serde_json::from_slice(&answer).unwrap()
    }
}

#[test]
fn nats_core_subject_and_jetstream_with_acknowledgements() {
    let expected = expected();
    let subject = unique("dnsrecall.test.core").replace('_', ".");
    let js_subject = unique("dnsrecall.test.js").replace('_', ".");
    let stream = unique("DNSRECALL_TEST");
    let mut probe = NatsProbe::connect();
    probe.send(&format!("SUB {subject} 1\r\nPING\r\n"));
    probe.expect_pong();
    let dir = TestDir::new();
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nsubject = \"{subject}\"\nformat = \"json\"\n\n\
             [[outputs]]\nkind = \"nats\"\nurl = \"nats://127.0.0.1:4222\"\nname = \"js\"\nsubject = \"{js_subject}\"\n\
             jetstream = true\nstream = \"{stream}\"\n"
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let seen: Vec<Seen> = (0..expected.len())
        .map(|_| seen_json(&String::from_utf8(probe.next_message()).unwrap()))
        .collect();
    assert_eq!(seen, expected, "core NATS, in order");
    let js = "js";
    wait_until(
        "JetStream acknowledgements",
        Duration::from_secs(30),
        || {
            metric(
                &serve.server,
                "dnsrecall_output_written_total",
                &[("output", js)],
            ) >= expected.len() as u64
        },
    );
    let info = probe.request(&format!("$JS.API.STREAM.INFO.{stream}"), "");
    assert_eq!(
        info["state"]["messages"].as_u64(),
        Some(expected.len() as u64),
        "{info}"
    );
    assert_eq!(
        info["config"]["subjects"][0].as_str(),
        Some(js_subject.as_str())
    );
    let deleted = probe.request(&format!("$JS.API.STREAM.DELETE.{stream}"), "");
    assert_eq!(deleted["success"].as_bool(), Some(true), "{deleted}");
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
}

//---- kafka ----

fn tansu() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let path = home.join(".cargo/bin/tansu");
    assert!(
        path.exists(),
        "tansu not installed (scripts/test.sh installs it)"
    );
    path
}

fn test_python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dnsrecall-test-venv/bin/python")
    })
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const CONSUMER: &str = r#"
import json, sys
from confluent_kafka import Consumer
broker, topic, group, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": broker, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": True})
consumer.subscribe([topic])
got = 0
import time
deadline = time.time() + 60
while got < want and time.time() < deadline:
    message = consumer.poll(1.0)
    if message is None:
        continue
    if message.error():
        print("error", message.error(), file=sys.stderr)
        continue
    key = message.key().decode() if message.key() is not None else None
    print(json.dumps({"key": key, "value": message.value().decode(), "partition": message.partition()}))
    got += 1
consumer.close()
"#;

#[test]
fn kafka_topic_read_back_through_a_consumer_group() {
    let expected = expected();
    let dir = TestDir::new();
    let port = free_port();
    let broker = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path("tansu.log")).unwrap();
    let _tansu = Killed(
        Command::new(tansu())
            .args([
                "broker",
                "--listener-url",
                &format!("tcp://{broker}"),
                "--advertised-listener-url",
                &format!("tcp://{broker}"),
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start tansu"),
    );
    wait_until("tansu to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(&broker).is_ok()
    });
    let topic = unique("dnsrecall-test");
    let config = write_config(
        &dir,
        &format!(
            "[[outputs]]\nkind = \"kafka\"\nbrokers = [\"{broker}\"]\nname = \"kafka\"\ntopic = \"{topic}\"\n\
             format = \"json\"\nkey = \"qname\"\ncompression = \"gzip\"\nbatch_size = 100\npartitions = 3\n"
        ),
    );
    let serve = serve(&dir, &config, &[]);
    replay(serve.dnstap_port);
    let name = "kafka";
    wait_until("the records", Duration::from_secs(60), || {
        metric(
            &serve.server,
            "dnsrecall_output_written_total",
            &[("output", name)],
        ) >= expected.len() as u64
    });
    assert!(
        serve.server.stop(),
        "serve did not exit 0: {}",
        log_of(&dir)
    );
    let output = Command::new(test_python())
        .args([
            "-c",
            CONSUMER,
            &broker,
            &topic,
            &unique("group"),
            &expected.len().to_string(),
        ])
        .output()
        .expect("python with confluent-kafka");
    assert!(
        output.status.success(),
        "consumer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let records: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<Seen> = records
        .iter()
        .map(|r| seen_json(r["value"].as_str().unwrap()))
        .collect();
    assert_eq!(sorted(seen), sorted(expected.clone()));
    // Keyed by query name: the key is the record's qname, and one name
    // always lands in one partition.
    let mut partition_of: BTreeMap<String, i64> = BTreeMap::new();
    for record in &records {
        let value: serde_json::Value =
            serde_json::from_str(record["value"].as_str().unwrap()).unwrap();
        assert_eq!(record["key"], value["qname"]);
        let partition = record["partition"].as_i64().unwrap();
        let first = partition_of
            .entry(record["key"].as_str().unwrap().to_string())
            .or_insert(partition);
        assert_eq!(*first, partition);
    }
    let partitions: std::collections::BTreeSet<i64> = partition_of.values().copied().collect();
    assert!(partitions.len() > 1, "names spread over the partitions");
}
