//! dnsrecall-stats: DNS traffic statistics in bounded memory.
//!
//! It owns what dnstap-receiver and DNS-collector show about a DNS server's
//! traffic, computed from [`DnsMessage`] values (dnstap frames and captured
//! packets alike) in memory that one configured bound caps whatever the
//! traffic:
//!
//! * **exact counters** per stream (dnstap identity, capture sensor) and
//!   global: queries, responses, bytes, per transport, family and rcode,
//!   dnstap-receiver's six latency buckets, qps/rps;
//! * **cardinality sketches** ([`hll`]): unique clients and domains, with a
//!   relative standard error of `1.04 / sqrt(2^p)` (0.81 % by default);
//! * **latency** ([`latency`]): query/response pairing in a bounded table
//!   (unmatched responses and unanswered queries counted), a log-scale
//!   histogram for p50/p95/p99;
//! * **top-N tables** ([`streamsummary`], [`spacesaving`], [`window`]):
//!   TLDs, registered
//!   domains (public suffix list), query names by messages, bytes and
//!   rcode, clients by messages and bytes, qtypes, rcodes; since start and,
//!   for the global scope, over the last minute and hour;
//! * the answers of dnstap-receiver's API ([`compat`]), ours ([`report`])
//!   and Prometheus text ([`prometheus`]).
//!
//! [`Stats`] is the entry point: `Stats::new(config)`, then
//! [`Stats::observe_batch`] (one lock per batch) or [`Stats::observe`] from
//! whatever sees messages (it takes `&self`; share it in an `Arc`; serve
//! feeds it from the statistics output's own thread, off the inputs'), and
//! the report functions from the HTTP side. How the bound is
//! shared out is [`plan`]'s.
//!
//! It must not know where messages come from (sockets, files, protobuf),
//! HTTP, or storage: it depends on `dnsrecall-core` only.

pub mod batch;
pub mod compat;
pub mod config;
pub mod dns;
pub mod hll;
pub mod latency;
pub mod plan;
pub mod prometheus;
pub mod report;
pub mod scope;
pub mod spacesaving;
pub mod streamsummary;
pub mod window;

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use dnsrecall_core::message::DnsMessage;
use hashbrown::HashMap;

pub use config::{OTHER_STREAM, StatsConfig};
pub use plan::Plan;
pub use window::Window;

use crate::latency::PairingTable;
use crate::plan::MAX_KEY_LEN;
use crate::scope::{NO_QUESTION, QUERY, RESPONSE, Scope};

/// What can go wrong setting statistics up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    /// `memory_bound` cannot hold the fixed structures and a useful table.
    #[error("stats memory_bound {bound} bytes is too small: at least {needed} bytes are needed")]
    BoundTooSmall { bound: u64, needed: u64 },
}

//---- Stats ----

/// The statistics of all streams. Callable from several threads (one lock
/// per batch of messages).
pub struct Stats {
    config: StatsConfig,
    plan: Plan,
    started: Instant,
    hasher: foldhash::fast::FixedState,
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) global: Scope,
    /// Streams in order of first sight; the last may be `other`.
    pub(crate) streams: Vec<(Box<str>, Scope)>,
    index: HashMap<Box<str>, usize>,
    pub(crate) pairing: PairingTable,
    /// Messages of streams beyond the cap (counted in `other`).
    pub(crate) streams_folded: u64,
    /// The current batch's keyed table updates, summed (applied at the
    /// end of each batch, under the same lock: reports never see them).
    pending: batch::Pending,
    /// While only one stream has been seen (since start or the last reset),
    /// it has seen exactly what the global scope has: its keyed tables are
    /// then not updated, and readers get copies of the global ones cut to
    /// the stream's sizes ([`Inner::sync_mirror`]). Why: a single
    /// resolver's stream is the common case, and its table updates were a
    /// third of the statistics thread's time (perf, bench/stats/serve.sh).
    mirror: bool,
}

