//! Real dnstap senders besides unbound (#11), each fenced to loopback (DNS
//! on a free 127.0.0.1 port, nothing sent anywhere else) and logging to
//! `dnsrecall serve --dnstap-unix` with a JSON message log
//! (`[[outputs]] kind = "file"`):
//!
//! * BIND 9 (`named`, Debian's bind9, built with dnstap): one zone served
//!   authoritatively with `recursion no`, `dnstap { all; }` over
//!   `dnstap-output unix` (an answer to a stub does not arrive as
//!   AUTH_RESPONSE: `auth response` alone logged nothing);
//! * Knot Resolver (`kresd`, Debian's knot-resolver, its `dnstap` module):
//!   answers every name under example.test itself (`policy.ANSWER`) and
//!   denies the rest, so it never queries anyone;
//! * dnsdist (Debian's dnsdist, `newFrameStreamUnixLogger`): spoofed
//!   answers, no downstream server, security polling off.
//!
//! Queries go to each with `kdig`; the records stored and the names in the
//! message log are compared with what the sender was configured to answer
//! (for BIND, the zone file, parsed here independently of dnsrecall).

mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{Server, TestDir, free_port};

/// The zone, as `name TTL class type rdata` lines (all answers to
/// `QUERIES` come from here).
const ZONE: &[&str] = &[
    "example.test. 300 IN SOA ns1.example.test. hostmaster.example.test. 1 7200 3600 1209600 300",
    "example.test. 300 IN NS ns1.example.test.",
    "ns1.example.test. 300 IN A 127.0.0.1",
    "www.example.test. 300 IN A 192.0.2.80",
    "www.example.test. 300 IN AAAA 2001:db8::80",
    "mail.example.test. 300 IN A 192.0.2.25",
    "example.test. 300 IN MX 10 mail.example.test.",
    "txt.example.test. 300 IN TXT \"bind sender test\"",
];

