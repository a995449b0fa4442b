//! Space-Saving over a Stream-Summary: the counting tables of unit weight
//! (messages per name, per client, per TLD, per qtype, per rcode).
//!
//! The same algorithm and guarantees as [`crate::spacesaving`] (Metwally,
//! Agrawal, El Abbadi 2005), in the structure of the paper: a list of
//! buckets in ascending count order, each holding the keys that have its
//! count. Adding one to a key moves it to the next bucket (or makes one),
//! and the key to replace when the table is full is in the first bucket,
//! so every update is `O(1)`: one index lookup and a few link writes,
//! where the heap does `O(log capacity)` swaps scattered over memory.
//!
//! Why not for weights other than one: a key weighing `w` more must walk
//! past every bucket between its count and its count plus `w`, and tables
//! by bytes have hundreds of such buckets near the bottom. Those keep the
//! heap ([`crate::spacesaving::SpaceSaving`]); [`StreamSummary::add`] still
//! accepts any weight, walking forward, so both implement [`Tally`].
//!
//! Entries, buckets and links live in vectors addressed by `u32` slot
//! numbers ([`NIL`] for none); a freed bucket goes on a free list, so the
//! table allocates only while it grows towards its capacity.

use hashbrown::HashMap;

use crate::spacesaving::{Counted, PremixedState, Tally};

/// No slot.
const NIL: u32 = u32::MAX;

/// Where an entry sits: its bucket and its neighbours in that bucket.
#[derive(Clone, Copy, Debug)]
struct Link {
    bucket: u32,
    prev: u32,
    next: u32,
}

/// The entries of one count, and the neighbouring counts.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    count: u64,
    /// First and last entry (an entry joins at the tail).
    head: u32,
    tail: u32,
    /// Neighbouring buckets: `prev` has a smaller count, `next` a larger.
    prev: u32,
    next: u32,
}

/// Bytes a [`StreamSummary`] entry costs besides the entry and its index
/// slot: its link, at worst a bucket of its own, a free-list slot.
pub const ORDER_BYTES_PER_ENTRY: usize =
    std::mem::size_of::<Link>() + std::mem::size_of::<Bucket>() + std::mem::size_of::<u32>();

/// A Space-Saving table updated in `O(1)` per unit of weight.
#[derive(Clone, Debug)]
pub struct StreamSummary<K> {
    capacity: usize,
    entries: Vec<Counted<K>>,
    links: Vec<Link>,
    buckets: Vec<Bucket>,
    /// Buckets free for reuse.
    free: Vec<u32>,
    /// The bucket with the smallest count.
    first: u32,
    index: HashMap<u64, u32, PremixedState>,
    total: u64,
    evictions: u64,
    next_seq: u64,
}

impl<K> StreamSummary<K> {
    /// Takes `entry` out of its bucket, freeing the bucket if it empties;
    /// returns the bucket before and after it (either may be [`NIL`]), as
    /// it was linked.
    fn unlink(&mut self, entry: u32) -> (u32, u32) {
        let link = self.links[entry as usize];
        let b = link.bucket as usize;
        if link.prev != NIL {
            self.links[link.prev as usize].next = link.next;
        } else {
            self.buckets[b].head = link.next;
        }
        if link.next != NIL {
            self.links[link.next as usize].prev = link.prev;
        } else {
            self.buckets[b].tail = link.prev;
        }
        let bucket = self.buckets[b];
        if bucket.head == NIL {
            if bucket.prev != NIL {
                self.buckets[bucket.prev as usize].next = bucket.next;
            } else {
                self.first = bucket.next;
            }
            if bucket.next != NIL {
                self.buckets[bucket.next as usize].prev = bucket.prev;
            }
            self.free.push(link.bucket);
            return (bucket.prev, bucket.next);
        }
        (link.bucket, bucket.next)
    }

    /// Appends `entry` to the bucket of `count`, found by walking forward
    /// from `after` (a bucket with a smaller count, or [`NIL`] to start at
    /// the first); makes the bucket if there is none.
    fn place(&mut self, entry: u32, count: u64, mut after: u32) {
        let mut next = if after == NIL {
            self.first
        } else {
            self.buckets[after as usize].next
        };
        while next != NIL && self.buckets[next as usize].count < count {
            after = next;
            next = self.buckets[next as usize].next;
        }
        let bucket = if next != NIL && self.buckets[next as usize].count == count {
            next
        } else {
            let fresh = Bucket {
                count,
                head: NIL,
                tail: NIL,
                prev: after,
                next,
            };
            let slot = match self.free.pop() {
                Some(slot) => {
                    self.buckets[slot as usize] = fresh;
                    slot
                }
                None => {
                    self.buckets.push(fresh);
                    (self.buckets.len() - 1) as u32
                }
            };
            if after == NIL {
                self.first = slot;
            } else {
                self.buckets[after as usize].next = slot;
            }
            if next != NIL {
                self.buckets[next as usize].prev = slot;
            }
            slot
        };
        let tail = self.buckets[bucket as usize].tail;
        self.links[entry as usize] = Link {
            bucket,
            prev: tail,
            next: NIL,
        };
        if tail == NIL {
            self.buckets[bucket as usize].head = entry;
        } else {
            self.links[tail as usize].next = entry;
        }
        self.buckets[bucket as usize].tail = entry;
    }
}

