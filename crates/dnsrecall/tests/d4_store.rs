//! `[store] kind = "redis"` through the real binary (issue #13): records
//! imported into a private `redis-server` in D4's key schema, then served
//! by `dnsrecall serve` to the D4 API, the PyPDNS client (pip `pypdns`,
//! the venv named by DNSRECALL_TEST_PYTHON) and the DNSDB API, each answer
//! equal to what the test computes from the lines it wrote; lookups the
//! schema cannot answer (wildcards, CIDR) are a 501 naming rocksdb.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use dnsrecall_testkit::redis::RedisServer;
use util::TestDir;

/// (rrname without dot, rrtype, rdata) → (first, last, count).
type Expected = BTreeMap<(String, String, String), (u64, u64, u64)>;

/// Sightings with repeats and out-of-order times, as COF lines, and what a
/// store must hold for them (min first, max last, summed count).
fn sightings() -> (String, Expected) {
    let mut lines = String::new();
    let mut expected = Expected::new();
    for i in 0..300u64 {
        let name = format!("n{}.d4store.example", i % 40);
        let (rrtype, rdata) = match i % 4 {
            0 | 1 => ("A", format!("198.51.100.{}", i % 7)),
            2 => ("AAAA", format!("2001:db8::{:x}", i % 5 + 1)),
            _ => ("CNAME", format!("target{}.d4store.example", i % 3)),
        };
        // Later lines are not later in time: min/max must not follow order.
        let first = 1_700_000_000 + (i * 7919) % 5000;
        let last = first + (i * 31) % 900;
        let count = 1 + i % 3;
        lines.push_str(&format!(
            "{{\"rrname\":\"{name}\",\"rrtype\":\"{rrtype}\",\"rdata\":\"{rdata}\",\"time_first\":{first},\"time_last\":{last},\"count\":{count}}}\n"
        ));
        let slot = expected
            .entry((name, rrtype.to_string(), rdata))
            .or_insert((u64::MAX, 0, 0));
        slot.0 = slot.0.min(first);
        slot.1 = slot.1.max(last);
        slot.2 += count;
    }
    (lines, expected)
}

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| {
        let home = std::env::var("HOME").unwrap_or_default();
        format!("{home}/.cache/dnsrecall-test-venv/bin/python")
    })
}

fn redis_config(dir: &TestDir, redis: &RedisServer) -> String {
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!("[store]\nkind = \"redis\"\nurl = \"{}\"\n", redis.url(0)),
    )
    .unwrap();
    config.to_string_lossy().into_owned()
}

/// D4/COF answer lines → the same shape as [`Expected`].
fn cof_rows(lines: &[serde_json::Value]) -> Expected {
    lines
        .iter()
        .map(|line| {
            let text = |key: &str| line[key].as_str().unwrap_or_default().to_string();
            let number = |key: &str| line[key].as_u64().unwrap_or_default();
            (
                (
                    text("rrname").trim_end_matches('.').to_string(),
                    text("rrtype"),
                    text("rdata").trim_end_matches('.').to_string(),
                ),
                (number("time_first"), number("time_last"), number("count")),
            )
        })
        .collect()
}

/// DNSDB SAF lines → the same shape (rdata arrays of one element).
fn saf_rows(body: &str) -> Expected {
    let mut rows = Expected::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let Some(object) = value.get("obj") else {
            continue;
        };
        let rdata = match &object["rdata"] {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| i.as_str().unwrap().to_string())
                .collect::<Vec<_>>(),
            other => vec![other.as_str().unwrap().to_string()],
        };
        for rdata in rdata {
            rows.insert(
                (
                    object["rrname"]
                        .as_str()
                        .unwrap()
                        .trim_end_matches('.')
                        .to_string(),
                    object["rrtype"].as_str().unwrap().to_string(),
                    rdata.trim_end_matches('.').to_string(),
                ),
                (
                    object["time_first"].as_u64().unwrap(),
                    object["time_last"].as_u64().unwrap(),
                    object["count"].as_u64().unwrap(),
                ),
            );
        }
    }
    rows
}

