//! The D4 analyzer queue reader against a private redis-server playing the
//! D4 server (its worker `LPUSH`es then `LTRIM`s each line): order, commit,
//! crash recovery, bad lines, a server that disappears, end to end into the
//! Redis store.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{lookup, raw};
use dnsrecall_core::Rtype;
use dnsrecall_core::passivedns::Layout;
use dnsrecall_core::store::Store;
use dnsrecall_redis::queue::parse_batch;
use dnsrecall_redis::{D4Queue, D4QueueConfig, RedisConfig, RedisStore};
use dnsrecall_testkit::redis::RedisServer;
use redis::Commands;

const UUID: &str = "6072e072-bfaa-4395-9bb1-cdb3b470d715";

/// What d4-core's `Analyzer_Queue.add_data_to_queue` does per line.
fn d4_push(con: &mut redis::Connection, line: &[u8]) {
    let key = format!("analyzer:8:{UUID}");
    let _: () = con.lpush(&key, line).unwrap();
    let _: () = con.ltrim(&key, 0, 100_000_000).unwrap();
}

fn line(i: usize) -> String {
    format!(
        "{}.123456||10.0.0.1||10.0.0.53||IN||host{i}.example.org.||A||192.0.2.{}||300||1",
        1_700_000_000 + i,
        i % 250
    )
}

fn config(server: &RedisServer, batch_lines: usize) -> D4QueueConfig {
    let mut config = D4QueueConfig::new(server.url(2), UUID);
    config.batch_lines = batch_lines;
    config.idle_ms = 10;
    config
}