const QUERIES: &[(&str, &str)] = &[
    ("www.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("mail.example.test", "A"),
    ("example.test", "MX"),
    ("txt.example.test", "TXT"),
];

/// A child process killed on drop (the sender under test).
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_logged(dir: &TestDir, config: &str, extra: &[&str]) -> Server {
    let config_path = dir.path("dnsrecall.toml");
    std::fs::write(&config_path, config).expect("write config");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.path("serve.log")).expect("log file");
    let child = dir
        .command(&[])
        .args(["--config", config_path.to_str().expect("utf-8 path")])
        .args(["serve", "--listen", &listen])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start serve");
    let server = Server { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    server
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool, log: &Path) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(
            Instant::now() < deadline,
            "{what} timed out; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn kdig(port: u16, name: &str, rrtype: &str) -> Vec<String> {
    let output = Command::new("kdig")
        .args([
            "+time=2",
            "+retry=0",
            "+short",
            "-p",
            &port.to_string(),
            "@127.0.0.1",
        ])
        .args([name, rrtype])
        .output()
        .expect("kdig (apt-get install knot-dnsutils)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// `(name without dot, type)` of the zone's records that answer `QUERIES`.
fn expected_records() -> BTreeSet<(String, String)> {
    ZONE.iter()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields[0].trim_end_matches('.');
            let rrtype = fields[3];
            QUERIES
                .iter()
                .any(|(n, t)| *n == name && *t == rrtype)
                .then(|| (name.to_string(), rrtype.to_string()))
        })
        .collect()
}

fn start_named(dir: &TestDir, dns_port: u16, socket: &Path) -> Daemon {
    let work = dir.dir.path();
    let mut zone = String::from("$TTL 300\n");
    for line in ZONE {
        zone.push_str(line);
        zone.push('\n');
    }
    std::fs::write(work.join("example.test.zone"), zone).expect("zone file");
    let conf = format!(
        "options {{\n  directory \"{w}\";\n  pid-file \"{w}/named.pid\";\n  session-keyfile \"{w}/session.key\";\n\
         managed-keys-directory \"{w}\";\n  listen-on port {dns_port} {{ 127.0.0.1; }};\n  listen-on-v6 {{ none; }};\n\
         recursion no;\n  allow-query {{ 127.0.0.1; }};\n  dnssec-validation no;\n  notify no;\n\
         dnstap {{ all; }};\n  dnstap-output unix \"{socket}\";\n  dnstap-identity \"bind.test\";\n\
         dnstap-version none;\n}};\ncontrols {{ }};\n\
         zone \"example.test\" {{ type primary; file \"{w}/example.test.zone\"; }};\n",
        w = work.display(),
        socket = socket.display()
    );
    let conf_path = work.join("named.conf");
    std::fs::write(&conf_path, &conf).expect("named.conf");
    let check = Command::new("named-checkconf")
        .arg(&conf_path)
        .output()
        .expect("named-checkconf (apt-get install bind9)");
    assert!(
        check.status.success(),
        "{}{}\n{conf}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let log = std::fs::File::create(work.join("named.log")).expect("named log");
    let child = Command::new("named")
        .args(["-g", "-n", "1", "-c"])
        .arg(&conf_path)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("named (apt-get install bind9)");
    let named = Daemon(child);
    wait_for(
        "named answering",
        Duration::from_secs(20),
        || kdig(dns_port, "www.example.test", "A") == ["192.0.2.80"],
        &work.join("named.log"),
    );
    named
}

/// Which of `expected` the store answers for the queried names.
fn stored_records(
    server: &Server,
    queries: &[(&str, &str)],
    expected: &BTreeSet<(String, String)>,
) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (name, _) in queries {
        for line in server.get(&format!("/query/{name}"), &[]).lines() {
            let rrname = line["rrname"]
                .as_str()
                .unwrap_or_default()
                .trim_end_matches('.');
            let key = (
                rrname.to_string(),
                line["rrtype"].as_str().unwrap_or_default().to_string(),
            );
            if expected.contains(&key) {
                found.insert(key);
            }
        }
    }
    found
}

/// One sender, end to end: `serve --dnstap-unix` with a JSON message log,
/// the sender started by `start` (DNS on a free loopback port, dnstap to
/// the socket), `queries` asked with kdig; then the store must hold
/// `expected` and the log a response from `identity` for every name.
fn sender_round(
    identity: &str,
    queries: &[(&str, &str)],
    expected: &BTreeSet<(String, String)>,
    start: impl FnOnce(&TestDir, u16, &Path) -> Daemon,
) {
    let dir = TestDir::new();
    let socket = dir.path("tap.sock");
    let messages = dir.path("messages.json");
    let config = format!(
        "[[outputs]]\nkind = \"file\"\nformat = \"json\"\ntarget = \"{}\"\n",
        messages.display()
    );
    let server = serve_logged(
        &dir,
        &config,
        &["--dnstap-unix", socket.to_str().expect("path")],
    );
    wait_for(
        "the dnstap socket",
        Duration::from_secs(10),
        || socket.exists(),
        &dir.path("serve.log"),
    );
    let dns_port = free_port();
    let sender = start(&dir, dns_port, &socket);
    for (name, rrtype) in queries {
        assert!(
            !kdig(dns_port, name, rrtype).is_empty(),
            "{identity}: {name} {rrtype} answered"
        );
    }
    // Senders flush their dnstap buffers about once a second; the dedup
    // cache holds records until its flush interval or shutdown, so the
    // records are read after SIGTERM below; here only the messages count.
    wait_for(
        "the sender's dnstap messages",
        Duration::from_secs(30),
        || {
            server
                .get("/metrics", &[])
                .body
                .lines()
                .find_map(|l| l.strip_prefix("dnsrecall_ingest_dnstap_responses_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|n| n >= queries.len() as u64)
        },
        &dir.path("serve.log"),
    );
    drop(sender);
    assert!(server.stop(), "serve exits cleanly");
    // Read the store back through a second serve on the same data dir.
    let reader = serve_logged(&dir, "", &[]);
    assert_eq!(
        &stored_records(&reader, queries, expected),
        expected,
        "{identity}: every answered record is stored"
    );
    assert!(reader.stop());

    let logged = std::fs::read_to_string(&messages).expect("message log");
    let answered: BTreeSet<String> = logged
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|l| l["type"] == "response" && l["identity"] == identity)
        .filter_map(|l| {
            l["qname"]
                .as_str()
                .map(|q| q.trim_end_matches('.').to_string())
        })
        .collect();
    for (name, _) in queries {
        assert!(
            answered.contains(*name),
            "{identity}: {name} logged: {logged}"
        );
    }
}

#[test]
fn bind9_over_a_unix_socket() {
    sender_round("bind.test", QUERIES, &expected_records(), start_named);
}

//---- Knot Resolver ----

/// The names kresd and dnsdist answer themselves (every name under
/// example.test gets 192.0.2.80 and 2001:db8::80).
const SPOOFED_QUERIES: &[(&str, &str)] = &[
    ("www.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("mail.example.test", "A"),
];

fn start_kresd(dir: &TestDir, dns_port: u16, socket: &Path) -> Daemon {
    let work = dir.dir.path();
    let config = format!(
        "net.listen('127.0.0.1', {dns_port}, {{ kind = 'dns' }})\n\
         cache.size = 10 * MB\n\
         modules.load('dnstap')\n\
         dnstap.config({{ socket_path = '{socket}', identity = 'kresd.test',\n\
           client = {{ log_queries = true, log_responses = true }} }})\n\
         policy.add(policy.suffix(policy.ANSWER({{\n\
           [kres.type.A] = {{ rdata = kres.str2ip('192.0.2.80'), ttl = 300 }},\n\
           [kres.type.AAAA] = {{ rdata = kres.str2ip('2001:db8::80'), ttl = 300 }},\n\
         }}, true), {{ todname('example.test.') }}))\n\
         policy.add(policy.all(policy.DENY))\n",
        socket = socket.display()
    );
    let config_path = work.join("kresd.lua");
    std::fs::write(&config_path, config).expect("kresd config");
    let rundir = work.join("kresd");
    std::fs::create_dir_all(&rundir).expect("kresd run dir");
    let log = std::fs::File::create(work.join("kresd.log")).expect("kresd log");
    let child = Command::new("kresd")
        .arg("-n")
        .arg("-c")
        .arg(&config_path)
        .arg(&rundir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("kresd (apt-get install knot-resolver)");
    let kresd = Daemon(child);
    wait_for(
        "kresd answering",
        Duration::from_secs(20),
        || kdig(dns_port, "www.example.test", "A") == ["192.0.2.80"],
        &work.join("kresd.log"),
    );
    kresd
}

#[test]
fn knot_resolver_over_a_unix_socket() {
    let expected = SPOOFED_QUERIES
        .iter()
        .map(|(name, rrtype)| (name.to_string(), rrtype.to_string()))
        .collect();
    sender_round("kresd.test", SPOOFED_QUERIES, &expected, start_kresd);
}

//---- dnsdist ----

/// dnsdist with no downstream server: it spoofs every name under
/// example.test (`SpoofAction`), refuses the rest, and its security-status
/// poll is off (`setSecurityPollSuffix('')`), so nothing leaves the host.
/// Queries are logged by `DnstapLogAction`, the answers it gave itself by
/// `DnstapLogResponseAction` on the self-answered chain, both to a
/// `newFrameStreamUnixLogger`.
fn start_dnsdist(dir: &TestDir, dns_port: u16, socket: &Path) -> Daemon {
    let work = dir.dir.path();
    let config = format!(
        "setSecurityPollSuffix('')\n\
         setLocal('127.0.0.1:{dns_port}')\n\
         local tap = newFrameStreamUnixLogger('{socket}')\n\
         addAction(AllRule(), DnstapLogAction('dnsdist.test', tap))\n\
         addSelfAnsweredResponseAction(AllRule(), DnstapLogResponseAction('dnsdist.test', tap))\n\
         local zone = newSuffixMatchNode()\n\
         zone:add('example.test.')\n\
         addAction(SuffixMatchNodeRule(zone), SpoofAction({{'192.0.2.80', '2001:db8::80'}}))\n\
         addAction(AllRule(), RCodeAction(DNSRCode.REFUSED))\n",
        socket = socket.display()
    );
    let config_path = work.join("dnsdist.conf");
    std::fs::write(&config_path, config).expect("dnsdist config");
    let log = std::fs::File::create(work.join("dnsdist.log")).expect("dnsdist log");
    let child = Command::new("dnsdist")
        .args(["--supervised", "--disable-syslog", "-C"])
        .arg(&config_path)
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("dnsdist (apt-get install dnsdist)");
    let dnsdist = Daemon(child);
    wait_for(
        "dnsdist answering",
        Duration::from_secs(20),
        || kdig(dns_port, "www.example.test", "A") == ["192.0.2.80"],
        &work.join("dnsdist.log"),
    );
    dnsdist
}

#[test]
fn dnsdist_over_a_unix_socket() {
    let expected = SPOOFED_QUERIES
        .iter()
        .map(|(name, rrtype)| (name.to_string(), rrtype.to_string()))
        .collect();
    sender_round("dnsdist.test", SPOOFED_QUERIES, &expected, start_dnsdist);
}
