//! Counters and tables on real captures equal what this test counts itself
//! (with NLnet Labs' `domain` parsing the messages): exactly where the value
//! is exact, within the stated error where it is a sketch.

mod common;

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use dnsrecall_core::message::DnsMessage;
use dnsrecall_stats::{Stats, StatsConfig, Window};
use serde_json::Value;

/// What the test counts on its own.
#[derive(Default, Debug)]
struct Truth {
    queries: u64,
    responses: u64,
    malformed: u64,
    bytes: [u64; 2],
    rcodes: [HashMap<String, u64>; 2],
    clients: HashSet<Option<IpAddr>>,
    domains: HashSet<String>,
    qnames_by_rcode: HashMap<(String, usize), HashMap<String, u64>>,
    client_hits: HashMap<String, u64>,
    client_bytes: HashMap<String, u64>,
    qtypes: [HashMap<String, u64>; 2],
}

fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOIMP",
        5 => "REFUSED",
        other => return format!("rcode{other}"),
    }
    .to_string()
}

fn count(messages: &[DnsMessage]) -> Truth {
    let mut truth = Truth::default();
    for m in messages {
        let Some(payload) = m.payload().filter(|p| p.len() >= 12) else {
            truth.malformed += 1;
            continue;
        };
        let d = usize::from(!m.is_query());
        if d == 0 {
            truth.queries += 1;
        } else {
            truth.responses += 1;
        }
        truth.bytes[d] += payload.len() as u64;
        let parsed = domain::base::Message::from_octets(payload.to_vec()).expect("header");
        let rcode = parsed.header().rcode().to_int();
        *truth.rcodes[d].entry(rcode_name(rcode)).or_default() += 1;
        let question = parsed.first_question();
        let qname = question.as_ref().map_or("-".to_string(), |q| {
            let name = q.qname().to_string().to_ascii_lowercase();
            if name.ends_with('.') {
                name
            } else {
                format!("{name}.")
            }
        });
        let qtype = question.as_ref().map_or("-".to_string(), |q| {
            q.qtype().to_string().to_ascii_lowercase()
        });
        *truth.qtypes[d].entry(qtype).or_default() += 1;
        truth.clients.insert(m.query_address);
        truth.domains.insert(qname.clone());
        *truth
            .qnames_by_rcode
            .entry((rcode_name(rcode), d))
            .or_default()
            .entry(qname)
            .or_default() += 1;
        let client = m.query_address.map_or("-".to_string(), |a| a.to_string());
        *truth.client_hits.entry(client.clone()).or_default() += 1;
        *truth.client_bytes.entry(client).or_default() += payload.len() as u64;
    }
    truth
}

fn observe_all(messages: &[DnsMessage]) -> Stats {
    let stats = Stats::new(StatsConfig::default()).expect("stats");
    for m in messages {
        stats.observe_at(m, 0);
    }
    stats
}

/// `value` within three standard errors of `truth` (at least 1).
fn within_sketch_error(value: &Value, truth: usize) {
    let estimate = value["value"].as_u64().expect("estimate") as f64;
    let error = value["relative_standard_error"].as_f64().expect("error");
    assert_eq!(value["approximate"], true);
    let allowed = (3.0 * error * truth as f64).max(1.0);
    assert!(
        (estimate - truth as f64).abs() <= allowed,
        "estimate {estimate}, truth {truth}"
    );
}

fn check_counters(stats: &Stats, truth: &Truth, label: &str) {
    let report = stats.report_counters(None).expect("report");
    assert_eq!(report["queries"], truth.queries, "{label}");
    assert_eq!(report["responses"], truth.responses, "{label}");
    assert_eq!(report["malformed"], truth.malformed, "{label}");
    assert_eq!(report["bytes"]["query"], truth.bytes[0], "{label}");
    assert_eq!(report["bytes"]["response"], truth.bytes[1], "{label}");
    for (d, direction) in ["query", "response"].into_iter().enumerate() {
        let rcodes = report["rcodes"][direction].as_object().expect("rcodes");
        assert_eq!(
            rcodes.len(),
            truth.rcodes[d].len(),
            "{label} {direction} {rcodes:?}"
        );
        for (name, &n) in &truth.rcodes[d] {
            assert_eq!(rcodes[name], n, "{label} {direction} {name}");
        }
    }
    within_sketch_error(&report["unique_clients"], truth.clients.len());
    within_sketch_error(&report["unique_domains"], truth.domains.len());
}

/// A table answer (global, or of `stream`) as (key, count) pairs, checked
/// exact.
fn rows(stats: &Stats, stream: Option<&str>, table: &str) -> HashMap<String, u64> {
    let answer = stats
        .report_tables(stream, Window::SinceStart, usize::MAX, Some(table))
        .expect("tables");
    let table = &answer["tables"][table];
    assert_eq!(table["exact"], true, "{table}");
    table["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            assert_eq!(row["error"], 0);
            (
                row["key"].as_str().expect("key").to_string(),
                row["count"].as_u64().expect("count"),
            )
        })
        .collect()
}

