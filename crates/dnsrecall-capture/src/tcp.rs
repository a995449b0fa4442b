//! DNS over TCP: stream reassembly and 2-byte length framing.
//!
//! State is kept per direction ("half-stream"), keyed by the 4-tuple of that
//! direction, because DNS framing is independent in each direction and a
//! passive sensor often sees only one of them.
//!
//! * Sequence numbers are compared with wrapping arithmetic relative to the
//!   next expected byte; segments ahead of it wait in an ordered map keyed by
//!   stream offset, old bytes (retransmissions, overlaps) are trimmed.
//! * A stream that starts with a SYN (including TCP Fast Open data in the
//!   SYN) is framed from its first byte. A stream picked up mid-way, or one
//!   that lost a segment for good, is *resynchronised*: framing restarts at
//!   the first offset where a length prefix is followed by a plausible DNS
//!   header, and the bytes skipped are counted.
//! * A gap is given up when the buffered data passes the per-stream bound,
//!   when the stream idles out, or at end of input ([`TcpReassembler::finish`]);
//!   the data after it is then framed after a resync.
//! * Bounds: bytes per half-stream, bytes in total, number of half-streams,
//!   idle timeout by packet time. Every dropped byte is counted by reason.

use std::collections::BTreeMap;
use std::net::IpAddr;

use bytes::Bytes;
use hashbrown::HashMap;

use crate::Metrics;
use crate::dns::{HEADER_LEN, plausible_header};
use crate::metrics::{add, inc};

const NANOS: u64 = 1_000_000_000;
/// A closed half-stream lingers this long (packet time) so retransmissions
/// after the FIN are recognised as duplicates instead of opening a new,
/// unsynchronised stream.
const CLOSED_LINGER_NS: u64 = 10 * NANOS;
/// Length prefix plus header: what resynchronisation needs to judge a
/// candidate boundary.
const RESYNC_WINDOW: usize = 2 + HEADER_LEN;

//------------ StreamKey -----------------------------------------------------

/// One direction of a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StreamKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
}

impl StreamKey {
    /// The other direction.
    pub fn reverse(&self) -> StreamKey {
        StreamKey {
            src: self.dst,
            dst: self.src,
            sport: self.dport,
            dport: self.sport,
        }
    }
}

//------------ Segment -------------------------------------------------------

/// The parts of a TCP segment reassembly needs.
#[derive(Clone, Copy, Debug)]
pub struct Segment<'a> {
    pub key: StreamKey,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
}

/// A DNS message completed by a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpMessage {
    pub key: StreamKey,
    /// Packet time of the segment that completed the message.
    pub ts_ns: u64,
    /// The message, length prefix removed.
    pub message: Bytes,
    /// The message came from more than one segment.
    pub reassembled: bool,
}

//------------ TcpReassembler ------------------------------------------------

/// The half-stream table.
#[derive(Debug)]
pub struct TcpReassembler {
    streams: HashMap<StreamKey, HalfStream, foldhash::fast::RandomState>,
    limits: Limits,
    total_bytes: usize,
    last_sweep_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct Limits {
    max_streams: usize,
    max_stream_bytes: usize,
    max_bytes: usize,
    timeout_ns: u64,
}

#[derive(Debug)]
struct HalfStream {
    /// Sequence number of the next byte expected in order.
    next_seq: u32,
    /// Stream offset of `next_seq` (bytes delivered in order so far).
    delivered: u64,
    /// In-order bytes not yet framed: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// Segments ahead of a gap, by stream offset.
    ooo: BTreeMap<u64, Vec<u8>>,
    ooo_bytes: usize,
    /// `buf[start]` is at a message boundary.
    synced: bool,
    /// First data sequence number when the stream began with a SYN.
    syn_seq: Option<u32>,
    /// Stream offset of the FIN, once seen.
    fin_at: Option<u64>,
    closed: bool,
    last_ns: u64,
}

impl HalfStream {
    fn new(next_seq: u32, synced: bool, now_ns: u64) -> Self {
        HalfStream {
            next_seq,
            delivered: 0,
            buf: Vec::new(),
            start: 0,
            ooo: BTreeMap::new(),
            ooo_bytes: 0,
            synced,
            syn_seq: synced.then_some(next_seq),
            fin_at: None,
            closed: false,
            last_ns: now_ns,
        }
    }

    fn held(&self) -> usize {
        self.buf.len() - self.start + self.ooo_bytes
    }

