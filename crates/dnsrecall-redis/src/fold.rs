//! Folding repeated records of one batch into one entry before a write.
//!
//! Passive DNS repeats a lot: the same (name, type, rdata) arrives many
//! times within seconds. In the D4 schema every entry costs the server two
//! set insertions, two min/max updates and a counter increment, so one
//! entry per distinct record (first = minimum, last = maximum, counts
//! summed: [`Seen::merge`](dnsrecall_core::Seen::merge)) saves all the
//! server work of the repeats and gives the same stored result.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::Arc;

use dnsrecall_core::{Entry, Record};

/// One entry per distinct (record, sensor) of `entries`, in order of first
/// appearance. The sensor is part of the key because the schema counts
/// sightings per sensor (`stats:sensors`).
pub fn fold_duplicates(entries: Vec<Entry>) -> Vec<Entry> {
    if entries.len() < 2 {
        return entries;
    }
    let mut index: HashMap<(Record, Option<Arc<str>>), usize> =
        HashMap::with_capacity(entries.len());
    let mut folded: Vec<Entry> = Vec::with_capacity(entries.len());
    for entry in entries {
        match index.entry((entry.record.clone(), entry.seen.sensor_id.clone())) {
            Slot::Occupied(slot) => folded[*slot.get()].seen.merge(&entry.seen),
            Slot::Vacant(slot) => {
                slot.insert(folded.len());
                folded.push(entry);
            }
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use dnsrecall_core::{Name, Rdata, Rtype, Seen};

    use super::*;

    fn entry(name: &str, address: [u8; 4], first: u64, last: u64, count: u64) -> Entry {
        Entry {
            record: Record {
                rrname: Name::from_presentation(name).unwrap(),
                rrtype: Rtype::A,
                bailiwick: None,
                rdata: Rdata::Wire(address.to_vec().into_boxed_slice()),
            },
            seen: Seen {
                time_first: first,
                time_last: last,
                count,
                zone_times: None,
                sensor_id: None,
            },
        }
    }

    #[test]
    fn repeats_fold_into_min_max_and_sum() {
        let entries = vec![
            entry("a.example", [192, 0, 2, 1], 50, 60, 1),
            entry("b.example", [192, 0, 2, 1], 10, 10, 1),
            entry("a.example", [192, 0, 2, 1], 20, 30, 2),
            entry("a.example", [192, 0, 2, 1], 70, 80, 3),
            entry("a.example", [192, 0, 2, 2], 70, 80, 3),
        ];
        let folded = fold_duplicates(entries);
        assert_eq!(folded.len(), 3);
        assert_eq!(folded[0].record.rrname.to_string(), "a.example.");
        assert_eq!(
            (
                folded[0].seen.time_first,
                folded[0].seen.time_last,
                folded[0].seen.count
            ),
            (20, 80, 6)
        );
        assert_eq!(folded[1].seen.count, 1);
        assert_eq!(folded[2].seen.count, 3);
    }
}
