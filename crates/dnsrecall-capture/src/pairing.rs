//! Query/response pairing.
//!
//! A bounded table of outstanding queries keyed by (client, server, ports,
//! transport, DNS id). A response is matched against the query it answers,
//! which yields the latency and confirms the responding server (the `src`
//! of the response). The question (name case-folded, type, class) is
//! compared when both messages have one, so a reused id on the same 4-tuple
//! does not pair unrelated messages. Unmatched responses are still
//! reported: a passive sensor can miss queries.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use hashbrown::HashMap;

use crate::metrics::{add, inc};
use crate::{DnsPayload, Metrics, Transport, dns_id, is_response};

const NANOS: u64 = 1_000_000_000;
/// Default number of outstanding queries.
pub const DEFAULT_PAIRING_CAPACITY: usize = 100_000;
/// Default seconds after which an unanswered query is forgotten.
pub const DEFAULT_PAIRING_TIMEOUT_SECS: u64 = 10;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PairKey {
    client: IpAddr,
    server: IpAddr,
    client_port: u16,
    server_port: u16,
    transport: Transport,
    id: u16,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    ts_ns: u64,
    question: Option<u64>,
}

//------------ Observation ---------------------------------------------------

/// What [`QueryTable::observe`] made of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observation {
    /// A query; `tracked` is false if the table was full.
    Query { tracked: bool },
    /// A response, matched or not.
    Response(ResponseMatch),
    /// Shorter than a DNS header.
    NotDns,
}

/// The pairing of a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResponseMatch {
    /// The responding server (the response's `src`).
    pub server: IpAddr,
    pub client: IpAddr,
    /// Capture time of the matching query, if one was seen.
    pub query_ts_ns: Option<u64>,
    /// Response time minus query time, if a query was seen.
    pub latency_ns: Option<u64>,
}

//------------ QueryTable ----------------------------------------------------

/// Outstanding queries, bounded in number and age (packet time).
#[derive(Debug)]
pub struct QueryTable {
    pending: HashMap<PairKey, Pending, foldhash::fast::RandomState>,
    capacity: usize,
    timeout_ns: u64,
    last_sweep_ns: u64,
}

impl Default for QueryTable {
    fn default() -> Self {
        Self::new(DEFAULT_PAIRING_CAPACITY, DEFAULT_PAIRING_TIMEOUT_SECS)
    }
}

impl QueryTable {
    pub fn new(capacity: usize, timeout_secs: u64) -> Self {
        QueryTable {
            pending: HashMap::default(),
            capacity,
            timeout_ns: timeout_secs.saturating_mul(NANOS),
            last_sweep_ns: 0,
        }
    }

    /// Outstanding queries.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Enter a query or match a response.
    pub fn observe(&mut self, payload: &DnsPayload, metrics: &Metrics) -> Observation {
        let (Some(response), Some(id)) = (is_response(&payload.message), dns_id(&payload.message))
        else {
            return Observation::NotDns;
        };
        let now = payload.ts_nanos();
        if now.saturating_sub(self.last_sweep_ns) >= NANOS {
            self.sweep(now, metrics);
        }
        let question = question_hash(&payload.message);
        if !response {
            let key = PairKey {
                client: payload.src,
                server: payload.dst,
                client_port: payload.sport,
                server_port: payload.dport,
                transport: payload.transport,
                id,
            };
            if self.pending.len() >= self.capacity && !self.pending.contains_key(&key) {
                self.sweep(now, metrics);
                if self.pending.len() >= self.capacity {
                    inc(&metrics.pairing_table_full);
                    return Observation::Query { tracked: false };
                }
            }
            inc(&metrics.pairing_queries);
            self.pending.insert(
                key,
                Pending {
                    ts_ns: now,
                    question,
                },
            );
            return Observation::Query { tracked: true };
        }
        let key = PairKey {
            client: payload.dst,
            server: payload.src,
            client_port: payload.dport,
            server_port: payload.sport,
            transport: payload.transport,
            id,
        };
        let matched = match self.pending.get(&key) {
            Some(q) if q.question.is_none() || question.is_none() || q.question == question => {
                let q = *q;
                self.pending.remove(&key);
                Some(q)
            }
            _ => None,
        };
        if matched.is_some() {
            inc(&metrics.pairing_matched);
        } else {
            inc(&metrics.pairing_unmatched);
        }
        Observation::Response(ResponseMatch {
            server: payload.src,
            client: payload.dst,
            query_ts_ns: matched.map(|q| q.ts_ns),
            latency_ns: matched.map(|q| now.saturating_sub(q.ts_ns)),
        })
    }