fn check_tables(stats: &Stats, stream: Option<&str>, truth: &Truth, label: &str) {
    for (rcode, d, table) in [
        ("NXDOMAIN", 1, "qnames_nxdomain/response"),
        ("SERVFAIL", 1, "qnames_servfail/response"),
        ("NOERROR", 1, "qnames_noerror/response"),
        ("NOERROR", 0, "qnames_noerror/query"),
        ("REFUSED", 1, "qnames_refused/response"),
    ] {
        let want = truth
            .qnames_by_rcode
            .get(&(rcode.to_string(), d))
            .cloned()
            .unwrap_or_default();
        assert_eq!(rows(stats, stream, table), want, "{label} {table}");
    }
    assert_eq!(rows(stats, stream, "clients"), truth.client_hits, "{label}");
    assert_eq!(
        rows(stats, stream, "client_bytes"),
        truth.client_bytes,
        "{label}"
    );
    for (d, direction) in ["query", "response"].into_iter().enumerate() {
        let got: HashMap<String, u64> = rows(stats, stream, &format!("qtypes/{direction}"))
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect();
        assert_eq!(got, truth.qtypes[d], "{label} qtypes/{direction}");
    }
    if stream.is_some() {
        // Streams keep no windows.
        return;
    }
    // The last-minute window saw everything (one instant), so it equals
    // the since-start table.
    let minute = stats
        .report_tables(None, Window::Minute, 10, Some("clients"))
        .expect("minute");
    let since = stats
        .report_tables(None, Window::SinceStart, 10, Some("clients"))
        .expect("since start");
    assert_eq!(
        minute["tables"]["clients"]["rows"],
        since["tables"]["clients"]["rows"]
    );
}

fn unbound_files() -> Vec<PathBuf> {
    [
        "unbound_resolver.dnstap",
        "unbound_auth.dnstap",
        "unbound_dnsperf_resolver.dnstap",
    ]
    .iter()
    .map(|f| dnsrecall_testkit::data(&format!("dnstap/unbound/{f}")))
    .collect()
}

#[test]
fn unbound_dnstap_counters_and_tables_are_exact() {
    for path in unbound_files() {
        let label = path.display().to_string();
        let messages = common::dnstap_messages(&path);
        assert!(messages.len() > 100, "{label}");
        let truth = count(&messages);
        let stats = observe_all(&messages);
        check_counters(&stats, &truth, &label);
        check_tables(&stats, None, &truth, &label);

        // The reference decoding (dnspython) agrees on responses and their
        // rcodes; it lists one `msg` line per response frame.
        let expected = common::expected(&path);
        let frames: Vec<&Value> = expected.iter().filter(|v| v["kind"] == "dnstap").collect();
        let queries = frames
            .iter()
            .filter(|v| v["type"].as_str().is_some_and(|t| t.ends_with("_QUERY")))
            .count() as u64;
        assert_eq!(truth.queries, queries, "{label}");
        let mut rcodes: HashMap<String, u64> = HashMap::new();
        for line in expected.iter().filter(|v| v["kind"] == "msg") {
            *rcodes
                .entry(line["rcode"].as_str().expect("rcode").to_string())
                .or_default() += 1;
        }
        let report = stats.report_counters(None).expect("report");
        for (name, n) in rcodes {
            assert_eq!(report["rcodes"]["response"][&name], n, "{label} {name}");
        }

        // Per stream: the identity's counters equal the global ones (one
        // identity per file).
        let streams = stats.streams();
        assert_eq!(streams.len(), 1, "{label}");
        let stream = stats.report_counters(Some(&streams[0])).expect("stream");
        assert_eq!(stream["queries"], report["queries"]);
        assert_eq!(stream["rcodes"], report["rcodes"]);
        // And its tables are exact too (the only stream's tables are
        // copies of the global ones: lib.rs, `Inner::mirror`).
        check_tables(&stats, Some(&streams[0]), &truth, &label);
    }
}

