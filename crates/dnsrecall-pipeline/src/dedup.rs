//! The de-duplication cache: repeated sightings of a record become one
//! entry with summed counts.
//!
//! Keyed by [`Record`] (rrname, rrtype, bailiwick, rdata), each cache entry
//! accumulates a [`Seen`] with [`Seen::merge`]. Because merge is associative
//! and commutative, emitting a partial total early (on eviction) and the
//! rest later loses nothing: the store merges them back. So the cache can be
//! as small as one entry, or as large as memory allows, without changing
//! the totals, only the write amplification.
//!
//! # Eviction: FIFO
//!
//! Entries leave in insertion order, from one queue, for all three reasons:
//! eviction under pressure, the interval flush (everything inserted more
//! than `flush_interval_secs` ago, which is a prefix of the queue because
//! insertion times only grow) and the final drain. FIFO rather than LRU,
//! CLOCK or S3-FIFO because every entry must leave within the flush interval
//! anyway, so a policy that keeps hot entries longer could only keep them
//! until the next flush; it would buy a few percent of hits at the price of
//! per-hit metadata writes and an age flush that must scan instead of pop.
//! A hit costs one hash probe and a merge.
//!
//! # Memory
//!
//! The cache counts its own memory in `bytes` and keeps it at or under
//! `max_bytes` after every insert:
//!
//! ```text
//! bytes = slots.capacity() × size_of::<Slot>()            // inline entries
//!       + index buckets × (size_of::<u64>() + 1) + 16     // hashbrown table
//!       + Σ heap(entry)
//! heap(entry) = chunk(rrname) + chunk(bailiwick) + chunk(rdata)
//! chunk(n)    = 0 if n = 0, else max(32, round_up(n + 8, 16))  // glibc malloc chunk
//! ```
//!
//! The queue and index are grown by the cache itself, and only when the
//! grown size still fits; otherwise the cache evicts instead. The sensor
//! identity (`Arc<str>`) is shared with the source and not counted.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Arc;

use dnsrecall_core::{Entry, Rdata, Record, Seen};
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hash::RandomState;
use crate::metrics::{Counter, MetricSample};

//---- DedupConfig ----

/// Bounds and flush interval of the de-duplication cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DedupConfig {
    /// Most entries held at once. Default: 1,000,000.
    #[serde(default = "default_max_entries")]
    pub max_entries: usize,
    /// Most bytes held at once, by the formula in the module docs.
    /// Default: 268,435,456 (256 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// Entries older than this many seconds (since insertion) are emitted at
    /// the next `tick`. Default: 10.
    #[serde(default = "default_flush_interval_secs")]
    pub flush_interval_secs: u64,
}

fn default_max_entries() -> usize {
    1_000_000
}
fn default_max_bytes() -> usize {
    256 << 20
}
fn default_flush_interval_secs() -> u64 {
    10
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            max_entries: default_max_entries(),
            max_bytes: default_max_bytes(),
            flush_interval_secs: default_flush_interval_secs(),
        }
    }
}

//---- DedupMetrics ----

/// Counters of the de-duplication stage.
#[derive(Debug, Default)]
pub struct DedupMetrics {
    /// Observations offered.
    pub input: Counter,
    /// Entries emitted (evicted, flushed, drained or passed through).
    pub output: Counter,
    /// Observations folded into an entry already cached.
    pub hits: Counter,
    /// Observations that created an entry (or passed through).
    pub misses: Counter,
    /// Entries emitted to make room.
    pub evictions: Counter,
    /// Entries emitted by the interval flush.
    pub flushed: Counter,
    /// Entries emitted by the final drain.
    pub drained: Counter,
    /// Observations too large for an empty cache, emitted as they came.
    pub bypassed: Counter,
    /// Entries held now (gauge).
    pub entries: Counter,
    /// Bytes held now by the cache's own accounting (gauge).
    pub bytes: Counter,
}

impl DedupMetrics {
    /// Name, help and value of every counter.
    pub fn snapshot(&self) -> Vec<MetricSample> {
        vec![
            (
                "dnsrecall_pipeline_dedup_in_total",
                "Observations offered to the dedup cache.",
                self.input.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_out_total",
                "Entries emitted by the dedup cache.",
                self.output.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_hits_total",
                "Observations merged into a cached entry.",
                self.hits.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_misses_total",
                "Observations that were not cached yet.",
                self.misses.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_evictions_total",
                "Entries emitted to make room.",
                self.evictions.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_flushes_total",
                "Entries emitted by the interval flush.",
                self.flushed.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_drained_total",
                "Entries emitted at shutdown.",
                self.drained.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_bypassed_total",
                "Observations too large to cache, emitted at once.",
                self.bypassed.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_entries",
                "Entries held in the dedup cache.",
                self.entries.get(),
            ),
            (
                "dnsrecall_pipeline_dedup_bytes",
                "Bytes held by the dedup cache (own accounting).",
                self.bytes.get(),
            ),
        ]
    }
}

