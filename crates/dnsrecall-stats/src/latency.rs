//! Query/response pairing and latency: dnstap-receiver's six buckets and a
//! log-scale histogram for percentiles.
//!
//! A query leaves its time in a bounded table keyed like dnstap-receiver's
//! cache (initiator address, initiator port, DNS id); its response takes it
//! out and yields the latency. The table holds at most `capacity` queries
//! for at most `timeout` seconds: a query that leaves by age or to make
//! room is counted as unanswered, a response that finds no query as
//! unmatched.

use std::collections::VecDeque;
use std::net::IpAddr;

use hashbrown::HashMap;
use serde::Serialize;

/// The pairing key: initiator address and port, DNS id.
pub type PairKey = (IpAddr, u16, u16);

/// Bytes one pairing entry costs (map slot + queue slot, with slack).
pub const PAIR_ENTRY_BYTES: usize = 96;

/// Queries waiting for their responses.
#[derive(Debug)]
pub struct PairingTable {
    capacity: usize,
    timeout_nanos: u64,
    waiting: HashMap<PairKey, u64, foldhash::fast::FixedState>,
    /// Insertion order, for expiry and eviction (key, query time).
    order: VecDeque<(PairKey, u64)>,
    /// Queries that left the table without a response.
    pub unanswered: u64,
    /// Responses whose query was not in the table.
    pub unmatched: u64,
    /// Queries paired with their response.
    pub matched: u64,
}

impl PairingTable {
    pub fn new(capacity: usize, timeout_secs: u64) -> PairingTable {
        PairingTable {
            capacity: capacity.max(1),
            timeout_nanos: timeout_secs.saturating_mul(1_000_000_000),
            waiting: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(3)),
            order: VecDeque::new(),
            unanswered: 0,
            unmatched: 0,
            matched: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// A query seen at `time` (ns since the epoch). A repeated key takes
    /// the newer time, as dnstap-receiver's cache does.
    pub fn query(&mut self, key: PairKey, time: u64) {
        self.expire(time);
        while self.waiting.len() >= self.capacity {
            if !self.pop_oldest() {
                break;
            }
        }
        if self.waiting.insert(key, time).is_none() {
            self.order.push_back((key, time));
        } else {
            // The stale queue entry of the first query is skipped later.
            self.order.push_back((key, time));
        }
        // Bound the queue too (stale entries from repeated keys).
        while self.order.len() > self.capacity.saturating_mul(2) {
            self.pop_oldest();
        }
    }

    /// A response seen at `time`: the latency in ns if its query waits.
    pub fn response(&mut self, key: PairKey, time: u64) -> Option<u64> {
        match self.waiting.remove(&key) {
            Some(query_time) => {
                self.matched += 1;
                Some(time.saturating_sub(query_time))
            }
            None => {
                self.unmatched += 1;
                None
            }
        }
    }

    fn expire(&mut self, now: u64) {
        while let Some(&(_, time)) = self.order.front() {
            if now.saturating_sub(time) <= self.timeout_nanos {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the oldest queue entry; true if the queue was not empty.
    fn pop_oldest(&mut self) -> bool {
        let Some((key, time)) = self.order.pop_front() else {
            return false;
        };
        if self.waiting.get(&key) == Some(&time) {
            self.waiting.remove(&key);
            self.unanswered += 1;
        }
        true
    }

    pub fn clear(&mut self) {
        self.waiting.clear();
        self.order.clear();
        self.unanswered = 0;
        self.unmatched = 0;
        self.matched = 0;
    }
}

/// dnstap-receiver's latency bucket names, in order.
pub const BUCKET_NAMES: [&str; 6] = [
    "latency0_1",
    "latency1_10",
    "latency10_50",
    "latency50_100",
    "latency100_1000",
    "latency_slow",
];

/// The dnstap-receiver bucket of a latency: it rounds seconds to three
/// decimals, then `<= 1 ms`, `<= 10 ms`, `<= 50 ms`, `<= 100 ms`, `<= 1 s`,
/// slower.
pub fn bucket(latency_nanos: u64) -> usize {
    let millis = (latency_nanos + 500_000) / 1_000_000;
    match millis {
        0..=1 => 0,
        2..=10 => 1,
        11..=50 => 2,
        51..=100 => 3,
        101..=1000 => 4,
        _ => 5,
    }
}

/// Upper bounds (seconds) of the Prometheus histogram's buckets.
pub const PROMETHEUS_BOUNDS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Sub-buckets per power of two: a percentile read from the histogram is
/// within `2^(1/8) - 1` = 9.1 % (relative) of the true value.
const STEPS_PER_OCTAVE: u32 = 8;
/// Octaves covered from 1 µs: up to 2^30 µs (~18 min).
const OCTAVES: u32 = 30;
const FINE_BUCKETS: usize = (STEPS_PER_OCTAVE * OCTAVES) as usize + 1;

/// Latencies in log-scale buckets (percentiles) and in the fixed Prometheus
/// buckets (exact counts per bound).
#[derive(Clone, Debug)]
pub struct Histogram {
    fine: Box<[u64]>,
    prometheus: [u64; PROMETHEUS_BOUNDS.len()],
    count: u64,
    sum_nanos: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            fine: vec![0; FINE_BUCKETS].into_boxed_slice(),
            prometheus: [0; PROMETHEUS_BOUNDS.len()],
            count: 0,
            sum_nanos: 0,
        }
    }
}

/// Percentiles of a histogram, seconds (`None` without samples).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// Largest relative error of a percentile.
    pub relative_error: f64,
}

impl Histogram {
    /// Bytes held.
    pub const SIZE_BYTES: usize = FINE_BUCKETS * 8 + PROMETHEUS_BOUNDS.len() * 8 + 16;