#[test]
fn pcap_counters_and_tables_are_exact() {
    let mut files = Vec::new();
    for folder in ["pcap/go-dnscollector", "pcap/tcpdump", "pcap/unbound"] {
        let dir = dnsrecall_testkit::data(folder);
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path
                .extension()
                .is_some_and(|e| e == "pcap" || e == "pcapng")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut total = 0;
    for path in files {
        let label = path.display().to_string();
        let messages = common::pcap_messages(&path, "eth0");
        total += messages.len();
        let truth = count(&messages);
        let stats = observe_all(&messages);
        check_counters(&stats, &truth, &label);
        check_tables(&stats, None, &truth, &label);
        // One sensor: its stream's tables are the global ones.
        let streams = stats.streams();
        assert!(streams.len() <= 1, "{label}: {streams:?}");
        for stream in streams {
            check_tables(&stats, Some(&stream), &truth, &label);
        }
        // Every response of the reference decoding on port 53 (the
        // capture's default port set) is counted.
        let expected = common::expected(&path);
        let responses = expected
            .iter()
            .filter(|v| v["kind"] == "msg" && v["layer"] == "dns" && v["sport"] == 53)
            .count() as u64;
        assert!(truth.responses >= responses, "{label}");
    }
    assert!(total > 100, "{total}");
}

#[test]
fn latency_pairs_queries_with_responses_exactly() {
    let path = dnsrecall_testkit::data("dnstap/unbound/unbound_resolver.dnstap");
    let messages = common::dnstap_messages(&path);
    // The test's own pairing: (client, port, id) of a query to the next
    // response with the same key.
    let mut waiting: HashMap<(IpAddr, u16, u16), u64> = HashMap::new();
    let mut buckets = [0u64; 6];
    let mut unmatched = 0u64;
    let mut latencies = Vec::new();
    for m in &messages {
        let (Some(address), Some(port), Some(payload)) =
            (m.query_address, m.query_port, m.payload())
        else {
            continue;
        };
        let id = u16::from_be_bytes([payload[0], payload[1]]);
        if m.is_query() {
            waiting.insert((address, port, id), m.query_time.expect("time").as_nanos());
        } else if let Some(start) = waiting.remove(&(address, port, id)) {
            let nanos = m
                .response_time
                .expect("time")
                .as_nanos()
                .saturating_sub(start);
            let millis = (nanos as f64 / 1e6).round();
            let bucket = [1.0, 10.0, 50.0, 100.0, 1000.0]
                .iter()
                .position(|&b| millis <= b)
                .unwrap_or(5);
            buckets[bucket] += 1;
            latencies.push(nanos);
        } else {
            unmatched += 1;
        }
    }
    assert!(latencies.len() > 50, "{}", latencies.len());
    let stats = observe_all(&messages);
    let report = stats.report_counters(None).expect("report");
    let names = [
        "latency0_1",
        "latency1_10",
        "latency10_50",
        "latency50_100",
        "latency100_1000",
        "latency_slow",
    ];
    for (name, n) in names.iter().zip(buckets) {
        assert_eq!(
            report["latency"]["buckets"][*name].as_u64().unwrap_or(0),
            n,
            "{name}"
        );
    }
    assert_eq!(report["latency"]["paired"], latencies.len() as u64);
    assert_eq!(report["pairing"]["unmatched_responses"], unmatched);
    // Percentiles within the histogram's stated relative error.
    latencies.sort_unstable();
    let histogram = &report["latency"]["histogram"];
    let error = histogram["relative_error"].as_f64().expect("error");
    for (q, key) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        let truth = latencies[rank - 1] as f64 / 1e9;
        let got = histogram[key].as_f64().expect("percentile");
        // Below 1 µs everything is one bucket.
        assert!(
            (got - truth).abs() <= error * truth + 1e-6,
            "{key}: {got} vs {truth}"
        );
    }
}

#[test]
fn memory_stays_within_the_bound_and_heavy_hitters_survive() {
    let config = StatsConfig {
        memory_bound: 8 * 1024 * 1024,
        max_streams: 2,
        ..StatsConfig::default()
    };
    let stats = Stats::new(config).expect("stats");
    let template = common::dnstap_messages(&dnsrecall_testkit::data(
        "dnstap/unbound/unbound_resolver.dnstap",
    ))
    .into_iter()
    .find(|m| m.is_query())
    .expect("a query");
    let query = |name: &str, client: u32| common::query_from(&template, name, client);
    let heavy = query("heavy.example.com", 1);
    for i in 0..200_000u32 {
        stats.observe_at(&query(&format!("n{i}.unique-{i}.example.net"), i), 0);
        if i % 10 == 0 {
            stats.observe_at(&heavy, 0);
        }
    }
    let used = stats.used_bytes();
    assert!(used <= stats.plan().planned_bytes, "{used}");
    assert!(stats.plan().planned_bytes <= 8 * 1024 * 1024);
    let answer = stats
        .report_tables(None, Window::SinceStart, 1, Some("qnames/query"))
        .expect("tables");
    let table = &answer["tables"]["qnames/query"];
    assert_eq!(table["approximate"], true);
    let row = &table["rows"][0];
    assert_eq!(row["key"], "heavy.example.com.");
    let count = row["count"].as_u64().expect("count");
    let error = row["error"].as_u64().expect("error");
    assert!(count >= 20_000 && count - error <= 20_000, "{row}");
    let report = stats.report_counters(None).expect("report");
    within_sketch_error(&report["unique_domains"], 200_001);
    within_sketch_error(&report["unique_clients"], 200_000);
}
