//! Benchmark driver for bench/stats/run.sh (a dev example, not shipped).
//!
//! `stats_bench throughput ROUNDS FILE...`: the per-message work of a
//! dnstap input (protobuf decode, `DnsMessage`, records of responses via
//! `dnsrecall_core::decode`) over the frames of FILEs, ROUNDS times,
//! alternating runs without and with `Stats::observe`; then the same with
//! every message given a unique name and client (tables always full, every
//! update an eviction). Prints messages/s and the ratios.
//!
//! `stats_bench rss NAMES CLIENTS BOUND_MIB`: observes NAMES messages with
//! unique names from CLIENTS clients and prints the process's RSS before
//! and after, the estimate of the state and the bound.

use std::fs::File;
use std::io::BufReader;
use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use dnsrecall_core::decode::{ResponseContext, decode_response};
use dnsrecall_core::message::{DnsMessage, Family, MessageKind, Origin, Timestamp, Transport};
use dnsrecall_dnstap::framestream::FileReader;
use dnsrecall_dnstap::proto::decode_dnstap;
use dnsrecall_stats::{Stats, StatsConfig};

fn frames(paths: &[String]) -> Vec<Bytes> {
    let mut frames = Vec::new();
    for path in paths {
        let file = File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut reader = FileReader::new(BufReader::new(file));
        while let Ok(Some(frame)) = reader.next_data() {
            frames.push(frame);
        }
    }
    frames
}

