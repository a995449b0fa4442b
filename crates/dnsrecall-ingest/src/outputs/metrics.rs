//! `kind = "metrics"`: python dnstap-receiver's periodic one-line traffic
//! summary (its `output.metrics`), every `interval` seconds, to stdout or
//! a file rotated like the file output's:
//!
//! ```text
//! 2020-10-13 05:19:35,522 18 QUERIES, 3 QPS, 17 DOMAINS, 1 CLIENTS, 18 INET, 0 INET6, 18 UDP, 0 TCP, 17 NOERROR, 0 NXDOMAINS, 18 A, 0 AAAA
//! ```
//!
//! QUERIES, INET/INET6, UDP/TCP, A/AAAA count query messages; NOERROR and
//! NXDOMAINS responses; DOMAINS and CLIENTS are distinct query names and
//! client addresses of every message, estimated in a fixed 4 KiB each
//! (HyperLogLog, exact for small counts, about 1.6 % error beyond). QPS is
//! the queries of the last interval divided by its length (dnstap-receiver
//! shows its last one-second rate). The time is UTC. `cumulative = false`
//! starts every count again after each line, like dnstap-receiver's.
//!
//! Counting is a few field reads under one lock, inline in `offer` (no
//! queue: nothing to drop); a task writes the line.

use std::hash::{BuildHasher, Hash};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dnsrecall_core::message::{DnsMessage, Family, Transport};
use dnsrecall_dnstap::dns;
use dnsrecall_stats::hll::HyperLogLog;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::file::{FileConfig, OutputFormat, Sink};
use super::{BuildError, MessageOutput, OutputContext, OutputMetrics};

/// `[[outputs]] kind = "metrics"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Seconds between lines [default: 300].
    #[serde(default = "default_interval")]
    pub interval: u64,
    /// Keep counting across lines (false: every line counts its interval
    /// only) [default: true].
    #[serde(default = "yes")]
    pub cumulative: bool,
    /// The file, or `-` for stdout [default: `-`].
    #[serde(default = "default_path")]
    pub path: String,
    /// Rotate a file before it grows past this many bytes; 0 = never [default: 0].
    #[serde(default)]
    pub max_size: u64,
    /// Rotated copies kept [default: 5].
    #[serde(default = "default_max_files")]
    pub max_files: usize,
}

fn default_interval() -> u64 {
    300
}
fn yes() -> bool {
    true
}
fn default_path() -> String {
    "-".to_string()
}
fn default_max_files() -> usize {
    5
}

impl MetricsConfig {
    /// Makes a relative path relative to `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        if self.path != "-" && self.path != "stdout" && Path::new(&self.path).is_relative() {
            self.path = base.join(&self.path).display().to_string();
        }
    }

    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval == 0 {
            return Err("metrics output: interval must be at least 1 second".to_string());
        }
        Ok(())
    }
}

//---- Counts ----

/// What one line shows.
#[derive(Clone, Debug)]
pub struct Counts {
    pub queries: u64,
    pub inet: u64,
    pub inet6: u64,
    pub udp: u64,
    pub tcp: u64,
    pub noerror: u64,
    pub nxdomain: u64,
    pub a: u64,
    pub aaaa: u64,
    domains: HyperLogLog,
    clients: HyperLogLog,
    /// Queries when the last line was written (for QPS).
    queries_at_last_line: u64,
}

/// Registers of the distinct-count sketches (2^12 bytes each).
const HLL_PRECISION: u8 = 12;

impl Default for Counts {
    fn default() -> Self {
        Counts {
            queries: 0,
            inet: 0,
            inet6: 0,
            udp: 0,
            tcp: 0,
            noerror: 0,
            nxdomain: 0,
            a: 0,
            aaaa: 0,
            domains: HyperLogLog::new(HLL_PRECISION),
            clients: HyperLogLog::new(HLL_PRECISION),
            queries_at_last_line: 0,
        }
    }
}

fn hash_of(value: impl Hash) -> u64 {
    // A fixed key: estimates must not depend on the process.
    std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
        .hash_one(value)
}

impl Counts {
    /// Counts one message.
    pub fn observe(&mut self, message: &DnsMessage) {
        let summary = message.payload().and_then(|p| dns::summarize(p));
        if let Some(qname) = summary.as_ref().and_then(|s| s.qname.as_deref()) {
            self.domains
                .insert_hash(hash_of(qname.to_ascii_lowercase()));
        }
        if let Some(client) = message.query_address {
            self.clients.insert_hash(hash_of(client));
        }
        if message.is_query() {
            self.queries += 1;
            match message.family {
                Some(Family::Inet) => self.inet += 1,
                Some(Family::Inet6) => self.inet6 += 1,
                None => {}
            }
            match message.transport {
                Some(Transport::Udp) => self.udp += 1,
                Some(Transport::Tcp) => self.tcp += 1,
                _ => {}
            }
            match summary.as_ref().and_then(|s| s.qtype) {
                Some(1) => self.a += 1,
                Some(28) => self.aaaa += 1,
                _ => {}
            }
        } else {
            match summary.as_ref().map(|s| s.rcode) {
                Some(0) => self.noerror += 1,
                Some(3) => self.nxdomain += 1,
                _ => {}
            }
        }
    }

    /// The summary after `elapsed` since the last line (without the time).
    pub fn line(&mut self, elapsed: Duration) -> String {
        let in_interval = self.queries - self.queries_at_last_line;
        self.queries_at_last_line = self.queries;
        let qps = (in_interval as f64 / elapsed.as_secs_f64().max(0.001)).round() as u64;
        format!(
            "{} QUERIES, {qps} QPS, {} DOMAINS, {} CLIENTS, {} INET, {} INET6, {} UDP, {} TCP, {} NOERROR, {} NXDOMAINS, {} A, {} AAAA",
            self.queries,
            self.domains.estimate(),
            self.clients.estimate(),
            self.inet,
            self.inet6,
            self.udp,
            self.tcp,
            self.noerror,
            self.nxdomain,
            self.a,
            self.aaaa,
        )
    }
}

