//! The real PyPDNS client (pip `pypdns`, installed by scripts/test.sh in a
//! venv named by DNSRECALL_TEST_PYTHON) against `dnsrecall serve`: plain
//! queries with HTTP Basic and token auth, type filters, strict record
//! typing, and dribble pagination walking every page.

mod util;

use std::process::Command;

use util::TestDir;

const CLIENT: &str = r#"
import json, sys
import pypdns
from pypdns.errors import UnauthorizedError

url, key = sys.argv[1], sys.argv[2]
out = {}
basic = pypdns.PyPDNS(url=url + "/pdns/query", basic_auth=("analyst", key))
token = pypdns.PyPDNS(url=url + "/pdns/query", auth_token=key)
records = basic.rfc_query("www.example.com")
for r in records:
    r.record  # forces PyPDNS's strict type checks
out["plain"] = [[r.rrname, r.rrtype, r.rdata, r.count, r.time_first, r.time_last] for r in records]
out["token"] = len(token.rfc_query("www.example.com", filter_rrtype="AAAA"))
out["by_ip"] = sorted(r.rrname for r in basic.rfc_query("192.0.2.10"))
paged = list(basic.iter_query("many.example.com"))
for r in paged:
    r.record
out["paged"] = sorted(r.rdata for r in paged)
out["paged_filtered"] = len(list(basic.iter_query("many.example.com", filter_rrtype="AAAA")))
out["legacy_query"] = len(basic.query("www.example.com"))
try:
    pypdns.PyPDNS(url=url + "/pdns/query", basic_auth=("analyst", "wrong-key")).rfc_query("www.example.com")
    out["unauthorized"] = False
except UnauthorizedError:
    out["unauthorized"] = True
print(json.dumps(out))
"#;

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

