//! dnstap end to end, with real peers on loopback only: `import` of the
//! shared Frame Streams files, `fstrm_replay` into `serve --dnstap-tcp` /
//! `--dnstap-unix`, a live unbound logging to us (unix bidirectional and
//! unidirectional, TCP), hostile input next to a well-behaved sender, and a
//! truncated file.
//!
//! Expected records come from the `.expected.jsonl` files next to the
//! captures (written with dnspython): every `kind: rr` line of a
//! `*_RESPONSE` layer, class IN, is one sighting of (rrname lower-cased,
//! rrtype, rdata). Both sides go through [`norm_rdata`] before comparing.
//!
//! Legitimate differences, one by one (all in `norm_rdata`):
//! 1. RRSIG inception/expiration: dnspython prints `YYYYMMDDHHMMSS`, we
//!    print epoch seconds (both are RFC 4034 §3.2 presentation forms) —
//!    14-digit times are converted to epoch seconds.
//! 2. Base64 (RRSIG signature, DNSKEY key) and hex (DS digest, TLSA, SSHFP
//!    fingerprint): dnspython splits them in 32/128-character chunks, we
//!    print one token, `domain` wraps hex in `( … )` — tails are joined and
//!    parentheses dropped.
//! 3. Hex and base32hex letter case (TLSA, SSHFP, NSEC3 salt and next
//!    hash): dnspython lower-case, we upper-case — everything is compared
//!    lower-cased (base64 included: a case-only difference in a signature is
//!    not something the test could produce by accident).
//! 4. SVCB/HTTPS parameter values: dnspython quotes them (`alpn="h2"`) —
//!    double quotes are dropped for those two types.
//! 5. LOC sizes/altitude: dnspython `10000.00m`, we `10000m` — numbers with
//!    an `m` are compared as numbers.
//! 6. Names inside rdata: dnspython always writes the trailing dot; our SRV
//!    target is written without it (core rendering, reported to the lead) —
//!    one trailing dot per token is ignored (not for TXT, whose strings are
//!    compared verbatim).
//! 7. Records of class CH (`version.bind`, `id.server` in the auth capture)
//!    and the OPT/TSIG pseudo-records are not passive DNS records: excluded.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{Server, TestDir, encode, free_port, test_data};

type RecordKey = (String, String, String);

const CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";

fn dnstap_dir() -> PathBuf {
    test_data().join("dnstap")
}

/// The Frame Streams files of the shared data (bind9's files are raw
/// protobuf, not Frame Streams).
fn frame_stream_files() -> Vec<PathBuf> {
    let dir = dnstap_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("unbound"))
        .expect("unbound dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "dnstap"))
        .collect();
    files.sort();
    files.push(dir.join("go-dnscollector/dnstap.fstrm"));
    assert_eq!(files.len(), 4, "{files:?}");
    files
}

fn expected_path(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.expected.jsonl", file.display()))
}

//---- normalisation (see the module documentation) ----

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn rrsig_time(token: &str) -> String {
    if token.len() == 14 && token.bytes().all(|b| b.is_ascii_digit()) {
        let n = |a: usize, b: usize| token[a..b].parse::<i64>().unwrap();
        let days = days_from_civil(n(0, 4), n(4, 6), n(6, 8));
        (days * 86_400 + n(8, 10) * 3600 + n(10, 12) * 60 + n(12, 14)).to_string()
    } else {
        token.to_string()
    }
}

