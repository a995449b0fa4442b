//! The DNSDB API (`/dnsdb/v2`, v1 `/lookup`) against `dnsdb serve`: the
//! real `dnsdb2` Python client (pip `dnsdb2`, in the venv named by
//! DNSRECALL_TEST_PYTHON), table-driven wildcard/CIDR/time-fence queries
//! over generated records, v1 layout, keys file with quotas, and SAF
//! streaming of a large answer.

mod util;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use util::{Server, TestDir};

const KEY: &str = "dnsdb-test-key";

fn python() -> String {
    std::env::var("DNSRECALL_TEST_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn key() -> [(&'static str, &'static str); 1] {
    [("X-API-Key", KEY)]
}

/// SAF lines of a 200 answer: (objects, terminator cond).
fn saf(server: &Server, path: &str) -> (Vec<Value>, String) {
    let response = server.get(path, &key());
    assert_eq!(response.status, 200, "{path}: {}", response.body);
    let lines = response.lines();
    assert_eq!(
        lines.first().and_then(|l| l["cond"].as_str()),
        Some("begin"),
        "{path}"
    );
    let last = lines
        .last()
        .and_then(|l| l["cond"].as_str())
        .unwrap_or("none")
        .to_string();
    assert!(lines.last().is_some_and(|l| l.get("obj").is_none()));
    let objs = lines[1..lines.len() - 1]
        .iter()
        .map(|l| l["obj"].clone())
        .collect();
    (objs, last)
}

fn write_config(dir: &TestDir, extra: &str) -> String {
    let config = dir.path("dnsrecall.toml");
    std::fs::write(
        &config,
        format!("[api]\napi_keys = [\"{KEY}\"]\ndnsdb_offset_max = 100000\n{extra}"),
    )
    .unwrap();
    config.to_string_lossy().into_owned()
}

// ------------------------------------------------------------ dnsdb2 client

const CLIENT: &str = r#"
import json, sys
import dnsdb2
url, key = sys.argv[1], sys.argv[2]
client = dnsdb2.Client(key, server=url)
out = {}
out["ping"] = client.ping()
out["rate"] = client.rate_limit()
out["www"] = list(client.lookup_rrset("www.example.com"))
out["subtree"] = list(client.lookup_rrset("*.example.com"))
out["www_a"] = list(client.lookup_rrset("www.example.com", rrtype="A"))
out["rdata_name"] = list(client.lookup_rdata_name("ns1.example.com"))
out["rdata_ip"] = list(client.lookup_rdata_ip("192.0.2.0/24"))
out["summary"] = list(client.summarize_rrset("*.example.com"))
out["fenced"] = list(client.lookup_rrset("*.example.com", time_last_after=1700080000, aggr=False, humantime=False))
try:
    list(client.lookup_rrset("*.example.com", limit=2))
    out["limited"] = False
except dnsdb2.QueryLimited:
    out["limited"] = True
try:
    dnsdb2.Client("wrong-key-123", server=url).rate_limit()
    out["denied"] = False
except dnsdb2.AccessDenied:
    out["denied"] = True
print(json.dumps(out))
"#;

/// One imported record, as given.
#[derive(Clone, Debug)]
struct Given {
    rrname: String,
    rrtype: String,
    rdata: String,
    count: u64,
    first: u64,
    last: u64,
}

fn read_given(files: &[&Path]) -> Vec<Given> {
    let mut out = Vec::new();
    for file in files {
        for line in std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let v: Value = serde_json::from_str(line).unwrap();
            let rdatas: Vec<String> = match &v["rdata"] {
                Value::Array(a) => a.iter().map(|x| x.as_str().unwrap().to_string()).collect(),
                x => vec![x.as_str().unwrap().to_string()],
            };
            for rdata in rdatas {
                out.push(Given {
                    rrname: format!(
                        "{}.",
                        v["rrname"]
                            .as_str()
                            .unwrap()
                            .trim_end_matches('.')
                            .to_lowercase()
                    ),
                    rrtype: v["rrtype"].as_str().unwrap().to_string(),
                    rdata,
                    count: v["count"].as_u64().unwrap_or(1),
                    first: v["time_first"].as_u64().unwrap(),
                    last: v["time_last"].as_u64().unwrap(),
                });
            }
        }
    }
    out
}

type Row = (String, String, String, u64, u64, u64);

fn norm_rdata(rrtype: &str, rdata: &str) -> String {
    // Names inside rdata: compare without the trailing dot; other types as
    // rendered are checked by type and count only.
    match rrtype {
        "A" | "AAAA" | "NS" | "CNAME" | "PTR" | "MX" | "SRV" => {
            rdata.trim_end_matches('.').to_lowercase()
        }
        _ => String::new(),
    }
}

