//! `dnsrecall query` searches (wildcards, `--rdata`, `--ip`, `--bailiwick`,
//! time fences, `--limit`, `--format dnsdbq`) against the local data
//! directory and against `--server`, checked against the generated COF
//! file they were imported from.

mod util;

use std::collections::BTreeSet;

use util::TestDir;

/// One generated record.
#[derive(Clone, Debug)]
struct Rec {
    rrname: &'static str,
    rrtype: &'static str,
    rdata: &'static str,
    first: u64,
    last: u64,
    bailiwick: Option<&'static str>,
}

fn records() -> Vec<Rec> {
    let r = |rrname, rrtype, rdata, first, last, bailiwick| Rec {
        rrname,
        rrtype,
        rdata,
        first,
        last,
        bailiwick,
    };
    vec![
        r(
            "www.example.com",
            "A",
            "192.0.2.1",
            1_000,
            2_000,
            Some("example.com"),
        ),
        r(
            "mail.example.com",
            "A",
            "192.0.2.2",
            1_500,
            5_000,
            Some("example.com"),
        ),
        r(
            "www.example.com",
            "A",
            "192.0.2.3",
            3_000,
            9_000,
            Some("com"),
        ),
        r("a.b.example.com", "AAAA", "2001:db8::1", 4_000, 4_500, None),
        r(
            "example.com",
            "NS",
            "ns1.example.net.",
            500,
            9_500,
            Some("com"),
        ),
        r(
            "example.com",
            "MX",
            "10 mail.example.com.",
            700,
            8_000,
            Some("example.com"),
        ),
        r(
            "www.example.org",
            "CNAME",
            "www.example.com.",
            2_000,
            6_000,
            Some("example.org"),
        ),
        r("www.example.net", "A", "198.51.100.5", 100, 200, None),
        r("www.examples.com", "A", "192.0.2.200", 6_000, 7_000, None),
        r(
            "ns1.example.net",
            "A",
            "198.51.100.53",
            1_000,
            9_000,
            Some("example.net"),
        ),
    ]
}

fn cof(records: &[Rec]) -> String {
    records
        .iter()
        .map(|r| {
            let mut value = serde_json::json!({
                "rrname": r.rrname, "rrtype": r.rrtype, "rdata": r.rdata,
                "time_first": r.first, "time_last": r.last, "count": 2,
            });
            if let Some(b) = r.bailiwick {
                value["bailiwick"] = b.into();
            }
            value.to_string() + "\n"
        })
        .collect()
}

type Key = (String, String, String);

fn key(r: &Rec) -> Key {
    (
        r.rrname.to_string(),
        r.rrtype.to_string(),
        r.rdata.to_string(),
    )
}

fn expect(filter: impl Fn(&Rec) -> bool) -> BTreeSet<Key> {
    records().iter().filter(|r| filter(r)).map(key).collect()
}