#[test]
fn pypdns_client_queries_and_paginates() {
    let dir = TestDir::new();
    // 250 A records for one name: more than PyPDNS's fixed 50-record pages
    // and more than the 200 members the D4 server silently dropped.
    let mut lines = String::new();
    for i in 0..250u32 {
        lines.push_str(&format!(
            "{{\"rrname\":\"many.example.com\",\"rrtype\":\"A\",\"rdata\":\"198.51.{}.{}\",\"time_first\":{},\"time_last\":{},\"count\":{}}}\n",
            i / 100,
            i % 100,
            1_600_000_000 + i,
            1_600_000_000 + i * 7 % 50,
            i + 1
        ));
    }
    let many = dir.path("many.ndjson");
    std::fs::write(&many, lines).unwrap();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.cof.ndjson");
    dir.import(&[&many, &sample]);
    let config = dir.path("dnsrecall.toml");
    std::fs::write(&config, "[api]\napi_keys = [\"pypdns-test-key\"]\n").unwrap();
    let server = dir.serve(&["--config", config.to_str().unwrap()]);

    let output = Command::new(python())
        .args(["-c", CLIENT, &server.url(), "pypdns-test-key"])
        .output()
        .expect(
            "run python (set DNSRECALL_TEST_PYTHON to a venv with pypdns; scripts/test.sh does)",
        );
    assert!(
        output.status.success(),
        "PyPDNS client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();

    let plain = result["plain"].as_array().unwrap();
    assert_eq!(plain.len(), 3, "{plain:?}");
    assert!(plain.contains(&serde_json::json!([
        "www.example.com",
        "A",
        "192.0.2.10",
        42,
        1700000000,
        1700086400
    ])));
    assert!(plain.contains(&serde_json::json!([
        "www.example.com",
        "AAAA",
        "2001:db8::10",
        9,
        1700000000,
        1700080000
    ])));
    assert_eq!(result["token"], 1);
    assert_eq!(
        result["by_ip"],
        serde_json::json!(["old.example.org", "www.example.com"])
    );
    let paged = result["paged"].as_array().unwrap();
    assert_eq!(
        paged.len(),
        250,
        "pagination must walk every page exactly once"
    );
    let distinct: std::collections::BTreeSet<String> =
        paged.iter().map(|v| v.to_string()).collect();
    assert_eq!(distinct.len(), 250);
    assert_eq!(result["paged_filtered"], 0);
    assert_eq!(result["legacy_query"], 3);
    assert_eq!(result["unauthorized"], true);

    // The CLI against the same server, with and without the key.
    let remote = dir.run(&[
        "query",
        "--server",
        &server.url(),
        "--api-key",
        "pypdns-test-key",
        "--format",
        "json",
        "many.example.com",
    ]);
    assert!(
        remote.status.success(),
        "{}",
        String::from_utf8_lossy(&remote.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&remote.stdout).lines().count(), 250);
    let table = dir.run(&[
        "query",
        "--server",
        &server.url(),
        "--api-key",
        "pypdns-test-key",
        "--type",
        "AAAA",
        "www.example.com",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("rrname") && text.contains("2001:db8::10") && !text.contains("192.0.2.10"),
        "{text}"
    );
    let denied = dir.run(&["query", "--server", &server.url(), "www.example.com"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&denied.stderr).contains("401"));
}

#[test]
fn dribble_headers_over_plain_http() {
    let dir = TestDir::new();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.cof.ndjson");
    dir.import(&[&sample]);
    let server = dir.serve(&[]);
    let all = server.get("/pdns/query/example.com", &[]).lines();
    assert!(all.len() >= 6);
    let mut cursor: Option<String> = None;
    let mut seen = Vec::new();
    for _ in 0..all.len() {
        let mut headers = vec![("dribble-paginate-count", "2".to_string())];
        if let Some(c) = &cursor {
            headers.push(("dribble-paginate-cursor", c.clone()));
        }
        let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let page = server.get("/pdns/query/example.com", &refs);
        assert_eq!(page.status, 200);
        seen.extend(page.lines());
        match page.header("x-dribble-cursor") {
            Some(next) => {
                assert_ne!(next, "0", "a cursor is never 0");
                cursor = Some(next.to_string());
            }
            None => break,
        }
    }
    assert_eq!(seen, all, "pages concatenate to the whole answer, in order");
    let filtered = server
        .get(
            "/pdns/query/example.com",
            &[("dribble-filter-rrtype", "NS")],
        )
        .lines();
    assert_eq!(filtered.len(), 2);
    let bogus = server.get(
        "/pdns/query/example.com",
        &[("dribble-filter-rrtype", "NOTATYPE")],
    );
    assert_eq!((bogus.status, bogus.body.as_str()), (200, ""));
}

#[test]
fn cut_answers_say_so() {
    let dir = TestDir::new();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.cof.ndjson");
    dir.import(&[&sample]);
    let config = dir.path("small.toml");
    std::fs::write(&config, "[api]\nmax_results = 2\n").unwrap();
    let server = dir.serve(&["--config", config.to_str().unwrap()]);
    let response = server.get("/query/example.com", &[]);
    assert_eq!(response.lines().len(), 2);
    let errors: serde_json::Value = serde_json::from_str(
        response
            .header("x-dribble-errors")
            .expect("x-dribble-errors"),
    )
    .unwrap();
    assert_eq!(errors["maxset"], 2);
    assert!(errors["total_value"].as_u64().unwrap() > 2);
}

#[test]
fn non_loopback_without_keys_is_refused() {
    let dir = TestDir::new();
    let output = dir.run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("without API keys"));
}

#[test]
fn config_check_prints_effective_config_and_rejects_bad_ones() {
    let dir = TestDir::new();
    let config = dir.path("c.toml");
    std::fs::write(
        &config,
        "[api]\napi_keys = [\"a-long-secret\"]\nmax_results = 7\n",
    )
    .unwrap();
    let output = dir.run(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("max_results = 7"), "{text}");
    assert!(!text.contains("a-long-secret"), "keys must be redacted");
    std::fs::write(&config, "[api]\nbogus = 1\n").unwrap();
    let bad = dir.run(&["--config", config.to_str().unwrap(), "config", "check"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bogus"));
    let usage = dir.run(&["import"]);
    assert_eq!(usage.status.code(), Some(2));
}
