//! Interoperability with D4's analyzer-d4-passivedns, both ways, written
//! from its key schema (reference cof-d4.md §1.2, §1.4–1.6):
//!
//! * a database written by dnsrecall holds exactly the keys and values
//!   D4's writer would have written, and D4's reader (`pdns-cof-server.py`
//!   `getRecord`, re-implemented here step by step) serves them;
//! * a database laid out by D4's writers (`pdns-ingestion.py` on passivedns
//!   lines, `pdns-import-cof.py` on COF), re-implemented here command by
//!   command, is served by dnsrecall.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::ops::ControlFlow;

use common::{entry, entry_from, lookup, raw};
use dnsrecall_core::store::{RdataQuery, Store};
use dnsrecall_core::{Entry, Rtype};
use dnsrecall_redis::{RedisConfig, RedisStore, keys};
use dnsrecall_testkit::redis::RedisServer;
use redis::Commands;

/// D4's server serves these types, probed in this order.
const D4_SERVED: [(&str, &str); 8] = [
    ("1", "A"),
    ("2", "NS"),
    ("5", "CNAME"),
    ("15", "MX"),
    ("16", "TXT"),
    ("28", "AAAA"),
    ("33", "SRV"),
    ("46", "RRSIG"),
];

/// What D4's server answers: `(rrtype, rrname, rdata, time_first, time_last, count)`.
type D4Row = (
    String,
    String,
    String,
    Option<u64>,
    Option<u64>,
    Option<u64>,
);

/// `getFirstSeen`/`getLastSeen`/`getCount`: lower-cases both parts and
/// returns the first hit over every served type.
fn d4_get(con: &mut redis::Connection, prefix: &str, t: &str, rdata: &str) -> Option<u64> {
    for (number, _) in D4_SERVED {
        let key = format!(
            "{prefix}:{}:{}:{number}",
            t.to_lowercase(),
            rdata.to_lowercase()
        );
        let value: Option<String> = con.get(&key).unwrap();
        if let Some(value) = value {
            return value.parse().ok();
        }
    }
    None
}

/// `getRecord(t)` of pdns-cof-server.py.
fn d4_get_record(con: &mut redis::Connection, t: &str) -> Vec<D4Row> {
    let mut rows = Vec::new();
    for (number, mnemonic) in D4_SERVED {
        let key = format!("r:{t}:{number}");
        let cardinality: u64 = con.scard(&key).unwrap();
        if cardinality >= 200 {
            continue;
        }
        let members: BTreeSet<String> = con.smembers(&key).unwrap();
        for rdata in members {
            let rdata = rdata.trim().to_string();
            let first = d4_get(con, "s", t, &rdata);
            if first.is_none() {
                break;
            }
            let last = d4_get(con, "l", t, &rdata);
            let count = d4_get(con, "o", t, &rdata);
            rows.push((
                mnemonic.to_string(),
                t.to_string(),
                rdata,
                first,
                last,
                count,
            ));
        }
    }
    rows
}

/// The reverse lookup: `SMEMBERS v:{q.lower()}:{T}` over the served types,
/// then `getRecord` of each name.
fn d4_reverse(con: &mut redis::Connection, q: &str) -> Vec<D4Row> {
    let mut rows = Vec::new();
    for (number, _) in D4_SERVED {
        let names: BTreeSet<String> = con
            .smembers(format!("v:{}:{number}", q.to_lowercase()))
            .unwrap();
        for name in names {
            rows.extend(d4_get_record(con, &name));
        }
    }
    rows
}

fn row(t: &str, q: &str, v: &str, first: u64, last: u64, count: u64) -> D4Row {
    (
        t.into(),
        q.into(),
        v.into(),
        Some(first),
        Some(last),
        Some(count),
    )
}