    /// Forget queries older than the timeout.
    pub fn sweep(&mut self, now_ns: u64, metrics: &Metrics) {
        self.last_sweep_ns = now_ns;
        let cutoff = now_ns.saturating_sub(self.timeout_ns);
        let before = self.pending.len();
        self.pending.retain(|_, q| q.ts_ns >= cutoff);
        add(
            &metrics.pairing_expired,
            (before - self.pending.len()) as u64,
        );
    }
}

/// Hash of the first question (name ASCII-lowercased, type, class), or
/// `None` when there is no readable question.
fn question_hash(message: &[u8]) -> Option<u64> {
    if message.get(4..6)? == [0, 0] {
        return None;
    }
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    let mut pos = 12;
    loop {
        let len = usize::from(*message.get(pos)?);
        if len == 0 {
            pos += 1;
            break;
        }
        // A compression pointer or reserved label type in the first name.
        if len & 0xc0 != 0 {
            return None;
        }
        let label = message.get(pos + 1..pos + 1 + len)?;
        h.write_u8(len as u8);
        for b in label {
            h.write_u8(b.to_ascii_lowercase());
        }
        pos += 1 + len;
    }
    h.write(message.get(pos..pos + 4)?);
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::net::Ipv4Addr;

    fn payload(response: bool, name: &[u8], ts_nsec: u32) -> DnsPayload {
        let mut m = vec![
            0x12,
            0x34,
            if response { 0x81 } else { 0x01 },
            0,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        let (c, s) = (
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)),
        );
        DnsPayload {
            ts_sec: 100,
            ts_nsec,
            src: if response { s } else { c },
            dst: if response { c } else { s },
            sport: if response { 53 } else { 4000 },
            dport: if response { 4000 } else { 53 },
            transport: Transport::Udp,
            message: Bytes::from(m),
            ip_defragmented: false,
            tcp_reassembled: false,
            interface: None,
        }
    }

    #[test]
    fn pairs_with_latency_and_case_folding() {
        let m = Metrics::new();
        let mut t = QueryTable::default();
        assert_eq!(
            t.observe(&payload(false, b"\x03WWW\x00", 0), &m),
            Observation::Query { tracked: true }
        );
        let Observation::Response(r) = t.observe(&payload(true, b"\x03www\x00", 5_000), &m) else {
            panic!("not a response");
        };
        assert_eq!(r.latency_ns, Some(5_000));
        assert_eq!(r.server, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53)));
        let Observation::Response(r) = t.observe(&payload(true, b"\x03www\x00", 6_000), &m) else {
            panic!("not a response");
        };
        assert_eq!(r.latency_ns, None);
        assert_eq!(m.get("pairing_unmatched"), Some(1));
    }

    #[test]
    fn different_question_does_not_pair() {
        let m = Metrics::new();
        let mut t = QueryTable::new(1, 10);
        t.observe(&payload(false, b"\x01a\x00", 0), &m);
        let Observation::Response(r) = t.observe(&payload(true, b"\x01b\x00", 1), &m) else {
            panic!("not a response");
        };
        assert_eq!(r.query_ts_ns, None);
        let mut other = payload(false, b"\x01c\x00", 2);
        other.sport = 4001;
        assert_eq!(t.observe(&other, &m), Observation::Query { tracked: false });
    }
}