fn norm_rdata(rrtype: &str, rdata: &str) -> String {
    if rrtype == "TXT" || rrtype == "SPF" {
        return rdata.to_string();
    }
    let lower = rdata.to_ascii_lowercase();
    let lower = if rrtype == "SVCB" || rrtype == "HTTPS" {
        lower.replace('"', "")
    } else {
        lower
    };
    let mut tokens: Vec<String> = lower
        .split_whitespace()
        .filter(|t| *t != "(" && *t != ")")
        .map(|t| {
            if t.len() > 1 {
                t.strip_suffix('.').unwrap_or(t).to_string()
            } else {
                t.to_string()
            }
        })
        .collect();
    let join_tail = |tokens: &mut Vec<String>, from: usize| {
        if tokens.len() > from {
            let tail: String = tokens.drain(from..).collect();
            tokens.push(tail);
        }
    };
    match rrtype {
        "RRSIG" => {
            for i in [4, 5] {
                if let Some(t) = tokens.get_mut(i) {
                    *t = rrsig_time(t);
                }
            }
            join_tail(&mut tokens, 8);
        }
        "DNSKEY" | "CDNSKEY" | "DS" | "CDS" | "TLSA" => join_tail(&mut tokens, 3),
        "SSHFP" => join_tail(&mut tokens, 2),
        "LOC" => {
            for t in &mut tokens {
                if let Some(number) = t.strip_suffix('m').and_then(|n| n.parse::<f64>().ok()) {
                    *t = format!("{number:.2}m");
                }
            }
        }
        _ => {}
    }
    tokens.join(" ")
}

/// Sightings per record from an `.expected.jsonl`, optionally only frames
/// up to `max_frame`.
fn expected_records(jsonl: &Path, max_frame: Option<u64>) -> BTreeMap<RecordKey, u64> {
    let text = std::fs::read_to_string(jsonl).expect("expected jsonl");
    let mut records = BTreeMap::new();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("json");
        if v["kind"] != "rr"
            || !v["layer"].as_str().unwrap_or("").ends_with("_RESPONSE")
            || v["rrclass"] != "IN"
        {
            continue;
        }
        if let Some(max) = max_frame
            && v["frame"].as_u64().unwrap() > max
        {
            continue;
        }
        let rrtype = v["rrtype"].as_str().unwrap().to_string();
        if rrtype == "OPT" || rrtype == "TSIG" {
            continue;
        }
        let name = v["rrname"].as_str().unwrap().to_ascii_lowercase();
        let name = name.strip_suffix('.').unwrap_or(&name).to_string();
        let rdata = norm_rdata(&rrtype, v["rdata"].as_str().unwrap());
        *records.entry((name, rrtype, rdata)).or_default() += 1;
    }
    records
}

fn merge(into: &mut BTreeMap<RecordKey, u64>, from: BTreeMap<RecordKey, u64>) {
    for (key, count) in from {
        *into.entry(key).or_default() += count;
    }
}

/// Sightings per record as the server answers `/query/{name}` for every
/// name of `expected` (bailiwicks folded together).
fn stored_records(server: &Server, names: &BTreeSet<String>) -> BTreeMap<RecordKey, u64> {
    let mut records = BTreeMap::new();
    for name in names {
        let response = server.get(&format!("/query/{}", encode(name)), &[]);
        assert_eq!(response.status, 200, "{name}: {}", response.body);
        for line in response.lines() {
            assert_eq!(line["rrname"].as_str().unwrap(), name, "{line}");
            let rrtype = line["rrtype"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| line["rrtype"].to_string());
            let rdata = norm_rdata(&rrtype, line["rdata"].as_str().unwrap());
            *records.entry((name.clone(), rrtype, rdata)).or_default() +=
                line["count"].as_u64().unwrap();
        }
    }
    records
}

fn names_of(records: &BTreeMap<RecordKey, u64>) -> BTreeSet<String> {
    records.keys().map(|(name, _, _)| name.clone()).collect()
}

fn assert_same(got: &BTreeMap<RecordKey, u64>, expected: &BTreeMap<RecordKey, u64>, what: &str) {
    let missing: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .collect();
    let extra: Vec<_> = got
        .iter()
        .filter(|(k, _)| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} records expected, {} stored\nexpected but not stored (or other count): {missing:#?}\nstored but not expected: {extra:#?}\nstored counts: {:#?}",
        expected.len(),
        got.len(),
        missing.iter().map(|(k, _)| got.get(*k)).collect::<Vec<_>>()
    );
}

//---- serve helpers ----