#[test]
fn what_dnsrecall_writes_is_exactly_what_d4_reads() {
    let server = RedisServer::start();
    let store = RedisStore::open(&RedisConfig::new(server.url(0))).unwrap();
    // The worked example of §1.2, then a later and an earlier sighting.
    let name = "www-google-analytics.l.google.com.";
    let address = "2a00:1450:400e:801::200e";
    store
        .write(&[entry(name, Rtype::AAAA, address, 1548624738, 1548624738, 1)])
        .unwrap();
    store
        .write(&[
            entry(name, Rtype::AAAA, address, 1548625000, 1548625000, 1),
            entry(name, Rtype::AAAA, address, 1548600000, 1548600000, 1),
        ])
        .unwrap();
    let mut con = raw(&server.url(0));
    let mut all_keys: Vec<String> = con.keys("*").unwrap();
    all_keys.sort();
    let q = "www-google-analytics.l.google.com";
    assert_eq!(
        all_keys,
        [
            "dist:class".to_string(),
            "dist:type".into(),
            format!("l:{q}:{address}:28"),
            format!("o:{q}:{address}:28"),
            format!("r:{q}:28"),
            format!("s:{q}:{address}:28"),
            "stats:processed".into(),
            format!("v:{address}:28"),
        ]
    );
    let members: Vec<String> = con.smembers(format!("r:{q}:28")).unwrap();
    assert_eq!(members, [address]);
    let names: Vec<String> = con.smembers(format!("v:{address}:28")).unwrap();
    assert_eq!(names, [q]);
    let get = |con: &mut redis::Connection, key: String| -> String { con.get(key).unwrap() };
    assert_eq!(get(&mut con, format!("s:{q}:{address}:28")), "1548600000");
    assert_eq!(get(&mut con, format!("l:{q}:{address}:28")), "1548625000");
    assert_eq!(get(&mut con, format!("o:{q}:{address}:28")), "3");
    assert_eq!(get(&mut con, "stats:processed".into()), "3");
    let dist: BTreeMap<String, String> = con.hgetall("dist:type").unwrap();
    assert_eq!(dist, BTreeMap::from([("28".to_string(), "3".to_string())]));
    let class: BTreeMap<String, String> = con.hgetall("dist:class").unwrap();
    assert_eq!(class, BTreeMap::from([("IN".to_string(), "3".to_string())]));

    // D4's reader, on more types, by name and by address.
    store
        .write(&[
            entry_from(
                "sensor-1",
                entry(
                    "Mail.Example.COM.",
                    Rtype::CNAME,
                    "MX1.Example.net.",
                    100,
                    200,
                    4,
                ),
            ),
            entry("mx1.example.net.", Rtype::A, "192.0.2.25", 150, 250, 2),
            entry(
                "example.com.",
                Rtype::TXT,
                "\"V=spf1 Include:x -all\"",
                10,
                20,
                1,
            ),
            entry("example.com.", Rtype::MX, "10 mx1.example.net.", 30, 40, 5),
        ])
        .unwrap();
    assert_eq!(
        d4_get_record(&mut con, q),
        vec![row("AAAA", q, address, 1548600000, 1548625000, 3)]
    );
    assert_eq!(
        d4_get_record(&mut con, "mail.example.com"),
        vec![row(
            "CNAME",
            "mail.example.com",
            "mx1.example.net",
            100,
            200,
            4
        )]
    );
    assert_eq!(
        d4_get_record(&mut con, "example.com"),
        vec![
            row("MX", "example.com", "10 mx1.example.net", 30, 40, 5),
            row("TXT", "example.com", "\"V=spf1 Include:x -all\"", 10, 20, 1),
        ]
    );
    assert_eq!(
        d4_reverse(&mut con, "192.0.2.25"),
        vec![row("A", "mx1.example.net", "192.0.2.25", 150, 250, 2)]
    );
    assert_eq!(
        d4_reverse(&mut con, "MX1.example.net"),
        vec![row(
            "CNAME",
            "mail.example.com",
            "mx1.example.net",
            100,
            200,
            4
        )]
    );
    // The COF importer's sensor keys.
    let seen: Vec<String> = con.smembers("sensors:seen").unwrap();
    assert_eq!(seen, ["sensor-1"]);
    let ranked: Vec<(String, u64)> = con.zrevrange_withscores("stats:sensors", 0, -1).unwrap();
    assert_eq!(ranked, [("sensor-1".to_string(), 4)]);
}

/// D4's rrtype table (records-type.json), the part these tests need.
fn d4_type_number(mnemonic: &str) -> Option<u16> {
    Some(match mnemonic {
        "A" => 1,
        "NS" => 2,
        "CNAME" => 5,
        "SOA" => 6,
        "PTR" => 12,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        "SRV" => 33,
        "NAPTR" => 35,
        "DNAME" => 39,
        _ => return None,
    })
}

