//! The RocksDB store against real RocksDB in a temporary directory: merges,
//! every scan kind, retention by compaction, schema check, followers.

use std::ops::ControlFlow;
use std::sync::Arc;

use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, StoreError, TypeFilter};
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_store::{OpenMode, RocksConfig, RocksStore};

fn entry(name: &str, rtype: Rtype, rdata: &str, first: u64, last: u64, count: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rtype, rdata),
        },
        seen: Seen {
            time_first: first,
            time_last: last,
            count,
            zone_times: None,
            sensor_id: Some(Arc::from("s1")),
        },
    }
}

fn collect(scan: impl FnOnce(&mut dyn FnMut(Entry) -> ControlFlow<()>)) -> Vec<String> {
    let mut out = Vec::new();
    scan(&mut |e: Entry| {
        out.push(format!(
            "{} {} {} {}",
            e.record.rrname.to_dotless(),
            e.record.rrtype,
            e.record.rdata_text(),
            e.seen.count
        ));
        ControlFlow::Continue(())
    });
    out.sort();
    out
}

fn open(dir: &std::path::Path) -> RocksStore {
    RocksStore::open(dir, OpenMode::ReadWrite, &RocksConfig::default()).unwrap()
}

fn name(text: &str) -> Name {
    Name::from_presentation(text).unwrap()
}

#[test]
fn merges_and_scans() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(&[
            entry("www.example.com", Rtype::A, "192.0.2.1", 100, 200, 2),
            entry("www.example.com", Rtype::A, "192.0.2.1", 50, 150, 3),
            entry("example.com", Rtype::NS, "ns1.example.net.", 10, 20, 1),
            entry(
                "mail.example.com",
                Rtype::MX,
                "10 mx.example.net.",
                10,
                20,
                1,
            ),
            entry("badexample.com", Rtype::A, "192.0.2.2", 1, 1, 1),
            entry("www.example.org", Rtype::AAAA, "2001:db8::1", 1, 1, 1),
            entry("v4mapped.example", Rtype::AAAA, "::ffff:192.0.2.1", 1, 1, 1),
            entry("x.example.com", Rtype::TXT, "\"hello\"", 1, 1, 1),
            entry("opaque.example", Rtype::MX, "mx.example.net.", 1, 1, 1),
        ])
        .unwrap();
    store
        .write(&[entry("www.example.com", Rtype::A, "192.0.2.1", 60, 300, 1)])
        .unwrap();

    let exact = RrsetQuery {
        name: NameMatch::Exact(name("www.example.com")),
        types: TypeFilter::All,
        bailiwick: None,
    };
    let mut found = Vec::new();
    store
        .scan_rrset(&exact, &mut |e| {
            found.push(e);
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].seen.time_first,
            found[0].seen.time_last,
            found[0].seen.count
        ),
        (50, 300, 6)
    );

    let subtree = RrsetQuery {
        name: NameMatch::Subtree(name("example.com")),
        types: TypeFilter::All,
        bailiwick: None,
    };
    assert_eq!(
        collect(|v| store.scan_rrset(&subtree, v).unwrap()),
        [
            "example.com NS ns1.example.net. 1",
            "mail.example.com MX 10 mx.example.net. 1",
            "www.example.com A 192.0.2.1 6",
            "x.example.com TXT \"hello\" 1",
        ]
    );
    let prefix = RrsetQuery {
        name: NameMatch::Prefix(vec![b"www".to_vec()]),
        types: TypeFilter::All,
        bailiwick: None,
    };
    assert_eq!(
        collect(|v| store.scan_rrset(&prefix, v).unwrap()),
        [
            "www.example.com A 192.0.2.1 6",
            "www.example.org AAAA 2001:db8::1 1"
        ]
    );
    let typed = RrsetQuery {
        types: TypeFilter::Only(Rtype::TXT),
        ..subtree.clone()
    };
    assert_eq!(
        collect(|v| store.scan_rrset(&typed, v).unwrap()),
        ["x.example.com TXT \"hello\" 1"]
    );

    // Inverse: names in rdata, addresses and ranges, opaque text.
    let target = RdataQuery::Name {
        name: NameMatch::Subtree(name("example.net")),
        types: TypeFilter::All,
    };
    assert_eq!(
        collect(|v| store.scan_rdata(&target, v).unwrap()),
        [
            "example.com NS ns1.example.net. 1",
            "mail.example.com MX 10 mx.example.net. 1"
        ]
    );
    let ip = |a: &str, b: &str| RdataQuery::Address {
        first: a.parse().unwrap(),
        last: b.parse().unwrap(),
    };
    assert_eq!(
        collect(|v| store.scan_rdata(&ip("192.0.2.1", "192.0.2.1"), v).unwrap()),
        ["www.example.com A 192.0.2.1 6"]
    );
    assert_eq!(
        collect(|v| store
            .scan_rdata(&ip("192.0.2.0", "192.0.2.255"), v)
            .unwrap())
        .len(),
        2
    );
    assert_eq!(
        collect(|v| store
            .scan_rdata(&ip("0.0.0.0", "255.255.255.255"), v)
            .unwrap())
        .len(),
        2
    );
    assert_eq!(
        collect(|v| store
            .scan_rdata(&ip("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), v)
            .unwrap())
        .len(),
        2
    );
    assert_eq!(
        collect(|v| store
            .scan_rdata(&ip("2001:db8::", "2001:db8::ffff"), v)
            .unwrap()),
        ["www.example.org AAAA 2001:db8::1 1"]
    );
    let text = RdataQuery::Text {
        text: "mx.example.net.".into(),
        types: TypeFilter::All,
    };
    assert_eq!(
        collect(|v| store.scan_rdata(&text, v).unwrap()),
        ["opaque.example MX mx.example.net. 1"]
    );

    assert_eq!(collect(|v| store.scan_all(v).unwrap()).len(), 8);
    let info = store.info().unwrap();
    assert_eq!(info.observations, 2 + 3 + 7 + 1);
    assert_eq!(info.sensors, [("s1".to_string(), 13)]);
}

#[test]
fn retention_removes_old_records_at_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let config = RocksConfig {
        max_age_secs: Some(86_400),
        ..RocksConfig::default()
    };
    let store = RocksStore::open(dir.path(), OpenMode::ReadWrite, &config).unwrap();
    store
        .write(&[
            entry(
                "old.example",
                Rtype::A,
                "192.0.2.1",
                now - 10 * 86_400,
                now - 5 * 86_400,
                1,
            ),
            entry(
                "young.example",
                Rtype::A,
                "192.0.2.2",
                now - 10 * 86_400,
                now - 3600,
                1,
            ),
        ])
        .unwrap();
    // A later sighting of the old one, also old: merged, still expired.
    store
        .write(&[entry(
            "old.example",
            Rtype::A,
            "192.0.2.1",
            now - 9 * 86_400,
            now - 4 * 86_400,
            1,
        )])
        .unwrap();
    store.compact().unwrap();
    assert_eq!(
        collect(|v| store.scan_all(v).unwrap()),
        ["young.example A 192.0.2.2 1"]
    );
    let range = RdataQuery::Address {
        first: "192.0.2.0".parse().unwrap(),
        last: "192.0.2.255".parse().unwrap(),
    };
    assert_eq!(
        collect(|v| store.scan_rdata(&range, v).unwrap()),
        ["young.example A 192.0.2.2 1"]
    );
    assert_eq!(store.info().unwrap().retention_secs, Some(86_400));
}

