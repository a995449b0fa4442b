//! Key and value encoding of the embedded store.
//!
//! Column families (after dnstable's entry types, `reference/dnsdb.md` §2):
//!
//! * `rrset`: `rev(rrname) ‖ rrtype(BE16) ‖ bailiwick ‖ rdata` → value.
//!   A prefix scan on `rev(name)` without its final zero octet is the
//!   left-hand wildcard `*.name`.
//! * `rdata`: `index ‖ rrtype(BE16) ‖ rev(rrname) ‖ bailiwick [‖ rest]` →
//!   value, where `index` is `0x04 addr4` / `0x06 addr16` for A/AAAA (so an
//!   address range is a key range), `'N' rev(target)` for name-bearing rdata
//!   (then the full rdata follows as `rest`), and `'R' bytes` / `'T' text`
//!   for other wire or opaque rdata (then `rest` is the length, BE16, so the
//!   key can be split again).
//! * `names`: `0x00 wire(owner)` and `0x01 wire(rdata target)` → set of
//!   rrtypes: prefix scans give right-hand wildcards `www.example.*`.
//! * `meta`: schema version and counters.
//!
//! `bailiwick` is `0x00` when unknown or `0x01 rev(zone)`; `rdata` is
//! `0x00 wire` or `0x01 text`.
//!
//! Values: a flags octet, then varints `time_first, time_last, count`, then
//! zone times and the sensor when their flag is set.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use dnsrecall_core::rdata::{Rtype, rdata_target_name};
use dnsrecall_core::{Entry, Name, Rdata, Record, Seen};

use crate::Corrupt;

pub const INDEX_V4: u8 = 0x04;
pub const INDEX_V6: u8 = 0x06;
pub const INDEX_NAME: u8 = b'N';
pub const INDEX_RAW: u8 = b'R';
pub const INDEX_TEXT: u8 = b'T';

pub const NAMES_OWNER: u8 = 0x00;
pub const NAMES_TARGET: u8 = 0x01;

const RDATA_WIRE: u8 = 0x00;
const RDATA_TEXT: u8 = 0x01;
const BAILIWICK_NONE: u8 = 0x00;
const BAILIWICK_SOME: u8 = 0x01;

const FLAG_ZONE: u8 = 0x01;
const FLAG_SENSOR: u8 = 0x02;

fn push_bailiwick(bailiwick: &Option<Name>, out: &mut Vec<u8>) {
    match bailiwick {
        None => out.push(BAILIWICK_NONE),
        Some(zone) => {
            out.push(BAILIWICK_SOME);
            zone.push_reversed(out);
        }
    }
}

