//! A top-N table over three windows: since start, the last minute and the
//! last hour.
//!
//! The minute is six 10-second slots, the hour six 10-minute slots, each a
//! [`SpaceSaving`] table of its own; a slot is cleared when time comes back
//! to it. "Last minute" merges the current slot with the five before it, so
//! it covers between 50 and 60 seconds (the last hour: 50 to 60 minutes).
//!
//! The tables are [`StreamSummary`]s (unit weights, `O(1)` updates) unless
//! the type says otherwise: tables by bytes are
//! `Windowed<K, SpaceSaving<K>>`, kept since start only.

use serde::Serialize;

use crate::spacesaving::Tally;
use crate::streamsummary::StreamSummary;

/// Which span of time a table answer covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Minute,
    Hour,
    SinceStart,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Minute, Window::Hour, Window::SinceStart];

    /// The API spelling (`minute`, `hour`, `since_start`).
    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::SinceStart => "since_start",
        }
    }

    pub fn from_name(name: &str) -> Option<Window> {
        Window::ALL.into_iter().find(|w| w.name() == name)
    }
}

const SLOTS: usize = 6;
const MINUTE_SLOT_SECS: u64 = 10;
const HOUR_SLOT_SECS: u64 = 600;

#[derive(Clone, Debug)]
struct Ring<T> {
    slot_secs: u64,
    epochs: [u64; SLOTS],
    tables: Vec<T>,
}

impl<T> Ring<T> {
    fn new<K>(slot_secs: u64, capacity: usize) -> Ring<T>
    where
        T: Tally<K>,
    {
        Ring {
            slot_secs,
            epochs: [u64::MAX; SLOTS],
            tables: (0..SLOTS).map(|_| T::with_capacity(capacity)).collect(),
        }
    }

    fn slot<K>(&mut self, now_secs: u64) -> Option<&mut T>
    where
        T: Tally<K>,
    {
        let epoch = now_secs / self.slot_secs;
        let index = (epoch % SLOTS as u64) as usize;
        let table = self.tables.get_mut(index)?;
        if self.epochs[index] != epoch {
            self.epochs[index] = epoch;
            table.clear();
        }
        Some(table)
    }

    fn live(&self, now_secs: u64) -> impl Iterator<Item = &T> {
        let current = now_secs / self.slot_secs;
        self.tables
            .iter()
            .zip(self.epochs)
            .filter(move |(_, epoch)| *epoch <= current && current - *epoch < SLOTS as u64)
            .map(|(table, _)| table)
    }
}

/// One row of a table answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row<K> {
    pub key: K,
    /// Upper bound of the true weight.
    pub count: u64,
    /// Largest possible over-estimation: the true weight is in
    /// `[count - error, count]`. 0 means exact.
    pub error: u64,
}

/// A table answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Top<K> {
    pub rows: Vec<Row<K>>,
    /// Sum of all weights counted in the window.
    pub total: u64,
    /// Whether every row is exact (no key was ever evicted).
    pub exact: bool,
    /// Any key not listed weighs at most this much.
    pub unlisted_max: u64,
}

/// A table kept since start and, optionally, over the last minute and hour.
#[derive(Clone, Debug)]
pub struct Windowed<K, T = StreamSummary<K>> {
    since_start: T,
    rings: Option<Box<[Ring<T>; 2]>>,
    key: std::marker::PhantomData<fn() -> K>,
}

impl<K: Clone, T: Tally<K>> Windowed<K, T> {
    /// `capacity` keys since start; `slot_capacity` per window slot, or no
    /// windows when `None`.
    pub fn new(capacity: usize, slot_capacity: Option<usize>) -> Windowed<K, T> {
        Windowed {
            key: std::marker::PhantomData,
            since_start: T::with_capacity(capacity),
            rings: slot_capacity.map(|c| {
                Box::new([
                    Ring::new::<K>(MINUTE_SLOT_SECS, c),
                    Ring::new::<K>(HOUR_SLOT_SECS, c),
                ])
            }),
        }
    }

    pub fn add(&mut self, now_secs: u64, hash: u64, weight: u64, key: impl Fn() -> K) {
        self.since_start.add(hash, weight, &key);
        if let Some(rings) = self.rings.as_mut() {
            for ring in rings.iter_mut() {
                if let Some(slot) = ring.slot::<K>(now_secs) {
                    slot.add(hash, weight, &key);
                }
            }
        }
    }

    pub fn has_windows(&self) -> bool {
        self.rings.is_some()
    }