#[test]
fn follower_reads_while_writer_is_open_and_schema_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .write(&[entry("a.example", Rtype::A, "192.0.2.9", 1, 2, 1)])
        .unwrap();
    store.flush().unwrap();
    let secondary = tempfile::tempdir().unwrap();
    let follower = RocksStore::open(
        dir.path(),
        OpenMode::Follower {
            secondary_dir: secondary.path().to_path_buf(),
        },
        &RocksConfig::default(),
    )
    .unwrap();
    assert_eq!(
        collect(|v| follower.scan_all(v).unwrap()),
        ["a.example A 192.0.2.9 1"]
    );
    store
        .write(&[entry("b.example", Rtype::A, "192.0.2.10", 1, 2, 1)])
        .unwrap();
    store.flush().unwrap();
    follower.refresh().unwrap();
    assert_eq!(collect(|v| follower.scan_all(v).unwrap()).len(), 2);
    assert!(matches!(
        follower.write(&[entry("c.example", Rtype::A, "192.0.2.1", 1, 1, 1)]),
        Err(StoreError::ReadOnly)
    ));
    drop(follower);
    drop(store);

    // A directory written by another schema version is refused by name.
    let foreign = dnsrecall_store::SCHEMA_VERSION + 1;
    {
        let options = rocksdb::Options::default();
        let db = rocksdb::DB::open_cf(
            &options,
            dir.path(),
            ["default", "rrset", "rdata", "names", "meta"],
        )
        .unwrap();
        let meta = db.cf_handle("meta").unwrap();
        db.put_cf(meta, b"schema_version", foreign.to_le_bytes())
            .unwrap();
    }
    match RocksStore::open(dir.path(), OpenMode::ReadWrite, &RocksConfig::default()) {
        Err(StoreError::Schema { found, expected }) => {
            assert_eq!(
                (found, expected),
                (foreign, dnsrecall_store::SCHEMA_VERSION)
            )
        }
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a foreign schema version was accepted"),
    }
}