fn push_rdata(rdata: &Rdata, out: &mut Vec<u8>) {
    match rdata {
        Rdata::Wire(wire) => {
            out.push(RDATA_WIRE);
            out.extend_from_slice(wire);
        }
        Rdata::Text(text) => {
            out.push(RDATA_TEXT);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

/// The forward (`rrset`) key of a record.
pub fn rrset_key(record: &Record, out: &mut Vec<u8>) {
    out.clear();
    record.rrname.push_reversed(out);
    out.extend_from_slice(&record.rrtype.0.to_be_bytes());
    push_bailiwick(&record.bailiwick, out);
    push_rdata(&record.rdata, out);
}

/// The inverse (`rdata`) key of a record.
pub fn rdata_key(record: &Record, out: &mut Vec<u8>) {
    out.clear();
    let tail = |out: &mut Vec<u8>| {
        out.extend_from_slice(&record.rrtype.0.to_be_bytes());
        record.rrname.push_reversed(out);
        push_bailiwick(&record.bailiwick, out);
    };
    match &record.rdata {
        Rdata::Wire(wire) if record.rrtype == Rtype::A && wire.len() == 4 => {
            out.push(INDEX_V4);
            out.extend_from_slice(wire);
            tail(out);
        }
        Rdata::Wire(wire) if record.rrtype == Rtype::AAAA && wire.len() == 16 => {
            out.push(INDEX_V6);
            out.extend_from_slice(wire);
            tail(out);
        }
        Rdata::Wire(wire) => match rdata_target_name(record.rrtype, wire) {
            Some(target) => {
                out.push(INDEX_NAME);
                dnsrecall_core::name::push_reversed_wire(target, out);
                tail(out);
                push_rdata(&record.rdata, out);
            }
            None => {
                out.push(INDEX_RAW);
                out.extend_from_slice(wire);
                tail(out);
                out.extend_from_slice(&(wire.len() as u16).to_be_bytes());
            }
        },
        Rdata::Text(text) => {
            out.push(INDEX_TEXT);
            out.extend_from_slice(text.as_bytes());
            tail(out);
            let len = u16::try_from(text.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
}

/// The `names` keys of a record: its owner, and its rdata target if any.
pub fn names_keys(record: &Record, owner: &mut Vec<u8>, target: &mut Vec<u8>) -> bool {
    owner.clear();
    owner.push(NAMES_OWNER);
    owner.extend_from_slice(record.rrname.as_wire());
    target.clear();
    if let Some(name) = record
        .rdata
        .wire()
        .and_then(|wire| rdata_target_name(record.rrtype, wire))
    {
        target.push(NAMES_TARGET);
        target.extend_from_slice(name);
        true
    } else {
        false
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], Corrupt> {
        if self.bytes.len() < len {
            return Err(Corrupt("key too short"));
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(head)
    }
    fn byte(&mut self) -> Result<u8, Corrupt> {
        Ok(self.take(1)?[0])
    }
    fn rtype(&mut self) -> Result<Rtype, Corrupt> {
        let bytes = self.take(2)?;
        Ok(Rtype(u16::from_be_bytes([bytes[0], bytes[1]])))
    }
    fn reversed_name(&mut self) -> Result<Name, Corrupt> {
        let (name, used) =
            Name::from_reversed_prefix(self.bytes).map_err(|_| Corrupt("bad name in key"))?;
        self.bytes = &self.bytes[used..];
        Ok(name)
    }
    fn bailiwick(&mut self) -> Result<Option<Name>, Corrupt> {
        match self.byte()? {
            BAILIWICK_NONE => Ok(None),
            BAILIWICK_SOME => Ok(Some(self.reversed_name()?)),
            _ => Err(Corrupt("bad bailiwick marker")),
        }
    }
    fn rdata_rest(&mut self) -> Result<Rdata, Corrupt> {
        let tag = self.byte()?;
        let rest = std::mem::take(&mut self.bytes);
        match tag {
            RDATA_WIRE => Ok(Rdata::Wire(rest.into())),
            RDATA_TEXT => std::str::from_utf8(rest)
                .map(|t| Rdata::Text(t.into()))
                .map_err(|_| Corrupt("bad text rdata")),
            _ => Err(Corrupt("bad rdata marker")),
        }
    }
}

/// Splits an `rrset` key back into its record.
pub fn decode_rrset_key(key: &[u8]) -> Result<Record, Corrupt> {
    let mut reader = Reader { bytes: key };
    let rrname = reader.reversed_name()?;
    let rrtype = reader.rtype()?;
    let bailiwick = reader.bailiwick()?;
    let rdata = reader.rdata_rest()?;
    Ok(Record {
        rrname,
        rrtype,
        bailiwick,
        rdata,
    })
}

/// Splits an `rdata` key back into its record.
pub fn decode_rdata_key(key: &[u8]) -> Result<Record, Corrupt> {
    let mut reader = Reader { bytes: key };
    match reader.byte()? {
        INDEX_V4 | INDEX_V6 => {
            let len = if key[0] == INDEX_V4 { 4 } else { 16 };
            let address = reader.take(len)?;
            let rrtype = reader.rtype()?;
            let rrname = reader.reversed_name()?;
            let bailiwick = reader.bailiwick()?;
            Ok(Record {
                rrname,
                rrtype,
                bailiwick,
                rdata: Rdata::Wire(address.into()),
            })
        }
        INDEX_NAME => {
            reader.reversed_name()?;
            let rrtype = reader.rtype()?;
            let rrname = reader.reversed_name()?;
            let bailiwick = reader.bailiwick()?;
            let rdata = reader.rdata_rest()?;
            Ok(Record {
                rrname,
                rrtype,
                bailiwick,
                rdata,
            })
        }
        kind @ (INDEX_RAW | INDEX_TEXT) => {
            if key.len() < 3 {
                return Err(Corrupt("key too short"));
            }
            let len = usize::from(u16::from_be_bytes([key[key.len() - 2], key[key.len() - 1]]));
            let bytes = reader.take(len)?;
            let rrtype = reader.rtype()?;
            let rrname = reader.reversed_name()?;
            let bailiwick = reader.bailiwick()?;
            let rdata = if kind == INDEX_RAW {
                Rdata::Wire(bytes.into())
            } else {
                Rdata::Text(
                    std::str::from_utf8(bytes)
                        .map_err(|_| Corrupt("bad text rdata"))?
                        .into(),
                )
            };
            Ok(Record {
                rrname,
                rrtype,
                bailiwick,
                rdata,
            })
        }
        _ => Err(Corrupt("bad index marker")),
    }
}

fn push_varint(mut value: u64, out: &mut Vec<u8>) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, Corrupt> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(Corrupt("short varint"))?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Corrupt("varint too long"))
}

/// Encodes sightings as a value.
pub fn encode_value(seen: &Seen, out: &mut Vec<u8>) {
    out.clear();
    let mut flags = 0;
    if seen.zone_times.is_some() {
        flags |= FLAG_ZONE;
    }
    if seen.sensor_id.is_some() {
        flags |= FLAG_SENSOR;
    }
    out.push(flags);
    push_varint(seen.time_first, out);
    push_varint(seen.time_last, out);
    push_varint(seen.count, out);
    if let Some((first, last)) = seen.zone_times {
        push_varint(first, out);
        push_varint(last, out);
    }
    if let Some(sensor) = &seen.sensor_id {
        push_varint(sensor.len() as u64, out);
        out.extend_from_slice(sensor.as_bytes());
    }
}

/// Decodes a value.
pub fn decode_value(mut bytes: &[u8]) -> Result<Seen, Corrupt> {
    let (&flags, rest) = bytes.split_first().ok_or(Corrupt("empty value"))?;
    bytes = rest;
    let time_first = read_varint(&mut bytes)?;
    let time_last = read_varint(&mut bytes)?;
    let count = read_varint(&mut bytes)?;
    let zone_times = if flags & FLAG_ZONE != 0 {
        Some((read_varint(&mut bytes)?, read_varint(&mut bytes)?))
    } else {
        None
    };
    let sensor_id = if flags & FLAG_SENSOR != 0 {
        let len =
            usize::try_from(read_varint(&mut bytes)?).map_err(|_| Corrupt("sensor length"))?;
        let text = bytes.get(..len).ok_or(Corrupt("short sensor"))?;
        Some(Arc::from(
            std::str::from_utf8(text).map_err(|_| Corrupt("sensor not UTF-8"))?,
        ))
    } else {
        None
    };
    Ok(Seen {
        time_first,
        time_last,
        count,
        zone_times,
        sensor_id,
    })
}

/// Encodes an rrtype set (sorted, distinct) as a names value.
pub fn encode_types(types: &[u16], out: &mut Vec<u8>) {
    out.clear();
    for rtype in types {
        out.extend_from_slice(&rtype.to_be_bytes());
    }
}

/// Decodes a names value.
pub fn decode_types(bytes: &[u8]) -> impl Iterator<Item = Rtype> + '_ {
    bytes
        .chunks_exact(2)
        .map(|pair| Rtype(u16::from_be_bytes([pair[0], pair[1]])))
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when no such key exists (all 0xFF).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut key = prefix.to_vec();
    while let Some(last) = key.pop() {
        if last < 0xff {
            key.push(last + 1);
            return Some(key);
        }
    }
    None
}

/// The `rdata` key range of addresses `first..=last`.
pub fn address_range(
    first: std::net::IpAddr,
    last: std::net::IpAddr,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    match (first, last) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) if a <= b => {
            let mut lower = vec![INDEX_V4];
            lower.extend_from_slice(&a.octets());
            let upper = match u32::from(b).checked_add(1) {
                Some(next) => {
                    let mut key = vec![INDEX_V4];
                    key.extend_from_slice(&Ipv4Addr::from(next).octets());
                    key
                }
                None => vec![INDEX_V4 + 1],
            };
            Some((lower, Some(upper)))
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) if a <= b => {
            let mut lower = vec![INDEX_V6];
            lower.extend_from_slice(&a.octets());
            let upper = match u128::from(b).checked_add(1) {
                Some(next) => {
                    let mut key = vec![INDEX_V6];
                    key.extend_from_slice(&Ipv6Addr::from(next).octets());
                    key
                }
                None => vec![INDEX_V6 + 1],
            };
            Some((lower, Some(upper)))
        }
        _ => None,
    }
}

/// Rebuilds an entry from a decoded record and value.
pub fn entry(record: Record, value: &[u8]) -> Result<Entry, Corrupt> {
    Ok(Entry {
        record,
        seen: decode_value(value)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(name: &str, rtype: Rtype, rdata: &str, bailiwick: Option<&str>) -> Record {
        Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: bailiwick.map(|b| Name::from_presentation(b).unwrap()),
            rdata: Rdata::from_text_lenient(rtype, rdata),
        }
    }

    #[test]
    fn keys_round_trip_every_kind() {
        let records = [
            record("www.example.com", Rtype::A, "192.0.2.1", None),
            record(
                "www.example.com",
                Rtype::AAAA,
                "2001:db8::1",
                Some("example.com"),
            ),
            record("example.com", Rtype::MX, "10 mail.example.com.", Some(".")),
            record("example.com", Rtype::TXT, "\"hello world\"", None),
            record("example.com", Rtype::MX, "mail.example.com.", None), // opaque
        ];
        let mut key = Vec::new();
        for record in &records {
            rrset_key(record, &mut key);
            assert_eq!(&decode_rrset_key(&key).unwrap(), record);
            rdata_key(record, &mut key);
            assert_eq!(&decode_rdata_key(&key).unwrap(), record, "{key:?}");
        }
        assert!(matches!(records[4].rdata, Rdata::Text(_)));
    }

    proptest! {
        /// Address keys sort numerically, so CIDR ranges are key ranges.
        #[test]
        fn address_keys_sort_numerically(a in any::<u32>(), b in any::<u32>(), x in any::<u128>(), y in any::<u128>()) {
            let key = |rtype: Rtype, wire: Vec<u8>| {
                let record = Record { rrname: Name::root(), rrtype: rtype, bailiwick: None, rdata: Rdata::Wire(wire.into()) };
                let mut out = Vec::new();
                rdata_key(&record, &mut out);
                out
            };
            prop_assert_eq!(key(Rtype::A, a.to_be_bytes().to_vec()).cmp(&key(Rtype::A, b.to_be_bytes().to_vec())), a.cmp(&b));
            prop_assert_eq!(key(Rtype::AAAA, x.to_be_bytes().to_vec()).cmp(&key(Rtype::AAAA, y.to_be_bytes().to_vec())), x.cmp(&y));
        }

        #[test]
        fn values_round_trip(first in any::<u64>(), last in any::<u64>(), count in any::<u64>(), zone in proptest::option::of((any::<u64>(), any::<u64>())), sensor in proptest::option::of("[a-z]{0,10}")) {
            let seen = Seen { time_first: first, time_last: last, count, zone_times: zone, sensor_id: sensor.map(Arc::from) };
            let mut out = Vec::new();
            encode_value(&seen, &mut out);
            prop_assert_eq!(decode_value(&out).unwrap(), seen);
        }

        #[test]
        fn corrupt_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_rrset_key(&bytes);
            let _ = decode_rdata_key(&bytes);
            let _ = decode_value(&bytes);
        }
    }
}