const PYPDNS: &str = r#"
import json, sys
import pypdns
url, name, address = sys.argv[1], sys.argv[2], sys.argv[3]
client = pypdns.PyPDNS(url=url + "/pdns/query")
out = {}
records = client.rfc_query(name)
for r in records:
    r.record  # PyPDNS's strict type checks
out["name"] = [[r.rrname, r.rrtype, r.rdata, r.time_first, r.time_last, r.count] for r in records]
out["address"] = sorted(r.rrname for r in client.rfc_query(address))
print(json.dumps(out))
"#;

#[test]
fn serve_on_redis_answers_d4_pypdns_and_dnsdb_exact_lookups_and_refuses_wildcards() {
    let redis = RedisServer::start();
    let dir = TestDir::new();
    let (lines, expected) = sightings();
    let input = dir.path("sightings.ndjson");
    std::fs::write(&input, lines).unwrap();
    let config = redis_config(&dir, &redis);

    let imported = dir
        .command(&["--config", &config, "import", "--json-summary"])
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    // The records are in D4's keys (one o: key per distinct record).
    let o_keys = dnsrecall_testkit::redis::redis_cli(&[
        "-p",
        &redis.port().to_string(),
        "--scan",
        "--pattern",
        "o:*",
    ]);
    assert_eq!(o_keys.lines().count(), expected.len());

    let server = dir.serve(&["--config", &config]);
    let name = "n5.d4store.example";
    let of_name: Expected = expected
        .iter()
        .filter(|((n, _, _), _)| n == name)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(of_name.len() >= 3, "{of_name:?}");

    // D4 API.
    let d4 = server.get(&format!("/query/{name}"), &[]);
    assert_eq!(d4.status, 200, "{}", d4.body);
    assert_eq!(cof_rows(&d4.lines()), of_name);
    let address = "198.51.100.3";
    let of_address: BTreeSet<String> = expected
        .keys()
        .filter(|(_, t, r)| t == "A" && r == address)
        .map(|(n, _, _)| n.clone())
        .collect();
    let by_address = server.get(&format!("/query/{address}"), &[]);
    assert_eq!(by_address.status, 200, "{}", by_address.body);
    let names: BTreeSet<String> = cof_rows(&by_address.lines())
        .keys()
        .map(|(n, _, _)| n.clone())
        .collect();
    assert_eq!(names, of_address);

    // PyPDNS client.
    let output = Command::new(python())
        .args(["-c", PYPDNS, &server.url(), name, address])
        .output()
        .expect("run python (DNSRECALL_TEST_PYTHON: a venv with pypdns; scripts/test.sh)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pypdns: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let rows: Expected = pypdns["name"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                (
                    row[0].as_str().unwrap().trim_end_matches('.').to_string(),
                    row[1].as_str().unwrap().to_string(),
                    row[2].as_str().unwrap().trim_end_matches('.').to_string(),
                ),
                (
                    row[3].as_u64().unwrap(),
                    row[4].as_u64().unwrap(),
                    row[5].as_u64().unwrap(),
                ),
            )
        })
        .collect();
    assert_eq!(rows, of_name);
    let pypdns_names: BTreeSet<String> = pypdns["address"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().trim_end_matches('.').to_string())
        .collect();
    assert_eq!(pypdns_names, of_address);

    // DNSDB exact name and address lookups.
    let rrset = server.get(&format!("/dnsdb/v2/lookup/rrset/name/{name}"), &[]);
    assert_eq!(rrset.status, 200, "{}", rrset.body);
    assert!(
        rrset.body.ends_with("{\"cond\":\"succeeded\"}\n"),
        "{}",
        rrset.body
    );
    assert_eq!(saf_rows(&rrset.body), of_name);
    let rdata = server.get(&format!("/dnsdb/v2/lookup/rdata/ip/{address}"), &[]);
    assert_eq!(rdata.status, 200, "{}", rdata.body);
    let names: BTreeSet<String> = saf_rows(&rdata.body)
        .keys()
        .map(|(n, _, _)| n.clone())
        .collect();
    assert_eq!(names, of_address);

    // What the schema cannot answer: a 501 naming the backend that can.
    for path in [
        "/dnsdb/v2/lookup/rrset/name/*.d4store.example",
        "/dnsdb/v2/lookup/rrset/name/n5.d4store.*",
        "/dnsdb/v2/lookup/rdata/ip/198.51.100.0,24",
        "/dnsdb/v2/summarize/rrset/name/*.d4store.example",
        "/lookup/rrset/name/*.d4store.example",
    ] {
        let refused = server.get(path, &[]);
        assert_eq!(refused.status, 501, "{path}: {}", refused.body);
        assert!(
            refused.body.contains("redis") && refused.body.contains("rocksdb"),
            "{path}: {}",
            refused.body
        );
    }
    assert!(server.stop(), "serve exits cleanly on SIGTERM");
}