/// The recent-names memory skips only merges that change nothing: the
/// right-hand wildcard index still finds every name with every type,
/// whether the memory is large, tiny (shards cleared all the time) or off.
#[test]
fn recent_names_skip_only_repeats() {
    for capacity in [1 << 20, 1, 0] {
        let dir = tempfile::tempdir().unwrap();
        let config = RocksConfig {
            recent_names: capacity,
            ..RocksConfig::default()
        };
        let store = RocksStore::open(dir.path(), OpenMode::ReadWrite, &config).unwrap();
        for round in 0..3u64 {
            for i in 0..50u64 {
                store
                    .write(&[
                        entry(
                            &format!("www.n{i}.example"),
                            Rtype::A,
                            "192.0.2.1",
                            round,
                            round,
                            1,
                        ),
                        entry(
                            &format!("www.n{i}.example"),
                            Rtype::A,
                            &format!("192.0.2.{}", 2 + round),
                            round,
                            round,
                            1,
                        ),
                    ])
                    .unwrap();
            }
        }
        // A new type for names already indexed, in a later write.
        store
            .write(&[entry("www.n7.example", Rtype::AAAA, "2001:db8::7", 9, 9, 1)])
            .unwrap();
        let prefix = |types| RrsetQuery {
            name: NameMatch::Prefix(vec![b"www".to_vec()]),
            types,
            bailiwick: None,
        };
        let all = collect(|v| store.scan_rrset(&prefix(TypeFilter::All), v).unwrap());
        assert_eq!(all.len(), 50 * 4 + 1, "capacity {capacity}");
        assert_eq!(
            collect(|v| store
                .scan_rrset(&prefix(TypeFilter::Only(Rtype::AAAA)), v)
                .unwrap()),
            ["www.n7.example AAAA 2001:db8::7 1"],
            "capacity {capacity}"
        );
    }
}

#[test]
fn recent_names_remember_within_their_bound() {
    let recent = dnsrecall_store::RecentNames::new(32);
    assert!(recent.first_time(b"\x03www", [0, 1]));
    assert!(!recent.first_time(b"\x03www", [0, 1]));
    assert!(recent.first_time(b"\x03www", [0, 28]), "another type");
    assert!(recent.first_time(b"\x03web", [0, 1]), "another name");
    // Far more entries than the bound: each shard is cleared when full, so
    // old entries are forgotten (and merely written again).
    for i in 0..10_000u32 {
        recent.first_time(&i.to_be_bytes(), [0, 1]);
    }
    let forgotten = (0..10_000u32)
        .filter(|i| recent.first_time(&i.to_be_bytes(), [0, 1]))
        .count();
    assert!(forgotten > 9_000, "{forgotten}");
    recent.clear();
    assert!(recent.first_time(b"\x03www", [0, 1]));
    let off = dnsrecall_store::RecentNames::new(0);
    assert!(off.first_time(b"\x03www", [0, 1]));
    assert!(off.first_time(b"\x03www", [0, 1]));
}

fn store_config(dir: &std::path::Path) -> dnsrecall_store::StoreConfig {
    dnsrecall_store::StoreConfig {
        kind: dnsrecall_store::StoreKind::Rocksdb,
        data_dir: dir.to_path_buf(),
        rocksdb: RocksConfig::default(),
        redis: None,
    }
}

#[test]
fn registry_opens_writer_and_follower_and_names_a_missing_store() {
    use dnsrecall_store::{Access, OpenError, open};
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-written");
    match open(&store_config(&missing), Access::Follower) {
        Err(OpenError::NotCreated(path)) => assert_eq!(path, missing),
        Err(other) => panic!("expected NotCreated, got {other}"),
        Ok(_) => panic!("a follower of nothing opened"),
    }
    assert!(!missing.exists(), "a follower must not create the store");
    let writer = open(&store_config(dir.path()), Access::Writer).unwrap();
    writer
        .write(&[entry("a.example", Rtype::A, "192.0.2.9", 1, 2, 3)])
        .unwrap();
    writer.flush().unwrap();
    let follower = open(&store_config(dir.path()), Access::Follower).unwrap();
    assert_eq!(
        collect(|v| follower.scan_all(v).unwrap()),
        ["a.example A 192.0.2.9 3"]
    );
    drop(follower);
    writer.compact().unwrap();
    assert_eq!(writer.info().unwrap().observations, 3);
}

/// A writer killed after creating the database but before creating every
/// column family: a follower opens what exists and reads the rest as empty.
#[test]
fn follower_of_a_store_with_missing_column_families_reads_them_as_empty() {
    use dnsrecall_store::{Access, open};
    let dir = tempfile::tempdir().unwrap();
    {
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let db = rocksdb::DB::open_cf(&options, dir.path(), ["rrset"]).unwrap();
        db.flush().unwrap();
    }
    let follower = open(&store_config(dir.path()), Access::Follower).unwrap();
    assert!(collect(|v| follower.scan_all(v).unwrap()).is_empty());
    let mut seen = 0;
    follower
        .scan_rdata(
            &RdataQuery::Name {
                name: NameMatch::Prefix(vec![b"www".to_vec()]),
                types: TypeFilter::All,
            },
            &mut |_| {
                seen += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(seen, 0);
    let info = follower.info().unwrap();
    assert_eq!((info.observations, info.records_estimate), (0, 0));
}