//---- DedupCache ----

/// One cached entry, stored inline in the FIFO queue.
struct Slot {
    record: Record,
    seen: Seen,
    /// Hash of `record` under the cache's hasher, kept for the index.
    hash: u64,
    /// Cache clock at insertion.
    born: u64,
    /// `heap(entry)` of the module docs.
    heap: u32,
}

/// A bounded de-duplication cache; see the module docs.
pub struct DedupCache {
    hasher: RandomState,
    /// Sequence numbers of the slots; slot `seq` sits at `slots[seq - head]`.
    index: HashTable<u64>,
    slots: VecDeque<Slot>,
    head: u64,
    heap_bytes: usize,
    structure_bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    clock: u64,
    metrics: Arc<DedupMetrics>,
}

/// Bytes of a heap allocation of `n` bytes: a glibc malloc chunk.
fn chunk(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n + 8).div_ceil(16).saturating_mul(16).max(32)
    }
}

/// `heap(entry)` of the module docs.
pub fn heap_cost(record: &Record) -> usize {
    let rdata = match &record.rdata {
        Rdata::Wire(wire) => wire.len(),
        Rdata::Text(text) => text.len(),
    };
    chunk(record.rrname.as_wire().len())
        + record
            .bailiwick
            .as_ref()
            .map_or(0, |b| chunk(b.as_wire().len()))
        + chunk(rdata)
}

/// Bytes of a hashbrown table of `u64` with this `capacity()`.
fn index_bytes(capacity: usize) -> usize {
    let buckets = match capacity {
        0 => return 0,
        1..=3 => 4,
        4..=7 => 8,
        _ => (capacity.saturating_mul(8) / 7).next_power_of_two(),
    };
    buckets * (size_of::<u64>() + 1) + 16
}

/// Index capacity hashbrown gives when asked for `n` items.
fn index_capacity_for(n: usize) -> usize {
    match n {
        0 => 0,
        1..=3 => 3,
        4..=7 => 7,
        _ => ((n.saturating_mul(8) / 7).next_power_of_two() / 8) * 7,
    }
}

impl DedupCache {
    /// An empty cache with the bounds of `config`.
    pub fn new(config: &DedupConfig) -> Result<DedupCache, Error> {
        if config.max_entries == 0 {
            return Err(Error::Config {
                field: "dedup.max_entries",
                reason: "must be at least 1".to_string(),
            });
        }
        Ok(DedupCache {
            hasher: RandomState::default(),
            index: HashTable::new(),
            slots: VecDeque::new(),
            head: 0,
            heap_bytes: 0,
            structure_bytes: 0,
            max_entries: config.max_entries,
            max_bytes: config.max_bytes,
            clock: 0,
            metrics: Arc::new(DedupMetrics::default()),
        })
    }

