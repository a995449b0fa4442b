//! `[stats]`: the statistics' settings, read by the binary's TOML config.

use serde::{Deserialize, Serialize};

/// Default bound of the whole statistics state: 64 MiB.
pub const DEFAULT_MEMORY_BOUND: u64 = 64 * 1024 * 1024;
/// Default number of rows of a top-N table answer (dnstap-receiver's
/// `max-items`).
pub const DEFAULT_TOP_N: usize = 10;
/// Default number of streams (dnstap identities, capture sensors) tracked
/// on their own; more streams are counted together as [`OTHER_STREAM`].
pub const DEFAULT_MAX_STREAMS: usize = 16;
/// Default number of streams given their own `/metrics` label.
pub const DEFAULT_LABEL_CAP: usize = 10;
/// Default HyperLogLog precision (2^14 registers: 0.81 % standard error).
pub const DEFAULT_HLL_PRECISION: u8 = 14;
/// Default number of messages waiting to be counted (serve's statistics
/// output); beyond, messages are dropped and counted. Measured
/// (BENCHMARKS.md, "Traffic statistics"): on 2 cores at ~120k msg/s the
/// statistics thread, starved at times by ingest, fell behind a 16,384 and
/// a 65,536 queue (16 % and 3.5 % dropped) but not this one.
pub const DEFAULT_QUEUE_SIZE: usize = 262_144;
/// Default nice increment of the statistics thread over the process's: none.
/// Measured (BENCHMARKS.md, "Traffic statistics"): at 5, on 2 cores
/// saturated by ingest, the statistics fell behind their queue and dropped
/// 8 % of the messages.
pub const DEFAULT_THREAD_NICE: u8 = 0;
/// Name of the stream that gathers streams beyond the cap, and of the
/// `/metrics` label beyond the label cap.
pub const OTHER_STREAM: &str = "other";

/// Settings of the traffic statistics (`[stats]` in the configuration).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsConfig {
    /// Bytes the whole statistics state may use (counters, sketches, tables,
    /// the query/response pairing table). Table capacities are derived from
    /// it at start. Default 64 MiB.
    pub memory_bound: u64,
    /// Rows of a top-N answer when the request does not say (`n`).
    pub top_n: usize,
    /// Streams tracked on their own; the rest are summed as `other`.
    pub max_streams: usize,
    /// Streams given their own `stream` label in `/metrics` (the busiest
    /// ones); the rest are summed under `stream="other"`.
    pub label_cap: usize,
    /// Keep the last-minute and last-hour windows of the global tables.
    pub windows: bool,
    /// HyperLogLog precision for unique clients and domains (4..=18).
    pub hll_precision: u8,
    /// Lower-case query names before counting (dnstap-receiver's
    /// `qname-lowercase`, default true).
    pub qname_lowercase: bool,
    /// Seconds a query waits for its response in the pairing table
    /// (dnstap-receiver: 60).
    pub pairing_timeout_secs: u64,
    /// Counters `GET /counters` returns without `more` (dnstap-receiver's
    /// `default-counters`).
    pub default_counters: Vec<String>,
    /// Domain tables `GET /tables` returns without `more`
    /// (dnstap-receiver's `default-top`).
    pub default_top: Vec<String>,
    /// Messages waiting for the statistics thread in `serve` (the inputs
    /// only enqueue); a full queue drops messages and counts them in
    /// `dnsrecall_stats_output_dropped_total`. Queued messages share the
    /// inputs' buffers and are not part of `memory_bound` (a slot is a few
    /// hundred bytes plus its share of a frame). Default 262144.
    pub queue_size: usize,
    /// How much lower than the rest of `serve` the statistics thread runs,
    /// as a nice increment (0 to 19, Linux; default 0): above 0, on a
    /// saturated machine the scheduler favours ingest and the statistics
    /// fall behind into their queue (what overflows it is dropped and
    /// counted), for a deployment whose store matters more than its view
    /// of the traffic.
    pub thread_nice: u8,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            memory_bound: DEFAULT_MEMORY_BOUND,
            top_n: DEFAULT_TOP_N,
            max_streams: DEFAULT_MAX_STREAMS,
            label_cap: DEFAULT_LABEL_CAP,
            windows: true,
            hll_precision: DEFAULT_HLL_PRECISION,
            qname_lowercase: true,
            pairing_timeout_secs: 60,
            default_counters: [
                "clients",
                "domains",
                "query",
                "response",
                "qps",
                "response/noerror",
                "response/nxdomain",
            ]
            .map(String::from)
            .to_vec(),
            default_top: ["noerror/query", "nxdomain/response"]
                .map(String::from)
                .to_vec(),
            queue_size: DEFAULT_QUEUE_SIZE,
            thread_nice: DEFAULT_THREAD_NICE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_table_keeps_defaults_and_unknown_keys_fail() {
        let config: StatsConfig =
            serde_json::from_str(r#"{"memory_bound": 1048576, "top_n": 5}"#).unwrap();
        assert_eq!(config.memory_bound, 1 << 20);
        assert_eq!(config.top_n, 5);
        assert_eq!(config.max_streams, DEFAULT_MAX_STREAMS);
        assert!(serde_json::from_str::<StatsConfig>(r#"{"bound": 1}"#).is_err());
    }
}