    fn clear_buffers(&mut self) -> usize {
        let dropped = self.held();
        self.buf.clear();
        self.start = 0;
        self.ooo.clear();
        self.ooo_bytes = 0;
        dropped
    }
}

impl TcpReassembler {
    pub fn new(
        max_streams: usize,
        max_stream_bytes: usize,
        max_bytes: usize,
        timeout_secs: u64,
    ) -> Self {
        TcpReassembler {
            streams: HashMap::default(),
            limits: Limits {
                max_streams: max_streams.max(1),
                // One maximal message must always fit.
                max_stream_bytes: max_stream_bytes.max(2 + 65_535),
                max_bytes,
                timeout_ns: timeout_secs.saturating_mul(NANOS),
            },
            total_bytes: 0,
            last_sweep_ns: 0,
        }
    }

    /// Half-streams tracked.
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Bytes buffered over all half-streams.
    pub fn buffered_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Feed one segment seen at `now_ns`; completed messages go to `emit`.
    pub fn segment(
        &mut self,
        now_ns: u64,
        seg: Segment<'_>,
        metrics: &Metrics,
        emit: &mut impl FnMut(TcpMessage),
    ) {
        if now_ns.saturating_sub(self.last_sweep_ns) >= NANOS {
            self.sweep(now_ns, metrics, emit);
        }

        if seg.rst {
            for key in [seg.key, seg.key.reverse()] {
                if let Some(mut st) = self.streams.remove(&key) {
                    let dropped = st.clear_buffers();
                    self.total_bytes -= dropped;
                    add(&metrics.tcp_bytes_dropped_gap, dropped as u64);
                    if !st.closed {
                        inc(&metrics.tcp_streams_closed);
                    }
                }
            }
            return;
        }

        let data_seq = if seg.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let existing = self.streams.get(&seg.key).map(|st| (st.syn_seq, st.closed));
        match existing {
            Some((syn_seq, closed)) => {
                // A SYN with a new ISN is a new connection on a reused
                // 4-tuple; a SYN with the same ISN is a retransmission.
                if seg.syn && (closed || syn_seq != Some(data_seq)) {
                    self.remove(&seg.key);
                    self.open(seg.key, data_seq, true, now_ns, metrics, emit);
                }
            }
            None => {
                if seg.payload.is_empty() && !seg.syn {
                    return;
                }
                self.open(seg.key, data_seq, seg.syn, now_ns, metrics, emit);
            }
        }

        let limits = self.limits;
        let Some(st) = self.streams.get_mut(&seg.key) else {
            return;
        };
        st.last_ns = now_ns;
        let before = st.held();
        process(st, &seg, data_seq, now_ns, limits, metrics, emit);
        let after = st.held();
        self.total_bytes = self.total_bytes + after - before;

        if self.total_bytes > limits.max_bytes {
            // Over the global bound: this stream gives up what it holds
            // (cheaper and fairer than searching for a victim).
            if let Some(st) = self.streams.get_mut(&seg.key) {
                let dropped = st.clear_buffers();
                st.synced = false;
                self.total_bytes -= dropped;
                add(&metrics.tcp_bytes_dropped_limit, dropped as u64);
            }
        }
    }

    /// End of input: give up every gap, frame what follows it, then forget
    /// all streams.
    pub fn finish(&mut self, metrics: &Metrics, emit: &mut impl FnMut(TcpMessage)) {
        for (key, mut st) in self.streams.drain() {
            flush_gaps(&key, &mut st, metrics, emit);
            add(&metrics.tcp_bytes_dropped_gap, st.clear_buffers() as u64);
        }
        self.total_bytes = 0;
    }

    /// Drop idle half-streams (after flushing past their gaps).
    pub fn sweep(&mut self, now_ns: u64, metrics: &Metrics, emit: &mut impl FnMut(TcpMessage)) {
        self.last_sweep_ns = now_ns;
        let timeout = self.limits.timeout_ns;
        let mut freed = 0;
        self.streams.retain(|key, st| {
            let linger = if st.closed {
                CLOSED_LINGER_NS.min(timeout)
            } else {
                timeout
            };
            if now_ns.saturating_sub(st.last_ns) <= linger {
                return true;
            }
            let held = st.held();
            flush_gaps(key, st, metrics, emit);
            add(&metrics.tcp_bytes_dropped_gap, st.held() as u64);
            freed += held;
            if !st.closed {
                inc(&metrics.tcp_streams_timeout);
            }
            false
        });
        self.total_bytes -= freed;
    }

    fn open(
        &mut self,
        key: StreamKey,
        data_seq: u32,
        synced: bool,
        now_ns: u64,
        metrics: &Metrics,
        emit: &mut impl FnMut(TcpMessage),
    ) {
        if self.streams.len() >= self.limits.max_streams {
            self.make_room(now_ns, metrics, emit);
        }
        inc(&metrics.tcp_streams_opened);
        self.streams
            .insert(key, HalfStream::new(data_seq, synced, now_ns));
    }