/// `pdns-ingestion.py` on one passivedns line, command by command (§1.2).
/// Returns the `(q, t, v)` it wrote, `None` for lines it skips.
fn d4_ingest_line(con: &mut redis::Connection, line: &str) -> Option<(String, u16, String, u64)> {
    let fields: Vec<&str> = line.split("||").collect();
    if fields.len() < 9 {
        return None;
    }
    let timestamp = fields[0].split('.').next()?.to_string();
    let q = fields[4].to_lowercase().trim_matches('.').to_string();
    let t = d4_type_number(fields[5])?;
    let mut v = fields[6].to_lowercase().trim_matches('.').to_string();
    if t == 16 {
        v = v.replacen('"', "", 1);
    }
    let _: () = con.sadd(format!("r:{q}:{t}"), &v).unwrap();
    let _: () = con.sadd(format!("v:{v}:{t}"), &q).unwrap();
    let first_key = format!("s:{q}:{v}:{t}");
    let exists: bool = con.exists(&first_key).unwrap();
    if !exists {
        let _: () = con.set(&first_key, &timestamp).unwrap();
    }
    let last_key = format!("l:{q}:{v}:{t}");
    let last: Option<String> = con.get(&last_key).unwrap();
    if last.is_none_or(|last| last.parse::<u64>().unwrap_or(0) < timestamp.parse().unwrap_or(0)) {
        let _: () = con.set(&last_key, &timestamp).unwrap();
    }
    let _: () = con.incr(format!("o:{q}:{v}:{t}"), 1).unwrap();
    let _: () = con.hincr("dist:ttl", fields[7], 1).unwrap();
    let _: () = con.hincr("dist:class", fields[3], 1).unwrap();
    let _: () = con.hincr("dist:type", t, 1).unwrap();
    let _: () = con.incr("stats:processed", 1).unwrap();
    Some((q, t, v, timestamp.parse().ok()?))
}

