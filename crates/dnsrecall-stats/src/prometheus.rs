//! The statistics in the Prometheus text format (0.0.4), for `/metrics` to
//! append.
//!
//! Per-stream series carry a `stream` label; only the busiest
//! `label_cap` streams (by messages) get their own value, the others are
//! summed under `stream="other"`, so the label's cardinality is bounded.
//! Global-only values (unique counts over all streams, pairing, memory)
//! have no label.

use std::fmt::Write as _;

use crate::hll::HyperLogLog;
use crate::latency::{BUCKET_NAMES, Histogram, PROMETHEUS_BOUNDS};
use crate::scope::{DIRECTIONS, Direction, FAMILIES, Scope, TRANSPORTS};
use crate::spacesaving::Tally;
use crate::{OTHER_STREAM, Stats, dns};

/// Every metric name [`Stats::prometheus`] writes (the Grafana dashboard's
/// test checks its expressions against this list).
pub const METRIC_NAMES: &[&str] = &[
    "dnsrecall_stats_messages_total",
    "dnsrecall_stats_bytes_total",
    "dnsrecall_stats_transport_messages_total",
    "dnsrecall_stats_family_messages_total",
    "dnsrecall_stats_rcode_messages_total",
    "dnsrecall_stats_latency_range_total",
    "dnsrecall_stats_latency_seconds_bucket",
    "dnsrecall_stats_latency_seconds_sum",
    "dnsrecall_stats_latency_seconds_count",
    "dnsrecall_stats_malformed_total",
    "dnsrecall_stats_unique_clients",
    "dnsrecall_stats_unique_domains",
    "dnsrecall_stats_qtype_messages_total",
    "dnsrecall_stats_global_unique_clients",
    "dnsrecall_stats_global_unique_domains",
    "dnsrecall_stats_pairing_pending",
    "dnsrecall_stats_pairing_unmatched_responses_total",
    "dnsrecall_stats_pairing_unanswered_queries_total",
    "dnsrecall_stats_streams",
    "dnsrecall_stats_table_entries",
    "dnsrecall_stats_memory_bound_bytes",
    "dnsrecall_stats_memory_used_bytes",
    "dnsrecall_stats_hll_registers_bytes",
];

/// What one label value sums.
struct Series {
    label: String,
    directions: [Direction; 2],
    malformed: u64,
    clients: HyperLogLog,
    domains: HyperLogLog,
    latency: Histogram,
    entries: u64,
}

impl Series {
    fn new(label: &str, scope: &Scope) -> Series {
        Series {
            label: label.to_string(),
            directions: scope.directions.clone(),
            malformed: scope.malformed,
            clients: scope.clients.clone(),
            domains: scope.domains.clone(),
            latency: scope.latency.clone(),
            entries: scope.table_entries(),
        }
    }

    fn absorb(&mut self, scope: &Scope) {
        for (mine, theirs) in self.directions.iter_mut().zip(&scope.directions) {
            mine.messages += theirs.messages;
            mine.bytes += theirs.bytes;
            add(&mut mine.transport, &theirs.transport);
            add(&mut mine.family, &theirs.family);
            add(&mut mine.rcode, &theirs.rcode);
            add(&mut mine.latency, &theirs.latency);
        }
        self.malformed += scope.malformed;
        self.clients.merge(&scope.clients);
        self.domains.merge(&scope.domains);
        self.latency.merge(&scope.latency);
        self.entries += scope.table_entries();
    }
}