/// One message, read once, recorded in two scopes.
struct Observation<'a> {
    direction: usize,
    bytes: u64,
    transport: usize,
    family: usize,
    rcode: u8,
    qname: &'a str,
    name_hash: u64,
    tld: Option<(&'a str, u64)>,
    registered: Option<(&'a str, u64)>,
    client: Option<IpAddr>,
    client_hash: u64,
    qtype: u32,
    latency: Option<u64>,
}

impl Stats {
    /// Statistics sized by `config` (fails when the bound is too small).
    pub fn new(config: StatsConfig) -> Result<Stats, StatsError> {
        let plan = Plan::new(&config)?;
        let inner = Inner {
            global: Scope::new(&plan, plan.global_sizes()),
            streams: Vec::new(),
            index: HashMap::new(),
            pairing: PairingTable::new(plan.pairing_capacity, config.pairing_timeout_secs),
            streams_folded: 0,
            pending: batch::Pending::default(),
            mirror: true,
        };
        Ok(Stats {
            config,
            plan,
            started: Instant::now(),
            hasher: foldhash::fast::FixedState::with_seed(0x5eed),
            inner: Mutex::new(inner),
        })
    }

    pub fn config(&self) -> &StatsConfig {
        &self.config
    }

    /// The capacities the bound gave.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// Seconds since start (the clock of windows and rates).
    pub fn now_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// Counts one message.
    pub fn observe(&self, message: &DnsMessage) {
        self.observe_batch(std::slice::from_ref(message));
    }

    /// Counts messages under one lock: what a caller with many messages at
    /// hand (the statistics output's worker) should use.
    pub fn observe_batch(&self, messages: &[DnsMessage]) {
        self.observe_batch_at(messages, self.now_secs());
    }

    /// Counts one message as if seen `now_secs` seconds after start (tests,
    /// replays).
    pub fn observe_at(&self, message: &DnsMessage, now_secs: u64) {
        self.observe_batch_at(std::slice::from_ref(message), now_secs);
    }

    /// Counts messages as if seen `now_secs` seconds after start.
    pub fn observe_batch_at(&self, messages: &[DnsMessage], now_secs: u64) {
        let mut name = Vec::with_capacity(256);
        let mut inner = self.lock();
        for chunk in messages.chunks(batch::MAX_BATCH) {
            // Consecutive messages mostly come from one stream: its index
            // is looked up once per run of the same identity.
            let mut last_stream: Option<(Option<&_>, usize)> = None;
            for message in chunk {
                let identity = message.identity.as_ref().filter(|i| !i.is_empty());
                let index = match last_stream {
                    Some((last, index)) if last == identity => index,
                    _ => {
                        let text = identity.map_or(std::borrow::Cow::Borrowed("-"), |bytes| {
                            String::from_utf8_lossy(bytes)
                        });
                        let index = inner.stream_index(&text, &self.plan, now_secs);
                        last_stream = Some((identity, index));
                        index
                    }
                };
                self.observe_locked(&mut inner, index, message, now_secs, &mut name);
            }
            let Inner {
                global,
                streams,
                pending,
                ..
            } = &mut *inner;
            pending.apply(now_secs, global, streams);
        }
    }

    /// Counts one message in the global scope and the stream's.
    fn observe_locked(
        &self,
        inner: &mut Inner,
        stream: usize,
        message: &DnsMessage,
        now_secs: u64,
        name: &mut Vec<u8>,
    ) {
        let header = message
            .payload()
            .and_then(|p| dns::peek(p, self.config.qname_lowercase, name));
        let Some(header) = header else {
            inner.global.malformed += 1;
            if let Some((_, scope)) = inner.streams.get_mut(stream) {
                scope.malformed += 1;
            }
            return;
        };
        let text = if header.has_question {
            dns::name_text(name)
        } else {
            std::borrow::Cow::Borrowed("-")
        };
        let direction = if message.is_query() { QUERY } else { RESPONSE };
        let qname = cut(&text);
        let name_hash = self.hasher.hash_one(qname);
        let tld = tld_of(qname).map(|t| (t, self.hasher.hash_one(t)));
        let registered = if direction == QUERY {
            psl::domain_str(qname.strip_suffix('.').unwrap_or(qname))
                .map(|d| (d, self.hasher.hash_one(d)))
        } else {
            None
        };
        let client = message.query_address;
        let mut observation = Observation {
            direction,
            bytes: message.payload().map_or(0, |p| p.len() as u64),
            transport: scope::transport_index(message.transport),
            family: scope::family_index(message.family),
            rcode: header.rcode,
            qname,
            name_hash,
            tld,
            registered,
            client,
            client_hash: self.hasher.hash_one(client),
            qtype: if header.has_question {
                u32::from(header.qtype)
            } else {
                NO_QUESTION
            },
            latency: None,
        };
        if let (Some(address), Some(port)) = (message.query_address, message.query_port)
            && port > 0
        {
            let key = (address, port, header.id);
            if direction == QUERY {
                let time = message.query_time.map_or(0, |t| t.as_nanos());
                inner.pairing.query(key, time);
            } else {
                let time = message.response_time.map_or(0, |t| t.as_nanos());
                observation.latency = inner.pairing.response(key, time);
            }
        }
        record(&mut inner.global, &observation, now_secs);
        let mut shared_name = None;
        inner
            .pending
            .add(batch::GLOBAL, &observation, &mut shared_name);
        if let Some((_, scope)) = inner.streams.get_mut(stream) {
            record(scope, &observation, now_secs);
            let stream = batch::ScopeId::try_from(stream).unwrap_or(batch::GLOBAL);
            if stream != batch::GLOBAL && !inner.mirror {
                inner.pending.add(stream, &observation, &mut shared_name);
            }
        }
    }

    /// Forgets everything counted (dnstap-receiver's `DELETE /reset`); the
    /// streams stay known.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.global.clear();
        for (_, scope) in inner.streams.iter_mut() {
            scope.clear();
        }
        inner.pairing.clear();
        inner.streams_folded = 0;
        inner.mirror = inner.streams.len() <= 1;
    }

    /// Stream names in order of first sight.
    pub fn streams(&self) -> Vec<String> {
        self.lock()
            .streams
            .iter()
            .map(|(name, _)| name.to_string())
            .collect()
    }

    /// Bytes the state holds now (estimate: measured keys, fixed entry
    /// costs), at most [`Plan::planned_bytes`].
    pub fn used_bytes(&self) -> u64 {
        let inner = self.lock();
        inner.global.used_bytes()
            + inner
                .streams
                .iter()
                .map(|(_, s)| s.used_bytes())
                .sum::<u64>()
            + (inner.pairing.len() * latency::PAIR_ENTRY_BYTES) as u64
    }

    /// Keeps the counts still until the returned guard is dropped:
    /// messages wait meanwhile (in the statistics output's queue). Do not
    /// ask for a report while holding it (the same lock).
    pub fn hold(&self) -> impl Drop + '_ {
        self.lock()
    }

    /// The state for a reader: locked, a mirrored stream's tables copied
    /// in.
    pub(crate) fn read(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        inner.sync_mirror(&self.plan);
        inner
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while counting leaves counters, not broken invariants.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn hash_str(&self, text: &str) -> u64 {
        self.hasher.hash_one(text)
    }
}