#[test]
fn a_database_written_by_d4_is_served() {
    let server = RedisServer::start();
    let mut con = raw(&server.url(0));
    // Expected answers, computed from the lines with D4's semantics.
    let mut expected: BTreeMap<(String, u16, String), (u64, u64, u64)> = BTreeMap::new();
    let mut lines = 0u64;
    for file in [
        "passivedns/go-dnscollector__dnsdump_udp.log",
        "passivedns/go-dnscollector__dnsdump_tcp.log",
        "passivedns/gamelinux_readme_sample.log",
    ] {
        let reader =
            std::io::BufReader::new(std::fs::File::open(dnsrecall_testkit::data(file)).unwrap());
        for line in reader.lines() {
            let line = line.unwrap();
            if let Some((q, t, v, time)) = d4_ingest_line(&mut con, &line) {
                lines += 1;
                let slot = expected.entry((q, t, v)).or_insert((time, time, 0));
                slot.0 = slot.0.min(time);
                slot.1 = slot.1.max(time);
                slot.2 += 1;
            }
        }
    }
    assert!(expected.len() > 20, "fixture too small: {}", expected.len());
    assert!(
        expected.keys().any(|(_, t, _)| *t == 16),
        "a TXT record is exercised"
    );
    assert!(
        expected.keys().any(|(_, t, _)| *t == 5),
        "a CNAME record is exercised"
    );
    // pdns-import-cof.py: count overwrites, sensors counted.
    let cof_q = "cof.example.org";
    let _: () = con.sadd(format!("r:{cof_q}:1"), "203.0.113.7").unwrap();
    let _: () = con.sadd("v:203.0.113.7:1", cof_q).unwrap();
    let _: () = con
        .set(format!("s:{cof_q}:203.0.113.7:1"), "1600000000")
        .unwrap();
    let _: () = con
        .set(format!("l:{cof_q}:203.0.113.7:1"), "1600000500")
        .unwrap();
    let _: () = con.set(format!("o:{cof_q}:203.0.113.7:1"), 42).unwrap();
    let _: () = con.sadd("sensors:seen", "circl-1").unwrap();
    let _: () = con.zincr("stats:sensors", "circl-1", 1).unwrap();
    let _: () = con.incr("stats:processed", 1).unwrap();
    expected.insert(
        (cof_q.to_string(), 1, "203.0.113.7".to_string()),
        (1600000000, 1600000500, 42),
    );

    let store = RedisStore::open(&RedisConfig::new(server.url(0))).unwrap();
    // Every record D4 wrote, by a full scan and by name.
    let key = |e: &Entry| {
        (
            keys::rrname(&e.record.rrname),
            e.record.rrtype.0,
            keys::rdata_member(&e.record),
        )
    };
    let mut scanned = BTreeMap::new();
    store
        .scan_all(&mut |e: Entry| {
            scanned.insert(key(&e), (e.seen.time_first, e.seen.time_last, e.seen.count));
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(scanned, expected);
    let names: BTreeSet<&String> = expected.keys().map(|(q, _, _)| q).collect();
    let mut by_name = BTreeMap::new();
    for name in names {
        let query = dnsrecall_core::store::RrsetQuery {
            name: dnsrecall_core::store::NameMatch::Exact(
                dnsrecall_core::Name::from_presentation(name).unwrap(),
            ),
            types: dnsrecall_core::store::TypeFilter::All,
            bailiwick: None,
        };
        store
            .scan_rrset(&query, &mut |e: Entry| {
                by_name.insert(key(&e), (e.seen.time_first, e.seen.time_last, e.seen.count));
                ControlFlow::Continue(())
            })
            .unwrap();
    }
    assert_eq!(by_name, expected);
    // A CNAME target written without its dot is a name again.
    let cname = lookup(&store, "mtalk.google.com");
    assert_eq!(cname[0].0, Rtype::CNAME);
    assert_eq!(cname[0].1, "mobile-gtalk.l.google.com.");
    // An address lookup through v:.
    let ip: std::net::IpAddr = "74.125.133.188".parse().unwrap();
    let mut hits = Vec::new();
    store
        .scan_rdata(
            &RdataQuery::Address {
                first: ip,
                last: ip,
            },
            &mut |e: Entry| {
                hits.push(keys::rrname(&e.record.rrname));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(hits, ["mobile-gtalk.l.google.com"]);
    // /info from stats:processed and stats:sensors.
    let info = store.info().unwrap();
    assert_eq!(info.observations, lines + 1);
    assert_eq!(info.sensors, vec![("circl-1".to_string(), 1)]);
    assert_eq!(store.counters().incomplete_records, 0);
}

#[test]
fn migration_copies_a_d4_database_into_another_store() {
    let d4 = RedisServer::start();
    let other = RedisServer::start();
    let mut con = raw(&d4.url(0));
    let reader = std::io::BufReader::new(
        std::fs::File::open(dnsrecall_testkit::data(
            "passivedns/go-dnscollector__dnsdump_udp.log",
        ))
        .unwrap(),
    );
    for line in reader.lines() {
        d4_ingest_line(&mut con, &line.unwrap());
    }
    let source = RedisStore::open(&RedisConfig::new(d4.url(0))).unwrap();
    let target = RedisStore::open(&RedisConfig::new(other.url(0))).unwrap();
    let mut reports = 0;
    let summary =
        dnsrecall_redis::migrate::copy_all(&source, &target, 7, &mut |_| reports += 1).unwrap();
    let dump = |store: &RedisStore| {
        let mut all = BTreeMap::new();
        store
            .scan_all(&mut |e: Entry| {
                all.insert(
                    (
                        keys::rrname(&e.record.rrname),
                        e.record.rrtype.0,
                        keys::rdata_member(&e.record),
                    ),
                    (e.seen.time_first, e.seen.time_last, e.seen.count),
                );
                ControlFlow::Continue(())
            })
            .unwrap();
        all
    };
    let original = dump(&source);
    assert!(original.len() > 5, "{}", original.len());
    assert_eq!(dump(&target), original);
    assert_eq!(summary.records, original.len() as u64);
    assert_eq!(summary.batches, (original.len() as u64).div_ceil(7));
    assert_eq!(reports, summary.batches);
    assert_eq!(
        summary.observations,
        original.values().map(|v| v.2).sum::<u64>()
    );
}