    /// The cache's counters.
    pub fn metrics(&self) -> Arc<DedupMetrics> {
        Arc::clone(&self.metrics)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held, by the formula in the module docs. Never above
    /// `max_bytes` once an insert returns.
    pub fn bytes(&self) -> usize {
        self.structure_bytes + self.heap_bytes
    }

    /// Advances the cache clock (monotonic: an earlier `now` is ignored).
    /// Entries inserted from now on are born at `now`.
    pub fn set_clock(&mut self, now: u64) {
        self.clock = self.clock.max(now);
    }

    /// Adds one observation; entries that had to leave to make room are
    /// appended to `out`.
    pub fn insert(&mut self, entry: Entry, out: &mut Vec<Entry>) {
        self.metrics.input.add(1);
        let hash = self.hasher.hash_one(&entry.record);
        let slots = &mut self.slots;
        let head = self.head;
        if let Some(&seq) = self.index.find(hash, |&seq| {
            slots
                .get((seq - head) as usize)
                .is_some_and(|slot| slot.record == entry.record)
        }) && let Some(slot) = slots.get_mut((seq - head) as usize)
        {
            slot.seen.merge(&entry.seen);
            self.metrics.hits.add(1);
            return;
        }
        self.metrics.misses.add(1);
        let heap = heap_cost(&entry.record);
        if !self.make_room(heap, out) {
            self.metrics.bypassed.add(1);
            self.metrics.output.add(1);
            out.push(entry);
            self.publish();
            return;
        }
        let seq = self.head + self.slots.len() as u64;
        self.slots.push_back(Slot {
            record: entry.record,
            seen: entry.seen,
            hash,
            born: self.clock,
            heap: heap as u32,
        });
        let slots = &self.slots;
        let head = self.head;
        self.index.insert_unique(hash, seq, |&s| {
            slots.get((s - head) as usize).map_or(0, |slot| slot.hash)
        });
        self.heap_bytes += heap;
        self.publish();
    }

    /// Evicts until an entry of `heap` bytes fits, growing the structure if
    /// that fits better. Returns false if it cannot fit even in an empty
    /// cache.
    fn make_room(&mut self, heap: usize, out: &mut Vec<Entry>) -> bool {
        loop {
            let len = self.slots.len();
            let has_slot = len < self.slots.capacity() && len < self.index.capacity();
            if len < self.max_entries && has_slot && self.bytes() + heap <= self.max_bytes {
                return true;
            }
            if len < self.max_entries && !has_slot && self.try_grow(heap) {
                continue;
            }
            if len == 0 {
                // Not even one entry fits. Give back whatever is reserved if
                // the reservation alone breaks the bound.
                if self.bytes() > self.max_bytes {
                    self.release();
                }
                return false;
            }
            self.pop_front(out);
            self.metrics.evictions.add(1);
        }
    }

    fn release(&mut self) {
        self.slots = VecDeque::new();
        self.index = HashTable::new();
        self.structure_bytes = 0;
    }

    /// Grows the queue and index to hold about twice as many entries, if the
    /// grown structure plus the current heap plus `heap` fits; otherwise by
    /// the largest step that fits, but never by less than an eighth:
    /// growing one slot at a time would reallocate (and copy) the whole
    /// queue on every insert near the bound.
    fn try_grow(&mut self, heap: usize) -> bool {
        let len = self.slots.len();
        let fits = |target: usize| {
            target * size_of::<Slot>()
                + index_bytes(index_capacity_for(target))
                + self.heap_bytes
                + heap
                <= self.max_bytes
        };
        let target = len
            .saturating_mul(2)
            .clamp(1, self.max_entries)
            .max(len + 1);
        if fits(target) {
            return self.grow_to(target);
        }
        let minimum = (len + len / 8).max(len + 1).min(self.max_entries);
        if minimum <= len || !fits(minimum) {
            return false;
        }
        // Largest fitting target between `minimum` and `target`.
        let (mut low, mut high) = (minimum, target);
        while low < high {
            let middle = low + (high - low).div_ceil(2);
            if fits(middle) {
                low = middle;
            } else {
                high = middle - 1;
            }
        }
        self.grow_to(low)
    }

    fn grow_to(&mut self, target: usize) -> bool {
        let len = self.slots.len();
        if self.slots.capacity() < target {
            self.slots.reserve_exact(target - len);
        }
        if self.index.capacity() < target {
            let slots = &self.slots;
            let head = self.head;
            self.index.reserve(target - len, |&s| {
                slots.get((s - head) as usize).map_or(0, |slot| slot.hash)
            });
        }
        self.structure_bytes =
            self.slots.capacity() * size_of::<Slot>() + index_bytes(self.index.capacity());
        true
    }

    /// Removes the oldest entry and appends it to `out`.
    fn pop_front(&mut self, out: &mut Vec<Entry>) {
        let Some(slot) = self.slots.pop_front() else {
            return;
        };
        let seq = self.head;
        if let Ok(found) = self.index.find_entry(slot.hash, |&s| s == seq) {
            found.remove();
        }
        self.head += 1;
        self.heap_bytes -= slot.heap as usize;
        self.metrics.output.add(1);
        out.push(Entry {
            record: slot.record,
            seen: slot.seen,
        });
    }

    fn publish(&self) {
        self.metrics.entries.set(self.slots.len() as u64);
        self.metrics.bytes.set(self.bytes() as u64);
    }

    /// Emits every entry inserted before `cutoff` (cache clock). Returns how
    /// many it emitted.
    pub fn flush_older_than(&mut self, cutoff: u64, out: &mut Vec<Entry>) -> usize {
        self.flush_older_than_at_most(cutoff, usize::MAX, out)
    }

    /// Like [`DedupCache::flush_older_than`], emitting at most `max` entries
    /// (callers loop until fewer come back, so what is in flight between the
    /// cache and the store stays bounded).
    pub fn flush_older_than_at_most(
        &mut self,
        cutoff: u64,
        max: usize,
        out: &mut Vec<Entry>,
    ) -> usize {
        let mut flushed = 0;
        while flushed < max && self.slots.front().is_some_and(|slot| slot.born < cutoff) {
            self.pop_front(out);
            flushed += 1;
        }
        self.metrics.flushed.add(flushed as u64);
        self.publish();
        flushed
    }

    /// Emits everything (shutdown) and releases the reserved memory.
    pub fn drain_all(&mut self, out: &mut Vec<Entry>) -> usize {
        self.drain_at_most(usize::MAX, out)
    }

    /// Emits at most `max` entries, oldest first; once empty, releases the
    /// reserved memory. Returns how many it emitted.
    pub fn drain_at_most(&mut self, max: usize, out: &mut Vec<Entry>) -> usize {
        let drained = self.slots.len().min(max);
        out.reserve(drained);
        for _ in 0..drained {
            self.pop_front(out);
        }
        if self.slots.is_empty() {
            self.release();
        }
        self.metrics.drained.add(drained as u64);
        self.publish();
        drained
    }
}

impl std::fmt::Debug for DedupCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedupCache")
            .field("entries", &self.slots.len())
            .field("bytes", &self.bytes())
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_core::{Name, Rtype};