fn given_rows<'a>(given: impl Iterator<Item = &'a Given>) -> BTreeSet<Row> {
    given
        .map(|g| {
            (
                g.rrname.clone(),
                g.rrtype.clone(),
                norm_rdata(&g.rrtype, &g.rdata),
                g.count,
                g.first,
                g.last,
            )
        })
        .collect()
}

fn answer_rows(objs: &Value) -> BTreeSet<Row> {
    objs.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let rrtype = o["rrtype"].as_str().unwrap().to_string();
            let rdata = o["rdata"].as_array().expect("rdata array in v2")[0]
                .as_str()
                .unwrap();
            (
                o["rrname"].as_str().unwrap().to_string(),
                rrtype.clone(),
                norm_rdata(&rrtype, rdata),
                o["count"].as_u64().unwrap(),
                o["time_first"].as_u64().unwrap(),
                o["time_last"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn target_of(g: &Given) -> Option<String> {
    let fields: Vec<&str> = g.rdata.split_whitespace().collect();
    let target = match g.rrtype.as_str() {
        "NS" | "CNAME" | "PTR" | "SOA" => fields.first(),
        "MX" => fields.get(1),
        "SRV" => fields.get(3),
        _ => None,
    }?;
    Some(target.trim_end_matches('.').to_lowercase())
}

#[test]
fn dnsdb2_client_answers_equal_the_imported_data() {
    let dir = TestDir::new();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/sample.cof.ndjson");
    let mut files = vec![sample];
    for entry in std::fs::read_dir(util::test_data().join("cof")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ndjson") {
            files.push(path);
        }
    }
    let refs: Vec<&Path> = files.iter().map(|p| p.as_path()).collect();
    dir.import(&refs);
    let given = read_given(&refs);
    let config = write_config(&dir, "");
    let server = dir.serve(&["--config", &config]);

    let output = Command::new(python())
        .args(["-c", CLIENT, &server.url(), KEY])
        .output()
        .expect(
            "run python (set DNSRECALL_TEST_PYTHON to a venv with dnsdb2; scripts/test.sh does)",
        );
    assert!(
        output.status.success(),
        "dnsdb2 client failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(result["ping"], true);
    assert_eq!(result["rate"]["rate"]["limit"], "unlimited");
    assert_eq!(result["rate"]["rate"]["results_max"], 1_000_000);
    assert_eq!(result["denied"], true);
    assert_eq!(result["limited"], true);

    let www = given_rows(given.iter().filter(|g| g.rrname == "www.example.com."));
    assert_eq!(answer_rows(&result["www"]), www);
    assert!(result["www"][0]["rrname"].as_str().unwrap().ends_with('.'));
    let www_a = given_rows(
        given
            .iter()
            .filter(|g| g.rrname == "www.example.com." && g.rrtype == "A"),
    );
    assert_eq!(answer_rows(&result["www_a"]), www_a);
    let in_subtree = |g: &&Given| g.rrname == "example.com." || g.rrname.ends_with(".example.com.");
    let subtree = given_rows(given.iter().filter(in_subtree));
    assert_eq!(answer_rows(&result["subtree"]), subtree);
    assert!(subtree.len() >= 10, "sample holds the example.com zone");
    let fenced = given_rows(
        given
            .iter()
            .filter(in_subtree)
            .filter(|g| g.last >= 1_700_080_000),
    );
    assert_eq!(answer_rows(&result["fenced"]), fenced);
    assert!(!fenced.is_empty() && fenced.len() < subtree.len());

    let by_name = given_rows(
        given
            .iter()
            .filter(|g| target_of(g).as_deref() == Some("ns1.example.com")),
    );
    assert_eq!(answer_rows(&result["rdata_name"]), by_name);
    assert!(result["rdata_name"][0].get("bailiwick").is_none());
    let by_ip = given_rows(
        given
            .iter()
            .filter(|g| g.rrtype == "A" && g.rdata.starts_with("192.0.2.")),
    );
    assert_eq!(answer_rows(&result["rdata_ip"]), by_ip);
    assert_eq!(by_ip.len(), 4);

    let summary = &result["summary"][0];
    let rows: Vec<&Given> = given.iter().filter(in_subtree).collect();
    assert_eq!(summary["num_results"], rows.len());
    assert_eq!(summary["count"], rows.iter().map(|g| g.count).sum::<u64>());
    assert_eq!(
        summary["time_first"],
        rows.iter().map(|g| g.first).min().unwrap()
    );
    assert_eq!(
        summary["time_last"],
        rows.iter().map(|g| g.last).max().unwrap()
    );
}

// ------------------------------------------------------------ table-driven

fn line(rrname: &str, rrtype: &str, rdata: &str, first: u64, last: u64) -> String {
    serde_json::json!({"rrname": rrname, "rrtype": rrtype, "rdata": rdata, "time_first": first, "time_last": last, "count": 1})
        .to_string()
        + "\n"
}

#[test]
fn wildcards_ranges_fences_errors_v1_and_quotas() {
    let dir = TestDir::new();
    let mut data = String::new();
    for i in 0..3000u32 {
        data += &line(
            &format!("h{i}.zone{}.com", i % 7),
            "A",
            "192.0.2.1",
            1000,
            2000,
        );
    }
    for k in 0..512u32 {
        let address = format!("10.0.{}.{}", k / 256, k % 256);
        data += &line(
            "v4.example.net",
            "A",
            &address,
            1_000_000 + k as u64,
            2_000_000 + k as u64,
        );
    }
    data += &line("v6.example.net", "AAAA", "2001:db8::1", 5, 6);
    data += &line("v6.example.net", "AAAA", "2001:db8::2", 5, 6);
    data += &line("mapped.example.net", "AAAA", "::ffff:10.0.0.1", 5, 6);
    data += &line("a\\.b.example", "A", "192.0.2.99", 5, 6);
    data += &line("www.example.org", "A", "192.0.2.98", 5, 6);
    data += &line("www.example.net", "A", "192.0.2.97", 5, 6);
    data += &line(
        "example.net",
        "DS",
        "12345 8 2 49fd46e6c4b45c55d4ac69cbd3cd34ac1afe51de",
        5,
        6,
    );
    data += &line("cdn.example.net", "CNAME", "edge.example.org.", 5, 6);
    let file = dir.path("gen.ndjson");
    std::fs::write(&file, data).unwrap();
    dir.import(&[&file]);
    let digest = sha256_hex("quota-key-123");
    let keys_file = dir.path("dnsdb-keys.txt");
    std::fs::write(&keys_file, format!("# test keys\n{digest} quota=3\n")).unwrap();
    let config = write_config(&dir, "dnsdb_keys_file = \"dnsdb-keys.txt\"\n");
    let server = dir.serve(&["--config", &config]);

    // (path, objects, terminator)
    let table: &[(&str, usize, &str)] = &[
        (
            "/dnsdb/v2/lookup/rrset/name/%2A.com?limit=1000",
            1000,
            "limited",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/*.com?limit=3000",
            3000,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/*.com?limit=2999",
            2999,
            "limited",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/%2A.zone3.com/A",
            3000 / 7 + 1,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rrset/name/h1.zone1.com", 1, "succeeded"),
        (
            "/dnsdb/v2/lookup/rrset/name/H1.ZONE1.COM./a",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/h1.zone1.com/AAAA",
            0,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/www.example.%2A",
            2,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rrset/name/a%5C.b.example", 1, "succeeded"),
        ("/dnsdb/v2/lookup/rrset/name/b.example", 0, "succeeded"),
        (
            "/dnsdb/v2/lookup/rrset/name/*.example.net",
            517,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/*.example.net/ANY-DNSSEC",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/name/example.net/TYPE43",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rrset/raw/076578616d706c65036e657400/ds",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/name/edge.example.org",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/name/*.example.org/CNAME",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/name/edge.example.%2A",
            1,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24", 256, "succeeded"),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,23?limit=0",
            512,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.250-10.0.1.5",
            12,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rdata/ip/10.0.0.1", 1, "succeeded"),
        ("/dnsdb/v2/lookup/rdata/ip/10.0.0.1,32/A", 1, "succeeded"),
        (
            "/dnsdb/v2/lookup/rdata/ip/0.0.0.0,0?limit=0",
            3000 + 512 + 3,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rdata/ip/::,0", 3, "succeeded"),
        (
            "/dnsdb/v2/lookup/rdata/ip/%3A%3Affff%3A10.0.0.1",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/::ffff:10.0.0.1,128/AAAA",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/2001%3Adb8%3A%3A,126",
            2,
            "succeeded",
        ),
        ("/dnsdb/v2/lookup/rdata/ip/2001:db8::2,128", 1, "succeeded"),
        ("/dnsdb/v2/lookup/rdata/raw/0a000001", 1, "succeeded"),
        ("/dnsdb/v2/lookup/rdata/raw/0a000001/AAAA", 0, "succeeded"),
        // Time fences over 10.0.0.0/24: first = 1_000_000 + k, last = 2_000_000 + k.
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_first_after=1000100",
            156,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_first_before=1000009",
            10,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_last_after=2000250",
            6,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_last_before=2000000&swclient=x&version=1&id=a:b",
            1,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_first_after=1000010&time_last_before=2000019",
            10,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?time_last_after=-60",
            0,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?offset=250&aggr=f",
            6,
            "succeeded",
        ),
        (
            "/dnsdb/v2/lookup/rdata/ip/10.0.0.0,24?offset=250&limit=5",
            5,
            "limited",
        ),
        ("/dnsdb/v2/summarize/rdata/ip/10.0.0.0,24", 1, "succeeded"),
    ];
    for (path, count, cond) in table {
        let (objs, end) = saf(&server, path);
        assert_eq!((objs.len(), end.as_str()), (*count, *cond), "{path}");
    }
    let (objs, _) = saf(
        &server,
        "/dnsdb/v2/lookup/rrset/name/a%5C.b.example?humantime=True",
    );
    assert_eq!(objs[0]["rrname"], "a\\.b.example.");
    assert_eq!(objs[0]["time_first"], "1970-01-01T00:00:05Z");
    let (objs, _) = saf(&server, "/dnsdb/v2/lookup/rdata/ip/%3A%3Affff%3A10.0.0.1");
    assert_eq!(objs[0]["rrtype"], "AAAA");
    let (objs, _) = saf(
        &server,
        "/dnsdb/v2/summarize/rdata/ip/10.0.0.0,24?max_count=10",
    );
    assert_eq!(objs[0]["num_results"], 10);
    let (objs, _) = saf(&server, "/dnsdb/v2/summarize/rdata/ip/10.0.0.0,24");
    assert_eq!(objs[0]["count"], 256);
    assert_eq!(objs[0]["time_first"], 1_000_000);
    assert_eq!(objs[0]["time_last"], 2_000_255);

    // Errors with DNSDB status codes and short text bodies.
    for (path, status) in [
        ("/dnsdb/v2/lookup/rrset/name/example.net/BOGUS", 400),
        (
            "/dnsdb/v2/lookup/rrset/raw/076578616d706c65036e657400/A/net",
            400,
        ),
        ("/dnsdb/v2/lookup/rrset/raw/0765", 400),
        ("/dnsdb/v2/lookup/rdata/ip/10.0.0.1/MX", 400),
        ("/dnsdb/v2/lookup/rdata/ip/10.0.0.0,33", 400),
        ("/dnsdb/v2/lookup/rdata/raw/abc", 400),
        ("/dnsdb/v2/lookup/rrset/name/a.*.com", 400),
        ("/dnsdb/v2/lookup/rrset/name/example.net?limit=x", 400),
        ("/dnsdb/v2/lookup/rrset/name/example.net?aggr=maybe", 400),
        ("/dnsdb/v2/lookup/rrset/name/example.net?offset=100001", 416),
        ("/dnsdb/v2/bogus/rrset/name/example.net", 404),
        ("/dnsdb/v2/lookup/bogus/name/example.net", 404),
        ("/dnsdb/v2", 404),
    ] {
        let response = server.get(path, &key());
        assert_eq!(response.status, status, "{path}: {}", response.body);
        assert!(
            response.body.starts_with("Error: "),
            "{path}: {}",
            response.body
        );
    }
    // Keys: 403 on DNSDB routes, 401 kept on D4; ping needs none.
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &[])
            .status,
        403
    );
    assert_eq!(
        server
            .get("/dnsdb/v2/rate_limit", &[("X-API-Key", "nope-nope-nope")])
            .status,
        403
    );
    assert_eq!(server.get("/query/example.net", &[]).status, 401);
    let ping = server.get("/dnsdb/v2/ping", &[("Accept", "application/x-ndjson")]);
    assert_eq!(
        (ping.status, ping.body.as_str()),
        (200, "{\"ping\":\"ok\"}")
    );

    // v1: bare lines, rdata string on rdata lookups, 404 when nothing.
    let v1 = server.get(
        "/lookup/rrset/name/www.example.net",
        &[("X-API-Key", KEY), ("Accept", "application/json")],
    );
    assert_eq!(v1.status, 200);
    let lines = v1.lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["rdata"], serde_json::json!(["192.0.2.97"]));
    let v1 = server.get("/lookup/rdata/ip/10.0.0.0,30", &key());
    let lines = v1.lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["rdata"], "10.0.0.0");
    assert!(
        lines
            .iter()
            .all(|l| l.get("cond").is_none() && l.get("obj").is_none())
    );
    let none = server.get("/lookup/rrset/name/nothing.example.net", &key());
    assert_eq!(none.status, 404);
    let rate = server.get("/lookup/rate_limit", &key());
    assert!(
        rate.body.lines().count() > 1,
        "v1 rate_limit is pretty-printed"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&rate.body).unwrap()["rate"]["remaining"],
        "n/a"
    );

    // Keys file: hashed key with a daily quota of 3 lookups.
    let quota = [("X-API-Key", "quota-key-123")];
    let rate: Value =
        serde_json::from_str(&server.get("/dnsdb/v2/rate_limit", &quota).body).unwrap();
    assert_eq!(rate["rate"]["limit"], 3);
    assert_eq!(rate["rate"]["remaining"], 3);
    assert!(
        rate["rate"]["reset"]
            .as_u64()
            .unwrap()
            .is_multiple_of(86_400)
    );
    for _ in 0..3 {
        assert_eq!(
            server
                .get("/dnsdb/v2/lookup/rrset/name/example.net", &quota)
                .status,
            200
        );
    }
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &quota)
            .status,
        429
    );
    let rate: Value =
        serde_json::from_str(&server.get("/dnsdb/v2/rate_limit", &quota).body).unwrap();
    assert_eq!(rate["rate"]["remaining"], 0);
    // The file is re-read when it changes: a bigger quota and a burst.
    std::fs::write(&keys_file, format!("{digest} quota=1000 burst=1/300\n")).unwrap();
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &quota)
            .status,
        200
    );
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &quota)
            .status,
        429
    );
    let rate: Value =
        serde_json::from_str(&server.get("/dnsdb/v2/rate_limit", &quota).body).unwrap();
    assert_eq!(
        (
            rate["rate"]["burst_size"].as_u64(),
            rate["rate"]["burst_window"].as_u64()
        ),
        (Some(1), Some(300))
    );
    std::fs::write(&keys_file, "# nobody\n").unwrap();
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &quota)
            .status,
        403
    );
    assert_eq!(
        server
            .get("/dnsdb/v2/lookup/rrset/name/example.net", &key())
            .status,
        200
    );
}

fn sha256_hex(text: &str) -> String {
    let output = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

// ------------------------------------------------------------ streaming

#[test]
fn large_answers_stream_with_saf() {
    const N: u32 = 200_000;
    let dir = TestDir::new();
    let mut data = String::with_capacity(N as usize * 120);
    for i in 0..N {
        data += &line(
            &format!("n{i}.big.test"),
            "A",
            &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            10,
            20,
        );
    }
    let file = dir.path("big.ndjson");
    std::fs::write(&file, data).unwrap();
    dir.import(&[&file]);
    let config = write_config(&dir, "");
    let server = dir.serve(&["--config", &config]);

    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET /dnsdb/v2/lookup/rrset/name/%2A.big.test?limit=0 HTTP/1.1\r\nHost: x\r\nX-API-Key: {KEY}\r\nAccept: application/x-ndjson\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut headers = String::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        headers += &header.to_ascii_lowercase();
    }
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("transfer-encoding: chunked"),
        "streamed, no content-length: {headers}"
    );
    // The first chunk holds the begin line, readable while the scan runs.
    let mut size = String::new();
    reader.read_line(&mut size).unwrap();
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let first_at = started.elapsed();
    assert_eq!(first.trim(), "{\"cond\":\"begin\"}");
    // Drain: dechunk and count.
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut rest).unwrap();
    let total_at = started.elapsed();
    let body = dechunk(&rest);
    let text = String::from_utf8_lossy(&body);
    let mut objs = 0;
    let mut last = "";
    for line in text.lines().filter(|l| !l.is_empty()) {
        if line.starts_with("{\"obj\":") {
            objs += 1;
        } else {
            last = line;
        }
    }
    assert_eq!(objs, N as usize);
    assert_eq!(last, "{\"cond\":\"succeeded\"}");
    assert!(
        first_at < total_at,
        "first line at {first_at:?}, end at {total_at:?}"
    );

    let (objs, end) = saf(&server, "/dnsdb/v2/lookup/rrset/name/*.big.test?limit=1000");
    assert_eq!((objs.len(), end.as_str()), (1000, "limited"));
}

/// Decodes a chunked body whose first chunk-size line was already read.
fn dechunk(raw: &[u8]) -> Vec<u8> {
    // The remainder of the first chunk comes first, up to its CRLF.
    let mut out = Vec::new();
    let mut rest = raw;
    if let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        out.extend_from_slice(&rest[..end]);
        rest = &rest[end + 2..];
    }
    out.extend(util::dechunk(rest));
    out
}