    /// The table is full: expire, then drop closed streams, then evict the
    /// older half by last activity. Evicting a batch keeps the O(n) scan
    /// rare under a flood of new streams.
    fn make_room(&mut self, now_ns: u64, metrics: &Metrics, emit: &mut impl FnMut(TcpMessage)) {
        self.sweep(now_ns, metrics, emit);
        if self.streams.len() < self.limits.max_streams {
            return;
        }
        let mut freed = 0;
        self.streams.retain(|_, st| {
            if st.closed {
                freed += st.held();
                false
            } else {
                true
            }
        });
        self.total_bytes -= freed;
        if self.streams.len() < self.limits.max_streams {
            return;
        }
        let (min, max) = self.streams.values().fold((u64::MAX, 0), |(lo, hi), st| {
            (lo.min(st.last_ns), hi.max(st.last_ns))
        });
        let cutoff = min + (max - min) / 2;
        let mut freed = 0;
        let mut evicted = 0;
        self.streams.retain(|_, st| {
            if st.last_ns <= cutoff {
                freed += st.held();
                evicted += 1;
                false
            } else {
                true
            }
        });
        self.total_bytes -= freed;
        add(&metrics.tcp_bytes_dropped_limit, freed as u64);
        add(&metrics.tcp_streams_evicted, evicted);
    }

