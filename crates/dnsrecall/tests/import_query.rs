//! The real binary end to end: import every shared passivedns and COF file,
//! serve, query over HTTP, and check every imported triple comes back with
//! the right first/last/count; bad lines are counted with their places;
//! export → import reproduces the store.

mod util;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use util::{TestDir, encode, test_data};

/// (rrname, rrtype, normalised rdata) → (first, last, count)
type Expected = BTreeMap<(String, String, String), (u64, u64, u64)>;

const RCODES: &[&str] = &[
    "NXDOMAIN", "SERVFAIL", "FORMERR", "NOTIMPL", "REFUSED", "YXDOMAIN", "YXRRSET", "NXRRSET",
    "NOTAUTH", "NOTZONE",
];

/// Compares rdata up to spelling: addresses canonicalised, case folded
/// except in TXT/SPF strings, trailing dots and `m` units dropped, numbers
/// compared as numbers (passivedns writes `04` and `0.00m` where the
/// presentation format has `4` and `0m`).
fn normalise(rrtype: &str, rdata: &str) -> String {
    let rdata = rdata.trim();
    if let Ok(address) = rdata.parse::<std::net::IpAddr>() {
        return address.to_string();
    }
    let keep_case = matches!(rrtype, "TXT" | "SPF");
    rdata
        .split_whitespace()
        .map(|token| {
            let token = if keep_case {
                token.to_string()
            } else {
                token.to_ascii_lowercase()
            };
            let token = token.strip_suffix('.').map(str::to_string).unwrap_or(token);
            let number = token.strip_suffix('m').unwrap_or(&token);
            match number.parse::<f64>() {
                Ok(value) if !token.starts_with('"') && token.len() < 12 => format!("{value}"),
                _ => token,
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn add(expected: &mut Expected, key: (String, String, String), first: u64, last: u64, count: u64) {
    let slot = expected.entry(key).or_insert((u64::MAX, 0, 0));
    slot.0 = slot.0.min(first);
    slot.1 = slot.1.max(last);
    slot.2 += count;
}

/// Reads passivedns logs naively (split on `||`), independently of the
/// product's parser.
fn expected_passivedns(files: &[PathBuf], expected: &mut Expected) {
    for file in files {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split("||").collect();
            assert_eq!(fields.len(), 9, "{}: {line}", file.display());
            if RCODES.contains(&fields[6]) || fields[3] != "IN" {
                continue;
            }
            let time: u64 = fields[0].split('.').next().unwrap().parse().unwrap();
            let rrname = fields[4].trim_end_matches('.').to_ascii_lowercase();
            let rrtype = match fields[5] {
                number if number.parse::<u16>().is_ok() => format!("TYPE{number}"),
                mnemonic => mnemonic.to_string(),
            };
            let count: u64 = fields[8].parse().unwrap();
            add(
                expected,
                (rrname, rrtype.clone(), normalise(&rrtype, fields[6])),
                time,
                time,
                count,
            );
        }
    }
}

fn expected_cof(files: &[PathBuf], expected: &mut Expected) {
    for file in files {
        for line in std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let rrname = value["rrname"]
                .as_str()
                .unwrap()
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let rrtype = value["rrtype"].as_str().unwrap().to_ascii_uppercase();
            let rdatas: Vec<String> = match &value["rdata"] {
                serde_json::Value::String(s) => vec![s.clone()],
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
                other => panic!("rdata {other}"),
            };
            let first = value["time_first"].as_u64().unwrap();
            let last = value["time_last"].as_u64().unwrap();
            let count = value["count"].as_u64().unwrap_or(1);
            for rdata in rdatas {
                add(
                    expected,
                    (rrname.clone(), rrtype.clone(), normalise(&rrtype, &rdata)),
                    first,
                    last,
                    count,
                );
            }
        }
    }
}

fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn server_triples(server: &util::Server, name: &str) -> Expected {
    let response = server.get(&format!("/query/{}", encode(name)), &[]);
    assert_eq!(response.status, 200, "{name}: {}", response.body);
    assert_eq!(
        response.header("content-type"),
        Some("application/x-ndjson")
    );
    let mut found = Expected::new();
    for line in response.lines() {
        let rrtype = line["rrtype"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("TYPE{}", line["rrtype"]));
        let key = (
            line["rrname"].as_str().unwrap().to_string(),
            rrtype.clone(),
            normalise(&rrtype, line["rdata"].as_str().unwrap()),
        );
        let first = line["time_first"].as_u64().expect("integer time_first");
        let last = line["time_last"].as_u64().expect("integer time_last");
        let count = line["count"].as_u64().expect("integer count");
        assert!(
            found.insert(key, (first, last, count)).is_none(),
            "duplicate record for {name}"
        );
    }
    found
}

#[test]
fn every_imported_triple_is_served() {
    let data = test_data();
    let passivedns = files_in(&data.join("passivedns"), ".log");
    let cof = files_in(&data.join("cof"), ".ndjson");
    let mut expected = Expected::new();
    expected_passivedns(&passivedns, &mut expected);
    expected_cof(&cof, &mut expected);
    assert!(
        expected.len() > 200,
        "only {} expected triples",
        expected.len()
    );

    let dir = TestDir::new();
    let all: Vec<&Path> = passivedns
        .iter()
        .chain(&cof)
        .map(PathBuf::as_path)
        .collect();
    let summary = dir.import(&all);
    assert_eq!(summary["rejected_total"], 0, "{summary}");
    assert!(
        summary["error_responses"]["NXDOMAIN"].as_u64().unwrap() > 0,
        "{summary}"
    );

    let server = dir.serve(&[]);
    let names: BTreeSet<&String> = expected.keys().map(|(name, _, _)| name).collect();
    let mut served = Expected::new();
    for name in &names {
        served.extend(server_triples(&server, name));
    }
    for (key, value) in &expected {
        assert_eq!(served.get(key), Some(value), "record {key:?}");
    }
    assert_eq!(
        served.len(),
        expected.len(),
        "the server returned records nobody imported"
    );

    // Case-insensitive, trailing dot tolerated, deterministic order.
    let upper = server.get("/query/WWW.EXAMPLE.TEST.", &[]);
    let lower = server.get("/query/www.example.test", &[]);
    assert!(!lower.lines().is_empty());
    assert_eq!(upper.body, lower.body);
    let times: Vec<u64> = lower
        .lines()
        .iter()
        .map(|l| l["time_last"].as_u64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not sorted by time_last: {times:?}"
    );

    // An address query returns the records whose rdata is that address.
    let by_ip = server.get("/query/192.0.2.10", &[]).lines();
    assert!(
        by_ip.iter().any(|l| l["rrname"] == "www.example.test"),
        "{by_ip:?}"
    );
    assert!(by_ip.iter().all(|l| l["rdata"] == "192.0.2.10"));

    // fquery: the old expansion to every record of those names.
    let expanded = server.get("/fquery/192.0.2.10", &[]).lines();
    assert!(expanded.len() > by_ip.len());

    // Nothing known: 200 and an empty body. Malformed: 400 with JSON.
    let nothing = server.get("/query/nothing.invalid", &[]);
    assert_eq!((nothing.status, nothing.body.as_str()), (200, ""));
    let bad = server.get("/query/a..b", &[]);
    assert_eq!(bad.status, 400);
    assert!(serde_json::from_str::<serde_json::Value>(&bad.body).unwrap()["error"].is_string());
    // A bare number is a name, not an address.
    assert_eq!(server.get("/query/123", &[]).status, 200);

    let info: serde_json::Value = serde_json::from_str(&server.get("/info", &[]).body).unwrap();
    let imported: u64 = expected.values().map(|v| v.2).sum();
    assert_eq!(info["stats"].as_u64(), Some(imported), "{info}");
    assert!(server.stop(), "serve exited with an error after SIGTERM");
}

#[test]
fn info_works_on_an_empty_store() {
    let dir = TestDir::new();
    let server = dir.serve(&[]);
    let response = server.get("/info", &[]);
    assert_eq!(response.status, 200);
    let info: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(info["stats"], 0);
    assert_eq!(info["sensors"], serde_json::json!([]));
}

#[test]
fn bad_lines_are_counted_with_places() {
    let dir = TestDir::new();
    let broken = dir.path("broken.log");
    std::fs::write(
        &broken,
        "#timestamp||client||server||class||query||type||answer||ttl||count\n\
         1600000000.1||10.0.0.1||10.0.0.2||IN||good.example.||A||192.0.2.1||60||1\n\
         garbage without delimiters\n\
         1600000000.2||10.0.0.1||10.0.0.2||IN||bad..name.||A||192.0.2.1||60||1\n\
         1600000000.3||10.0.0.1||10.0.0.2||IN||x.example.||BOGUSTYPE||192.0.2.1||60||1\n\
         notatime||10.0.0.1||10.0.0.2||IN||x.example.||A||192.0.2.1||60||1\n\
         1600000000.4||10.0.0.1||10.0.0.2||IN||y.example.||A||NXDOMAIN||0||1\n\
         1600000001.5||10.0.0.1||10.0.0.2||IN||good.example.||A||192.0.2.1||60||2\n",
    )
    .unwrap();
    let summary = dir.import(&[&broken]);
    assert_eq!(summary["lines"], 8);
    assert_eq!(summary["records"], 2);
    assert_eq!(summary["comments"], 1);
    assert_eq!(summary["error_responses"]["NXDOMAIN"], 1);
    assert_eq!(summary["rejected_total"], 4);
    assert_eq!(summary["rejected"]["field_count"], 1);
    assert_eq!(summary["rejected"]["bad_query"], 1);
    assert_eq!(summary["rejected"]["bad_rrtype"], 1);
    assert_eq!(summary["rejected"]["bad_timestamp"], 1);
    let places: Vec<&str> = summary["first_rejects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let name = broken.display().to_string();
    assert!(places[0].starts_with(&format!("{name}:3: ")), "{places:?}");
    assert!(places[1].starts_with(&format!("{name}:4: ")), "{places:?}");
    assert!(places[3].starts_with(&format!("{name}:6: ")), "{places:?}");

    // --strict turns rejects into a failure; the good lines still land.
    let strict = dir.run(&["import", "--strict", broken.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(1));
    let query = dir.run(&["query", "--format", "json", "good.example"]);
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&query.stdout).unwrap();
    assert_eq!(line["count"], 6, "three imports of 1 + 2 sightings");
    assert_eq!(line["time_first"], 1600000000);
    assert_eq!(line["time_last"], 1600000001);

    // A missing file is an I/O error: exit 1, other files still imported.
    let missing = dir.run(&["import", "/nonexistent/file.log", broken.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn compressed_inputs_and_stdin() {
    use std::io::Write;
    let data = test_data();
    let sample = std::fs::read(data.join("cof/cof-draft-08_examples.ndjson")).unwrap();
    let dir = TestDir::new();
    let gz = dir.path("sample.ndjson.gz");
    let mut encoder = flate2::write::GzEncoder::new(
        std::fs::File::create(&gz).unwrap(),
        flate2::Compression::fast(),
    );
    encoder.write_all(&sample).unwrap();
    encoder.finish().unwrap();
    let zst = dir.path("sample.ndjson.zst");
    std::fs::write(&zst, zstd::encode_all(&sample[..], 3).unwrap()).unwrap();
    let plain_lines = sample
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    for file in [&gz, &zst] {
        let summary = dir.import(&[file]);
        assert_eq!(summary["lines"], plain_lines, "{}", file.display());
        assert_eq!(summary["rejected_total"], 0);
    }
    let mut child = dir
        .command(&["import", "--json-summary", "--format", "cof", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&sample).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["lines"], plain_lines);
}

#[test]
fn export_then_import_reproduces_the_records() {
    let data = test_data();
    let mut inputs = files_in(&data.join("passivedns"), ".log");
    inputs.extend(files_in(&data.join("cof"), ".ndjson"));
    let first = TestDir::new();
    first.import(&inputs.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let export_one = first.path("one.ndjson");
    let out = first.run(&["export", "--output", export_one.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let second = TestDir::new();
    let summary = second.import(&[&export_one]);
    assert_eq!(summary["rejected_total"], 0);
    let export_two = second.path("two.ndjson");
    assert!(
        second
            .run(&["export", "--output", export_two.to_str().unwrap()])
            .status
            .success()
    );
    let one = std::fs::read_to_string(&export_one).unwrap();
    let two = std::fs::read_to_string(&export_two).unwrap();
    assert!(one.lines().count() > 200);
    assert_eq!(one, two, "export → import → export changed the records");
}