    pub fn record(&mut self, nanos: u64) {
        self.count += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(nanos);
        let index = fine_index(nanos);
        if let Some(slot) = self.fine.get_mut(index) {
            *slot += 1;
        }
        let seconds = nanos as f64 / 1e9;
        for (slot, bound) in self.prometheus.iter_mut().zip(PROMETHEUS_BOUNDS) {
            if seconds <= bound {
                *slot += 1;
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_nanos as f64 / 1e9
    }

    /// Cumulative counts per [`PROMETHEUS_BOUNDS`] bound.
    pub fn cumulative(&self) -> [u64; PROMETHEUS_BOUNDS.len()] {
        self.prometheus
    }

    /// The value (seconds) below which a fraction `q` of samples fall.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (index, &n) in self.fine.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(fine_midpoint_nanos(index) / 1e9);
            }
        }
        None
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            count: self.count,
            mean: (self.count > 0).then(|| self.sum_seconds() / self.count as f64),
            p50: self.quantile(0.50),
            p95: self.quantile(0.95),
            p99: self.quantile(0.99),
            relative_error: 2f64.powf(1.0 / f64::from(STEPS_PER_OCTAVE)) - 1.0,
        }
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.fine.iter_mut().zip(other.fine.iter()) {
            *mine += theirs;
        }
        for (mine, theirs) in self.prometheus.iter_mut().zip(other.prometheus) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_nanos = self.sum_nanos.saturating_add(other.sum_nanos);
    }

    pub fn clear(&mut self) {
        *self = Histogram::default();
    }
}

/// Bucket 0 holds everything up to 1 µs; bucket `i` covers
/// `(2^((i-1)/8), 2^(i/8)]` µs.
fn fine_index(nanos: u64) -> usize {
    let micros = nanos as f64 / 1000.0;
    if micros <= 1.0 {
        return 0;
    }
    let index = (micros.log2() * f64::from(STEPS_PER_OCTAVE)).ceil() as usize;
    index.min(FINE_BUCKETS - 1)
}

/// Geometric middle of a bucket, ns.
fn fine_midpoint_nanos(index: usize) -> f64 {
    if index == 0 {
        return 1000.0;
    }
    let steps = f64::from(STEPS_PER_OCTAVE);
    let upper = 2f64.powf(index as f64 / steps);
    let lower = 2f64.powf((index as f64 - 1.0) / steps);
    (upper * lower).sqrt() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn buckets_follow_dnstap_receiver_rounding() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1_400_000), 0); // 0.001 s after rounding
        assert_eq!(bucket(1_600_000), 1);
        assert_eq!(bucket(10_000_000), 1);
        assert_eq!(bucket(50_000_000), 2);
        assert_eq!(bucket(100_000_000), 3);
        assert_eq!(bucket(1_000_000_000), 4);
        assert_eq!(bucket(1_000_600_000), 5);
    }

    #[test]
    fn percentiles_within_the_stated_error() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record(micros * 1000);
        }
        let p = histogram.percentiles();
        for (got, want) in [(p.p50, 0.005), (p.p95, 0.0095), (p.p99, 0.0099)] {
            let got = got.unwrap();
            assert!(
                (got - want).abs() / want <= p.relative_error,
                "{got} vs {want}"
            );
        }
        assert_eq!(histogram.cumulative()[4], 10_000); // all <= 10 ms
        assert_eq!(histogram.cumulative()[0], 500);
    }

    #[test]
    fn pairing_is_bounded_and_counts_what_it_drops() {
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut table = PairingTable::new(2, 60);
        table.query((client, 1000, 1), 0);
        table.query((client, 1000, 2), 10);
        table.query((client, 1000, 3), 20); // evicts id 1
        assert_eq!(table.len(), 2);
        assert_eq!(table.unanswered, 1);
        assert_eq!(table.response((client, 1000, 1), 30), None);
        assert_eq!(table.response((client, 1000, 3), 50), Some(30));
        assert_eq!((table.unmatched, table.matched), (1, 1));
        // Id 2 expires after 60 s.
        table.query((client, 1001, 9), 61_000_000_010);
        assert_eq!(table.unanswered, 2);
        assert_eq!(table.len(), 1);
    }
}