impl Inner {
    /// The index of a stream's scope, created on first sight; beyond the
    /// cap, the `other` stream's.
    fn stream_index(&mut self, identity: &str, plan: &Plan, now_secs: u64) -> usize {
        if let Some(&index) = self.index.get(identity) {
            return index;
        }
        if !self.streams.is_empty() {
            // A second stream: the first one's tables stop mirroring the
            // global ones from here on.
            self.end_mirror(plan, now_secs);
        }
        let tracked = self.streams.len();
        if tracked + 1 < plan.stream_scopes || identity == OTHER_STREAM {
            self.streams
                .push((identity.into(), Scope::new(plan, plan.stream_sizes())));
            self.index.insert(identity.into(), tracked);
            return tracked;
        }
        self.streams_folded += 1;
        if let Some(&index) = self.index.get(OTHER_STREAM) {
            return index;
        }
        self.streams
            .push((OTHER_STREAM.into(), Scope::new(plan, plan.stream_sizes())));
        self.index.insert(OTHER_STREAM.into(), tracked);
        tracked
    }

    /// The scope of `stream`, or the global one for `None`; `None` for an
    /// unknown stream.
    /// Copies the global tables into the only stream's while it mirrors
    /// them.
    fn sync_mirror(&mut self, plan: &Plan) {
        if let (true, [(_, stream)]) = (self.mirror, self.streams.as_mut_slice()) {
            stream.copy_tables_from(&self.global, plan.stream_sizes());
        }
    }