fn under(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

/// Runs `query --format json ARGS` (locally or on `server`) and returns the
/// rows as keys.
fn query(dir: &TestDir, server: Option<&str>, args: &[&str]) -> BTreeSet<Key> {
    let mut all = vec!["query", "--format", "json"];
    if let Some(url) = server {
        all.extend(["--server", url]);
    }
    all.extend_from_slice(args);
    let output = dir.run(&all);
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rows: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: bad line {l:?}: {e}"))
        })
        .collect();
    let keys: BTreeSet<Key> = rows
        .iter()
        .map(|v| {
            (
                v["rrname"].as_str().unwrap().to_string(),
                v["rrtype"].as_str().unwrap().to_string(),
                v["rdata"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(keys.len(), rows.len(), "{args:?}: repeated rows");
    keys
}

#[allow(clippy::type_complexity)]
fn cases() -> Vec<(Vec<&'static str>, BTreeSet<Key>)> {
    vec![
        (
            vec!["*.example.com"],
            expect(|r| under(r.rrname, "example.com")),
        ),
        (
            vec!["*.example.com", "--type", "A"],
            expect(|r| under(r.rrname, "example.com") && r.rrtype == "A"),
        ),
        (
            vec!["www.example.*"],
            expect(|r| r.rrname.starts_with("www.example.")),
        ),
        (
            vec!["www.example.com", "--bailiwick", "com"],
            expect(|r| r.rrname == "www.example.com" && r.bailiwick == Some("com")),
        ),
        (
            vec!["--rdata", "www.example.com"],
            expect(|r| r.rdata == "www.example.com."),
        ),
        (
            vec!["--rdata", "*.example.com"],
            expect(|r| r.rrtype != "A" && r.rrtype != "AAAA" && r.rdata.contains("example.com.")),
        ),
        (
            vec!["--rdata", "ns1.example.*"],
            expect(|r| r.rdata == "ns1.example.net."),
        ),
        (
            vec!["--ip", "192.0.2.0/24"],
            expect(|r| r.rdata.starts_with("192.0.2.")),
        ),
        (
            vec!["--ip", "192.0.2.2-192.0.2.3"],
            expect(|r| ["192.0.2.2", "192.0.2.3"].contains(&r.rdata)),
        ),
        (
            vec!["--ip", "2001:db8::/32"],
            expect(|r| r.rrtype == "AAAA"),
        ),
        (
            vec!["--ip", "198.51.100.5"],
            expect(|r| r.rdata == "198.51.100.5"),
        ),
        (
            vec!["*.example.com", "--first-after", "1500"],
            expect(|r| under(r.rrname, "example.com") && r.first >= 1500),
        ),
        (
            vec!["*.example.com", "--first-before", "1000"],
            expect(|r| under(r.rrname, "example.com") && r.first <= 1000),
        ),
        (
            vec!["--ip", "0.0.0.0/0", "--last-after", "7000"],
            expect(|r| r.rrtype == "A" && r.last >= 7000),
        ),
        (
            vec!["--ip", "0.0.0.0/0", "--last-before", "5000"],
            expect(|r| r.rrtype == "A" && r.last <= 5000),
        ),
        // Relative fences: everything was seen long before an hour ago.
        (
            vec!["*.example.com", "--last-after", "-3600"],
            BTreeSet::new(),
        ),
        (
            vec!["*.example.com", "--last-before", "-3600"],
            expect(|r| under(r.rrname, "example.com")),
        ),
    ]
}

fn check_all(dir: &TestDir, server: Option<&str>) {
    for (args, expected) in cases() {
        assert!(
            !expected.is_empty() || args.contains(&"-3600"),
            "{args:?}: empty case"
        );
        assert_eq!(
            query(dir, server, &args),
            expected,
            "{args:?} (server: {server:?})"
        );
    }
    // --limit cuts, and says so on stderr.
    let mut args = vec!["query", "--format", "json", "--limit", "2"];
    if let Some(url) = server {
        args.extend(["--server", url]);
    }
    args.push("*.example.com");
    let output = dir.run(&args);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 2);
    assert!(String::from_utf8_lossy(&output.stderr).contains("limit"));
    // dnsdbq presentation.
    let mut args = vec![
        "query",
        "--format",
        "dnsdbq",
        "www.example.com",
        "--bailiwick",
        "example.com",
    ];
    if let Some(url) = server {
        args.extend(["--server", url]);
    }
    let output = dir.run(&args);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        ";; record times: 1970-01-01 00:16:40 .. 1970-01-01 00:33:20\n\
         ;;  count: 2; bailiwick: example.com.\n\
         www.example.com. A 192.0.2.1\n"
    );
    let mut args = vec!["query", "--format", "dnsdbq", "--ip", "192.0.2.1-192.0.2.2"];
    if let Some(url) = server {
        args.extend(["--server", url]);
    }
    let output = dir.run(&args);
    let text = String::from_utf8_lossy(&output.stdout);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2, "{text}");
    assert!(
        blocks
            .iter()
            .all(|b| b.starts_with(";; record times: ") && b.contains("\n;;  count: 2\n")),
        "{text}"
    );
    // Plain NAME|IP is unchanged (D4 lookup, all types).
    assert_eq!(
        query(dir, server, &["example.com"]),
        expect(|r| r.rrname == "example.com")
    );
}

fn setup() -> TestDir {
    let dir = TestDir::new();
    let file = dir.path("records.ndjson");
    std::fs::write(&file, cof(&records())).unwrap();
    let summary = dir.import(&[&file]);
    assert_eq!(summary["records"], 10, "{summary}");
    dir
}

#[test]
fn searches_local() {
    let dir = setup();
    check_all(&dir, None);
    // Bad input is a usage error with a message.
    for bad in [
        &["--ip", "192.0.2.0/33"][..],
        &["ex*ample.com"],
        &["--rdata", "+.example.com"],
        &["--ip", "1.2.3.4", "-t", "NS"],
    ] {
        let mut args = vec!["query"];
        args.extend_from_slice(bad);
        let output = dir.run(&args);
        assert!(!output.status.success(), "{bad:?}");
        assert!(!output.stderr.is_empty(), "{bad:?}");
    }
}

#[test]
fn searches_remote() {
    let dir = setup();
    let server = dir.serve(&[]);
    check_all(&dir, Some(&server.url()));
    // Local and remote give the same rows in the same order.
    for args in [
        &["*.example.com"][..],
        &["--ip", "0.0.0.0/0"],
        &["--rdata", "*.com"],
    ] {
        let mut local = vec!["query", "--format", "json"];
        local.extend_from_slice(args);
        let url = server.url();
        let mut remote = local.clone();
        remote.extend(["--server", url.as_str()]);
        assert_eq!(dir.run(&local).stdout, dir.run(&remote).stdout, "{args:?}");
    }
}