    fn entry(name: &str, time: u64) -> Entry {
        Entry {
            record: Record {
                rrname: Name::from_presentation(name).unwrap(),
                rrtype: Rtype::A,
                bailiwick: None,
                rdata: Rdata::Wire(Box::new([192, 0, 2, 1])),
            },
            seen: Seen::once(time),
        }
    }

    #[test]
    fn chunk_sizes_follow_malloc() {
        assert_eq!(chunk(0), 0);
        assert_eq!(chunk(1), 32);
        assert_eq!(chunk(24), 32);
        assert_eq!(chunk(25), 48);
        assert_eq!(chunk(255), 272);
    }

    #[test]
    fn index_prediction_matches_hashbrown() {
        for n in [1usize, 2, 3, 4, 7, 8, 14, 15, 100, 1000, 12345] {
            let mut table: HashTable<u64> = HashTable::new();
            table.reserve(n, |&x| x);
            assert_eq!(table.capacity(), index_capacity_for(n), "n = {n}");
        }
    }

    #[test]
    fn hits_merge_and_flush_by_age() {
        let mut cache = DedupCache::new(&DedupConfig::default()).unwrap();
        let mut out = Vec::new();
        cache.set_clock(100);
        cache.insert(entry("a.test", 5), &mut out);
        cache.insert(entry("a.test", 3), &mut out);
        cache.set_clock(105);
        cache.insert(entry("b.test", 9), &mut out);
        assert!(out.is_empty());
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.flush_older_than(105, &mut out), 1);
        assert_eq!(out[0].seen.count, 2);
        assert_eq!((out[0].seen.time_first, out[0].seen.time_last), (3, 5));
        assert_eq!(cache.drain_all(&mut out), 1);
        assert_eq!(cache.bytes(), 0);
        let metrics = cache.metrics();
        assert_eq!(
            (
                metrics.hits.get(),
                metrics.misses.get(),
                metrics.flushed.get()
            ),
            (1, 2, 1)
        );
    }

    #[test]
    fn entry_bound_evicts_oldest() {
        let config = DedupConfig {
            max_entries: 2,
            ..DedupConfig::default()
        };
        let mut cache = DedupCache::new(&config).unwrap();
        let mut out = Vec::new();
        for name in ["a.test", "b.test", "c.test"] {
            cache.insert(entry(name, 1), &mut out);
        }
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].record.rrname.to_dotless(), "a.test");
        assert_eq!(cache.metrics().evictions.get(), 1);
    }

    #[test]
    fn byte_bound_too_small_for_one_entry_passes_through() {
        let config = DedupConfig {
            max_bytes: 64,
            ..DedupConfig::default()
        };
        let mut cache = DedupCache::new(&config).unwrap();
        let mut out = Vec::new();
        cache.insert(entry("a.test", 1), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(cache.bytes(), 0);
        assert_eq!(cache.metrics().bypassed.get(), 1);
    }
}
