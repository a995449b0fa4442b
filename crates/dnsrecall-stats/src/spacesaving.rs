//! Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005).
//!
//! A table of at most `capacity` monitored keys, each with a count and the
//! over-estimation it may carry. A new key, when the table is full, takes the
//! place of the key with the smallest count and inherits that count as its
//! error. Guarantees: every key whose true weight exceeds `total / capacity`
//! is in the table; a reported count is at least the true count and at most
//! `count - error` below it. While the table has never been full, every count
//! is exact ([`SpaceSaving::exact`]).
//!
//! This module has the [`Tally`] interface both implementations share and
//! the one for tables of any weight (bytes): the minimum is kept at the
//! root of an indexed binary min-heap, so an update is `O(log capacity)`.
//! Tables of unit weight use [`crate::streamsummary::StreamSummary`]
//! (`O(1)`). Keys are located by their 64-bit hash (the
//! caller hashes once and updates several tables); two keys with the same
//! 64-bit hash would share a slot, which at the table sizes used here has
//! a probability far below the sketches' own error.

use hashbrown::HashMap;

/// One monitored key.
#[derive(Clone, Debug)]
pub struct Counted<K> {
    pub key: K,
    /// Reported weight (an upper bound of the true weight).
    pub count: u64,
    /// Largest possible over-estimation of `count`.
    pub error: u64,
    /// Order of first monitoring, to break ties like an insertion-ordered
    /// counter does.
    pub seq: u64,
    pub(crate) hash: u64,
}

impl<K> Counted<K> {
    /// The key's 64-bit hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

/// What a Space-Saving table offers, whatever keeps its minimum.
pub trait Tally<K>: Sized {
    /// An empty table holding at most `capacity` keys (at least 1).
    fn with_capacity(capacity: usize) -> Self;
    /// Adds `weight` to the key with this hash; `key` builds the key only
    /// when it must be stored.
    fn add(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> K);
    /// Every entry (unordered).
    fn entries(&self) -> std::slice::Iter<'_, Counted<K>>;
    /// The entry of a key hash, if monitored.
    fn get(&self, hash: u64) -> Option<&Counted<K>>;
    /// Most keys held.
    fn capacity(&self) -> usize;
    /// Sum of all weights added.
    fn total(&self) -> u64;
    /// Keys replaced so far.
    fn evictions(&self) -> u64;
    /// The smallest count held when full (the bound on any unlisted key's
    /// weight), else 0.
    fn floor(&self) -> u64;
    /// Forgets everything (keeps the capacity).
    fn clear(&mut self);
    /// A table of `capacity` holding `entries` (at most `capacity`), as if
    /// it had counted `total` and replaced keys `evictions` times.
    fn restored(capacity: usize, entries: Vec<Counted<K>>, total: u64, evictions: u64) -> Self;

    /// A table of `capacity` keys holding this one's heaviest: what a
    /// table of that size would answer had it counted the same weights,
    /// within the same guarantees (every key left out weighs at most the
    /// smallest count kept, which becomes the floor). Leaving keys out
    /// counts as replacing them, so the copy is not [`Tally::exact`] then.
    fn top_copy(&self, capacity: usize) -> Self
    where
        K: Clone,
    {
        let capacity = capacity.max(1);
        let mut entries: Vec<Counted<K>> = self.entries().cloned().collect();
        let mut evictions = self.evictions();
        if entries.len() > capacity {
            entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.seq.cmp(&b.seq)));
            evictions += (entries.len() - capacity) as u64;
            entries.truncate(capacity);
        }
        Self::restored(capacity, entries, self.total(), evictions)
    }

    /// Keys held now.
    fn len(&self) -> usize {
        self.entries().len()
    }

    /// Whether nothing was counted.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every count is exact (no key was ever replaced).
    fn exact(&self) -> bool {
        self.evictions() == 0
    }

    /// The entries, heaviest first; ties in order of first monitoring.
    fn top(&self, n: usize) -> Vec<Counted<K>>
    where
        K: Clone,
    {
        let mut entries: Vec<&Counted<K>> = self.entries().collect();
        entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.seq.cmp(&b.seq)));
        entries.into_iter().take(n).cloned().collect()
    }
}

/// The index's hasher: keys are already 64-bit hashes (or small numbers),
/// one multiply spreads them over the table.
#[derive(Clone, Copy, Debug, Default)]
pub struct PremixedState;

/// See [`PremixedState`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Premixed(u64);

impl std::hash::BuildHasher for PremixedState {
    type Hasher = Premixed;
    fn build_hasher(&self) -> Premixed {
        Premixed(0)
    }
}

