//! The real `dnsdbq` command-line client (Debian package `dnsdbq`, built
//! from Farsight's sources, unmodified) against `dnsrecall serve`: rrset and
//! rdata lookups, left-hand wildcards, CIDR, time fences, summarize, the v1
//! protocol and a refused key, over the repository's sample data.

mod util;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use util::{Server, TestDir};

const KEY: &str = "dnsdbq-test-key-1";

/// Runs dnsdbq with `args` against `server`, with an empty HOME so no
/// personal configuration file is read.
fn dnsdbq(dir: &TestDir, server: &Server, key: &str, args: &[&str]) -> Output {
    Command::new("dnsdbq")
        .args(args)
        .env("DNSDB_SERVER", server.url())
        .env("DNSDB_API_KEY", key)
        .env("HOME", dir.path("home"))
        .env_remove("DNSDBQ_SYSTEM")
        .output()
        .expect("dnsdbq is installed by scripts/test.sh (Debian package dnsdbq)")
}

/// The JSON objects dnsdbq printed with `-j`.
fn objects(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "dnsdbq failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// (rrname, rrtype, first rdata, count) of each object, sorted.
fn rows(objects: &[Value]) -> Vec<(String, String, String, u64)> {
    let mut rows: Vec<_> = objects
        .iter()
        .map(|o| {
            (
                o["rrname"].as_str().expect("rrname").to_string(),
                o["rrtype"].as_str().expect("rrtype").to_string(),
                o["rdata"][0].as_str().expect("rdata array").to_string(),
                o["count"].as_u64().expect("count"),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn row(name: &str, rrtype: &str, rdata: &str, count: u64) -> (String, String, String, u64) {
    (name.into(), rrtype.into(), rdata.into(), count)
}

#[test]
fn dnsdbq_client_works_unmodified() {
    let dir = TestDir::new();
    std::fs::create_dir_all(dir.path("home")).expect("home");
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.cof.ndjson");
    let summary = dir.import(&[sample.as_path()]);
    assert_eq!(summary["records"], 18);
    let config = dir.path("dnsrecall.toml");
    std::fs::write(&config, format!("[api]\napi_keys = [\"{KEY}\"]\n")).expect("config");
    let server = dir.serve(&["--config", config.to_str().expect("path")]);
    let run = |args: &[&str]| objects(&dnsdbq(&dir, &server, KEY, args));

    // rrset lookup with a type: rdata as arrays, trailing-dot names.
    let www = run(&["-r", "www.example.com/A", "-j"]);
    assert_eq!(
        rows(&www),
        [
            row("www.example.com.", "A", "192.0.2.10", 42),
            row("www.example.com.", "A", "192.0.2.11", 17),
        ]
    );
    assert_eq!(www[0]["time_first"].as_u64(), Some(1_700_000_000));

    // Left-hand wildcard.
    assert_eq!(
        rows(&run(&["-r", "*.example.com/A", "-j"])),
        [
            row("mail.example.com.", "A", "192.0.2.25", 30),
            row("www.example.com.", "A", "192.0.2.10", 42),
            row("www.example.com.", "A", "192.0.2.11", 17),
        ]
    );

    // Inverse: CIDR and name.
    assert_eq!(
        rows(&run(&["-i", "192.0.2.0/24", "-j"])),
        [
            row("mail.example.com.", "A", "192.0.2.25", 30),
            row("old.example.org.", "A", "192.0.2.10", 8),
            row("www.example.com.", "A", "192.0.2.10", 42),
            row("www.example.com.", "A", "192.0.2.11", 17),
        ]
    );
    assert_eq!(
        rows(&run(&["-n", "www.example.com", "-j"])),
        [row(
            "10.2.0.192.in-addr.arpa.",
            "PTR",
            "www.example.com.",
            5
        )]
    );

    // Time fences, complete (strict) matching: only the sighting that
    // ended before 2022 (old.example.org A 203.0.113.5, 1600000000 ..
    // 1610000000), not the later one.
    assert_eq!(
        rows(&run(&[
            "-r",
            "old.example.org",
            "-B",
            "2022-01-01",
            "-c",
            "-j"
        ])),
        [row("old.example.org.", "A", "203.0.113.5", 2)]
    );
    assert!(run(&["-r", "www.example.com", "-A", "2023-11-15", "-c", "-j"]).is_empty());

    // Summarize: one object over the three www records.
    let summary = run(&["-V", "summarize", "-r", "www.example.com", "-j"]);
    assert_eq!(summary.len(), 1, "{summary:?}");
    assert_eq!(summary[0]["count"].as_u64(), Some(42 + 17 + 9));
    assert_eq!(summary[0]["num_results"].as_u64(), Some(3));
    assert_eq!(summary[0]["time_first"].as_u64(), Some(1_700_000_000));
    assert_eq!(summary[0]["time_last"].as_u64(), Some(1_700_090_000));

    // The v1 protocol.
    assert_eq!(
        rows(&run(&["-u", "dnsdb1", "-r", "www.example.com/A", "-j"])),
        rows(&www)
    );

    // Text output, dig style.
    let text = dnsdbq(&dir, &server, KEY, &["-r", "cdn.example.com"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains(";; count: 250")
            && text.contains("cdn.example.com.  CNAME  edge.example.net."),
        "{text}"
    );

    // A wrong key: refused, nothing printed as data.
    let refused = dnsdbq(
        &dir,
        &server,
        "not-a-key-0000",
        &["-r", "www.example.com", "-j"],
    );
    let said: BTreeSet<String> = String::from_utf8_lossy(&refused.stderr)
        .lines()
        .chain(String::from_utf8_lossy(&refused.stdout).lines())
        .map(str::to_string)
        .collect();
    assert!(
        said.iter().any(|l| l.contains("403")),
        "dnsdbq reports the 403: {said:?}"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("\"rrname\""));
}