#[test]
fn batches_come_oldest_first_and_leave_only_when_committed() {
    let server = RedisServer::start();
    let mut con = raw(&server.url(2));
    for i in 0..25 {
        d4_push(&mut con, line(i).as_bytes());
    }
    let mut queue = D4Queue::new(config(&server, 10)).unwrap();
    assert_eq!(queue.queue_key(), format!("analyzer:8:{UUID}"));
    let first = queue.next_batch().unwrap();
    assert_eq!(first.lines, (0..10).map(line).collect::<Vec<_>>());
    let processing: usize = con.llen(queue.processing_key()).unwrap();
    assert_eq!(processing, 10, "taken lines wait in the processing list");
    queue.commit(&first).unwrap();
    let processing: usize = con.llen(queue.processing_key()).unwrap();
    assert_eq!(processing, 0);
    let second = queue.next_batch().unwrap();
    let third = queue.next_batch().unwrap();
    assert_eq!(second.lines, (10..20).map(line).collect::<Vec<_>>());
    assert_eq!(third.lines, (20..25).map(line).collect::<Vec<_>>());
    queue.commit(&second).unwrap();
    queue.commit(&third).unwrap();
    assert!(queue.next_batch().unwrap().is_empty());
    let left: usize = con.llen(queue.queue_key()).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn a_crash_before_the_commit_loses_nothing() {
    let server = RedisServer::start();
    let mut con = raw(&server.url(2));
    for i in 0..30 {
        d4_push(&mut con, line(i).as_bytes());
    }
    let mut queue = D4Queue::new(config(&server, 12)).unwrap();
    let taken = queue.next_batch().unwrap();
    assert_eq!(taken.lines.len(), 12);
    drop(queue); // dies before storing and committing

    let mut queue = D4Queue::new(config(&server, 12)).unwrap();
    let mut seen = Vec::new();
    loop {
        let batch = queue.next_batch().unwrap();
        if batch.is_empty() {
            break;
        }
        seen.extend(batch.lines.iter().cloned());
        queue.commit(&batch).unwrap();
    }
    assert_eq!(seen, (0..30).map(line).collect::<Vec<_>>());
    assert_eq!(queue.counters().lines_recovered.load(Ordering::Relaxed), 12);
}

#[test]
fn junk_and_oversized_lines_are_counted_not_fatal() {
    let server = RedisServer::start();
    let mut con = raw(&server.url(2));
    d4_push(&mut con, line(1).as_bytes());
    d4_push(&mut con, b"\xff\xfe not utf-8");
    d4_push(&mut con, "x".repeat(70_000).as_bytes());
    d4_push(
        &mut con,
        b"#timestamp||dns-client||dns-server||RR class||Query||Query Type||Answer||TTL||Count",
    );
    d4_push(
        &mut con,
        b"1700000000.1||10.0.0.1||10.0.0.53||IN||bad.example.||NOTATYPE||x||1||1",
    );
    d4_push(&mut con, b"only||three||fields");
    d4_push(
        &mut con,
        b"1700000000.1||10.0.0.1||10.0.0.53||IN||gone.example.||A||NXDOMAIN||1||1",
    );
    d4_push(&mut con, line(2).as_bytes());
    let mut queue = D4Queue::new(config(&server, 100)).unwrap();
    let batch = queue.next_batch().unwrap();
    assert_eq!(batch.dropped, 2);
    let counters = queue.counters();
    assert_eq!(counters.lines_not_utf8.load(Ordering::Relaxed), 1);
    assert_eq!(counters.lines_too_long.load(Ordering::Relaxed), 1);
    let metrics = counters.metrics();
    assert!(metrics.contains(&(
        "dnsrecall_d4_queue_lines_too_long_total",
        "Lines over max_line_bytes, dropped.",
        1
    )));
    assert!(
        metrics
            .iter()
            .any(|m| m.0 == "dnsrecall_d4_queue_lines_total" && m.2 == 8)
    );
    let layout = Layout::new("SMcsCQTAtn", "||").unwrap();
    let (entries, skipped) = parse_batch(&layout, &batch, None);
    assert_eq!(entries.len(), 2);
    assert_eq!(skipped.get("comment"), Some(&1));
    assert_eq!(skipped.get("bad_rrtype"), Some(&1));
    assert_eq!(skipped.get("field_count"), Some(&1));
    assert_eq!(skipped.get("error_response"), Some(&1));
    queue.commit(&batch).unwrap();
}

#[test]
fn a_vanished_server_is_reconnected_with_backoff() {
    let mut server = RedisServer::start();
    let mut con = raw(&server.url(2));
    for i in 0..5 {
        d4_push(&mut con, line(i).as_bytes());
    }
    let received = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut queue = D4Queue::new(config(&server, 3)).unwrap();
    let counters = queue.counters();
    let reader = {
        let received = Arc::clone(&received);
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            // The store refuses the first batch once: it must come again.
            let mut refused = false;
            queue.run(
                &stop,
                |batch| batch.lines.clone(),
                |lines| {
                    if !refused {
                        refused = true;
                        return Err("store unavailable");
                    }
                    received.lock().unwrap().extend(lines);
                    Ok(())
                },
            );
        })
    };
    let wait_for = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while received.lock().unwrap().len() < count {
            assert!(
                Instant::now() < deadline,
                "reader stalled at {:?}",
                received.lock().unwrap().len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(5);
    server.kill();
    std::thread::sleep(Duration::from_millis(500));
    server.restart();
    let mut con = raw(&server.url(2));
    for i in 5..9 {
        d4_push(&mut con, line(i).as_bytes());
    }
    wait_for(9);
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert_eq!(
        *received.lock().unwrap(),
        (0..9).map(line).collect::<Vec<_>>()
    );
    assert!(counters.connection_errors.load(Ordering::Relaxed) >= 1);
}

#[test]
fn queue_to_store_end_to_end() {
    let d4 = RedisServer::start();
    let pdns = RedisServer::start();
    let mut con = raw(&d4.url(2));
    for i in 0..40 {
        d4_push(&mut con, line(i % 20).as_bytes());
    }
    let store = RedisStore::open(&RedisConfig::new(pdns.url(0))).unwrap();
    let layout = Layout::new("SMcsCQTAtn", "||").unwrap();
    let mut queue = D4Queue::new(config(&d4, 16)).unwrap();
    loop {
        let batch = queue.next_batch().unwrap();
        if batch.is_empty() {
            break;
        }
        let (entries, _) = parse_batch(&layout, &batch, None);
        store.write(&entries).unwrap();
        queue.commit(&batch).unwrap();
    }
    assert_eq!(
        lookup(&store, "host7.example.org"),
        vec![(
            Rtype::A,
            "192.0.2.7".into(),
            1_700_000_007,
            1_700_000_007,
            2
        )]
    );
    assert_eq!(store.info().unwrap().observations, 40);
}

#[test]
fn run_prepares_the_next_batch_while_the_store_writes_and_commits_in_order() {
    let server = RedisServer::start();
    let mut con = raw(&server.url(2));
    for i in 0..9 {
        d4_push(&mut con, line(i).as_bytes());
    }
    let mut queue = D4Queue::new(config(&server, 3)).unwrap();
    let processing_key = queue.processing_key();
    let prepared = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let received = Arc::new(Mutex::new(Vec::new()));
    let overlapped = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (prepared, received, overlapped, stop) = (
            Arc::clone(&prepared),
            Arc::clone(&received),
            Arc::clone(&overlapped),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            queue.run(
                &stop,
                |batch| {
                    prepared.fetch_add(1, Ordering::SeqCst);
                    batch.lines.clone()
                },
                |lines| {
                    // The first write waits for the second batch to be
                    // prepared: with the steps in series it never would be.
                    if received.lock().unwrap().is_empty() {
                        let deadline = Instant::now() + Duration::from_secs(5);
                        while prepared.load(Ordering::SeqCst) < 2 && Instant::now() < deadline {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        overlapped.store(prepared.load(Ordering::SeqCst) >= 2, Ordering::SeqCst);
                    }
                    received.lock().unwrap().extend(lines);
                    Ok::<(), String>(())
                },
            );
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let processing: usize = con.llen(&processing_key).unwrap();
        let queued: usize = con.llen(format!("analyzer:8:{UUID}")).unwrap();
        if received.lock().unwrap().len() == 9 && processing == 0 && queued == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the reader stalled");
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    assert!(
        overlapped.load(Ordering::SeqCst),
        "the next batch was prepared while the store wrote"
    );
    assert_eq!(
        *received.lock().unwrap(),
        (0..9).map(line).collect::<Vec<_>>(),
        "stored once each, oldest first"
    );
}
