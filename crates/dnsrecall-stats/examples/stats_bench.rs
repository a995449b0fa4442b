//! Benchmark driver for bench/stats/run.sh (a dev example, not shipped).
//!
//! `stats_bench throughput ROUNDS FILE...`: the per-message work of a
//! dnstap input (protobuf decode, `DnsMessage`, records of responses via
//! `dnsrecall_core::decode`) over the frames of FILEs, ROUNDS times,
//! interleaving runs without statistics, with `Stats::observe` per message
//! and with `Stats::observe_batch` per 1024 messages, all on one thread;
//! then the same with every message given a unique name and client (tables
//! always full, every update an eviction). Prints messages/s, the ratios
//! and what counting costs per message. This is the decode-only view; the
//! headline is bench/stats/serve.sh (serve end to end, where counting runs
//! on the statistics output's own thread).
//!
//! `stats_bench rss NAMES CLIENTS BOUND_MIB FILE`: observes NAMES messages
//! with unique names from CLIENTS clients and prints the process's RSS
//! before and after, the estimate of the state and the bound.
//!
//! Frames and messages are built by the tests' helpers
//! (`tests/common/mod.rs`), shared with this driver.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use dnsrecall_core::decode::{ResponseContext, decode_response};
use dnsrecall_core::message::{DnsMessage, MessageKind};
use dnsrecall_stats::{Stats, StatsConfig};

/// How the loop hands messages to the statistics.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Off,
    /// `Stats::observe` per message (one lock each).
    Each,
    /// `Stats::observe_batch` per 1024 messages (what serve's statistics
    /// thread does).
    Batch,
}

/// What an input does with each frame (protobuf decode, `DnsMessage`,
/// records of responses), plus the statistics as `mode` says.
fn ingest(frames: &[Bytes], stats: &Stats, mode: Mode, rename: Option<&mut u64>) -> (usize, f64) {
    let context = ResponseContext::default();
    let mut entries = Vec::with_capacity(64);
    let mut batch: Vec<DnsMessage> = Vec::with_capacity(1024);
    let mut counter = rename;
    let start = Instant::now();
    let mut count = 0;
    for frame in frames {
        let Some(mut message) = common::message_from_frame(frame.clone()) else {
            continue;
        };
        if let Some(counter) = counter.as_deref_mut() {
            *counter += 1;
            message = unique(&message, *counter, *counter as u32);
        }
        if let Some(wire) = message.response_message.as_ref()
            && !message.is_query()
        {
            entries.clear();
            let _ = decode_response(wire, &context, &mut entries);
        }
        match mode {
            Mode::Off => {}
            Mode::Each => stats.observe(&message),
            Mode::Batch => {
                batch.push(message);
                if batch.len() == 1024 {
                    stats.observe_batch(&batch);
                    batch.clear();
                }
            }
        }
        count += 1;
    }
    stats.observe_batch(&batch);
    (count, start.elapsed().as_secs_f64())
}

/// `template` with a unique question name and the client `client`.
fn unique(template: &DnsMessage, i: u64, client: u32) -> DnsMessage {
    common::query_from(template, &format!("n{i}.example.com"), client)
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
            let frames: Vec<Bytes> = args[2..]
                .iter()
                .flat_map(|p| common::dnstap_frames(Path::new(p)))
                .collect();
            // Repeat the frames to make each run long enough to time.
            let frames: Vec<Bytes> = frames.iter().cycle().take(200_000).cloned().collect();
            // STATS_BENCH_WINDOWS=0: without the minute and hour tables,
            // to see what the windows cost.
            let windows = std::env::var("STATS_BENCH_WINDOWS").as_deref() != Ok("0");
            for (label, unique_names) in [("real frames", false), ("unique names", true)] {
                let stats = Stats::new(StatsConfig {
                    windows,
                    ..StatsConfig::default()
                })
                .expect("stats");
                let mut seconds = [0.0f64; 3];
                let mut messages = 0;
                let mut counter = 0u64;
                // Interleaved: off, each, batch, off, each, batch, ...
                for _ in 0..rounds {
                    for (i, mode) in [Mode::Off, Mode::Each, Mode::Batch].into_iter().enumerate() {
                        // The run without statistics renames the same way
                        // (same work), from a scratch counter.
                        let mut scratch = counter;
                        let rename = match (unique_names, mode) {
                            (false, _) => None,
                            (true, Mode::Off) => Some(&mut scratch),
                            (true, _) => Some(&mut counter),
                        };
                        let (n, t) = ingest(&frames, &stats, mode, rename);
                        seconds[i] += t;
                        if mode == Mode::Off {
                            messages += n;
                        }
                    }
                }
                let rate = |t: f64| messages as f64 / t;
                let cost = |t: f64| (t - seconds[0]) / messages as f64 * 1e9;
                println!(
                    "{label}: {messages} messages each way; without statistics {:.0} msg/s; observe() per message {:.0} msg/s (with/without {:.3}, {:.0} ns/msg); observe_batch() per 1024 {:.0} msg/s (with/without {:.3}, {:.0} ns/msg)",
                    rate(seconds[0]),
                    rate(seconds[1]),
                    seconds[0] / seconds[1],
                    cost(seconds[1]),
                    rate(seconds[2]),
                    seconds[0] / seconds[2],
                    cost(seconds[2]),
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
            let template = args[4..]
                .iter()
                .flat_map(|p| common::dnstap_messages(Path::new(p)))
                .next()
                .expect("a frame");
            let start = Instant::now();
            // Every table fills: both directions, four rcodes, 20 streams
            // (16 tracked, the rest folded into `other`).
            let identities: Vec<Bytes> =
                (0..20).map(|s| Bytes::from(format!("sensor{s}"))).collect();
            let mut batch = Vec::with_capacity(1024);
            for i in 0..names {
                let mut message = unique(&template, i, (i % u64::from(clients)) as u32);
                message.identity = Some(identities[(i % 20) as usize].clone());
                if i % 2 == 1 {
                    let mut wire = message
                        .query_message
                        .take()
                        .map(|q| q.to_vec())
                        .unwrap_or_default();
                    if wire.len() > 3 {
                        wire[2] |= 0x80;
                        wire[3] = [0u8, 2, 3, 5][(i / 2 % 4) as usize];
                    }
                    message.response_message = Some(wire.into());
                    message.kind = MessageKind::from_value(6);
                }
                batch.push(message);
                if batch.len() == 1024 {
                    stats.observe_batch(&batch);
                    batch.clear();
                }
            }
            stats.observe_batch(&batch);
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
