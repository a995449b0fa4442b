//! Flow annotation: which names pointed at an address at a given time.
//!
//! [`sightings`] lists the A/AAAA records of an address; [`names_at`]
//! keeps the names whose sighting window holds a time. `POST /annotate`
//! and `dnsrecall annotate` both answer with them; the CLI reads flow
//! records with [`flows`] and remembers sightings in a [`SightingCache`].

pub mod flows;

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::sync::Arc;

use dnsrecall_core::Rtype;
use dnsrecall_core::store::{RdataQuery, Store};

use crate::QueryError;

/// Default widening of a sighting window: a record seen until T probably
/// still resolved shortly after (TTLs, caches), and one first seen at T was
/// probably in place shortly before.
pub const DEFAULT_SLACK_SECS: u64 = 3600;

//---- Sighting --------------------------------------------------------------

/// One A/AAAA record pointing at an address: who and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Owner name without the trailing dot.
    pub name: Arc<str>,
    pub time_first: u64,
    pub time_last: u64,
}

/// Every A/AAAA record whose address is `ip`, most recently seen first
/// (then by name, so the order is deterministic).
pub fn sightings(store: &dyn Store, ip: IpAddr) -> Result<Vec<Sighting>, QueryError> {
    let mut out = Vec::new();
    store.scan_rdata(
        &RdataQuery::Address {
            first: ip,
            last: ip,
        },
        &mut |entry| {
            if matches!(entry.record.rrtype, Rtype::A | Rtype::AAAA) {
                out.push(Sighting {
                    name: Arc::from(entry.record.rrname.to_dotless()),
                    time_first: entry.seen.time_first,
                    time_last: entry.seen.time_last,
                });
            }
            ControlFlow::Continue(())
        },
    )?;
    out.sort_by(|a, b| {
        b.time_last
            .cmp(&a.time_last)
            .then_with(|| a.name.cmp(&b.name))
    });
    Ok(out)
}

/// The names of `sightings` (sorted as [`sightings`] returns them) whose
/// window `time_first - slack ..= time_last + slack` holds `time` (any time
/// when `None`), without repeats, at most `max`.
pub fn names_at(
    sightings: &[Sighting],
    time: Option<u64>,
    slack: u64,
    max: usize,
) -> Vec<Arc<str>> {
    let mut names: Vec<Arc<str>> = Vec::new();
    for sighting in sightings {
        if names.len() >= max {
            break;
        }
        let inside = time.is_none_or(|t| {
            sighting.time_first.saturating_sub(slack) <= t
                && t <= sighting.time_last.saturating_add(slack)
        });
        if inside && !names.contains(&sighting.name) {
            names.push(sighting.name.clone());
        }
    }
    names
}

//---- SightingCache ---------------------------------------------------------

/// Address → sightings, bounded to `size` addresses.
///
/// Two generations of `size / 2` entries: a hit in the old one moves the
/// entry to the new one, and when the new one is full the old one is
/// dropped. That is LRU-like at O(1) per lookup without a linked list.
pub struct SightingCache {
    hot: HashMap<IpAddr, Arc<[Sighting]>>,
    cold: HashMap<IpAddr, Arc<[Sighting]>>,
    generation: usize,
    lookups: u64,
    misses: u64,
}

impl SightingCache {
    pub fn new(size: usize) -> SightingCache {
        let generation = (size / 2).max(1);
        SightingCache {
            hot: HashMap::with_capacity(generation),
            cold: HashMap::new(),
            generation,
            lookups: 0,
            misses: 0,
        }
    }

    /// The sightings of `ip`, from the cache or the store.
    pub fn get(&mut self, store: &dyn Store, ip: IpAddr) -> Result<Arc<[Sighting]>, QueryError> {
        self.lookups += 1;
        if let Some(found) = self.hot.get(&ip) {
            return Ok(found.clone());
        }
        let found = match self.cold.remove(&ip) {
            Some(found) => found,
            None => {
                self.misses += 1;
                Arc::from(sightings(store, ip)?)
            }
        };
        if self.hot.len() >= self.generation {
            self.cold = std::mem::replace(&mut self.hot, HashMap::with_capacity(self.generation));
        }
        self.hot.insert(ip, found.clone());
        Ok(found)
    }

    /// Addresses asked for.
    pub fn lookups(&self) -> u64 {
        self.lookups
    }

    /// Addresses read from the store.
    pub fn misses(&self) -> u64 {
        self.misses
    }

    /// Addresses held (at most the configured size).
    pub fn len(&self) -> usize {
        self.hot.len() + self.cold.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{MemoryStore, entry};

    fn sighting(name: &str, first: u64, last: u64) -> Sighting {
        Sighting {
            name: Arc::from(name),
            time_first: first,
            time_last: last,
        }
    }

    #[test]
    fn names_at_fences_dedups_and_caps() {
        let list = [
            sighting("b.example", 100, 200),
            sighting("a.example", 10, 50),
            sighting("b.example", 0, 40),
        ];
        let names = |t, slack, max| {
            names_at(&list, t, slack, max)
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(Some(150), 0, 5), ["b.example"]);
        assert_eq!(names(Some(30), 0, 5), ["a.example", "b.example"]);
        assert_eq!(names(Some(60), 0, 5), Vec::<String>::new());
        assert_eq!(names(Some(60), 10, 5), ["a.example"]);
        assert_eq!(names(None, 0, 1), ["b.example"]);
    }

    #[test]
    fn sightings_are_latest_first() {
        let store = MemoryStore::new([
            entry("old.example", Rtype::A, "192.0.2.1", 10, 20),
            entry("new.example", Rtype::A, "192.0.2.1", 30, 40),
            entry("other.example", Rtype::A, "192.0.2.2", 30, 40),
        ]);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let found = sightings(&store, ip).unwrap();
        assert_eq!(
            found,
            [
                sighting("new.example", 30, 40),
                sighting("old.example", 10, 20)
            ]
        );
    }

    #[test]
    fn the_cache_is_bounded_and_counts() {
        let store = MemoryStore::new([entry("a.example", Rtype::A, "192.0.2.1", 10, 20)]);
        let mut cache = SightingCache::new(4);
        for round in 0..3 {
            for last in 1..=10u8 {
                let found = cache.get(&store, IpAddr::from([192, 0, 2, last])).unwrap();
                assert_eq!(found.len(), usize::from(last == 1), "round {round}");
                assert!(cache.len() <= 4);
            }
        }
        assert_eq!(cache.lookups(), 30);
        assert_eq!(cache.misses(), 30);
        let ip = IpAddr::from([192, 0, 2, 1]);
        cache.get(&store, ip).unwrap();
        cache.get(&store, ip).unwrap();
        assert_eq!(cache.misses(), 31);
    }
}
