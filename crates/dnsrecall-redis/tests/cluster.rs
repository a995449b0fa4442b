//! The Redis store on a Redis Cluster of three masters with a replica each
//! (Debian's redis-server on free loopback ports): keys spread over every
//! shard, MOVED-following reads and writes, and a master killed mid-ingest.

mod common;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{entry, lookup};
use dnsrecall_core::store::{RdataQuery, Store};
use dnsrecall_core::{Entry, Rtype};
use dnsrecall_redis::{RedisConfig, RedisStore};
use dnsrecall_testkit::redis::{RedisCluster, redis_cli};

const BATCH: usize = 50;

fn batch(index: usize) -> Vec<Entry> {
    (0..BATCH)
        .map(|j| {
            entry(
                &format!("n{j}.b{index}.example."),
                Rtype::A,
                &format!("10.{}.{}.{j}", index / 256, index % 256),
                1_700_000_000 + index as u64,
                1_700_000_000 + index as u64 + 10,
                1,
            )
        })
        .collect()
}

#[test]
fn a_cluster_serves_and_survives_a_master_failover() {
    let mut cluster = RedisCluster::start(3, 1);
    let masters = cluster.master_ports();
    assert_eq!(masters.len(), 3, "{masters:?}");

    let mut config = RedisConfig::cluster(cluster.urls());
    config.wait_replicas = 1;
    config.wait_timeout_ms = 200;
    config.write_attempts = 30;
    config.retry_backoff_ms = 50;
    config.timeout_ms = 2_000;
    let store = Arc::new(RedisStore::open(&config).unwrap());
    assert!(store.is_cluster());

    // A single seed with cluster mode on is recognised as a cluster too.
    let one_seed = RedisStore::open(&RedisConfig::new(cluster.urls()[0].clone())).unwrap();
    assert!(one_seed.is_cluster());

    // Keys land on every master; reads follow the slots.
    store.write(&batch(0)).unwrap();
    for port in &masters {
        let keys = redis_cli(&["-p", &port.to_string(), "dbsize"]);
        let keys: u64 = keys.trim().parse().unwrap();
        assert!(keys > 0, "master {port} holds no key");
    }
    assert_eq!(
        lookup(&one_seed, "n7.b0.example"),
        vec![(Rtype::A, "10.0.0.7".into(), 1_700_000_000, 1_700_000_010, 1)]
    );
    let mut all = 0;
    store
        .scan_all(&mut |_: Entry| {
            all += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(all, BATCH);

    // Ingest goes on while a master is killed and its replica promoted.
    let acknowledged = Arc::new(AtomicU64::new(0));
    let writer = {
        let store = Arc::clone(&store);
        let acknowledged = Arc::clone(&acknowledged);
        std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            for index in 1..=120 {
                let ok = store.write(&batch(index)).is_ok();
                outcomes.push((index, ok));
                if ok {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(15));
            }
            outcomes
        })
    };
    while acknowledged.load(Ordering::SeqCst) < 40 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let victim = masters[1];
    cluster.kill(victim);
    let at_kill = acknowledged.load(Ordering::SeqCst);
    let outcomes = writer.join().unwrap();
    cluster.wait_healthy(Duration::from_secs(30));
    let masters_after = cluster.master_ports();
    assert_eq!(
        masters_after.len(),
        3,
        "a replica took over: {masters_after:?}"
    );
    assert!(!masters_after.contains(&victim));

    let counters = store.counters();
    eprintln!("after the failover: {counters:?}");
    let failed: Vec<usize> = outcomes.iter().filter(|o| !o.1).map(|o| o.0).collect();
    assert!(
        counters.attempt_errors > 0,
        "the failover was noticed: {counters:?}"
    );
    assert!(
        acknowledged.load(Ordering::SeqCst) > at_kill + 30,
        "writes went on after the kill: {counters:?}"
    );
    assert!(
        counters.replica_shortfalls > 0,
        "the promoted master has no replica, which WAIT reports: {counters:?}"
    );
    // Nothing fails silently: failed batches are exactly those counted.
    assert_eq!(counters.entries_failed, (failed.len() * BATCH) as u64);
    // Every acknowledged batch is there in full (at least once: a retried
    // pipeline may count a sighting twice, never zero times).
    let mut missing = BTreeSet::new();
    for (index, ok) in &outcomes {
        if !ok {
            continue;
        }
        for expected in batch(*index) {
            let name = expected.record.rrname.to_dotless();
            let found = lookup(store.as_ref(), &name);
            let good = found.len() == 1
                && found[0].2 == expected.seen.time_first
                && found[0].3 == expected.seen.time_last
                && found[0].4 >= 1;
            if !good {
                missing.insert(name);
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    // An address lookup after the failover.
    let ip: std::net::IpAddr = "10.0.100.3".parse().unwrap();
    let mut names = Vec::new();
    store
        .scan_rdata(
            &RdataQuery::Address {
                first: ip,
                last: ip,
            },
            &mut |e: Entry| {
                names.push(e.record.rrname.to_dotless());
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(names, ["n3.b100.example"]);
}