    /// Adds many keys' weights, one table after the other: the since-start
    /// table takes all of them, then the current minute slot, then the
    /// current hour slot. Why: a table is a few hundred KiB and a message
    /// touches about twenty of them; key after key, each update found its
    /// table evicted from the core's cache by the others (perf: cache
    /// misses were most of the statistics thread), while table after
    /// table, a batch's updates find it warm.
    pub fn add_many<'a, I>(&mut self, now_secs: u64, items: I)
    where
        I: Iterator<Item = (u64, u64, &'a K)> + Clone,
        K: 'a,
    {
        for (hash, weight, key) in items.clone() {
            self.since_start.add(hash, weight, || key.clone());
        }
        if let Some(rings) = self.rings.as_mut() {
            for ring in rings.iter_mut() {
                if let Some(slot) = ring.slot::<K>(now_secs) {
                    for (hash, weight, key) in items.clone() {
                        slot.add(hash, weight, || key.clone());
                    }
                }
            }
        }
    }

    /// A table without windows holding `capacity` of this one's heaviest
    /// keys since start ([`Tally::top_copy`]).
    pub fn since_start_copy(&self, capacity: usize) -> Windowed<K, T> {
        Windowed {
            key: std::marker::PhantomData,
            since_start: self.since_start.top_copy(capacity),
            rings: None,
        }
    }

    /// The since-start table.
    pub fn since_start(&self) -> &T {
        &self.since_start
    }

    /// Every table held (for memory accounting).
    pub fn tables(&self) -> impl Iterator<Item = &T> {
        std::iter::once(&self.since_start).chain(
            self.rings
                .iter()
                .flat_map(|rings| rings.iter().flat_map(|r| r.tables.iter())),
        )
    }

    /// The heaviest `n` keys of a window; `None` if this table keeps no
    /// windows and one was asked.
    pub fn top(&self, window: Window, now_secs: u64, n: usize) -> Option<Top<K>> {
        let ring = match window {
            Window::SinceStart => {
                let table = &self.since_start;
                return Some(Top {
                    rows: table
                        .top(n)
                        .into_iter()
                        .map(|c| Row {
                            key: c.key,
                            count: c.count,
                            error: c.error,
                        })
                        .collect(),
                    total: table.total(),
                    exact: table.exact(),
                    unlisted_max: table.floor(),
                });
            }
            Window::Minute => &self.rings.as_ref()?[0],
            Window::Hour => &self.rings.as_ref()?[1],
        };
        Some(merge(ring.live(now_secs).collect(), n))
    }

    pub fn clear(&mut self) {
        self.since_start.clear();
        if let Some(rings) = self.rings.as_mut() {
            for ring in rings.iter_mut() {
                ring.epochs = [u64::MAX; SLOTS];
                ring.tables.iter_mut().for_each(T::clear);
            }
        }
    }
}

/// Sums several tables: a key missing from a full table may have weighed
/// up to that table's floor there, which widens its error.
fn merge<K: Clone, T: Tally<K>>(tables: Vec<&T>, n: usize) -> Top<K> {
    let mut merged: hashbrown::HashMap<u64, (K, u64, u64, u64)> = hashbrown::HashMap::new();
    let mut order = 0u64;
    for table in &tables {
        let mut entries: Vec<_> = table.entries().collect();
        entries.sort_by_key(|c| c.seq);
        for entry in entries {
            let slot = merged.entry(entry.hash()).or_insert_with(|| {
                order += 1;
                (entry.key.clone(), 0, 0, order)
            });
            slot.1 += entry.count;
            slot.2 += entry.error;
        }
    }
    for (hash, slot) in merged.iter_mut() {
        for table in &tables {
            if table.get(*hash).is_none() {
                let floor = table.floor();
                slot.1 += floor;
                slot.2 += floor;
            }
        }
    }
    let mut rows: Vec<(K, u64, u64, u64)> = merged.into_values().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then(a.3.cmp(&b.3)));
    Top {
        rows: rows
            .into_iter()
            .take(n)
            .map(|(key, count, error, _)| Row { key, count, error })
            .collect(),
        total: tables.iter().map(|t| t.total()).sum(),
        exact: tables.iter().all(|t| t.exact()),
        unlisted_max: tables.iter().map(|t| t.floor()).sum(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_forget_old_slots() {
        let mut table: Windowed<&'static str> = Windowed::new(16, Some(16));
        check_windows(&mut table);
        let mut heap: Windowed<&'static str, crate::spacesaving::SpaceSaving<_>> =
            Windowed::new(16, Some(16));
        check_windows(&mut heap);
    }

    fn check_windows<T: Tally<&'static str>>(table: &mut Windowed<&'static str, T>) {
        table.add(0, 1, 1, || "old");
        table.add(0, 1, 1, || "old");
        table.add(65, 2, 1, || "new");
        let minute = table.top(Window::Minute, 65, 10).unwrap();
        assert_eq!(minute.rows.len(), 1);
        assert_eq!(minute.rows[0].key, "new");
        let hour = table.top(Window::Hour, 65, 10).unwrap();
        assert_eq!(
            hour.rows[0],
            Row {
                key: "old",
                count: 2,
                error: 0
            }
        );
        assert_eq!(hour.total, 3);
        let since = table.top(Window::SinceStart, 4000, 10).unwrap();
        assert_eq!(since.total, 3);
        assert!(table.top(Window::Hour, 4000, 10).unwrap().rows.is_empty());
        assert!(
            Windowed::<u8>::new(4, None)
                .top(Window::Minute, 0, 1)
                .is_none()
        );
    }
}
