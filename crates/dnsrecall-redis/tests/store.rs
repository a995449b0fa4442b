//! The Redis store against a private redis-server: round trips, min/max
//! under concurrent out-of-order writers, expiration, unsupported lookups.

mod common;

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use common::{entry, entry_from, lookup, raw, summary};
use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, StoreError, TypeFilter};
use dnsrecall_core::{Entry, Name, Rtype};
use dnsrecall_redis::{RedisConfig, RedisStore};
use dnsrecall_testkit::redis::RedisServer;
use redis::Commands;

#[test]
fn records_round_trip_and_merge() {
    let server = RedisServer::start();
    let store = RedisStore::open(&RedisConfig::new(server.url(0))).unwrap();
    assert!(!store.is_cluster());
    store
        .write(&[
            entry("www.example.com.", Rtype::A, "192.0.2.10", 1000, 2000, 3),
            entry(
                "www.example.com.",
                Rtype::AAAA,
                "2001:db8::10",
                1500,
                1500,
                1,
            ),
            entry("www.example.com.", Rtype::TXT, "\"Hello World\"", 10, 20, 1),
            entry("example.com.", Rtype::MX, "10 mx.example.net.", 5, 6, 1),
            entry(
                "alias.example.com.",
                Rtype::CNAME,
                "www.example.com.",
                7,
                8,
                2,
            ),
        ])
        .unwrap();
    // A later batch: earlier first, later last, counts add.
    store
        .write(&[entry(
            "www.example.com.",
            Rtype::A,
            "192.0.2.10",
            500,
            2500,
            4,
        )])
        .unwrap();
    assert_eq!(
        lookup(&store, "WWW.Example.com"),
        vec![
            (Rtype::A, "192.0.2.10".into(), 500, 2500, 7),
            (Rtype::TXT, "\"Hello World\"".into(), 10, 20, 1),
            (Rtype::AAAA, "2001:db8::10".into(), 1500, 1500, 1),
        ]
    );
    assert_eq!(
        lookup(&store, "example.com"),
        vec![(Rtype::MX, "10 mx.example.net.".into(), 5, 6, 1)]
    );

    // Address and rdata-name lookups through v:.
    let mut found = Vec::new();
    let address: IpAddr = "192.0.2.10".parse().unwrap();
    store
        .scan_rdata(
            &RdataQuery::Address {
                first: address,
                last: address,
            },
            &mut |e: Entry| {
                found.push((e.record.rrname.to_dotless(), summary(&e)));
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(
        found,
        vec![(
            "www.example.com".to_string(),
            (Rtype::A, "192.0.2.10".into(), 500, 2500, 7)
        )]
    );
    let mut names = Vec::new();
    store
        .scan_rdata(
            &RdataQuery::Name {
                name: NameMatch::Exact(Name::from_presentation("www.example.com").unwrap()),
                types: TypeFilter::All,
            },
            &mut |e: Entry| {
                names.push(e.record.rrname.to_dotless());
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(names, ["alias.example.com"]);

    // Everything, and the totals.
    let mut all = Vec::new();
    store
        .scan_all(&mut |e: Entry| {
            all.push((e.record.rrname.to_dotless(), e.record.rrtype));
            ControlFlow::Continue(())
        })
        .unwrap();
    all.sort();
    assert_eq!(all.len(), 5, "{all:?}");
    let info = store.info().unwrap();
    assert_eq!(info.observations, 3 + 1 + 1 + 1 + 2 + 4);
    assert!(info.records_estimate >= 5, "{info:?}");
    assert_eq!(store.counters().batches, 2);
}

#[test]
fn concurrent_out_of_order_writers_keep_min_max_and_sum() {
    let server = RedisServer::start();
    let store = Arc::new(RedisStore::open(&RedisConfig::new(server.url(0))).unwrap());
    // 4 writers, 200 sightings each of the same records, times scattered
    // so every writer sees both early and late ones in no order.
    let writers: Vec<_> = (0..4u64)
        .map(|writer| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    let time = 1_000_000 + (writer * 7919 + i * 104_729) % 100_000;
                    let batch = [
                        entry("race.example.", Rtype::A, "198.51.100.1", time, time, 1),
                        entry("race.example.", Rtype::A, "198.51.100.2", time, time + 5, 2),
                    ];
                    store.write(&batch).unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let times: Vec<u64> = (0..4u64)
        .flat_map(|w| (0..200u64).map(move |i| 1_000_000 + (w * 7919 + i * 104_729) % 100_000))
        .collect();
    let (min, max) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    assert_eq!(
        lookup(store.as_ref(), "race.example"),
        vec![
            (Rtype::A, "198.51.100.1".into(), min, max, 800),
            (Rtype::A, "198.51.100.2".into(), min, max + 5, 1600),
        ]
    );
}

#[test]
fn expiration_applies_to_all_five_keys() {
    let server = RedisServer::start();
    let mut config = RedisConfig::new(server.url(0));
    config.expiration.insert(16, 24_000);
    let store = RedisStore::open(&config).unwrap();
    store
        .write(&[
            entry("t.example.", Rtype::TXT, "\"v=spf1 -all\"", 1, 2, 1),
            entry("t.example.", Rtype::A, "192.0.2.1", 1, 2, 1),
        ])
        .unwrap();
    let mut con = raw(&server.url(0));
    for key in [
        "r:t.example:16",
        "v:\"v=spf1 -all\":16",
        "s:t.example:\"v=spf1 -all\":16",
        "l:t.example:\"v=spf1 -all\":16",
        "o:t.example:\"v=spf1 -all\":16",
    ] {
        let ttl: i64 = con.ttl(key).unwrap();
        assert!((23_990..=24_000).contains(&ttl), "{key}: {ttl}");
    }
    let ttl: i64 = con.ttl("l:t.example:192.0.2.1:1").unwrap();
    assert_eq!(ttl, -1, "types without expiration never expire");
}

#[test]
fn lookups_the_schema_cannot_answer_name_the_rocksdb_store() {
    let server = RedisServer::start();
    let store = RedisStore::open(&RedisConfig::new(server.url(0))).unwrap();
    let name = Name::from_presentation("example.com").unwrap();
    let mut ignore = |_: Entry| ControlFlow::Continue(());
    let errors = [
        store.scan_rrset(
            &RrsetQuery {
                name: NameMatch::Subtree(name.clone()),
                types: TypeFilter::All,
                bailiwick: None,
            },
            &mut ignore,
        ),
        store.scan_rrset(
            &RrsetQuery {
                name: NameMatch::Exact(name.clone()),
                types: TypeFilter::All,
                bailiwick: Some(name.clone()),
            },
            &mut ignore,
        ),
        store.scan_rdata(
            &RdataQuery::Address {
                first: "192.0.2.0".parse().unwrap(),
                last: "192.0.2.255".parse().unwrap(),
            },
            &mut ignore,
        ),
        store.scan_rdata(
            &RdataQuery::Name {
                name: NameMatch::Prefix(vec![b"www".to_vec()]),
                types: TypeFilter::All,
            },
            &mut ignore,
        ),
        store.scan_rdata(
            &RdataQuery::Raw {
                prefix: vec![1, 2],
                types: TypeFilter::All,
            },
            &mut ignore,
        ),
    ];
    for result in errors {
        let error = result.unwrap_err();
        assert!(
            matches!(
                error,
                StoreError::Unsupported {
                    backend: "redis",
                    alternative: "rocksdb",
                    ..
                }
            ),
            "{error:?}"
        );
        assert!(error.to_string().contains("rocksdb"), "{error}");
    }
}

#[test]
fn sensors_and_distributions_are_counted() {
    let server = RedisServer::start();
    let store = RedisStore::open(&RedisConfig::new(server.url(0))).unwrap();
    store
        .write(&[
            entry_from("s1", entry("a.example.", Rtype::A, "192.0.2.1", 1, 1, 5)),
            entry_from(
                "s2",
                entry("b.example.", Rtype::AAAA, "2001:db8::1", 1, 1, 2),
            ),
            entry_from("s1", entry("c.example.", Rtype::A, "192.0.2.3", 1, 1, 1)),
        ])
        .unwrap();
    let info = store.info().unwrap();
    assert_eq!(info.observations, 8);
    assert_eq!(info.sensors, vec![("s1".into(), 6), ("s2".into(), 2)]);
    let mut con = raw(&server.url(0));
    let dist: std::collections::BTreeMap<String, u64> = con.hgetall("dist:type").unwrap();
    assert_eq!(dist.get("1"), Some(&6));
    assert_eq!(dist.get("28"), Some(&2));
    let seen: std::collections::BTreeSet<String> = con.smembers("sensors:seen").unwrap();
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["s1", "s2"]);
}

#[test]
fn a_server_that_disappears_fails_the_write_and_counts_it() {
    let mut server = RedisServer::start();
    let mut config = RedisConfig::new(server.url(0));
    config.write_attempts = 3;
    config.retry_backoff_ms = 10;
    config.timeout_ms = 500;
    let store = RedisStore::open(&config).unwrap();
    store
        .write(&[entry("x.example.", Rtype::A, "192.0.2.1", 1, 1, 1)])
        .unwrap();
    server.kill();
    let batch: Vec<Entry> = (0..10)
        .map(|i| entry(&format!("n{i}.example."), Rtype::A, "192.0.2.2", 1, 1, 1))
        .collect();
    let error = store.write(&batch).unwrap_err();
    assert!(matches!(error, StoreError::Engine(_)), "{error:?}");
    let counters = store.counters();
    assert_eq!(counters.attempt_errors, 3);
    assert_eq!(counters.retries, 2);
    assert_eq!(counters.entries_failed, 10);
    assert_eq!(counters.entries, 1);
}
