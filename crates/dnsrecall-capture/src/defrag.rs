//! IPv4 and IPv6 fragment reassembly with bounded memory.
//!
//! Datagrams are keyed by (source, destination, identification, protocol)
//! as RFC 791 / RFC 8200 say. Memory is bounded three ways: the number of
//! datagrams under reassembly, the bytes buffered over all of them, and the
//! fragments per datagram; a datagram that does not complete within the
//! timeout (packet time, not wall time, so replaying a file behaves like the
//! live run) is dropped. Overlapping fragments are accepted with the later
//! data winning and are counted: DNS gains nothing from a stricter policy,
//! and a duplicate (a retransmitted fragment) is the common overlap.
//!
//! Etherparse's `IpDefragPool` was not used: it documents itself as unsafe
//! against memory exhaustion and has no timeout of its own.

use std::net::IpAddr;

use hashbrown::HashMap;

use crate::Metrics;
use crate::metrics::{add, inc};

/// An IP datagram's payload can be at most 65535 bytes.
const MAX_DATAGRAM: u32 = 65_535;
/// More fragments than this for one datagram is an attack, not a network.
const MAX_FRAGMENTS_PER_DATAGRAM: u16 = 128;
/// Completed buffers kept for reuse.
const FREE_LIST: usize = 16;
const NANOS: u64 = 1_000_000_000;

//------------ FragKey -------------------------------------------------------

/// What identifies the fragments of one datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 identification (16 bits) or IPv6 fragment header identification.
    pub id: u32,
    /// Upper-layer protocol (IPv6: the fragment header's next header).
    pub protocol: u8,
}

//------------ Fragment ------------------------------------------------------

/// One fragment as it came off the wire.
#[derive(Clone, Copy, Debug)]
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Byte offset of `payload` in the datagram payload.
    pub offset: u32,
    /// More fragments follow (MF / M flag).
    pub more: bool,
    pub payload: &'a [u8],
}

//------------ Defragmenter --------------------------------------------------

/// The reassembly table.
#[derive(Debug)]
pub struct Defragmenter {
    datagrams: HashMap<FragKey, Datagram, foldhash::fast::RandomState>,
    total_bytes: usize,
    max_datagrams: usize,
    max_bytes: usize,
    timeout_ns: u64,
    last_sweep_ns: u64,
    free: Vec<Vec<u8>>,
}

#[derive(Debug)]
struct Datagram {
    data: Vec<u8>,
    /// Received byte ranges, sorted, merged, half-open.
    ranges: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment arrived.
    end: Option<u32>,
    first_ns: u64,
    fragments: u16,
}

impl Defragmenter {
    pub fn new(max_datagrams: usize, max_bytes: usize, timeout_secs: u64) -> Self {
        Defragmenter {
            datagrams: HashMap::default(),
            total_bytes: 0,
            max_datagrams,
            max_bytes,
            timeout_ns: timeout_secs.saturating_mul(NANOS),
            last_sweep_ns: 0,
            free: Vec::new(),
        }
    }

    /// Datagrams under reassembly.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Bytes buffered over all datagrams.
    pub fn buffered_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Add a fragment seen at `now_ns`; returns the datagram payload when
    /// this fragment completes it. Hand the buffer back with
    /// [`Defragmenter::recycle`] to avoid an allocation per datagram.
    pub fn push(&mut self, now_ns: u64, frag: Fragment<'_>, metrics: &Metrics) -> Option<Vec<u8>> {
        inc(&metrics.fragments);
        self.maybe_sweep(now_ns, metrics);

        let len = u32::try_from(frag.payload.len()).unwrap_or(u32::MAX);
        let end = frag.offset.saturating_add(len);
        if end > MAX_DATAGRAM || (frag.more && len % 8 != 0) {
            inc(&metrics.fragments_dropped_invalid);
            return None;
        }

        if !self.datagrams.contains_key(&frag.key) {
            if self.datagrams.len() >= self.max_datagrams {
                self.sweep(now_ns, metrics);
                if self.datagrams.len() >= self.max_datagrams {
                    inc(&metrics.fragments_dropped_limit);
                    return None;
                }
            }
            let data = self.free.pop().unwrap_or_default();
            self.datagrams.insert(
                frag.key,
                Datagram {
                    data,
                    ranges: Vec::with_capacity(4),
                    end: None,
                    first_ns: now_ns,
                    fragments: 0,
                },
            );
        }
        let dg = self.datagrams.get_mut(&frag.key)?;

        // A fragment that contradicts the known end is invalid; keep the
        // datagram, which may still complete from consistent fragments.
        if let Some(known) = dg.end {
            if end > known || (!frag.more && end != known) {
                inc(&metrics.fragments_dropped_invalid);
                return None;
            }
        } else if !frag.more && dg.ranges.last().is_some_and(|r| r.1 > end) {
            inc(&metrics.fragments_dropped_invalid);
            return None;
        }

        dg.fragments += 1;
        let grow = (end as usize).saturating_sub(dg.data.len());
        if dg.fragments > MAX_FRAGMENTS_PER_DATAGRAM || self.total_bytes + grow > self.max_bytes {
            inc(&metrics.fragments_dropped_limit);
            if dg.fragments > MAX_FRAGMENTS_PER_DATAGRAM {
                self.remove(&frag.key);
            }
            return None;
        }
        if grow > 0 {
            dg.data.resize(end as usize, 0);
            self.total_bytes += grow;
        }
        dg.data[frag.offset as usize..end as usize].copy_from_slice(frag.payload);
        if !frag.more {
            dg.end = Some(end);
        }
        if insert_range(&mut dg.ranges, frag.offset, end) {
            inc(&metrics.fragments_overlapping);
        }

        let complete = dg.end.is_some_and(|e| dg.ranges.as_slice() == [(0, e)]);
        if !complete {
            return None;
        }
        let mut dg = self.datagrams.remove(&frag.key)?;
        self.total_bytes -= dg.data.len();
        if let Some(e) = dg.end {
            dg.data.truncate(e as usize);
        }
        inc(&metrics.fragments_reassembled);
        Some(dg.data)
    }

