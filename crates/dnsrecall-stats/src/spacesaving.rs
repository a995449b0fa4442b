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
//! The minimum is kept at the root of an indexed binary min-heap, so an
//! update is `O(log capacity)`. Keys are located by their 64-bit hash (the
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
    hash: u64,
    /// Where this slot sits in the heap.
    position: u32,
}

impl<K> Counted<K> {
    /// The key's 64-bit hash.
    pub fn hash(&self) -> u64 {
        self.hash
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

/// A Space-Saving table.
///
/// Entries live in `slots` and never move; the heap orders slot numbers
/// and each slot remembers its heap position, so re-ordering costs no
/// hashing.
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    capacity: usize,
    slots: Vec<Counted<K>>,
    /// (count, newest-first order, slot): the ordering key inline, so a
    /// sift reads contiguous memory.
    heap: Vec<(u64, std::cmp::Reverse<u64>, u32)>,
    index: HashMap<u64, u32, PremixedState>,
    total: u64,
    evictions: u64,
    next_seq: u64,
}

impl<K: Clone> SpaceSaving<K> {
    /// An empty table holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> SpaceSaving<K> {
        SpaceSaving {
            capacity: capacity.clamp(1, u32::MAX as usize),
            slots: Vec::new(),
            heap: Vec::new(),
            index: HashMap::with_hasher(PremixedState),
            total: 0,
            evictions: 0,
            next_seq: 0,
        }
    }

    /// Most keys held.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sum of all weights added.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Keys replaced so far.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Whether every count is exact (no key was ever replaced).
    pub fn exact(&self) -> bool {
        self.evictions == 0
    }

    /// The smallest count held when full (the bound on any unlisted key's
    /// weight), else 0.
    pub fn floor(&self) -> u64 {
        if self.slots.len() >= self.capacity {
            self.heap.first().map_or(0, |item| item.0)
        } else {
            0
        }
    }

    /// Adds `weight` to the key with this hash; `key` builds the key only
    /// when it must be stored.
    pub fn add(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> K) {
        self.total = self.total.saturating_add(weight);
        if let Some(&slot) = self.index.get(&hash) {
            let Some(entry) = self.slots.get_mut(slot as usize) else {
                return;
            };
            entry.count = entry.count.saturating_add(weight);
            let position = entry.position as usize;
            let count = entry.count;
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
                position,
            });
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
            position: 0,
        };
        self.heap[0] = (floor.saturating_add(weight), std::cmp::Reverse(seq), slot);
        self.index.remove(&old_hash);
        self.index.insert(hash, slot);
        self.sift_down(0);
    }

    /// The entries, heaviest first; ties in order of first monitoring.
    pub fn top(&self, n: usize) -> Vec<Counted<K>> {
        let mut entries: Vec<&Counted<K>> = self.slots.iter().collect();
        entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.seq.cmp(&b.seq)));
        entries.into_iter().take(n).cloned().collect()
    }

    /// Every entry (unordered).
    pub fn entries(&self) -> impl Iterator<Item = &Counted<K>> {
        self.slots.iter()
    }

    /// The entry of a key hash, if monitored.
    pub fn get(&self, hash: u64) -> Option<&Counted<K>> {
        self.index
            .get(&hash)
            .and_then(|&s| self.slots.get(s as usize))
    }

    /// Forgets everything (keeps the capacity).
    pub fn clear(&mut self) {
        self.slots.clear();
        self.heap.clear();
        self.index.clear();
        self.total = 0;
        self.evictions = 0;
        self.next_seq = 0;
    }

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
                && let Some(entry) = self.slots.get_mut(slot as usize)
            {
                entry.position = position as u32;
            }
        }
    }

    fn sift_up(&mut self, mut position: usize) {
        while position > 0 {
            let parent = (position - 1) / 2;
            if self.less(position, parent) {
                self.swap(position, parent);
                position = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut position: usize) {
        let len = self.heap.len();
        loop {
            let left = 2 * position + 1;
            let right = left + 1;
            let mut smallest = position;
            if left < len && self.less(left, smallest) {
                smallest = left;
            }
            if right < len && self.less(right, smallest) {
                smallest = right;
            }
            if smallest == position {
                break;
            }
            self.swap(position, smallest);
            position = smallest;
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
        let mut table = SpaceSaving::new(8);
        for key in [3u64, 1, 3, 2, 3, 1] {
            table.add(hash(key), 1, || key);
        }
        assert!(table.exact());
        let top: Vec<(u64, u64)> = table.top(10).iter().map(|c| (c.key, c.count)).collect();
        assert_eq!(top, vec![(3, 3), (1, 2), (2, 1)]);

        // A skewed stream over many keys: heavy keys stay, counts bounded.
        let mut table = SpaceSaving::new(50);
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
}