impl<K> Tally<K> for StreamSummary<K> {
    fn with_capacity(capacity: usize) -> StreamSummary<K> {
        StreamSummary {
            // Slot numbers are u32 and NIL is taken.
            capacity: capacity.clamp(1, (u32::MAX - 1) as usize),
            entries: Vec::new(),
            links: Vec::new(),
            buckets: Vec::new(),
            free: Vec::new(),
            first: NIL,
            index: HashMap::with_hasher(PremixedState),
            total: 0,
            evictions: 0,
            next_seq: 0,
        }
    }

    fn add(&mut self, hash: u64, weight: u64, key: impl FnOnce() -> K) {
        self.total = self.total.saturating_add(weight);
        if let Some(&slot) = self.index.get(&hash) {
            let entry = &mut self.entries[slot as usize];
            entry.count = entry.count.saturating_add(weight);
            let count = entry.count;
            let link = self.links[slot as usize];
            let bucket = self.buckets[link.bucket as usize];
            // Alone in its bucket and no bucket in the way: the bucket
            // takes the new count where it is.
            if bucket.head == bucket.tail
                && (bucket.next == NIL || self.buckets[bucket.next as usize].count > count)
            {
                self.buckets[link.bucket as usize].count = count;
                return;
            }
            let (before, _) = self.unlink(slot);
            self.place(slot, count, before);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.entries.len() < self.capacity {
            if self.entries.len() == self.entries.capacity() {
                // Grow without overshooting the capacity (the plan counts
                // on it).
                let more = self
                    .entries
                    .len()
                    .max(8)
                    .min(self.capacity - self.entries.len());
                self.entries.reserve_exact(more);
                self.links.reserve_exact(more);
                self.buckets.reserve_exact(more);
            }
            let slot = self.entries.len() as u32;
            self.entries.push(Counted {
                key: key(),
                count: weight,
                error: 0,
                seq,
                hash,
            });
            self.links.push(Link {
                bucket: NIL,
                prev: NIL,
                next: NIL,
            });
            self.index.insert(hash, slot);
            self.place(slot, weight, NIL);
            return;
        }
        // Full: the newest key of the smallest count makes room.
        self.evictions += 1;
        if self.first == NIL {
            return;
        }
        let slot = self.buckets[self.first as usize].tail;
        let Some(entry) = self.entries.get_mut(slot as usize) else {
            return;
        };
        let floor = entry.count;
        let old_hash = entry.hash;
        *entry = Counted {
            key: key(),
            count: floor.saturating_add(weight),
            error: floor,
            seq,
            hash,
        };
        self.index.remove(&old_hash);
        self.index.insert(hash, slot);
        let (before, _) = self.unlink(slot);
        self.place(slot, floor.saturating_add(weight), before);
    }

    fn entries(&self) -> std::slice::Iter<'_, Counted<K>> {
        self.entries.iter()
    }

    fn get(&self, hash: u64) -> Option<&Counted<K>> {
        self.index
            .get(&hash)
            .and_then(|&slot| self.entries.get(slot as usize))
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
        if self.entries.len() >= self.capacity && self.first != NIL {
            self.buckets[self.first as usize].count
        } else {
            0
        }
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.links.clear();
        self.buckets.clear();
        self.free.clear();
        self.first = NIL;
        self.index.clear();
        self.total = 0;
        self.evictions = 0;
        self.next_seq = 0;
    }

