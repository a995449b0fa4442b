//! Throughput of the Redis backend, driven by bench/d4/run.sh:
//!
//! * `store URL[,URL...] N`: N distinct records written through
//!   `RedisStore` (batches of 2,000), printing `records_per_sec` and the
//!   server's memory per record (several URLs: a cluster, no memory);
//! * `queue D4_URL PDNS_URL N [distinct|realistic]`: N passivedns lines
//!   pushed to a D4 analyzer queue (as d4-core's worker does), then read,
//!   parsed, folded (repeats within a batch), stored and committed by
//!   `D4Queue` as the `d4` input does, printing `lines_per_sec`;
//! * `push D4_URL KEY N [distinct|realistic]`: only the push, to list KEY
//!   (the script renames it to the queue once `dnsrecall serve` runs).
//!
//! Lines: `distinct` gives every line its own record (the worst case for
//! the store); `realistic` draws N lines from N/10 records with a skew
//! (the square of a uniform draw: a few records are seen very often, most
//! rarely), as resolver traffic repeats.
//!
//! Output is `key=value` lines for the script to collect.

use std::time::Instant;

use dnsrecall_core::passivedns::Layout;
use dnsrecall_core::store::Store;
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_redis::queue::parse_batch;
use dnsrecall_redis::{D4Queue, D4QueueConfig, RedisConfig, RedisStore};

const UUID: &str = "bench-0000-0000-0000-000000000000";

fn used_memory(url: &str) -> anyhow::Result<u64> {
    let mut con = redis::Client::open(url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("memory").query(&mut con)?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no used_memory in INFO"))
}

fn record(i: u64) -> Entry {
    let name = format!("host{}.zone{}.example.com", i, i % 5000);
    let address = format!("10.{}.{}.{}", (i >> 16) & 255, (i >> 8) & 255, i & 255);
    let rdata = dnsrecall_core::rdata::from_presentation(Rtype::A, &address)
        .map(|w| Rdata::Wire(w.into_boxed_slice()))
        .unwrap_or_else(|_| Rdata::Text(address.into()));
    Entry {
        record: Record {
            rrname: Name::from_presentation(&name).expect("bench name"),
            rrtype: Rtype::A,
            bailiwick: None,
            rdata,
        },
        seen: Seen::once(1_700_000_000 + i % 86_400),
    }
}

/// Line `i` telling of record `id`.
fn line_of(i: u64, id: u64) -> String {
    format!(
        "{}.{:06}||10.0.0.1||10.0.0.53||IN||host{}.zone{}.example.com.||A||10.{}.{}.{}||300||1",
        1_700_000_000 + i % 86_400,
        i % 1_000_000,
        id % 100_000,
        id % 5000,
        (id >> 16) & 255,
        (id >> 8) & 255,
        id & 255
    )
}

/// The record line `i` of `n` tells of, in `mode`.
fn record_id(i: u64, n: u64, mode: &str) -> u64 {
    if mode != "realistic" {
        return i;
    }
    let distinct = (n / 10).max(1);
    // splitmix64: a fixed pseudo-random sequence, no dependency.
    let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    let uniform = (z >> 11) as f64 / (1u64 << 53) as f64;
    ((uniform * uniform) * distinct as f64) as u64
}

fn push(url: &str, key: &str, n: u64, mode: &str) -> anyhow::Result<()> {
    let mut con = redis::Client::open(url)?.get_connection()?;
    for start in (0..n).step_by(10_000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 10_000).min(n) {
            pipe.cmd("LPUSH")
                .arg(key)
                .arg(line_of(i, record_id(i, n, mode)))
                .ignore();
        }
        pipe.query::<()>(&mut con)?;
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["store", url, n] => {
            let n: u64 = n.parse()?;
            // Several comma-separated URLs: a cluster (memory not measured).
            let urls: Vec<&str> = url.split(',').collect();
            let cluster = urls.len() > 1;
            let before = if cluster { 0 } else { used_memory(url)? };
            let config = if cluster {
                RedisConfig::cluster(urls.iter().copied())
            } else {
                RedisConfig::new(*url)
            };
            let store = RedisStore::open(&config)?;
            let entries: Vec<Entry> = (0..n).map(record).collect();
            let start = Instant::now();
            for chunk in entries.chunks(2_000) {
                store.write(chunk)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            let after = if cluster { 0 } else { used_memory(url)? };
            println!("records={n}");
            println!("seconds={seconds:.3}");
            println!("records_per_sec={:.0}", n as f64 / seconds);
            println!(
                "bytes_per_record={:.0}",
                after.saturating_sub(before) as f64 / n as f64
            );
        }
        ["push", d4_url, key, n, mode] => push(d4_url, key, n.parse()?, mode)?,
        ["queue", d4_url, pdns_url, n, rest @ ..] => {
            let n: u64 = n.parse()?;
            let mode = rest.first().copied().unwrap_or("distinct");
            push(d4_url, &format!("analyzer:8:{UUID}"), n, mode)?;
            let store = RedisStore::open(&RedisConfig::new(*pdns_url))?;
            let layout = Layout::new("SMcsCQTAtn", "||")?;
            let mut config = D4QueueConfig::new(*d4_url, UUID);
            config.batch_lines = 2_000;
            let mut queue = D4Queue::new(config)?;
            let start = Instant::now();
            let mut lines = 0u64;
            loop {
                let batch = queue.next_batch()?;
                if batch.is_empty() {
                    break;
                }
                lines += batch.lines.len() as u64;
                let (entries, _) = parse_batch(&layout, &batch, None);
                let entries = dnsrecall_redis::fold::fold_duplicates(entries);
                store.write(&entries)?;
                queue.commit(&batch)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            anyhow::ensure!(lines == n, "read {lines} lines of {n}");
            println!("lines={lines}");
            println!("seconds={seconds:.3}");
            println!("lines_per_sec={:.0}", lines as f64 / seconds);
        }
        _ => anyhow::bail!(
            "usage: d4_bench store URL N | queue D4_URL PDNS_URL N [distinct|realistic] | push D4_URL KEY N [distinct|realistic]"
        ),
    }
    Ok(())
}
