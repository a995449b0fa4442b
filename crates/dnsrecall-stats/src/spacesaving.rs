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
}

/// A Space-Saving table.
#[derive(Clone, Debug)]
pub struct SpaceSaving<K> {
    capacity: usize,
    heap: Vec<Counted<K>>,
    index: HashMap<u64, usize, foldhash::fast::FixedState>,
    total: u64,
    evictions: u64,
    next_seq: u64,
}

impl<K> Counted<K> {
    /// The key's 64-bit hash.
    pub fn hash(&self) -> u64 {
        self.hash
    }
}

impl<K: Clone> SpaceSaving<K> {
    /// An empty table holding at most `capacity` keys (at least 1).
    pub fn new(capacity: usize) -> SpaceSaving<K> {
        SpaceSaving {
            capacity: capacity.max(1),
            heap: Vec::new(),
            index: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0)),
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
        self.heap.len()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
        if self.heap.len() >= self.capacity {
            self.heap.first().map_or(0, |c| c.count)
        } else {
            0
        }
    }

    /// Adds `weight` to the key with this hash; `key` builds the key only
    /// when it must be stored.
    pub fn add(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> K) {
        self.total = self.total.saturating_add(weight);
        if let Some(&position) = self.index.get(&hash) {
            if let Some(entry) = self.heap.get_mut(position) {
                entry.count = entry.count.saturating_add(weight);
            }
            self.sift_down(position);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.heap.len() < self.capacity {
            self.heap.push(Counted {
                key: key(),
                count: weight,
                error: 0,
                seq,
                hash,
            });
            let position = self.heap.len() - 1;
            self.index.insert(hash, position);
            self.sift_up(position);
            return;
        }
        // Full: the minimum at the root is replaced.
        self.evictions += 1;
        let Some(root) = self.heap.first_mut() else {
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
        self.index.remove(&old_hash);
        self.index.insert(hash, 0);
        self.sift_down(0);
    }

    /// The entries, heaviest first; ties in order of first monitoring.
    pub fn top(&self, n: usize) -> Vec<Counted<K>> {
        let mut entries: Vec<&Counted<K>> = self.heap.iter().collect();
        entries.sort_by(|a, b| b.count.cmp(&a.count).then(a.seq.cmp(&b.seq)));
        entries.into_iter().take(n).cloned().collect()
    }

    /// Every entry (unordered).
    pub fn entries(&self) -> impl Iterator<Item = &Counted<K>> {
        self.heap.iter()
    }

    /// The entry of a key hash, if monitored.
    pub fn get(&self, hash: u64) -> Option<&Counted<K>> {
        self.index.get(&hash).and_then(|&p| self.heap.get(p))
    }

    /// Forgets everything (keeps the capacity).
    pub fn clear(&mut self) {
        self.heap.clear();
        self.index.clear();
        self.total = 0;
        self.evictions = 0;
        self.next_seq = 0;
    }

    fn less(&self, a: usize, b: usize) -> bool {
        match (self.heap.get(a), self.heap.get(b)) {
            // The older key sits above on ties, so the newest of the
            // smallest is replaced first.
            (Some(x), Some(y)) => {
                (x.count, std::cmp::Reverse(x.seq)) < (y.count, std::cmp::Reverse(y.seq))
            }
            _ => false,
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        for position in [a, b] {
            if let Some(entry) = self.heap.get(position) {
                self.index.insert(entry.hash, position);
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
        loop {
            let left = 2 * position + 1;
            let right = left + 1;
            let mut smallest = position;
            if left < self.heap.len() && self.less(left, smallest) {
                smallest = left;
            }
            if right < self.heap.len() && self.less(right, smallest) {
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