impl std::hash::Hasher for Premixed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, value: u64) {
        let mixed = (value ^ (value >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = mixed ^ (mixed >> 32);
    }
}

/// Bytes a [`SpaceSaving`] entry costs besides the entry and its index
/// slot: its heap item and heap position.
pub const ORDER_BYTES_PER_ENTRY: usize =
    std::mem::size_of::<(u64, std::cmp::Reverse<u64>, u32)>() + std::mem::size_of::<u32>();

/// Children per heap node. Why four: a sift-down visits half the levels of
/// a binary heap, and the four children of a node are adjacent (one or two
/// cache lines), where the levels are scattered; an evicting update (a new
/// key sinks from the root nearly to the bottom) is where the heaps by bytes
/// spent their time.
const ARITY: usize = 4;

/// A Space-Saving table of any weight, its minimum at a heap's root.
///
/// Entries live in `slots` and never move; the heap orders slot numbers
/// and `positions` remembers where each slot sits in it, so re-ordering
/// costs no hashing.
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    capacity: usize,
    slots: Vec<Counted<K>>,
    /// Heap position of each slot.
    positions: Vec<u32>,
    /// (count, newest-first order, slot): the ordering key inline, so a
    /// sift reads contiguous memory.
    heap: Vec<(u64, std::cmp::Reverse<u64>, u32)>,
    index: HashMap<u64, u32, PremixedState>,
    total: u64,
    evictions: u64,
    next_seq: u64,
}

impl<K> Tally<K> for SpaceSaving<K> {
    fn with_capacity(capacity: usize) -> SpaceSaving<K> {
        SpaceSaving {
            capacity: capacity.clamp(1, u32::MAX as usize),
            slots: Vec::new(),
            positions: Vec::new(),
            heap: Vec::new(),
            index: HashMap::with_hasher(PremixedState),
            total: 0,
            evictions: 0,
            next_seq: 0,
        }
    }

    fn add(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> K) {
        self.total = self.total.saturating_add(weight);
        if let Some(&slot) = self.index.get(&hash) {
            let Some(entry) = self.slots.get_mut(slot as usize) else {
                return;
            };
            entry.count = entry.count.saturating_add(weight);
            let count = entry.count;
            let position = self.positions[slot as usize] as usize;
            if let Some(item) = self.heap.get_mut(position) {
                item.0 = count;
            }
            self.sift_down(position);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.slots.len() < self.capacity {
            if self.slots.len() == self.slots.capacity() {
                // Grow without overshooting the capacity (the plan counts
                // on it).
                let more = self
                    .slots
                    .len()
                    .max(8)
                    .min(self.capacity - self.slots.len());
                self.slots.reserve_exact(more);
                self.positions.reserve_exact(more);
                self.heap.reserve_exact(more);
            }
            let slot = self.slots.len() as u32;
            let position = self.heap.len() as u32;
            self.slots.push(Counted {
                key: key(),
                count: weight,
                error: 0,
                seq,
                hash,
            });
            self.positions.push(position);
            self.heap.push((weight, std::cmp::Reverse(seq), slot));
            self.index.insert(hash, slot);
            self.sift_up(position as usize);
            return;
        }
        // Full: the minimum at the root is replaced.
        self.evictions += 1;
        let Some(&(_, _, slot)) = self.heap.first() else {
            return;
        };
        let Some(root) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let floor = root.count;
        let old_hash = root.hash;
        *root = Counted {
            key: key(),
            count: floor.saturating_add(weight),
            error: floor,
            seq,
            hash,
        };
        self.heap[0] = (floor.saturating_add(weight), std::cmp::Reverse(seq), slot);
        self.index.remove(&old_hash);
        self.index.insert(hash, slot);
        self.sift_down(0);
    }

    fn entries(&self) -> std::slice::Iter<'_, Counted<K>> {
        self.slots.iter()
    }