fn add<const N: usize>(into: &mut [u64; N], from: &[u64; N]) {
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl Stats {
    /// The statistics as Prometheus text.
    pub fn prometheus(&self) -> String {
        let inner = self.read();
        let mut ranked: Vec<&(Box<str>, Scope)> = inner.streams.iter().collect();
        ranked.sort_by_key(|(_, s)| {
            std::cmp::Reverse(s.directions[0].messages + s.directions[1].messages)
        });
        let cap = self.config().label_cap;
        let mut series: Vec<Series> = Vec::new();
        let mut other: Option<Series> = None;
        for (rank, (name, scope)) in ranked.into_iter().enumerate() {
            if rank < cap && &**name != OTHER_STREAM {
                series.push(Series::new(name, scope));
            } else {
                match other.as_mut() {
                    Some(o) => o.absorb(scope),
                    None => other = Some(Series::new(OTHER_STREAM, scope)),
                }
            }
        }
        series.extend(other);

        let mut out = String::with_capacity(8192);
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
        };
        head(
            &mut out,
            "dnsrecall_stats_messages_total",
            "counter",
            "DNS messages observed, per stream and direction.",
        );
        for s in &series {
            for (d, dir) in DIRECTIONS.iter().enumerate() {
                sample(
                    &mut out,
                    "dnsrecall_stats_messages_total",
                    &[("stream", &s.label), ("direction", dir)],
                    s.directions[d].messages,
                );
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_bytes_total",
            "counter",
            "Bytes of DNS messages observed, per stream and direction.",
        );
        for s in &series {
            for (d, dir) in DIRECTIONS.iter().enumerate() {
                sample(
                    &mut out,
                    "dnsrecall_stats_bytes_total",
                    &[("stream", &s.label), ("direction", dir)],
                    s.directions[d].bytes,
                );
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_transport_messages_total",
            "counter",
            "DNS messages per transport.",
        );
        for s in &series {
            for (d, dir) in DIRECTIONS.iter().enumerate() {
                for (i, t) in TRANSPORTS.iter().enumerate() {
                    let n = s.directions[d].transport[i];
                    if n > 0 {
                        sample(
                            &mut out,
                            "dnsrecall_stats_transport_messages_total",
                            &[("stream", &s.label), ("direction", dir), ("transport", t)],
                            n,
                        );
                    }
                }
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_family_messages_total",
            "counter",
            "DNS messages per address family.",
        );
        for s in &series {
            for (d, dir) in DIRECTIONS.iter().enumerate() {
                for (i, f) in FAMILIES.iter().enumerate() {
                    let n = s.directions[d].family[i];
                    if n > 0 {
                        sample(
                            &mut out,
                            "dnsrecall_stats_family_messages_total",
                            &[("stream", &s.label), ("direction", dir), ("family", f)],
                            n,
                        );
                    }
                }
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_rcode_messages_total",
            "counter",
            "DNS messages per header rcode.",
        );
        for s in &series {
            for (d, dir) in DIRECTIONS.iter().enumerate() {
                for (rcode, &n) in s.directions[d].rcode.iter().enumerate() {
                    if n > 0 {
                        let name = match dns::rcode_name(rcode as u8) {
                            "-" => format!("RCODE{rcode}"),
                            name => name.to_string(),
                        };
                        sample(
                            &mut out,
                            "dnsrecall_stats_rcode_messages_total",
                            &[("stream", &s.label), ("direction", dir), ("rcode", &name)],
                            n,
                        );
                    }
                }
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_latency_range_total",
            "counter",
            "Paired responses per dnstap-receiver latency range.",
        );
        for s in &series {
            for (i, range) in BUCKET_NAMES.iter().enumerate() {
                sample(
                    &mut out,
                    "dnsrecall_stats_latency_range_total",
                    &[("stream", &s.label), ("range", range)],
                    s.directions[1].latency[i],
                );
            }
        }
        head(
            &mut out,
            "dnsrecall_stats_latency_seconds",
            "histogram",
            "Response latency from query/response pairing.",
        );
        for s in &series {
            for (bound, n) in PROMETHEUS_BOUNDS.iter().zip(s.latency.cumulative()) {
                sample(
                    &mut out,
                    "dnsrecall_stats_latency_seconds_bucket",
                    &[("stream", &s.label), ("le", &bound.to_string())],
                    n,
                );
            }
            sample(
                &mut out,
                "dnsrecall_stats_latency_seconds_bucket",
                &[("stream", &s.label), ("le", "+Inf")],
                s.latency.count(),
            );
            let _ = writeln!(
                out,
                "dnsrecall_stats_latency_seconds_sum{{stream=\"{}\"}} {}",
                escape(&s.label),
                s.latency.sum_seconds()
            );
            sample(
                &mut out,
                "dnsrecall_stats_latency_seconds_count",
                &[("stream", &s.label)],
                s.latency.count(),
            );
        }
        head(
            &mut out,
            "dnsrecall_stats_malformed_total",
            "counter",
            "Messages without a DNS message of at least a header.",
        );
        for s in &series {
            sample(
                &mut out,
                "dnsrecall_stats_malformed_total",
                &[("stream", &s.label)],
                s.malformed,
            );
        }
        head(
            &mut out,
            "dnsrecall_stats_unique_clients",
            "gauge",
            "Distinct client addresses (HyperLogLog estimate).",
        );
        for s in &series {
            sample(
                &mut out,
                "dnsrecall_stats_unique_clients",
                &[("stream", &s.label)],
                s.clients.estimate(),
            );
        }
        head(
            &mut out,
            "dnsrecall_stats_unique_domains",
            "gauge",
            "Distinct query names (HyperLogLog estimate).",
        );
        for s in &series {
            sample(
                &mut out,
                "dnsrecall_stats_unique_domains",
                &[("stream", &s.label)],
                s.domains.estimate(),
            );
        }
        head(
            &mut out,
            "dnsrecall_stats_table_entries",
            "gauge",
            "Keys held in the top-N tables.",
        );
        for s in &series {
            sample(
                &mut out,
                "dnsrecall_stats_table_entries",
                &[("stream", &s.label)],
                s.entries,
            );
        }
        let global = &inner.global;
        head(
            &mut out,
            "dnsrecall_stats_qtype_messages_total",
            "counter",
            "DNS messages per query type, all streams (the 256 most frequent types).",
        );
        for (d, dir) in DIRECTIONS.iter().enumerate() {
            for entry in global.qtypes[d].since_start().top(usize::MAX) {
                let label = crate::compat::qtype_label(entry.key).to_ascii_uppercase();
                sample(
                    &mut out,
                    "dnsrecall_stats_qtype_messages_total",
                    &[("direction", dir), ("qtype", &label)],
                    entry.count,
                );
            }
        }
        let globals: [(&str, &str, &str, u64); 8] = [
            (
                "dnsrecall_stats_global_unique_clients",
                "gauge",
                "Distinct client addresses over all streams (HyperLogLog estimate).",
                global.clients.estimate(),
            ),
            (
                "dnsrecall_stats_global_unique_domains",
                "gauge",
                "Distinct query names over all streams (HyperLogLog estimate).",
                global.domains.estimate(),
            ),
            (
                "dnsrecall_stats_pairing_pending",
                "gauge",
                "Queries waiting for their response.",
                inner.pairing.len() as u64,
            ),
            (
                "dnsrecall_stats_pairing_unmatched_responses_total",
                "counter",
                "Responses whose query was not seen (or left the table).",
                inner.pairing.unmatched,
            ),
            (
                "dnsrecall_stats_pairing_unanswered_queries_total",
                "counter",
                "Queries that left the pairing table without a response.",
                inner.pairing.unanswered,
            ),
            (
                "dnsrecall_stats_streams",
                "gauge",
                "Streams tracked.",
                inner.streams.len() as u64,
            ),
            (
                "dnsrecall_stats_memory_bound_bytes",
                "gauge",
                "Configured bound of the statistics state.",
                self.plan().memory_bound,
            ),
            (
                "dnsrecall_stats_hll_registers_bytes",
                "gauge",
                "Bytes of HyperLogLog registers held.",
                ((inner.streams.len() + 1) * 2 * global.clients.size_bytes()) as u64,
            ),
        ];
        for (name, kind, help, value) in globals {
            head(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        drop(inner);
        head(
            &mut out,
            "dnsrecall_stats_memory_used_bytes",
            "gauge",
            "Bytes the statistics state holds (estimate).",
        );
        let _ = writeln!(
            out,
            "dnsrecall_stats_memory_used_bytes {}",
            self.used_bytes()
        );
        out
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    out.push('{');
    for (i, (key, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape(value));
    }
    let _ = writeln!(out, "}} {value}");
}

/// Label value escaping (backslash, quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
