//! The passive DNS record: what was seen (rrname, rrtype, bailiwick, rdata)
//! and how it was seen (first/last time, count, sensor).

use std::sync::Arc;

use crate::name::Name;
use crate::rdata::{self, Rtype};

/// Record data as stored: canonical wire form, or the text an importer gave
/// when it could not be parsed into wire form (passivedns writes MX/SRV/SOA
/// answers partially and cuts long ones; we keep them rather than lose them).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rdata {
    /// Canonical wire form.
    Wire(Box<[u8]>),
    /// Opaque presentation text, rendered back exactly as given.
    Text(Box<str>),
}

impl Rdata {
    /// Parses presentation text for `rtype`; text that does not parse is kept
    /// opaque.
    pub fn from_text_lenient(rtype: Rtype, text: &str) -> Rdata {
        match rdata::from_presentation(rtype, text) {
            Ok(wire) => Rdata::Wire(wire.into_boxed_slice()),
            Err(_) => Rdata::Text(text.into()),
        }
    }

    /// Presentation format.
    pub fn to_presentation(&self, rtype: Rtype) -> String {
        match self {
            Rdata::Wire(wire) => rdata::to_presentation(rtype, wire),
            Rdata::Text(text) => text.to_string(),
        }
    }

    /// The wire bytes, when known.
    pub fn wire(&self) -> Option<&[u8]> {
        match self {
            Rdata::Wire(wire) => Some(wire),
            Rdata::Text(_) => None,
        }
    }
}

/// What a passive DNS record is about: the de-duplication key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    pub rrname: Name,
    pub rrtype: Rtype,
    /// The zone that vouched for the record, when known.
    pub bailiwick: Option<Name>,
    pub rdata: Rdata,
}

impl Record {
    /// rdata in presentation format.
    pub fn rdata_text(&self) -> String {
        self.rdata.to_presentation(self.rrtype)
    }
}

/// How a record was seen. Aggregation is associative and commutative:
/// `time_first = min`, `time_last = max`, `count = sum`, zone times likewise,
/// and the sensor of the latest sighting wins (ties broken by sensor name),
/// so merges can happen in any order and any grouping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub time_first: u64,
    pub time_last: u64,
    pub count: u64,
    /// First and last time seen in zone-file data, when known.
    pub zone_times: Option<(u64, u64)>,
    /// The sensor that saw it last.
    pub sensor_id: Option<Arc<str>>,
}

impl Seen {
    /// One sighting at `time`.
    pub fn once(time: u64) -> Seen {
        Seen {
            time_first: time,
            time_last: time,
            count: 1,
            zone_times: None,
            sensor_id: None,
        }
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &Seen) {
        let take_sensor = (other.time_last, &other.sensor_id) > (self.time_last, &self.sensor_id);
        if take_sensor {
            self.sensor_id.clone_from(&other.sensor_id);
        }
        self.time_first = self.time_first.min(other.time_first);
        self.time_last = self.time_last.max(other.time_last);
        self.count = self.count.saturating_add(other.count);
        self.zone_times = match (self.zone_times, other.zone_times) {
            (Some((a1, a2)), Some((b1, b2))) => Some((a1.min(b1), a2.max(b2))),
            (a, b) => a.or(b),
        };
    }
}

/// A record with its sightings: the unit of ingest, storage and output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub record: Record,
    pub seen: Seen,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seen_strategy() -> impl Strategy<Value = Seen> {
        (
            0u64..1000,
            0u64..1000,
            1u64..100,
            proptest::option::of((0u64..1000, 0u64..1000)),
            proptest::option::of(prop_oneof![Just("s1"), Just("s2"), Just("s3")]),
        )
            .prop_map(|(a, b, count, zone, sensor)| Seen {
                time_first: a.min(b),
                time_last: a.max(b),
                count,
                zone_times: zone.map(|(x, y)| (x.min(y), x.max(y))),
                sensor_id: sensor.map(Arc::from),
            })
    }

    fn merged(a: &Seen, b: &Seen) -> Seen {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    proptest! {
        #[test]
        fn merge_is_commutative(a in seen_strategy(), b in seen_strategy()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
        }

        #[test]
        fn merge_is_associative(a in seen_strategy(), b in seen_strategy(), c in seen_strategy()) {
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
        }
    }
}