    /// Gives the mirroring stream tables of its own, with what it counted
    /// so far (the updates still pending included), updated from now on.
    fn end_mirror(&mut self, plan: &Plan, now_secs: u64) {
        if !self.mirror {
            return;
        }
        self.pending
            .apply(now_secs, &mut self.global, &mut self.streams);
        self.sync_mirror(plan);
        self.mirror = false;
    }

    pub(crate) fn scope(&self, stream: Option<&str>) -> Option<&Scope> {
        match stream {
            None => Some(&self.global),
            Some(name) => self
                .index
                .get(name)
                .and_then(|&i| self.streams.get(i))
                .map(|(_, s)| s),
        }
    }
}

/// The counters of one message in one scope (the keyed tables are
/// [`batch::Pending`]'s).
fn record(scope: &mut Scope, o: &Observation<'_>, now: u64) {
    let direction = &mut scope.directions[o.direction];
    direction.messages += 1;
    direction.bytes += o.bytes;
    direction.transport[o.transport] += 1;
    direction.family[o.family] += 1;
    direction.rcode[usize::from(o.rcode & 0x0f)] += 1;
    if let Some(nanos) = o.latency {
        direction.latency[latency::bucket(nanos)] += 1;
        scope.latency.record(nanos);
        scope.paired += 1;
    }
    scope.clients.insert_hash(o.client_hash);
    scope.domains.insert_hash(o.name_hash);
    scope.rates.add(now, o.direction);
    // The keyed tables get their updates summed per batch (batch.rs).
}