    fn remove(&mut self, key: &StreamKey) {
        if let Some(st) = self.streams.remove(key) {
            self.total_bytes -= st.held();
        }
    }
}

/// Apply one segment to its half-stream.
fn process(
    st: &mut HalfStream,
    seg: &Segment<'_>,
    data_seq: u32,
    now_ns: u64,
    limits: Limits,
    metrics: &Metrics,
    emit: &mut impl FnMut(TcpMessage),
) {
    let mut payload = seg.payload;
    let mut delta = data_seq.wrapping_sub(st.next_seq) as i32 as i64;
    if seg.fin && !st.closed {
        let fin_at = st.delivered as i64 + delta + payload.len() as i64;
        if fin_at >= 0 {
            st.fin_at = Some(fin_at as u64);
        }
    }

    if !payload.is_empty() {
        if delta < 0 {
            let old = delta.unsigned_abs() as usize;
            if old >= payload.len() {
                inc(&metrics.tcp_segments_duplicate);
                payload = &[];
            } else {
                payload = &payload[old..];
                delta = 0;
            }
        }
        if st.closed && !payload.is_empty() {
            add(&metrics.tcp_bytes_dropped_closed, payload.len() as u64);
            payload = &[];
        }
    }

    if !payload.is_empty() {
        if delta > 0 {
            if delta as usize > limits.max_stream_bytes {
                add(&metrics.tcp_bytes_dropped_window, payload.len() as u64);
            } else {
                inc(&metrics.tcp_segments_out_of_order);
                let at = st.delivered + delta as u64;
                let slot = st.ooo.entry(at).or_default();
                if slot.len() < payload.len() {
                    st.ooo_bytes += payload.len() - slot.len();
                    slot.clear();
                    slot.extend_from_slice(payload);
                }
            }
        } else {
            deliver(st, &seg.key, payload, now_ns, metrics, emit);
        }
    }

    if st.held() > limits.max_stream_bytes {
        if st.ooo.is_empty() {
            // Unframeable in-order data (possible only while unsynced).
            let dropped = st.clear_buffers();
            st.synced = false;
            add(&metrics.tcp_bytes_dropped_limit, dropped as u64);
        } else {
            skip_gap(st, &seg.key, now_ns, metrics, emit);
        }
    }

    if st.fin_at.is_some_and(|f| st.delivered >= f) {
        st.closed = true;
        add(&metrics.tcp_bytes_dropped_gap, st.clear_buffers() as u64);
        inc(&metrics.tcp_streams_closed);
    }
}

/// Append in-order bytes, pull in what the out-of-order map now continues,
/// and frame.
fn deliver(
    st: &mut HalfStream,
    key: &StreamKey,
    payload: &[u8],
    now_ns: u64,
    metrics: &Metrics,
    emit: &mut impl FnMut(TcpMessage),
) {
    advance(st, payload.len());
    if st.synced && st.start == st.buf.len() && st.ooo.is_empty() {
        // Fast path: frame straight from the packet, keep only the tail.
        st.buf.clear();
        st.start = 0;
        let used = frame(payload, &mut st.synced, key, now_ns, None, metrics, emit);
        st.buf.extend_from_slice(&payload[used..]);
        return;
    }
    let seg_mark = st.buf.len();
    st.buf.extend_from_slice(payload);
    let seg_end = st.buf.len();
    drain_ooo(st);
    let used = frame(
        &st.buf[st.start..],
        &mut st.synced,
        key,
        now_ns,
        Some((
            seg_mark.saturating_sub(st.start),
            seg_end.saturating_sub(st.start),
        )),
        metrics,
        emit,
    );
    st.start += used;
    compact(st);
}

fn advance(st: &mut HalfStream, n: usize) {
    st.next_seq = st.next_seq.wrapping_add(n as u32);
    st.delivered += n as u64;
}

/// Move out-of-order segments that are now contiguous into `buf`.
fn drain_ooo(st: &mut HalfStream) {
    while let Some(entry) = st.ooo.first_entry() {
        let at = *entry.key();
        if at > st.delivered {
            break;
        }
        let data = entry.remove();
        st.ooo_bytes -= data.len();
        let skip = (st.delivered - at) as usize;
        if skip < data.len() {
            st.buf.extend_from_slice(&data[skip..]);
            advance(st, data.len() - skip);
        }
    }
}

/// Give up the gap before the first out-of-order segment: drop the partial
/// message, jump to that segment and resynchronise there.
fn skip_gap(
    st: &mut HalfStream,
    key: &StreamKey,
    now_ns: u64,
    metrics: &Metrics,
    emit: &mut impl FnMut(TcpMessage),
) {
    let Some((&at, _)) = st.ooo.first_key_value() else {
        return;
    };
    add(
        &metrics.tcp_bytes_dropped_gap,
        (st.buf.len() - st.start) as u64,
    );
    st.buf.clear();
    st.start = 0;
    let jump = at - st.delivered;
    st.next_seq = st.next_seq.wrapping_add(jump as u32);
    st.delivered = at;
    st.synced = false;
    drain_ooo(st);
    let used = frame(
        &st.buf,
        &mut st.synced,
        key,
        now_ns,
        Some((0, 0)),
        metrics,
        emit,
    );
    st.start = used;
    compact(st);
}

/// Skip every gap in turn (end of input or idle timeout).
fn flush_gaps(
    key: &StreamKey,
    st: &mut HalfStream,
    metrics: &Metrics,
    emit: &mut impl FnMut(TcpMessage),
) {
    let ts = st.last_ns;
    while !st.ooo.is_empty() {
        skip_gap(st, key, ts, metrics, emit);
    }
}

fn compact(st: &mut HalfStream) {
    if st.start == st.buf.len() {
        st.buf.clear();
        st.start = 0;
    } else if st.start > 4096 && st.start * 2 > st.buf.len() {
        st.buf.drain(..st.start);
        st.start = 0;
    }
}

/// Cut complete length-prefixed messages off the front of `data`; returns
/// the bytes consumed (framed or skipped). `segment` is the range of `data`
/// that came from the current packet (`None`: all of it did), so a message
/// reaching outside it is flagged as reassembled.
fn frame(
    data: &[u8],
    synced: &mut bool,
    key: &StreamKey,
    now_ns: u64,
    segment: Option<(usize, usize)>,
    metrics: &Metrics,
    emit: &mut impl FnMut(TcpMessage),
) -> usize {
    let mut pos = 0;
    loop {
        if !*synced {
            match resync(&data[pos..]) {
                Ok(skip) => {
                    add(&metrics.tcp_bytes_dropped_resync, skip as u64);
                    inc(&metrics.tcp_resyncs);
                    pos += skip;
                    *synced = true;
                }
                Err(skip) => {
                    add(&metrics.tcp_bytes_dropped_resync, skip as u64);
                    return pos + skip;
                }
            }
        }
        let rest = &data[pos..];
        if rest.len() < 2 {
            return pos;
        }
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        if rest.len() < 2 + len {
            return pos;
        }
        let message = &rest[2..2 + len];
        if len < HEADER_LEN {
            inc(&metrics.dns_too_short);
        } else {
            let reassembled = segment.is_some_and(|(s, e)| pos < s || pos + 2 + len > e);
            emit(TcpMessage {
                key: *key,
                ts_ns: now_ns,
                message: Bytes::copy_from_slice(message),
                reassembled,
            });
        }
        pos += 2 + len;
    }
}

/// Find the first offset that looks like a message boundary: `Ok(offset)`,
/// or `Err(skippable)` with the bytes that can be discarded for sure (all
/// but a window that may still grow into a boundary).
fn resync(data: &[u8]) -> Result<usize, usize> {
    if data.len() < RESYNC_WINDOW {
        return Err(0);
    }
    for p in 0..=data.len() - RESYNC_WINDOW {
        let len = usize::from(u16::from_be_bytes([data[p], data[p + 1]]));
        if plausible_header(&data[p + 2..], len) {
            return Ok(p);
        }
    }
    Err(data.len() - (RESYNC_WINDOW - 1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> StreamKey {
        StreamKey {
            src: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53)),
            dst: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            sport: 53,
            dport: 40000,
        }
    }

    fn msg(id: u16, len: usize) -> Vec<u8> {
        let mut m = vec![0u8; len.max(12)];
        m[0..2].copy_from_slice(&id.to_be_bytes());
        m[2] = 0x81;
        m[5] = 1;
        m
    }

    fn framed(msgs: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in msgs {
            out.extend_from_slice(&(m.len() as u16).to_be_bytes());
            out.extend_from_slice(m);
        }
        out
    }

    fn seg(seq: u32, syn: bool, payload: &[u8]) -> Segment<'_> {
        Segment {
            key: key(),
            seq,
            syn,
            fin: false,
            rst: false,
            payload,
        }
    }

