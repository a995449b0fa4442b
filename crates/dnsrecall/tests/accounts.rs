//! User accounts and quotas against a real `serve`: `dnsrecall user add`,
//! HTTP Basic with a user's password beside Basic with an API key (PyPDNS),
//! per-user and DNSDB quotas that hold across a restart (SIGTERM, and a
//! kill -9 after a timed save), and a corrupt quota state file that is
//! counted, not fatal (issue 10, item 6).

mod util;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use util::{Server, TestDir};

const KEY: &str = "pypdns-style-key-123";
const DNSDB_KEY: &str = "dnsdb-quota-key-456";

/// `dnsrecall user add ARGS...` with `password` on standard input.
fn user_add(dir: &TestDir, args: &[&str], password: &str) -> std::process::Output {
    let mut child = dir
        .command(&[&["user", "add"], args].concat())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run user add");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    child.wait_with_output().expect("user add")
}

fn basic(credentials: &str) -> String {
    format!("Basic {}", base64(credentials.as_bytes()))
}

/// Standard base64 with padding (the test has no base64 crate).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sha256_hex(text: &str) -> String {
    let output = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8(output.stdout)
        .expect("hex")
        .split_whitespace()
        .next()
        .expect("digest")
        .to_string()
}

/// Status of `GET path` with `Authorization: authorization`.
fn status(server: &Server, path: &str, authorization: &str) -> u16 {
    server.get(path, &[("Authorization", authorization)]).status
}

fn dnsdb_lookup(server: &Server) -> u16 {
    server
        .get(
            "/dnsdb/v2/lookup/rrset/name/example.net",
            &[("X-API-Key", DNSDB_KEY)],
        )
        .status
}

/// A test directory with users alice (no quota), bob (2 a day), carol (1 a
/// day), an API key and a DNSDB key with 3 lookups a day; quota state saved
/// every second.
fn setup() -> (TestDir, String) {
    let dir = TestDir::new();
    let users = dir.path("users");
    let users = users.to_str().expect("path");
    for (name, password, extra) in [
        ("alice", "correct horse battery", &[][..]),
        ("bob", "bob's password", &["--quota", "2"][..]),
        ("carol", "carol's password", &["--quota", "1"][..]),
    ] {
        let output = user_add(&dir, &[&[name, "--file", users], extra].concat(), password);
        assert!(
            output.status.success(),
            "user add {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let keys = dir.path("dnsdb-keys");
    std::fs::write(&keys, format!("{} quota=3\n", sha256_hex(DNSDB_KEY))).expect("keys file");
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\napi_keys = [\"{KEY}\"]\nusers_file = \"users\"\ndnsdb_keys_file = \"dnsdb-keys\"\n\
             quota_state_interval_secs = 1\n"
        ),
    )
    .expect("config");
    let config = config.to_str().expect("path").to_string();
    (dir, config)
}

#[test]
fn user_add_writes_argon2_lines_and_refuses_mistakes() {
    let (dir, _) = setup();
    let users = std::fs::read_to_string(dir.path("users")).expect("users file");
    let lines: Vec<&str> = users.lines().collect();
    assert_eq!(lines.len(), 3, "{users}");
    assert!(lines[0].starts_with("alice $argon2id$v=19$"), "{users}");
    assert!(lines[1].ends_with(" quota=2"), "{users}");
    assert!(!users.contains("correct horse"), "no password in the file");

    let file = dir.path("users");
    let file = file.to_str().expect("path");
    // The same name again needs --replace.
    let again = user_add(&dir, &["alice", "--file", file], "another one");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("--replace"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let replaced = user_add(&dir, &["alice", "--file", file, "--replace"], "another one");
    assert!(replaced.status.success());
    let after = std::fs::read_to_string(dir.path("users")).expect("users file");
    assert_eq!(after.lines().count(), 3);
    assert_ne!(after.lines().next(), users.lines().next(), "new hash");
    // Bad names, no password, no file.
    assert!(
        !user_add(&dir, &["al:ice", "--file", file], "pw")
            .status
            .success()
    );
    assert!(
        !user_add(&dir, &["dave", "--file", file], "")
            .status
            .success()
    );
    assert!(!user_add(&dir, &["dave"], "pw").status.success());
}

#[test]
fn basic_auth_users_beside_keys() {
    let (dir, config) = setup();
    let server = dir.serve(&["--config", &config]);
    let path = "/pdns/query/www.example.com";

    assert_eq!(server.get(path, &[]).status, 401);
    assert_eq!(status(&server, path, &basic("alice:wrong")), 401);
    assert_eq!(
        status(&server, path, &basic("mallory:correct horse battery")),
        401
    );
    assert_eq!(status(&server, path, &basic("correct horse battery")), 401);
    let unauthorized = server.get(path, &[("Authorization", &basic("alice:wrong"))]);
    let unknown = server.get(path, &[("Authorization", &basic("mallory:x"))]);
    assert_eq!(unauthorized.body, unknown.body, "no user enumeration");

    assert_eq!(
        status(&server, path, &basic("alice:correct horse battery")),
        200
    );
    assert_eq!(
        status(
            &server,
            "/query/example.com",
            &basic("alice:correct horse battery")
        ),
        200
    );
    // PyPDNS basic_auth with the key as password, any user name (a user's
    // included), and the other key forms: unchanged.
    assert_eq!(
        status(&server, path, &basic(&format!("analyst:{KEY}"))),
        200
    );
    assert_eq!(status(&server, path, &basic(&format!("alice:{KEY}"))), 200);
    assert_eq!(status(&server, path, KEY), 200);
    assert_eq!(server.get(path, &[("X-API-Key", KEY)]).status, 200);
    // A user's password is no key.
    assert_eq!(
        server
            .get(path, &[("X-API-Key", "correct horse battery")])
            .status,
        401
    );

    let metrics = server.get("/metrics", &[("X-API-Key", KEY)]).body;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("dnsrecall_http_user_auth_failures_total ") && !l.ends_with(" 0")
        ),
        "{metrics}"
    );

    // `user list` shows names and quotas, never a hash; `user remove`
    // takes effect on the running server's next request.
    let run = |args: &[&str]| {
        dir.command(&[&["--config", config.as_str(), "user"], args].concat())
            .output()
            .expect("run user")
    };
    let listed = run(&["list"]);
    assert!(listed.status.success());
    let table = String::from_utf8_lossy(&listed.stdout).to_string();
    let names: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(names, ["alice", "bob", "carol"], "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("bob") && l.contains(" 2 ")),
        "{table}"
    );
    assert!(!table.contains("argon2"), "{table}");
    assert!(run(&["remove", "alice"]).status.success());
    assert_eq!(
        status(&server, path, &basic("alice:correct horse battery")),
        401,
        "a removed user is refused at once"
    );
    assert_eq!(status(&server, path, &basic(&format!("alice:{KEY}"))), 200);
    let again = run(&["remove", "alice"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("no user"));
    let json = run(&["list", "--json"]);
    let users: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["user"], "bob");
    assert_eq!(users[0]["quota"], 2);
    assert!(server.stop(), "serve exits cleanly");
}