/// Python logging's `%(asctime)s` (`2020-10-13 05:19:35,522`), in UTC.
fn asctime(now: jiff::Timestamp) -> String {
    let civil = now.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02},{:03}",
        civil.year(),
        civil.month(),
        civil.day(),
        civil.hour(),
        civil.minute(),
        civil.second(),
        civil.subsec_nanosecond() / 1_000_000
    )
}

//---- MetricsOutput ----

/// A running metrics output.
pub struct MetricsOutput {
    counts: Arc<Mutex<Counts>>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MetricsOutput {
    /// Opens the file and starts the ticking task (inside a tokio runtime).
    pub fn start(
        config: &MetricsConfig,
        context: &OutputContext,
    ) -> Result<MetricsOutput, BuildError> {
        let mut file = FileConfig::new(OutputFormat::Text, &config.path);
        file.max_size = config.max_size;
        file.max_files = config.max_files;
        let mut sink = Sink::open(&file).map_err(|source| BuildError::Open {
            target: config.path.clone(),
            source,
        })?;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stop = CancellationToken::new();
        let interval = Duration::from_secs(config.interval.max(1));
        let cumulative = config.cumulative;
        let metrics: Arc<OutputMetrics> = context.metrics.clone();
        let shared = counts.clone();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut last = Instant::now();
            let mut generation = super::file::REOPEN.load(Ordering::SeqCst);
            loop {
                let last_line = tokio::select! {
                    _ = tokio::time::sleep(interval) => false,
                    _ = stopped.cancelled() => true,
                };
                let line = match shared.lock() {
                    Ok(mut counts) => {
                        let line = counts.line(last.elapsed());
                        if !cumulative {
                            *counts = Counts::default();
                        }
                        line
                    }
                    Err(_) => return,
                };
                last = Instant::now();
                let now = super::file::REOPEN.load(Ordering::SeqCst);
                let reopened = if now != generation {
                    generation = now;
                    sink.reopen()
                } else {
                    Ok(())
                };
                let text = format!("{} {line}\n", asctime(jiff::Timestamp::now()));
                match reopened
                    .and_then(|()| sink.write(text.as_bytes()))
                    .and_then(|()| sink.flush())
                {
                    Ok(()) => metrics.written.add_shared(1),
                    Err(error) => {
                        metrics.errors.add_shared(1);
                        tracing::warn!(%error, "metrics output write failed");
                    }
                }
                if last_line {
                    let _ = sink.close();
                    return;
                }
            }
        });
        Ok(MetricsOutput {
            counts,
            stop,
            task: Mutex::new(Some(task)),
        })
    }
}

impl MessageOutput for MetricsOutput {
    fn offer(&self, message: &DnsMessage) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.observe(message);
        }
    }

    /// Writes a last line, then ends.
    fn finish(&self) -> Option<JoinHandle<()>> {
        self.stop.cancel();
        self.task.lock().ok()?.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dnsrecall_core::message::{MessageKind, MessageType, Origin, Timestamp};

    fn message(kind: MessageType, qname: &[u8], qtype: u16, rcode: u8, client: &str) -> DnsMessage {
        let mut wire = vec![0, 1, 0x81, rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(qname);
        wire.extend_from_slice(&qtype.to_be_bytes());
        wire.extend_from_slice(&[0, 1]);
        let wire = Bytes::from(wire);
        DnsMessage {
            kind: MessageKind::Known(kind),
            identity: None,
            version: None,
            family: Some(Family::of(client.parse().unwrap())),
            transport: Some(Transport::Udp),
            query_address: Some(client.parse().unwrap()),
            query_port: Some(5353),
            response_address: None,
            response_port: None,
            query_time: Some(Timestamp::new(1, 0)),
            response_time: Some(Timestamp::new(1, 0)),
            query_zone: None,
            query_message: Some(wire.clone()),
            response_message: Some(wire),
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    #[test]
    fn counts_one_line() {
        let mut counts = Counts::default();
        counts.observe(&message(
            MessageType::ClientQuery,
            b"\x01a\x00",
            1,
            0,
            "192.0.2.1",
        ));
        counts.observe(&message(
            MessageType::ClientQuery,
            b"\x01b\x00",
            28,
            0,
            "2001:db8::1",
        ));
        counts.observe(&message(
            MessageType::ClientQuery,
            b"\x01a\x00",
            1,
            0,
            "192.0.2.1",
        ));
        counts.observe(&message(
            MessageType::ClientResponse,
            b"\x01a\x00",
            1,
            3,
            "192.0.2.1",
        ));
        counts.observe(&message(
            MessageType::ClientResponse,
            b"\x01c\x00",
            1,
            0,
            "192.0.2.2",
        ));
        assert_eq!(
            counts.line(Duration::from_secs(1)),
            "3 QUERIES, 3 QPS, 3 DOMAINS, 3 CLIENTS, 2 INET, 1 INET6, 3 UDP, 0 TCP, 1 NOERROR, 1 NXDOMAINS, 2 A, 1 AAAA"
        );
        // QPS counts the last interval only.
        assert!(
            counts
                .line(Duration::from_secs(1))
                .starts_with("3 QUERIES, 0 QPS,")
        );
        let ts = jiff::Timestamp::new(1_602_566_375, 522_000_000).unwrap();
        assert_eq!(asctime(ts), "2020-10-13 05:19:35,522");
    }
}