    #[test]
    fn syn_then_split_and_reordered() {
        let m = Metrics::new();
        let mut r = TcpReassembler::new(16, 1 << 18, 1 << 20, 60);
        let msgs = vec![msg(1, 40), msg(2, 300), msg(3, 12)];
        let wire = framed(&msgs);
        let mut out = Vec::new();
        let mut emit = |t: TcpMessage| out.push(t);
        r.segment(1, seg(1000, true, &[]), &m, &mut emit);
        r.segment(2, seg(1001 + 100, false, &wire[100..]), &m, &mut emit);
        r.segment(3, seg(1001, false, &wire[..60]), &m, &mut emit);
        r.segment(4, seg(1001 + 30, false, &wire[30..100]), &m, &mut emit);
        let got: Vec<_> = out.iter().map(|t| t.message.to_vec()).collect();
        assert_eq!(got, msgs);
        assert!(!out[0].reassembled && out[1].reassembled);
        assert_eq!(r.buffered_bytes(), 0);
    }

    #[test]
    fn resync_without_syn_and_fast_open() {
        let m = Metrics::new();
        let mut r = TcpReassembler::new(16, 1 << 18, 1 << 20, 60);
        let msgs = vec![msg(1, 40), msg(2, 50)];
        let wire = framed(&msgs);
        let mut out = Vec::new();
        // Picked up mid-message: the first 10 bytes are skipped.
        let mut stream = vec![0xaa; 10];
        stream.extend_from_slice(&wire);
        r.segment(1, seg(5, false, &stream), &m, &mut |t| out.push(t));
        assert_eq!(out.len(), 2);
        assert_eq!(m.get("tcp_bytes_dropped_resync"), Some(10));

        let mut r = TcpReassembler::new(16, 1 << 18, 1 << 20, 60);
        let mut out = Vec::new();
        r.segment(1, seg(u32::MAX, true, &wire), &m, &mut |t| out.push(t));
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn gap_given_up_at_finish() {
        let m = Metrics::new();
        let mut r = TcpReassembler::new(16, 1 << 18, 1 << 20, 60);
        let msgs = vec![msg(1, 40), msg(2, 50), msg(3, 60)];
        let wire = framed(&msgs);
        let mut out = Vec::new();
        r.segment(1, seg(0, true, &[]), &m, &mut |t| out.push(t));
        // The second message's first bytes are lost.
        r.segment(2, seg(1, false, &wire[..42]), &m, &mut |t| out.push(t));
        r.segment(3, seg(1 + 50, false, &wire[50..]), &m, &mut |t| out.push(t));
        assert_eq!(out.len(), 1);
        r.finish(&m, &mut |t| out.push(t));
        let ids: Vec<_> = out.iter().map(|t| t.message[1]).collect();
        assert_eq!(ids, vec![1, 3]);
        assert!(r.is_empty());
    }

    #[test]
    fn bounded_streams() {
        let m = Metrics::new();
        let mut r = TcpReassembler::new(4, 1 << 18, 1 << 20, 60);
        for port in 0..100u16 {
            let mut s = seg(0, true, &[0, 40]);
            s.key.dport = port;
            r.segment(u64::from(port), s, &m, &mut |_| {});
            assert!(r.len() <= 4);
        }
        assert!(m.get("tcp_streams_evicted").unwrap_or(0) > 0);
    }
}