/// `serve` with stderr kept in `serve.log` (for the shutdown summary).
fn serve_logged(dir: &TestDir, extra: &[&str]) -> Server {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["serve", "--listen", listen.as_str()];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(dir.path("serve.log")).expect("log file");
    let child = dir
        .command(&args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "serve did not start: {}",
            read_log(dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port }
}

/// The serve log without ANSI colours.
fn read_log(dir: &TestDir) -> String {
    let raw = std::fs::read_to_string(dir.path("serve.log")).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn observations(server: &Server) -> u64 {
    let info: serde_json::Value =
        serde_json::from_str(&server.get("/info", &[]).body).expect("info JSON");
    info["stats"].as_u64().expect("stats")
}

/// Polls `/info` until `stats` reaches `target` (or, without a target, stays
/// put for a second); returns the last value.
fn wait_observations(server: &Server, target: Option<u64>, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    let mut last = observations(server);
    let mut stable_since = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let now = observations(server);
        if target == Some(now) {
            return now;
        }
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if target.is_none() && stable_since.elapsed() > Duration::from_secs(1) {
            return now;
        }
        if Instant::now() > deadline {
            return now;
        }
    }
}

fn replay(file: &Path, target: &[&str]) {
    let output = Command::new("fstrm_replay")
        .args(["-t", CONTENT_TYPE, "-r"])
        .arg(file)
        .args(target)
        .output()
        .expect("fstrm_replay (apt-get install fstrm-bin)");
    assert!(
        output.status.success(),
        "fstrm_replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn wait_for_socket(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "socket {} not created",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

//---- import ----

#[test]
fn import_of_every_frame_streams_file_matches_dnspython() {
    for file in frame_stream_files() {
        let dir = TestDir::new();
        let expected = expected_records(&expected_path(&file), None);
        let summary = dir.import(&[&file]);
        let sightings: u64 = expected.values().sum();
        assert_eq!(
            summary["records"].as_u64(),
            Some(sightings),
            "{}: {summary}",
            file.display()
        );
        assert_eq!(
            summary["rejected_total"].as_u64(),
            Some(0),
            "{}: {summary}",
            file.display()
        );
        assert!(summary["messages"].as_u64().unwrap() >= summary["responses"].as_u64().unwrap());
        let server = dir.serve(&[]);
        assert_eq!(observations(&server), sightings);
        let got = stored_records(&server, &names_of(&expected));
        assert_same(&got, &expected, &file.display().to_string());
    }
}

#[test]
fn truncated_import_keeps_the_frames_before_the_cut() {
    let file = dnstap_dir().join("unbound/unbound_auth.dnstap");
    let bytes = std::fs::read(&file).expect("capture");
    let dir = TestDir::new();
    let cut_file = dir.path("cut.dnstap");
    // Cut inside a data frame, well into the file.
    let cut = bytes.len() * 2 / 3;
    std::fs::write(&cut_file, &bytes[..cut]).unwrap();
    let whole_frames = dnsrecall_dnstap::FileReader::new(&bytes[..cut])
        .take_while(|f| f.is_ok())
        .count() as u64;
    assert!(whole_frames > 100);
    let output = dir
        .command(&["import", "--json-summary"])
        .arg(&cut_file)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("after {whole_frames} frames")),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("summary");
    assert_eq!(
        summary["messages"].as_u64(),
        Some(whole_frames),
        "{summary}"
    );
    assert_eq!(summary["io_errors"].as_u64(), Some(1));
    let expected = expected_records(&expected_path(&file), Some(whole_frames));
    assert_eq!(
        summary["records"].as_u64(),
        Some(expected.values().sum::<u64>()),
        "{summary}"
    );
    let server = dir.serve(&[]);
    assert_same(
        &stored_records(&server, &names_of(&expected)),
        &expected,
        "truncated import",
    );
}

//---- fstrm_replay into serve ----

#[test]
fn fstrm_replay_over_tcp_and_unix() {
    let resolver = dnstap_dir().join("unbound/unbound_resolver.dnstap");
    let auth = dnstap_dir().join("unbound/unbound_auth.dnstap");
    let dir = TestDir::new();
    let dnstap_port = free_port();
    let tcp = format!("127.0.0.1:{dnstap_port}");
    let socket = dir.path("dnstap.sock");
    let server = serve_logged(
        &dir,
        &[
            "--dnstap-tcp",
            &tcp,
            "--dnstap-unix",
            socket.to_str().unwrap(),
        ],
    );
    wait_for_socket(&socket);
    replay(
        &resolver,
        &["-a", "127.0.0.1", "-p", &dnstap_port.to_string()],
    );
    replay(&auth, &["-u", socket.to_str().unwrap()]);
    let mut expected = expected_records(&expected_path(&resolver), None);
    merge(&mut expected, expected_records(&expected_path(&auth), None));
    let sightings: u64 = expected.values().sum();
    assert_eq!(
        wait_observations(&server, Some(sightings), Duration::from_secs(30)),
        sightings,
        "{}",
        read_log(&dir)
    );
    assert_same(
        &stored_records(&server, &names_of(&expected)),
        &expected,
        "replayed",
    );
    let sensors: serde_json::Value = serde_json::from_str(&server.get("/info", &[]).body).unwrap();
    let sensors: BTreeSet<&str> = sensors["sensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sensor_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        sensors,
        BTreeSet::from(["auth.unbound.test", "resolver.unbound.test"])
    );
    assert!(server.stop(), "serve did not exit 0: {}", read_log(&dir));
    let log = read_log(&dir);
    assert!(
        log.contains("dnstap summary") && log.contains("frames=952"),
        "{log}"
    );
    assert!(!socket.exists(), "the unix socket is removed on shutdown");
}

//---- unbound ----

const LOCAL_DATA: &[&str] = &[
    "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 300",
    "example.test. 3600 IN MX 10 mail.example.test.",
    "www.example.test. 300 IN A 192.0.2.10",
    "www.example.test. 300 IN A 192.0.2.11",
    "www.example.test. 300 IN AAAA 2001:db8::10",
    "mail.example.test. 300 IN A 192.0.2.25",
    "txt.example.test. 60 IN TXT \"hello world\"",
];

const QUERIES: &[(&str, &str)] = &[
    ("example.test", "MX"),
    ("www.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("mail.example.test", "A"),
    ("txt.example.test", "TXT"),
];

enum Tap<'a> {
    Unix { path: &'a Path, bidirectional: bool },
    Tcp(u16),
}

struct Unbound(Child);

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// unbound fenced like gen_unbound_dnstap.sh: loopback interface only,
/// no recursion anywhere (do-not-query-address for all of v4 and v6),
/// answers from local-data.
fn start_unbound(dir: &TestDir, dns_port: u16, tap: Tap) -> Unbound {
    let work = dir.dir.path();
    std::fs::write(work.join("empty.hints"), "").unwrap();
    let mut conf = format!(
        "server:\n  verbosity: 1\n  interface: 127.0.0.1@{dns_port}\n  port: {dns_port}\n  do-ip4: yes\n  do-ip6: no\n\
         do-udp: yes\n  do-tcp: yes\n  num-threads: 1\n  access-control: 127.0.0.0/8 allow\n  chroot: \"\"\n  username: \"\"\n\
         directory: \"{w}\"\n  pidfile: \"{w}/unbound.pid\"\n  use-syslog: no\n  logfile: \"{w}/unbound.log\"\n\
         module-config: \"iterator\"\n  do-not-query-localhost: yes\n  do-not-query-address: 0.0.0.0/0\n\
         do-not-query-address: ::/0\n  root-hints: \"{w}/empty.hints\"\n  hide-identity: no\n\
         identity: \"live.unbound.test\"\n  local-zone: \"test.\" nodefault\n  local-zone: \"example.test.\" static\n",
        w = work.display()
    );
    for data in LOCAL_DATA {
        conf.push_str(&format!("  local-data: '{data}'\n"));
    }
    conf.push_str(
        "dnstap:\n  dnstap-enable: yes\n  dnstap-send-identity: yes\n  dnstap-send-version: yes\n",
    );
    conf.push_str("  dnstap-identity: \"live.unbound.test\"\n");
    conf.push_str(
        "  dnstap-log-client-query-messages: yes\n  dnstap-log-client-response-messages: yes\n",
    );
    match tap {
        Tap::Unix {
            path,
            bidirectional,
        } => {
            conf.push_str(&format!("  dnstap-socket-path: \"{}\"\n", path.display()));
            conf.push_str(&format!(
                "  dnstap-bidirectional: {}\n",
                if bidirectional { "yes" } else { "no" }
            ));
        }
        Tap::Tcp(port) => {
            conf.push_str(&format!(
                "  dnstap-ip: \"127.0.0.1@{port}\"\n  dnstap-tls: no\n"
            ));
        }
    }
    let conf_path = work.join("unbound.conf");
    std::fs::write(&conf_path, &conf).unwrap();
    let check = Command::new("unbound-checkconf")
        .arg(&conf_path)
        .output()
        .expect("unbound-checkconf");
    assert!(
        check.status.success(),
        "{}\n{conf}",
        String::from_utf8_lossy(&check.stdout)
    );
    let child = Command::new("unbound")
        .arg("-d")
        .arg("-c")
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("unbound (apt-get install unbound)");
    let unbound = Unbound(child);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new("kdig")
            .args([
                "+time=1",
                "+retry=0",
                "+short",
                "-p",
                &dns_port.to_string(),
                "@127.0.0.1",
                "mail.example.test",
                "A",
            ])
            .output()
            .expect("kdig (apt-get install knot-dnsutils)");
        if String::from_utf8_lossy(&out.stdout).contains("192.0.2.25") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unbound did not answer: {}",
            std::fs::read_to_string(work.join("unbound.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    unbound
}

/// The local-data records that answer `QUERIES`, normalised.
fn local_data_answers() -> BTreeSet<RecordKey> {
    let mut records = BTreeSet::new();
    for data in LOCAL_DATA {
        let mut parts = data.splitn(5, ' ');
        let name = parts.next().unwrap().trim_end_matches('.').to_string();
        let (_, _, rrtype, rdata) = (
            parts.next(),
            parts.next(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        if QUERIES.iter().any(|(n, t)| *n == name && *t == rrtype) {
            records.insert((name, rrtype.to_string(), norm_rdata(rrtype, rdata)));
        }
    }
    records
}

fn unbound_round(tap_kind: &str) {
    let dir = TestDir::new();
    let dns_port = free_port();
    let socket = dir.path("tap.sock");
    let dnstap_port = free_port();
    let tcp = format!("127.0.0.1:{dnstap_port}");
    let (server, tap) = match tap_kind {
        "tcp" => (
            serve_logged(&dir, &["--dnstap-tcp", &tcp]),
            Tap::Tcp(dnstap_port),
        ),
        kind => {
            let server = serve_logged(&dir, &["--dnstap-unix", socket.to_str().unwrap()]);
            wait_for_socket(&socket);
            (
                server,
                Tap::Unix {
                    path: &socket,
                    bidirectional: kind == "unix-bidirectional",
                },
            )
        }
    };
    let unbound = start_unbound(&dir, dns_port, tap);
    let mut answered = BTreeSet::new();
    for (name, rrtype) in QUERIES {
        for transport in ["+notcp", "+tcp"] {
            let out = Command::new("kdig")
                .args([
                    "+time=2",
                    "+retry=0",
                    "+short",
                    transport,
                    "-p",
                    &dns_port.to_string(),
                    "@127.0.0.1",
                    name,
                    rrtype,
                ])
                .output()
                .expect("kdig");
            for line in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                answered.insert((
                    name.to_string(),
                    rrtype.to_string(),
                    norm_rdata(rrtype, line),
                ));
            }
        }
    }
    assert_eq!(
        answered,
        local_data_answers(),
        "unbound answered what was configured"
    );
    // The start-up probe answered one more A record.
    let sightings = 1 + 2 * answered.len() as u64;
    let got = wait_observations(&server, Some(sightings), Duration::from_secs(20));
    drop(unbound);
    assert_eq!(got, sightings, "{tap_kind}: {}", read_log(&dir));
    let names: BTreeSet<String> = QUERIES.iter().map(|(n, _)| n.to_string()).collect();
    let stored: BTreeSet<RecordKey> = stored_records(&server, &names).into_keys().collect();
    assert_eq!(stored, answered, "{tap_kind}");
    let body = server.get("/query/www.example.test", &[]).body;
    assert!(
        body.contains("\"sensor_id\":\"live.unbound.test\""),
        "{body}"
    );
    assert!(server.stop(), "{}", read_log(&dir));
}

#[test]
fn unbound_unix_bidirectional() {
    unbound_round("unix-bidirectional");
}

#[test]
fn unbound_unix_unidirectional() {
    unbound_round("unix-unidirectional");
}

#[test]
fn unbound_tcp() {
    unbound_round("tcp");
}

//---- hostile input ----

fn start_frame() -> Vec<u8> {
    let mut out = Vec::new();
    let ct = CONTENT_TYPE.as_bytes();
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&(12 + ct.len() as u32).to_be_bytes());
    out.extend_from_slice(&2u32.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&(ct.len() as u32).to_be_bytes());
    out.extend_from_slice(ct);
    out
}

fn stop_frame() -> Vec<u8> {
    [0u32, 4, 3].iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn dnstap_response(name_label: &str, address: [u8; 4], bad_pointer: bool) -> Vec<u8> {
    use dnsrecall_dnstap::proto::{Dnstap, Message, dnstap, message};
    use prost::Message as _;
    let mut wire = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    wire.push(name_label.len() as u8);
    wire.extend_from_slice(name_label.as_bytes());
    wire.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
    let pointer = if bad_pointer { 0xf0 } else { 12 };
    wire.extend_from_slice(&[0xc0, pointer, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
    wire.extend_from_slice(&address);
    Dnstap {
        identity: Some(bytes::Bytes::from_static(b"hand-made")),
        version: None,
        extra: None,
        r#type: dnstap::Type::Message as i32,
        message: Some(Message {
            r#type: message::Type::ClientResponse as i32,
            response_time_sec: Some(1_700_000_000),
            response_message: Some(wire.into()),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

#[test]
fn hostile_input_is_counted_and_others_keep_being_served() {
    let dir = TestDir::new();
    let dnstap_port = free_port();
    let tcp = format!("127.0.0.1:{dnstap_port}");
    let socket = dir.path("dnstap.sock");
    let server = serve_logged(
        &dir,
        &[
            "--dnstap-tcp",
            &tcp,
            "--dnstap-unix",
            socket.to_str().unwrap(),
        ],
    );
    wait_for_socket(&socket);

    // A well-behaved sender that stays connected through all of it.
    let mut good = UnixStream::connect(&socket).unwrap();
    good.write_all(&start_frame()).unwrap();
    good.write_all(&data_frame(&dnstap_response(
        "good1",
        [192, 0, 2, 1],
        false,
    )))
    .unwrap();
    // fstrm_replay at the same time, over TCP.
    let resolver = dnstap_dir().join("unbound/unbound_resolver.dnstap");
    let replayer = {
        let resolver = resolver.clone();
        let port = dnstap_port.to_string();
        std::thread::spawn(move || replay(&resolver, &["-a", "127.0.0.1", "-p", &port]))
    };

    let connect = || std::net::TcpStream::connect(("127.0.0.1", dnstap_port)).unwrap();
    // 1. Garbage instead of a handshake.
    let mut garbage = connect();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\xfe\xfd")
        .unwrap();
    // 2. An oversized frame (2 MiB announced, cap 1 MiB).
    let mut oversized = connect();
    oversized.write_all(&start_frame()).unwrap();
    oversized.write_all(&(2u32 << 20).to_be_bytes()).unwrap();
    oversized.write_all(&[0u8; 4096]).unwrap();
    // 3. A frame that is not protobuf, then a valid one on the same connection.
    let mut invalid = connect();
    invalid.write_all(&start_frame()).unwrap();
    invalid.write_all(&data_frame(&[0xff; 32])).unwrap();
    invalid
        .write_all(&data_frame(&dnstap_response(
            "good2",
            [192, 0, 2, 2],
            false,
        )))
        .unwrap();
    invalid.write_all(&stop_frame()).unwrap();
    // 4. A valid dnstap frame whose DNS answer has a compression pointer past the end.
    let mut bad_dns = connect();
    bad_dns.write_all(&start_frame()).unwrap();
    bad_dns
        .write_all(&data_frame(&dnstap_response("bad", [192, 0, 2, 3], true)))
        .unwrap();
    bad_dns.write_all(&stop_frame()).unwrap();

    // The good sender keeps going after all of that.
    good.write_all(&data_frame(&dnstap_response(
        "good3",
        [192, 0, 2, 4],
        false,
    )))
    .unwrap();
    good.write_all(&stop_frame()).unwrap();
    replayer.join().unwrap();
    drop((garbage, oversized, invalid, bad_dns, good));

    let mut expected = expected_records(&expected_path(&resolver), None);
    for (label, last) in [("good1", 1), ("good2", 2), ("good3", 4)] {
        expected.insert(
            (
                format!("{label}.example.test"),
                "A".into(),
                format!("192.0.2.{last}"),
            ),
            1,
        );
    }
    let sightings: u64 = expected.values().sum();
    assert_eq!(
        wait_observations(&server, Some(sightings), Duration::from_secs(30)),
        sightings,
        "{}",
        read_log(&dir)
    );
    assert_same(
        &stored_records(&server, &names_of(&expected)),
        &expected,
        "served next to hostile input",
    );
    assert!(server.get("/query/bad.example.test", &[]).body.is_empty());
    assert!(server.stop(), "{}", read_log(&dir));
    let log = read_log(&dir);
    let summary = log
        .lines()
        .find(|l| l.contains("dnstap summary"))
        .unwrap_or_else(|| panic!("no summary: {log}"));
    // The garbage connection counts as oversized too: "GET " read as a frame
    // length is 1.2 GB.
    for field in [
        "protobuf_errors=1",
        "dns_errors=bad_record=1",
        "oversized=2",
    ] {
        assert!(summary.contains(field), "{field} not in {summary}");
    }
}

/// `[dnstap] allow_public_plaintext` and `idle_timeout_secs` reach the
/// listener: a plain TCP listener on every address is refused at start-up
/// unless opted out; once opted out, a sender that goes silent after its
/// handshake is disconnected after the configured idle time.
#[test]
fn public_listener_rule_and_idle_timeout_come_from_the_config() {
    let dir = TestDir::new();
    let dnstap_port = free_port();
    let config = dir.path("dnsrecall.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            format!("[dnstap]\ntcp = \"0.0.0.0:{dnstap_port}\"\n{extra}"),
        )
        .unwrap();
    };
    let listen = format!("127.0.0.1:{}", free_port());
    let serve_args = [
        "--config",
        config.to_str().unwrap(),
        "serve",
        "--listen",
        &listen,
    ];

    write_config("");
    let mut refused = dir
        .command(&serve_args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = refused.kill();
            panic!("serve with a public plaintext dnstap listener did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(refused.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "serve should refuse: {stderr}");
    assert!(
        stderr.contains("allow_public_plaintext"),
        "the refusal names the opt-out: {stderr}"
    );

    write_config("allow_public_plaintext = true\nidle_timeout_secs = 1\n");
    let log = std::fs::File::create(dir.path("serve.log")).unwrap();
    let server = Server {
        child: dir
            .command(&serve_args)
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
        port: listen.rsplit(':').next().unwrap().parse().unwrap(),
    };
    server.wait_ready();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut silent = loop {
        match std::net::TcpStream::connect(("127.0.0.1", dnstap_port)) {
            Ok(stream) => break stream,
            Err(error) => assert!(Instant::now() < deadline, "dnstap listener: {error}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    silent.write_all(&start_frame()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let closed = match std::io::Read::read(&mut silent, &mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    let waited = started.elapsed();
    assert!(closed, "the silent sender was not disconnected");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "disconnected after {waited:?}, configured 1 s"
    );
    assert!(
        server.stop(),
        "serve did not stop cleanly: {}",
        read_log(&dir)
    );
}