/// A key cut to [`MAX_KEY_LEN`] bytes at a character boundary.
fn cut(text: &str) -> &str {
    if text.len() <= MAX_KEY_LEN {
        return text;
    }
    let mut end = MAX_KEY_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The TLD dnstap-receiver counts: of `qname.rsplit(".", 2)`, the last
/// part (left to right) that is a single label and a top-level domain.
pub fn tld_of(qname: &str) -> Option<&str> {
    qname
        .rsplitn(3, '.')
        .find(|part| !part.is_empty() && !part.contains('.') && is_tld(part))
}

/// Whether `label` is a top-level domain of the public suffix list.
pub fn is_tld(label: &str) -> bool {
    psl::suffix(label.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == label.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dnsrecall_core::message::{MessageKind, Origin};

    fn query(identity: &str, name: &str) -> DnsMessage {
        let mut wire = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.extend_from_slice(&[0, 0, 1, 0, 1]);
        DnsMessage {
            kind: MessageKind::from_value(5),
            identity: Some(Bytes::from(identity.to_string())),
            version: None,
            family: None,
            transport: None,
            query_address: None,
            query_port: None,
            response_address: None,
            response_port: None,
            query_time: None,
            response_time: None,
            query_zone: None,
            query_message: Some(wire.into()),
            response_message: None,
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    #[test]
    fn streams_beyond_the_cap_fold_into_other_and_reset_keeps_them() {
        let stats = Stats::new(StatsConfig {
            max_streams: 2,
            ..StatsConfig::default()
        })
        .unwrap();
        for identity in ["a", "b", "c", "d", "a"] {
            stats.observe_at(&query(identity, "www.example.com"), 0);
        }
        assert_eq!(stats.streams(), ["a", "b", "other"]);
        let other = stats.report_counters(Some("other")).unwrap();
        assert_eq!(other["queries"], 2);
        assert_eq!(stats.report_counters(Some("a")).unwrap()["queries"], 2);
        assert_eq!(stats.report_counters(None).unwrap()["queries"], 5);
        assert_eq!(
            stats.report_counters(None).unwrap()["streams_folded_into_other"],
            2
        );
        // A message without a DNS header is counted as malformed only.
        let mut short = query("a", "x");
        short.query_message = Some(Bytes::from_static(b"\x00\x01"));
        stats.observe_at(&short, 0);
        assert_eq!(stats.report_counters(None).unwrap()["malformed"], 1);
        stats.reset();
        assert_eq!(stats.streams(), ["a", "b", "other"]);
        assert_eq!(stats.report_counters(None).unwrap()["queries"], 0);
        assert!(stats.report_counters(Some("nope")).is_err());
    }

    #[test]
    fn tlds_like_dnstap_receiver() {
        assert_eq!(tld_of("www.example.com."), Some("com"));
        assert_eq!(tld_of("com."), Some("com"));
        assert_eq!(tld_of("a.b.co.uk."), Some("uk"));
        assert_eq!(tld_of("www.invalidtld."), None);
        assert_eq!(tld_of("com.example.invalidtld."), None);
        assert_eq!(tld_of("x.com.invalidtld."), None);
        assert_eq!(tld_of("com.example."), Some("com"));
        assert_eq!(tld_of("."), None);
        assert_eq!(tld_of("-"), None);
        assert_eq!(psl::domain_str("www.example.co.uk"), Some("example.co.uk"));
    }

    /// The names a stream's `qnames/query` table holds, with counts.
    fn names_of(stats: &Stats, stream: Option<&str>) -> Vec<(String, u64)> {
        let answer = stats
            .report_tables(stream, Window::SinceStart, 100, Some("qnames/query"))
            .unwrap();
        let table = &answer["tables"]["qnames/query"];
        assert_eq!(table["exact"], true, "{table}");
        let mut rows: Vec<(String, u64)> = table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["key"].as_str().unwrap().to_string(),
                    r["count"].as_u64().unwrap(),
                )
            })
            .collect();
        rows.sort();
        rows
    }

    #[test]
    fn the_only_stream_mirrors_the_global_tables_until_a_second_comes() {
        let stats = Stats::new(StatsConfig::default()).unwrap();
        let message =
            |identity: &str, i: usize| query(identity, &format!("n{}.example.com", i % 3));
        // One stream: its tables answer what the global ones do.
        let first: Vec<DnsMessage> = (0..30).map(|i| message("a", i)).collect();
        stats.observe_batch_at(&first, 0);
        let ten = |name: &str, n: u64| (format!("{name}.example.com."), n);
        let want = vec![ten("n0", 10), ten("n1", 10), ten("n2", 10)];
        assert_eq!(names_of(&stats, Some("a")), want);
        assert_eq!(names_of(&stats, None), want);
        // A second stream in the middle of a batch: what came before it in
        // the batch stays with the first stream, and each counts its own
        // from then on.
        let mut mixed: Vec<DnsMessage> = (0..6).map(|i| message("a", i)).collect();
        mixed.extend((0..3).map(|i| message("b", i)));
        mixed.extend((0..3).map(|i| message("a", i)));
        stats.observe_batch_at(&mixed, 1);
        assert_eq!(
            names_of(&stats, Some("a")),
            vec![ten("n0", 13), ten("n1", 13), ten("n2", 13)]
        );
        assert_eq!(
            names_of(&stats, Some("b")),
            vec![ten("n0", 1), ten("n1", 1), ten("n2", 1)]
        );
        assert_eq!(
            names_of(&stats, None),
            vec![ten("n0", 14), ten("n1", 14), ten("n2", 14)]
        );
        // After a reset, two streams are known: no mirroring.
        stats.reset();
        stats.observe_batch_at(&[message("b", 0)], 2);
        assert_eq!(names_of(&stats, Some("a")), vec![]);
        assert_eq!(names_of(&stats, Some("b")), vec![ten("n0", 1)]);
    }
}