/// Records of several types without what the D4 schema does not keep
/// (bailiwick, sensor, zone times).
fn migration_lines() -> String {
    let (mut lines, _) = sightings();
    for (rrname, rrtype, rdata) in [
        ("d4store.example", "MX", "10 mx.d4store.example."),
        ("d4store.example", "NS", "ns1.d4store.example."),
        ("d4store.example", "TXT", "\\\"v=spf1 -all\\\""),
        ("txt.d4store.example", "TXT", "\\\"Mixed Case Text\\\""),
        (
            "d4store.example",
            "SOA",
            "ns1.d4store.example. hostmaster.d4store.example. 1 7200 3600 1209600 300",
        ),
    ] {
        lines.push_str(&format!(
            "{{\"rrname\":\"{rrname}\",\"rrtype\":\"{rrtype}\",\"rdata\":\"{rdata}\",\"time_first\":1700000000,\"time_last\":1700000500,\"count\":4}}\n"
        ));
    }
    lines
}

fn export_lines(dir: &TestDir, data_dir: &std::path::Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_dnsrecall"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("export")
        .current_dir(dir.dir.path())
        .output()
        .unwrap();
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

#[test]
fn rocksdb_to_d4_redis_and_back_gives_the_same_records() {
    let redis = RedisServer::start();
    let dir = TestDir::new();
    let input = dir.path("records.ndjson");
    std::fs::write(&input, migration_lines()).unwrap();
    dir.import(&[&input]);
    let original = export_lines(&dir, &dir.data_dir());
    assert!(original.len() > 100, "{}", original.len());

    let url = redis.url(0);
    let exported = dir.run(&["export", "--to-d4", &url]);
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let summary = String::from_utf8_lossy(&exported.stderr);
    assert!(
        summary.contains(&format!("{} records", original.len())),
        "{summary}"
    );
    // D4's keys: one o: key per record, holding its count.
    let o_keys = dnsrecall_testkit::redis::redis_cli(&[
        "-p",
        &redis.port().to_string(),
        "--scan",
        "--pattern",
        "o:*",
    ]);
    assert_eq!(o_keys.lines().count(), original.len());

    let second = dir.path("second");
    let imported = Command::new(env!("CARGO_BIN_EXE_dnsrecall"))
        .arg("--data-dir")
        .arg(&second)
        .args(["import", "--json-summary", "--from-d4", &url])
        .output()
        .unwrap();
    assert!(
        imported.status.success(),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(summary["records"], original.len() as u64);
    assert_eq!(export_lines(&dir, &second), original);

    // A missing server is an error that names it, not an empty import.
    let gone = Command::new(env!("CARGO_BIN_EXE_dnsrecall"))
        .arg("--data-dir")
        .arg(dir.path("third"))
        .args([
            "import",
            "--from-d4",
            &format!("redis://127.0.0.1:{}/0", dnsrecall_testkit::free_port()),
        ])
        .output()
        .unwrap();
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("D4 database"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
}