    fn get(&self, hash: u64) -> Option<&Counted<K>> {
        self.index
            .get(&hash)
            .and_then(|&s| self.slots.get(s as usize))
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn total(&self) -> u64 {
        self.total
    }

    fn evictions(&self) -> u64 {
        self.evictions
    }

    fn floor(&self) -> u64 {
        if self.slots.len() >= self.capacity {
            self.heap.first().map_or(0, |item| item.0)
        } else {
            0
        }
    }

    fn clear(&mut self) {
        self.slots.clear();
        self.positions.clear();
        self.heap.clear();
        self.index.clear();
        self.total = 0;
        self.evictions = 0;
        self.next_seq = 0;
    }

    fn restored(
        capacity: usize,
        entries: Vec<Counted<K>>,
        total: u64,
        evictions: u64,
    ) -> SpaceSaving<K> {
        let mut table = SpaceSaving::with_capacity(capacity);
        table.total = total;
        table.evictions = evictions;
        let kept = entries.len().min(table.capacity);
        table.slots.reserve_exact(kept);
        table.positions.reserve_exact(kept);
        table.heap.reserve_exact(kept);
        for entry in entries.into_iter().take(kept) {
            let slot = table.slots.len() as u32;
            table.next_seq = table.next_seq.max(entry.seq.saturating_add(1));
            table
                .heap
                .push((entry.count, std::cmp::Reverse(entry.seq), slot));
            table.positions.push(slot);
            table.index.insert(entry.hash, slot);
            table.slots.push(entry);
        }
        // Bottom-up heapify: every node with children, last first.
        for position in (0..table.heap.len().div_ceil(ARITY)).rev() {
            table.sift_down(position);
        }
        table
    }
}

impl<K> SpaceSaving<K> {
    /// Heap order: smaller count first; on ties the older key sits above,
    /// so the newest of the smallest is replaced first.
    fn less(&self, a: usize, b: usize) -> bool {
        match (self.heap.get(a), self.heap.get(b)) {
            (Some(x), Some(y)) => (x.0, x.1) < (y.0, y.1),
            _ => false,
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        for position in [a, b] {
            if let Some(&(_, _, slot)) = self.heap.get(position)
                && let Some(p) = self.positions.get_mut(slot as usize)
            {
                *p = position as u32;
            }
        }
    }

    fn sift_up(&mut self, mut position: usize) {
        while position > 0 {
            let parent = (position - 1) / ARITY;
            if self.less(position, parent) {
                self.swap(position, parent);
                position = parent;
            } else {
                break;
            }
        }
    }

    /// Moves the item at `position` down to where it belongs. A hole goes
    /// down instead of the item (each smaller child moves up once, its
    /// position written once), and the item is written where the hole
    /// stops: half the writes of swapping at every level, which matters
    /// because a new key, placed at the root with the floor plus its
    /// weight, usually sinks to the bottom (perf: the heaps by bytes were
    /// a third of the statistics thread).
    fn sift_down(&mut self, mut position: usize) {
        let len = self.heap.len();
        let Some(&item) = self.heap.get(position) else {
            return;
        };
        let key = (item.0, item.1);
        loop {
            let first = ARITY * position + 1;
            if first >= len {
                break;
            }
            // The smallest of up to ARITY children, side by side in memory.
            let mut child = first;
            let mut smallest = (self.heap[first].0, self.heap[first].1);
            for candidate in first + 1..(first + ARITY).min(len) {
                let order = (self.heap[candidate].0, self.heap[candidate].1);
                if order < smallest {
                    smallest = order;
                    child = candidate;
                }
            }
            if smallest >= key {
                break;
            }
            let moved = self.heap[child];
            self.heap[position] = moved;
            if let Some(p) = self.positions.get_mut(moved.2 as usize) {
                *p = position as u32;
            }
            position = child;
        }
        self.heap[position] = item;
        if let Some(p) = self.positions.get_mut(item.2 as usize) {
            *p = position as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as StdMap;

    fn hash(key: u64) -> u64 {
        use std::hash::BuildHasher;
        foldhash::fast::FixedState::with_seed(1).hash_one(key)
    }

    #[test]
    fn exact_until_full_then_bounded() {
        let mut table = SpaceSaving::with_capacity(8);
        for key in [3u64, 1, 3, 2, 3, 1] {
            table.add(hash(key), 1, || key);
        }
        assert!(table.exact());
        let top: Vec<(u64, u64)> = table.top(10).iter().map(|c| (c.key, c.count)).collect();
        assert_eq!(top, vec![(3, 3), (1, 2), (2, 1)]);

        // A skewed stream over many keys: heavy keys stay, counts bounded.
        let mut table = SpaceSaving::with_capacity(50);
        let mut truth: StdMap<u64, u64> = StdMap::new();
        let mut state = 12345u64;
        for _ in 0..100_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let r = (state >> 33) % 1000;
            let key = if r < 500 { r % 5 } else { r };
            *truth.entry(key).or_default() += 1;
            table.add(hash(key), 1, || key);
        }
        assert!(!table.exact());
        let bound = table.total() / table.capacity() as u64;
        for entry in table.entries() {
            let true_count = truth[&entry.key];
            assert!(entry.count >= true_count);
            assert!(entry.count - entry.error <= true_count);
        }
        for (key, &count) in &truth {
            if count > bound {
                assert!(table.get(hash(*key)).is_some(), "heavy key {key} lost");
            }
        }
        let top: Vec<u64> = table.top(5).iter().map(|c| c.key).collect();
        let mut heavy: Vec<u64> = (0..5).collect();
        let mut got = top.clone();
        got.sort_unstable();
        heavy.sort_unstable();
        assert_eq!(got, heavy);
    }

    /// With random weights, every replacement takes the smallest count
    /// (the newest of the smallest on ties), as a linear scan finds it.
    #[test]
    fn a_replacement_always_takes_the_smallest_newest_first() {
        let mut table = SpaceSaving::with_capacity(37);
        let mut state = 7u64;
        for i in 0..20_000u64 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let key = (state >> 40) % 400;
            let weight = 1 + (state >> 20) % 50;
            let full = table.len() == table.capacity();
            let expected_victim = table
                .entries()
                .min_by_key(|c| (c.count, std::cmp::Reverse(c.seq)))
                .map(|c| (c.key, c.count));
            let was_monitored = table.get(hash(key)).is_some();
            table.add(hash(key), weight, || key);
            if full && !was_monitored {
                let (victim, floor) = expected_victim.unwrap();
                assert!(table.get(hash(victim)).is_none(), "step {i}: {victim} kept");
                let entry = table.get(hash(key)).unwrap();
                assert_eq!(
                    (entry.count, entry.error),
                    (floor + weight, floor),
                    "step {i}"
                );
            }
            let smallest = table.entries().map(|c| c.count).min().unwrap_or(0);
            if table.len() == table.capacity() {
                assert_eq!(table.floor(), smallest, "step {i}");
            }
        }
        let rebuilt = SpaceSaving::restored(37, table.entries().cloned().collect(), 1, 0);
        assert_eq!(rebuilt.floor(), table.floor());
    }

    /// A skewed stream of keys: every 3rd message is one of 5 heavy keys.
    fn skewed(n: usize) -> Vec<u64> {
        let mut state = 99u64;
        (0..n)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i % 3 == 0 {
                    i as u64 % 5
                } else {
                    100 + (state >> 33) % 2000
                }
            })
            .collect()
    }

