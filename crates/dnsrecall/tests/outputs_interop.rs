//! Interop with the real python dnstap-receiver 4.7 (PyPI, in the test
//! venv named by `DNSRECALL_TEST_PYTHON`, installed by scripts/test.sh):
//! the same unbound dnstap capture is replayed by `fstrm_replay` into
//! dnstap-receiver (text to stdout, JSON to a file) and into `dnsrecall
//! serve` (`[[outputs]]` text and JSON files), and both logs are compared
//! line by line, field by field.
//!
//! Intended differences (everything else must be equal):
//! 1. dnstap-receiver's rcode and type tables have typos and gaps: RCODE 4
//!    is `NOIMP` there (`NOTIMP`, RFC 1035, here), type 52 `TSLA` (`TLSA`
//!    here), and a type missing from its table prints `-` (here
//!    `TYPEnnn`, RFC 3597). The comparison maps theirs onto ours.
//! 2. A message whose DNS payload is shorter than a header is skipped by
//!    dnstap-receiver (it logs an error); here it is logged with `-`
//!    fields. (The capture used has none, so the line counts are equal.)
//! 3. YAML is not compared: dnstap-receiver writes `yaml.dump` documents
//!    without `---` separators (their concatenation is not one valid YAML
//!    stream); ours are separated. The keys are the same as JSON's.
//!
//! Everything else — key names and order, `-` for missing values, the
//! datetime's microsecond rounding, floats (timestamp, latency) printed as
//! Python prints them, latency matching — is expected byte for byte.

mod util;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use util::{Server, TestDir, free_port, test_data};

