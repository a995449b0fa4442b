//! How the memory bound is shared out, worked out once at start.
//!
//! Every structure is sized for its worst case, so the bound holds whatever
//! the traffic: a name-keyed table entry is counted with the longest key
//! kept ([`MAX_KEY_LEN`] bytes, longer names are cut), the entry itself and
//! its hash-index slot at the index's largest load. Fixed costs come first
//! (HyperLogLog registers, histograms, counters, qtype and rcode tables,
//! the pairing table, 10 % of the bound); what is left is shared by the
//! name and client tables in units: a global since-start table gets 8
//! units, each window slot 1 unit, a stream's table 2 units.

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::StatsError;
use crate::config::StatsConfig;
use crate::latency::{Histogram, PAIR_ENTRY_BYTES};
use crate::scope::{Scope, ScopeSizes};
use crate::spacesaving::Counted;

/// Longest key kept in a name table (longer names are cut at a character
/// boundary; a DNS name has at most 253 characters).
pub const MAX_KEY_LEN: usize = 255;
/// The hash index's cost per entry at its worst load: hashbrown just after
/// growing is 7/16 full, a slot is (hash, slot number) plus a control byte.
const INDEX_BYTES: usize = (std::mem::size_of::<(u64, u32)>() + 1) * 16 / 7 + 1;
/// What keeps an entry in order: the larger of a heap table's and a
/// Stream-Summary's cost.
const ORDER_BYTES: usize =
    if crate::spacesaving::ORDER_BYTES_PER_ENTRY > crate::streamsummary::ORDER_BYTES_PER_ENTRY {
        crate::spacesaving::ORDER_BYTES_PER_ENTRY
    } else {
        crate::streamsummary::ORDER_BYTES_PER_ENTRY
    };
/// A shared name's reference counts and the allocator's rounding.
const KEY_ALLOCATION_BYTES: usize = 32;
/// A name entry's fixed cost: the entry (key pointer, count, error, order,
/// hash), what keeps it in order, its index slot, the key's allocation.
pub const ENTRY_OVERHEAD: usize =
    std::mem::size_of::<Counted<Arc<str>>>() + ORDER_BYTES + INDEX_BYTES + KEY_ALLOCATION_BYTES;
/// A name table entry at worst.
pub const NAME_ENTRY_BYTES: usize = ENTRY_OVERHEAD + MAX_KEY_LEN;
/// A client table entry at worst.
pub const CLIENT_ENTRY_BYTES: usize =
    std::mem::size_of::<Counted<Option<IpAddr>>>() + ORDER_BYTES + INDEX_BYTES;
/// A qtype or rcode table entry at worst.
pub const SMALL_ENTRY_BYTES: usize =
    std::mem::size_of::<Counted<u32>>() + ORDER_BYTES + INDEX_BYTES;
/// Distinct qtypes a table keeps (exact below that).
pub const QTYPE_CAPACITY: usize = 256;

const NAME_TABLES: usize = 15;
const CLIENT_TABLES: usize = 2;
const GLOBAL_UNITS: usize = 8;
const SLOT_UNITS: usize = 1;
const STREAM_UNITS: usize = 2;
/// Window slots per table (6 for the minute, 6 for the hour).
const SLOTS: usize = 12;

/// The capacities derived from the bound.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub memory_bound: u64,
    /// Worst-case bytes of everything planned (at most the bound).
    pub planned_bytes: u64,
    pub hll_precision: u8,
    pub qtype_capacity: usize,
    pub pairing_capacity: usize,
    /// Streams tracked on their own, plus one for `other`.
    pub stream_scopes: usize,
    pub global_name_capacity: usize,
    pub global_client_capacity: usize,
    pub slot_name_capacity: Option<usize>,
    pub slot_client_capacity: Option<usize>,
    pub stream_name_capacity: usize,
    pub stream_client_capacity: usize,
}

impl Plan {
    pub fn new(config: &StatsConfig) -> Result<Plan, StatsError> {
        let bound = usize::try_from(config.memory_bound).unwrap_or(usize::MAX);
        let scopes = config.max_streams + 2; // streams, other, global
        let hll = 2 * (1usize << config.hll_precision.clamp(4, 18));
        let slots = if config.windows { SLOTS } else { 0 };
        let small = (QTYPE_CAPACITY + 16) * 2 * SMALL_ENTRY_BYTES;
        let fixed_per_scope =
            hll + Histogram::SIZE_BYTES + std::mem::size_of::<Scope>() + 64 * 24 + small;
        let global_slot_small = slots * small;
        let pairing_bytes = bound / 10;
        let pairing_capacity = pairing_bytes / PAIR_ENTRY_BYTES;
        let fixed = scopes * fixed_per_scope + global_slot_small + pairing_bytes + 64 * 1024;
        let unit_cost = NAME_TABLES * NAME_ENTRY_BYTES + CLIENT_TABLES * CLIENT_ENTRY_BYTES;
        let units = GLOBAL_UNITS + slots * SLOT_UNITS + (scopes - 1) * STREAM_UNITS;
        let Some(left) = bound.checked_sub(fixed) else {
            return Err(StatsError::BoundTooSmall {
                bound: config.memory_bound,
                needed: fixed as u64,
            });
        };
        let unit = left / (units * unit_cost);
        if unit < 4 || pairing_capacity < 16 {
            return Err(StatsError::BoundTooSmall {
                bound: config.memory_bound,
                needed: (fixed + 4 * units * unit_cost) as u64,
            });
        }
        let planned = fixed + unit * units * unit_cost;
        Ok(Plan {
            memory_bound: config.memory_bound,
            planned_bytes: planned as u64,
            hll_precision: config.hll_precision.clamp(4, 18),
            qtype_capacity: QTYPE_CAPACITY,
            pairing_capacity,
            stream_scopes: config.max_streams + 1,
            global_name_capacity: unit * GLOBAL_UNITS,
            global_client_capacity: unit * GLOBAL_UNITS,
            slot_name_capacity: config.windows.then_some(unit * SLOT_UNITS),
            slot_client_capacity: config.windows.then_some(unit * SLOT_UNITS),
            stream_name_capacity: unit * STREAM_UNITS,
            stream_client_capacity: unit * STREAM_UNITS,
        })
    }

    pub fn global_sizes(&self) -> ScopeSizes {
        ScopeSizes {
            name_capacity: self.global_name_capacity,
            client_capacity: self.global_client_capacity,
            slot_name_capacity: self.slot_name_capacity,
            slot_client_capacity: self.slot_client_capacity,
        }
    }

    pub fn stream_sizes(&self) -> ScopeSizes {
        ScopeSizes {
            name_capacity: self.stream_name_capacity,
            client_capacity: self.stream_client_capacity,
            slot_name_capacity: None,
            slot_client_capacity: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_fits_the_bound() {
        let plan = Plan::new(&StatsConfig::default()).unwrap();
        assert!(plan.planned_bytes <= plan.memory_bound);
        assert!(plan.planned_bytes > plan.memory_bound * 9 / 10);
        assert!(plan.global_name_capacity >= 1000, "{plan:?}");
        let tiny = StatsConfig {
            memory_bound: 100_000,
            ..StatsConfig::default()
        };
        assert!(Plan::new(&tiny).is_err());
    }
}