    /// `top_copy` keeps the heaviest keys with their counts and errors, and
    /// the copy goes on counting as a Space-Saving table of its size does:
    /// counts stay upper bounds within their errors, heavy keys stay.
    fn top_copy_keeps_the_guarantees<T: Tally<u64>>(weight: impl Fn(u64) -> u64) {
        let keys = skewed(30_000);
        let mut truth: StdMap<u64, u64> = StdMap::new();
        let mut big = T::with_capacity(200);
        for &key in &keys[..20_000] {
            *truth.entry(key).or_default() += weight(key);
            big.add(hash(key), weight(key), || key);
        }
        // Small enough a copy: the same entries, still exact or not.
        let same = big.top_copy(500);
        assert_eq!(same.len(), big.len());
        assert_eq!(same.total(), big.total());
        assert_eq!(same.exact(), big.exact());
        assert_eq!(same.floor(), 0);
        let mut copy = big.top_copy(40);
        assert_eq!(copy.len(), 40);
        assert_eq!(copy.total(), big.total());
        assert!(!copy.exact());
        let kept: Vec<(u64, u64, u64)> = copy
            .top(40)
            .iter()
            .map(|c| (c.key, c.count, c.error))
            .collect();
        let heaviest: Vec<(u64, u64, u64)> = big
            .top(40)
            .iter()
            .map(|c| (c.key, c.count, c.error))
            .collect();
        assert_eq!(kept, heaviest);
        assert_eq!(copy.floor(), heaviest.last().map_or(0, |k| k.1));
        for &key in &keys[20_000..] {
            *truth.entry(key).or_default() += weight(key);
            copy.add(hash(key), weight(key), || key);
        }
        assert_eq!(copy.len(), 40);
        assert_eq!(copy.total(), truth.values().sum::<u64>());
        for entry in copy.entries() {
            let true_count = truth[&entry.key];
            assert!(entry.count >= true_count, "{} undercounted", entry.key);
            assert!(
                entry.count - entry.error <= true_count,
                "{} error",
                entry.key
            );
        }
        for heavy in 0..5 {
            assert!(copy.get(hash(heavy)).is_some(), "heavy key {heavy} lost");
        }
        let top: Vec<u64> = copy.top(5).iter().map(|c| c.key).collect();
        let mut got = top.clone();
        got.sort_unstable();
        assert_eq!(got, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn top_copy_of_a_heap_keeps_the_guarantees() {
        top_copy_keeps_the_guarantees::<SpaceSaving<u64>>(|key| 40 + key % 7 * 30);
    }

    #[test]
    fn top_copy_of_a_stream_summary_keeps_the_guarantees() {
        top_copy_keeps_the_guarantees::<crate::streamsummary::StreamSummary<u64>>(|_| 1);
    }
}