const CONTENT_TYPE: &str = "protobuf:dnstap.Dnstap";

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn replay_tcp(file: &Path, port: u16) {
    let output = Command::new("fstrm_replay")
        .args(["-t", CONTENT_TYPE, "-r"])
        .arg(file)
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .output()
        .expect("fstrm_replay (apt-get install fstrm-bin)");
    assert!(
        output.status.success(),
        "fstrm_replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// dnstap-receiver on a loopback TCP port: text lines to `text`, JSON lines
/// to `json`.
fn start_receiver(dir: &TestDir, port: u16, text: &Path, json: &Path) -> Killed {
    let config = dir.path("dnstap.conf");
    std::fs::write(
        &config,
        format!(
            "trace:\n  verbose: false\n  file: {trace}\nweb-api:\n  enable: false\n\
             output:\n  stdout:\n    enable: true\n    format: text\n\
             \x20 file:\n    enable: true\n    format: json\n    file: {json}\n    file-max-size: 100M\n    file-count: 1\n",
            trace = dir.path("receiver.trace").display(),
            json = json.display(),
        ),
    )
    .expect("config");
    let stdout = std::fs::File::create(text).expect("text log");
    let child = Command::new(python())
        .args([
            "-c",
            "from dnstap_receiver.receiver import start_receiver; start_receiver()",
        ])
        .arg("-c")
        .arg(&config)
        .args(["-l", "127.0.0.1", "-p", &port.to_string()])
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("run dnstap-receiver (DNSRECALL_TEST_PYTHON: the venv scripts/test.sh makes)");
    let mut child = Killed(child);
    wait_until("dnstap-receiver to listen", Duration::from_secs(20), || {
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "dnstap-receiver exited ({status}); is it in the venv DNSRECALL_TEST_PYTHON names?"
            );
        }
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    child
}

fn start_dnsrecall(dir: &TestDir, port: u16, text: &Path, json: &Path) -> Server {
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!(
            "[dnstap]\ntcp = \"127.0.0.1:{port}\"\nstore = false\n\n\
             [[outputs]]\nkind = \"file\"\nformat = \"text\"\npath = \"{}\"\n\n\
             [[outputs]]\nkind = \"file\"\nformat = \"json\"\npath = \"{}\"\n",
            text.display(),
            json.display()
        ),
    )
    .expect("config");
    let listen = free_port();
    let child = dir
        .command(&[
            "--config",
            config.to_str().unwrap(),
            "serve",
            "--listen",
            &format!("127.0.0.1:{listen}"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let server = Server {
        child,
        port: listen,
    };
    wait_until("dnsrecall to listen", Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    server
}

/// The keys of a JSON object in the order they are written (a
/// `serde_json::Map` may sort them).
fn keys_in_order(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Visitor;
            impl<'de> serde::de::Visitor<'de> for Visitor {
                type Value = Keys;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Keys, A::Error> {
                    let mut keys = Vec::new();
                    while let Some((key, _)) = map.next_entry::<String, serde::de::IgnoredAny>()? {
                        keys.push(key);
                    }
                    Ok(Keys(keys))
                }
            }
            d.deserialize_map(Visitor)
        }
    }
    serde_json::from_str::<Keys>(line).expect("a JSON object").0
}

/// Intended difference 1: dnstap-receiver's names mapped onto ours.
fn their_name(value: &str) -> String {
    match value {
        "NOIMP" => "NOTIMP".to_string(),
        "TSLA" => "TLSA".to_string(),
        other => other.to_string(),
    }
}

fn captures() -> Vec<PathBuf> {
    ["unbound_resolver.dnstap", "unbound_auth.dnstap"]
        .iter()
        .map(|name| test_data().join("dnstap/unbound").join(name))
        .collect()
}

#[test]
fn text_and_json_logs_match_dnstap_receiver() {
    let dir = TestDir::new();
    let (their_text, their_json) = (dir.path("theirs.txt"), dir.path("theirs.json"));
    let (our_text, our_json) = (dir.path("ours.txt"), dir.path("ours.json"));
    let their_port = free_port();
    let receiver = start_receiver(&dir, their_port, &their_text, &their_json);
    let our_port = free_port();
    let server = start_dnsrecall(&dir, our_port, &our_text, &our_json);
    for file in captures() {
        replay_tcp(&file, their_port);
        replay_tcp(&file, our_port);
    }
    // 534 + 418 messages (dnstap-ldns lists them in the .txt files).
    let total: usize = captures()
        .iter()
        .map(|f| {
            read(&PathBuf::from(format!("{}.txt", f.display())))
                .lines()
                .count()
        })
        .sum();
    assert_eq!(total, 952);
    wait_until("both logs", Duration::from_secs(60), || {
        read(&their_json).lines().count() == total
            && read(&their_text).lines().count() == total
            && read(&our_json).lines().count() == total
    });
    assert!(server.stop(), "dnsrecall did not exit cleanly");
    drop(receiver);

    // Text: byte for byte, but for the mapped names.
    let theirs = read(&their_text);
    let ours = read(&our_text);
    let mut compared = 0;
    for (index, (their, our)) in theirs.lines().zip(ours.lines()).enumerate() {
        let their: Vec<String> = their.split(' ').map(their_name).collect();
        let our: Vec<&str> = our.split(' ').collect();
        assert_eq!(our, their, "text line {}", index + 1);
        compared += 1;
    }
    assert_eq!(compared, total);

    // JSON: the same keys in the same order, the same values.
    let theirs = read(&their_json);
    let ours = read(&our_json);
    let mut latencies = 0;
    for (index, (their_line, our_line)) in theirs.lines().zip(ours.lines()).enumerate() {
        let (their, our) = (their_line, our_line);
        let their: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(their).expect("their JSON");
        let our: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(our).expect("our JSON");
        assert_eq!(
            keys_in_order(our_line),
            keys_in_order(their_line),
            "JSON line {}",
            index + 1
        );
        for (key, value) in &their {
            let value = match value {
                serde_json::Value::String(s) => serde_json::Value::String(their_name(s)),
                other => other.clone(),
            };
            assert_eq!(our[key], value, "JSON line {} key {key}", index + 1);
        }
        if our["latency"].is_number() {
            latencies += 1;
        }
    }
    assert!(
        latencies > 100,
        "responses matched to their queries: {latencies}"
    );
}