/// What an input does with one frame.
fn to_message(frame: &Bytes) -> Option<DnsMessage> {
    let tap = decode_dnstap(frame.clone()).ok()?;
    let m = tap.message?;
    let time = |s: Option<u64>, n: Option<u32>| s.map(|s| Timestamp::new(s, n.unwrap_or(0)));
    Some(DnsMessage {
        kind: MessageKind::from_value(m.r#type),
        identity: tap.identity.clone(),
        version: tap.version.clone(),
        family: m
            .socket_family
            .map(|f| if f == 2 { Family::Inet6 } else { Family::Inet }),
        transport: m.socket_protocol.and_then(Transport::from_value),
        query_address: m.query_ip(),
        query_port: m.query_port.and_then(|p| u16::try_from(p).ok()),
        response_address: m.response_ip(),
        response_port: m.response_port.and_then(|p| u16::try_from(p).ok()),
        query_time: time(m.query_time_sec, m.query_time_nsec),
        response_time: time(m.response_time_sec, m.response_time_nsec),
        query_zone: m.query_zone.clone(),
        query_message: m.query_message.clone(),
        response_message: m.response_message.clone(),
        origin: Origin::Dnstap {
            frame: frame.clone(),
        },
    })
}

fn ingest(frames: &[Bytes], stats: Option<&Stats>, rename: Option<&mut u64>) -> (usize, f64) {
    let context = ResponseContext::default();
    let mut entries = Vec::with_capacity(64);
    let mut counter = rename;
    let start = Instant::now();
    let mut count = 0;
    for frame in frames {
        let Some(mut message) = to_message(frame) else {
            continue;
        };
        if let Some(counter) = counter.as_deref_mut() {
            *counter += 1;
            unique(&mut message, *counter, *counter as u32);
        }
        if let Some(wire) = message.response_message.as_ref()
            && !message.is_query()
        {
            entries.clear();
            let _ = decode_response(wire, &context, &mut entries);
        }
        if let Some(stats) = stats {
            stats.observe(&message);
        }
        count += 1;
    }
    (count, start.elapsed().as_secs_f64())
}

/// Gives a message a unique question name and the client `client`.
fn unique(message: &mut DnsMessage, i: u64, client: u32) {
    let mut wire = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let label = format!("n{i}");
    wire.push(label.len() as u8);
    wire.extend_from_slice(label.as_bytes());
    wire.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
    message.query_message = Some(wire.into());
    message.kind = MessageKind::from_value(5);
    message.query_address = Some(IpAddr::from(client.to_be_bytes()));
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("throughput") => {
            let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(5);
            let frames = frames(&args[2..]);
            // Repeat the frames to make each run long enough to time.
            let frames: Vec<Bytes> = frames.iter().cycle().take(200_000).cloned().collect();
            for (label, unique_names) in [("real frames", false), ("unique names", true)] {
                let stats = Stats::new(StatsConfig::default()).expect("stats");
                let (mut off, mut on) = (0.0, 0.0);
                let mut messages = 0;
                let mut counter = 0u64;
                for _ in 0..rounds {
                    let mut c1 = counter;
                    let (n, t) = ingest(&frames, None, unique_names.then_some(&mut c1));
                    off += t;
                    let (_, t) =
                        ingest(&frames, Some(&stats), unique_names.then_some(&mut counter));
                    on += t;
                    messages += n;
                }
                let rate_off = messages as f64 / off;
                let rate_on = messages as f64 / on;
                println!(
                    "{label}: {messages} messages; without statistics {rate_off:.0} msg/s, with {rate_on:.0} msg/s; with/without = {:.3} (cost {:.1} %); observe() alone ~{:.0} ns/msg",
                    rate_on / rate_off,
                    (1.0 - rate_on / rate_off) * 100.0,
                    (on - off) / messages as f64 * 1e9
                );
            }
        }
        Some("rss") => {
            let names: u64 = args
                .get(1)
                .and_then(|r| r.parse().ok())
                .unwrap_or(10_000_000);
            let clients: u32 = args
                .get(2)
                .and_then(|r| r.parse().ok())
                .unwrap_or(1_000_000);
            let bound_mib: u64 = args.get(3).and_then(|r| r.parse().ok()).unwrap_or(64);
            let before = rss_kib();
            let config = StatsConfig {
                memory_bound: bound_mib * 1024 * 1024,
                ..StatsConfig::default()
            };
            let stats = Stats::new(config).expect("stats");
            let mut template = to_message(&frames(&args[4..])[0]).expect("a frame");
            let start = Instant::now();
            // Every table fills: both directions, four rcodes, 20 streams
            // (16 tracked, the rest folded into `other`).
            let identities: Vec<Bytes> =
                (0..20).map(|s| Bytes::from(format!("sensor{s}"))).collect();
            for i in 0..names {
                unique(&mut template, i, (i % u64::from(clients)) as u32);
                template.identity = Some(identities[(i % 20) as usize].clone());
                if i % 2 == 1 {
                    let mut wire = template
                        .query_message
                        .take()
                        .map(|q| q.to_vec())
                        .unwrap_or_default();
                    if wire.len() > 3 {
                        wire[2] |= 0x80;
                        wire[3] = [0u8, 2, 3, 5][(i / 2 % 4) as usize];
                    }
                    template.response_message = Some(wire.into());
                    template.kind = MessageKind::from_value(6);
                }
                stats.observe(&template);
                template.response_message = None;
            }
            let elapsed = start.elapsed().as_secs_f64();
            let after = rss_kib();
            let counters = stats.report_counters(None).expect("report");
            println!(
                "{names} unique names (half queries, half responses over 4 rcodes, 20 streams), {clients} clients in {elapsed:.1} s: RSS before {before} KiB, after {after} KiB, growth {} KiB = {:.1} MiB; bound {bound_mib} MiB, planned {:.1} MiB, state estimate {:.1} MiB; unique domains estimate {}, unique clients estimate {}",
                after.saturating_sub(before),
                after.saturating_sub(before) as f64 / 1024.0,
                stats.plan().planned_bytes as f64 / 1048576.0,
                stats.used_bytes() as f64 / 1048576.0,
                counters["unique_domains"]["value"],
                counters["unique_clients"]["value"],
            );
        }
        _ => eprintln!(
            "usage: stats_bench throughput ROUNDS FILE... | rss NAMES CLIENTS BOUND_MIB FILE"
        ),
    }
}