    fn restored(
        capacity: usize,
        mut entries: Vec<Counted<K>>,
        total: u64,
        evictions: u64,
    ) -> StreamSummary<K> {
        let mut table = StreamSummary::with_capacity(capacity);
        table.total = total;
        table.evictions = evictions;
        entries.truncate(table.capacity);
        // In ascending count order each entry joins the last bucket made
        // or starts the next one: no walking.
        entries.sort_by_key(|entry| entry.count);
        table.entries.reserve_exact(entries.len());
        table.links.reserve_exact(entries.len());
        table.buckets.reserve_exact(entries.len());
        let mut last: Option<(u64, u32)> = None;
        for entry in entries {
            let slot = table.entries.len() as u32;
            let count = entry.count;
            table.next_seq = table.next_seq.max(entry.seq.saturating_add(1));
            table.index.insert(entry.hash, slot);
            table.entries.push(entry);
            table.links.push(Link {
                bucket: NIL,
                prev: NIL,
                next: NIL,
            });
            // `place` walks forward from a bucket of smaller count: the
            // last bucket if its count is smaller, the one before it if
            // this entry shares its count.
            let after = match last {
                None => NIL,
                Some((last_count, bucket)) if last_count < count => bucket,
                Some((_, bucket)) => table.buckets[bucket as usize].prev,
            };
            table.place(slot, count, after);
            last = Some((count, table.links[slot as usize].bucket));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spacesaving::SpaceSaving;

    /// The bucket list is sorted, every entry sits in the bucket of its
    /// count, and the index points at every entry.
    fn check<K>(table: &StreamSummary<K>) {
        let mut seen = 0;
        let mut bucket = table.first;
        let mut last = 0;
        let mut prev = NIL;
        while bucket != NIL {
            let b = table.buckets[bucket as usize];
            assert_eq!(b.prev, prev);
            assert!(b.count > last || prev == NIL, "order");
            assert_ne!(b.head, NIL, "empty bucket linked");
            last = b.count;
            let mut entry = b.head;
            while entry != NIL {
                assert_eq!(table.entries[entry as usize].count, b.count);
                assert_eq!(table.links[entry as usize].bucket, bucket);
                seen += 1;
                entry = table.links[entry as usize].next;
            }
            prev = bucket;
            bucket = b.next;
        }
        assert_eq!(seen, table.entries.len());
        for (slot, entry) in table.entries.iter().enumerate() {
            assert_eq!(table.index.get(&entry.hash), Some(&(slot as u32)));
        }
    }

    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *state >> 33
    }

    #[test]
    fn agrees_with_the_heap_on_counts_errors_and_bounds() {
        // A skewed stream over many keys, through both implementations:
        // the same guarantees hold, and while neither was full they agree
        // exactly.
        let mut summary = StreamSummary::with_capacity(64);
        let mut heap = SpaceSaving::with_capacity(64);
        let mut truth: std::collections::HashMap<u64, u64> = Default::default();
        let mut state = 7u64;
        for i in 0..200_000u64 {
            let r = lcg(&mut state) % 5000;
            let key = if r < 2500 { r % 7 } else { r };
            *truth.entry(key).or_default() += 1;
            summary.add(key.wrapping_mul(0x9e37_79b9), 1, || key);
            heap.add(key.wrapping_mul(0x9e37_79b9), 1, || key);
            if i < 40 {
                let mut a: Vec<_> = summary.entries().map(|c| (c.key, c.count)).collect();
                let mut b: Vec<_> = heap.entries().map(|c| (c.key, c.count)).collect();
                a.sort_unstable();
                b.sort_unstable();
                assert_eq!(a, b);
            }
            if i % 20_000 == 0 {
                check(&summary);
            }
        }
        check(&summary);
        assert!(!summary.exact());
        assert_eq!(summary.total(), 200_000);
        assert_eq!(summary.len(), 64);
        let bound = summary.total() / summary.capacity() as u64;
        for entry in summary.entries() {
            let true_count = truth[&entry.key];
            assert!(entry.count >= true_count, "{entry:?} vs {true_count}");
            assert!(entry.count - entry.error <= true_count, "{entry:?}");
        }
        for (key, &count) in &truth {
            if count > bound {
                assert!(summary.get(key.wrapping_mul(0x9e37_79b9)).is_some());
            }
        }
        let mut top: Vec<u64> = summary.top(7).iter().map(|c| c.key).collect();
        top.sort_unstable();
        assert_eq!(top, (0..7).collect::<Vec<_>>());
        // The floor is the smallest count, and no unlisted key weighs more.
        let smallest = summary.entries().map(|c| c.count).min().unwrap_or(0);
        assert_eq!(summary.floor(), smallest);
    }

    #[test]
    fn weights_walk_forward_and_clear_resets() {
        let mut table = StreamSummary::with_capacity(4);
        for (hash, weight) in [(1, 5), (2, 1), (3, 3), (2, 3), (4, 2), (1, 1), (5, 2)] {
            table.add(hash, weight, || hash);
            check(&table);
        }
        // 5 arrived full: it replaced the newest smallest (4, count 2).
        let mut rows: Vec<_> = table.entries().map(|c| (c.key, c.count, c.error)).collect();
        rows.sort_unstable();
        assert_eq!(rows, vec![(1, 6, 0), (2, 4, 0), (3, 3, 0), (5, 4, 2)]);
        assert_eq!(table.floor(), 3);
        assert_eq!(table.evictions(), 1);
        table.clear();
        check(&table);
        assert!(table.is_empty() && table.exact() && table.total() == 0);
        table.add(9, 1, || 9);
        assert_eq!(table.top(1)[0].key, 9);
    }
}