    /// Give a completed datagram's buffer back for reuse.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.free.len() < FREE_LIST {
            buf.clear();
            self.free.push(buf);
        }
    }

    /// Drop every datagram started before `now_ns - timeout`.
    pub fn sweep(&mut self, now_ns: u64, metrics: &Metrics) {
        self.last_sweep_ns = now_ns;
        let cutoff = now_ns.saturating_sub(self.timeout_ns);
        let mut freed = 0;
        let mut expired = 0;
        self.datagrams.retain(|_, dg| {
            if dg.first_ns < cutoff {
                freed += dg.data.len();
                expired += 1;
                false
            } else {
                true
            }
        });
        self.total_bytes -= freed;
        add(&metrics.fragments_expired, expired);
    }

    /// Drop everything still incomplete (end of input), counting it expired.
    pub fn clear(&mut self, metrics: &Metrics) {
        add(&metrics.fragments_expired, self.datagrams.len() as u64);
        self.datagrams.clear();
        self.total_bytes = 0;
    }

    fn maybe_sweep(&mut self, now_ns: u64, metrics: &Metrics) {
        // Sweeping costs a pass over the table, so do it at most once per
        // second of packet time.
        if now_ns.saturating_sub(self.last_sweep_ns) >= NANOS && !self.datagrams.is_empty() {
            self.sweep(now_ns, metrics);
        }
    }

    fn remove(&mut self, key: &FragKey) {
        if let Some(dg) = self.datagrams.remove(key) {
            self.total_bytes -= dg.data.len();
        }
    }
}

/// Insert `[start, end)` into sorted, merged `ranges`; returns whether it
/// overlapped data already there.
fn insert_range(ranges: &mut Vec<(u32, u32)>, start: u32, end: u32) -> bool {
    if start == end {
        return false;
    }
    let overlaps = ranges.iter().any(|&(s, e)| start < e && s < end);
    let mut new = (start, end);
    // Merge every range touching or overlapping the new one.
    ranges.retain(|&(s, e)| {
        if s <= new.1 && new.0 <= e {
            new = (new.0.min(s), new.1.max(e));
            false
        } else {
            true
        }
    });
    let at = ranges.partition_point(|&(s, _)| s < new.0);
    ranges.insert(at, new);
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            id: 7,
            protocol: 17,
        }
    }

    fn frag(offset: u32, more: bool, payload: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(),
            offset,
            more,
            payload,
        }
    }

    #[test]
    fn reassembles_out_of_order_with_duplicates() {
        let m = Metrics::new();
        let mut d = Defragmenter::new(10, 1 << 20, 30);
        let data: Vec<u8> = (0..40).collect();
        assert!(d.push(1, frag(32, false, &data[32..]), &m).is_none());
        assert!(d.push(1, frag(8, true, &data[8..24]), &m).is_none());
        assert!(d.push(1, frag(8, true, &data[8..16]), &m).is_none());
        assert!(d.push(1, frag(16, true, &data[16..32]), &m).is_none());
        let out = d.push(1, frag(0, true, &data[..8]), &m);
        assert_eq!(out.as_deref(), Some(&data[..]));
        assert_eq!(d.buffered_bytes(), 0);
        assert!(d.is_empty());
        assert_eq!(m.get("fragments_overlapping"), Some(2));
    }

    #[test]
    fn expires_and_bounds() {
        let m = Metrics::new();
        let mut d = Defragmenter::new(1, 1 << 20, 30);
        assert!(d.push(0, frag(0, true, &[0; 8]), &m).is_none());
        let mut other = frag(0, true, &[0; 8]);
        other.key.id = 8;
        assert!(d.push(1, other, &m).is_none());
        assert_eq!(m.get("fragments_dropped_limit"), Some(1));
        assert!(d.push(31 * NANOS, other, &m).is_none());
        assert_eq!(m.get("fragments_expired"), Some(1));
        assert!(
            d.push(32 * NANOS, frag(65_532, false, &[0; 8]), &m)
                .is_none()
        );
        assert!(d.push(32 * NANOS, frag(0, true, &[0; 7]), &m).is_none());
        assert_eq!(m.get("fragments_dropped_invalid"), Some(2));
    }

    #[test]
    fn conflicting_end_is_invalid() {
        let m = Metrics::new();
        let mut d = Defragmenter::new(10, 1 << 20, 30);
        assert!(d.push(0, frag(8, false, &[1; 8]), &m).is_none());
        assert!(d.push(0, frag(8, false, &[1; 16]), &m).is_none());
        assert_eq!(m.get("fragments_dropped_invalid"), Some(1));
        assert_eq!(
            d.push(0, frag(0, true, &[2; 8]), &m).map(|v| v.len()),
            Some(16)
        );
    }
}
