//! Throughput of the Redis backend, driven by bench/d4/run.sh:
//!
//! * `store URL[,URL...] N`: N distinct records written through
//!   `RedisStore` (batches of 2,000), printing `records_per_sec` and the
//!   server's memory per record (several URLs: a cluster, no memory);
//! * `queue D4_URL PDNS_URL N`: N passivedns lines pushed to a D4 analyzer
//!   queue (as d4-core's worker does), then read, parsed, stored and
//!   committed by `D4Queue`, printing `lines_per_sec`.
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

fn line(i: u64) -> String {
    format!(
        "{}.{:06}||10.0.0.1||10.0.0.53||IN||host{}.zone{}.example.com.||A||10.{}.{}.{}||300||1",
        1_700_000_000 + i % 86_400,
        i % 1_000_000,
        i % 100_000,
        i % 5000,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
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
        ["queue", d4_url, pdns_url, n] => {
            let n: u64 = n.parse()?;
            let mut con = redis::Client::open(*d4_url)?.get_connection()?;
            let key = format!("analyzer:8:{UUID}");
            for start in (0..n).step_by(10_000) {
                let mut pipe = redis::pipe();
                for i in start..(start + 10_000).min(n) {
                    pipe.cmd("LPUSH").arg(&key).arg(line(i)).ignore();
                }
                pipe.query::<()>(&mut con)?;
            }
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
                store.write(&entries)?;
                queue.commit(&batch)?;
            }
            let seconds = start.elapsed().as_secs_f64();
            anyhow::ensure!(lines == n, "read {lines} lines of {n}");
            println!("lines={lines}");
            println!("seconds={seconds:.3}");
            println!("lines_per_sec={:.0}", lines as f64 / seconds);
        }
        _ => anyhow::bail!("usage: d4_bench store URL N | queue D4_URL PDNS_URL N"),
    }
    Ok(())
}