#[test]
fn quotas_survive_a_restart() {
    let (dir, config) = setup();
    let bob = basic("bob:bob's password");
    let carol = basic("carol:carol's password");
    let path = "/query/example.com";

    let server = dir.serve(&["--config", &config]);
    assert_eq!(status(&server, path, &bob), 200);
    assert_eq!(status(&server, path, &bob), 200);
    let refused = server.get(path, &[("Authorization", &bob)]);
    assert_eq!(refused.status, 429);
    assert!(refused.body.contains("daily quota"), "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(dnsdb_lookup(&server), 200);
    assert_eq!(dnsdb_lookup(&server), 200);
    // Graceful restart: the counters are saved at shutdown.
    assert!(server.stop(), "serve exits cleanly");
    assert!(dir.data_dir().join("api-quotas.json").exists());

    let server = dir.serve(&["--config", &config]);
    assert_eq!(status(&server, path, &bob), 429, "bob's quota survived");
    assert_eq!(dnsdb_lookup(&server), 200, "third DNSDB lookup of 3");
    assert_eq!(dnsdb_lookup(&server), 429, "DNSDB quota survived");
    let rate: serde_json::Value = serde_json::from_str(
        &server
            .get("/dnsdb/v2/rate_limit", &[("X-API-Key", DNSDB_KEY)])
            .body,
    )
    .expect("rate_limit JSON");
    assert_eq!(rate["rate"]["remaining"], 0, "{rate}");
    // Alice has no quota; carol uses hers, then the timer saves it and the
    // server is killed without a chance to save again.
    assert_eq!(
        status(&server, path, &basic("alice:correct horse battery")),
        200
    );
    assert_eq!(status(&server, path, &carol), 200);
    std::thread::sleep(Duration::from_millis(2500));
    drop(server); // kill -9

    let server = dir.serve(&["--config", &config]);
    assert_eq!(status(&server, path, &carol), 429, "saved on the timer");
    assert_eq!(status(&server, path, &bob), 429);
    assert!(server.stop());
}

#[test]
fn a_corrupt_quota_state_file_is_counted_not_fatal() {
    let (dir, config) = setup();
    std::fs::create_dir_all(dir.data_dir()).expect("data dir");
    std::fs::write(dir.data_dir().join("api-quotas.json"), b"{\"format\": tru").expect("state");
    let server = dir.serve(&["--config", &config]);
    let bob = basic("bob:bob's password");
    assert_eq!(status(&server, "/query/example.com", &bob), 200);
    let metrics = server.get("/metrics", &[("X-API-Key", KEY)]).body;
    assert!(
        metrics
            .lines()
            .any(|l| l == "dnsrecall_http_quota_state_load_failures_total 1"),
        "{metrics}"
    );
    assert!(server.stop());
    // The next save replaced it with a good file.
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.data_dir().join("api-quotas.json")).expect("state"),
    )
    .expect("state is JSON again");
    assert_eq!(state["used"]["user:bob"], 1, "{state}");
}
