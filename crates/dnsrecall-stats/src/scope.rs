//! What is counted for one stream, and for all streams together.

use std::net::IpAddr;
use std::sync::Arc;

use dnsrecall_core::message::{Family, Transport};

use crate::hll::HyperLogLog;
use crate::latency::{BUCKET_NAMES, Histogram};
use crate::plan::Plan;
use crate::spacesaving::{SpaceSaving, Tally};
use crate::window::Windowed;

/// A table by bytes: any weight, so a heap ([`SpaceSaving`]), since start
/// only.
pub type ByBytes<K> = Windowed<K, SpaceSaving<K>>;

/// Direction index: 0 queries, 1 responses.
pub const QUERY: usize = 0;
pub const RESPONSE: usize = 1;
/// dnstap-receiver's direction names.
pub const DIRECTIONS: [&str; 2] = ["query", "response"];

/// Rcodes given a qname table of their own, per direction (dnstap-receiver
/// `/tables` `<rcode>/<query|response>`).
pub const RCODE_TABLES: [(u8, &str); 4] = [
    (0, "noerror"),
    (3, "nxdomain"),
    (2, "servfail"),
    (5, "refused"),
];

/// Transports by index: 0 unknown, then dnstap's `SocketProtocol` values.
pub const TRANSPORTS: [&str; 8] = [
    "-",
    "udp",
    "tcp",
    "dot",
    "doh",
    "dnscryptudp",
    "dnscrypttcp",
    "doq",
];
/// Families by index.
pub const FAMILIES: [&str; 3] = ["-", "inet", "inet6"];

/// Key of the qtype tables: the type, or [`NO_QUESTION`].
pub type QtypeKey = u32;
/// Qtype key of a message without a question (dnstap-receiver's `-`).
pub const NO_QUESTION: QtypeKey = 0x1_0000;

/// Exact counters of one direction.
#[derive(Clone, Debug, Default)]
pub struct Direction {
    pub messages: u64,
    pub bytes: u64,
    pub transport: [u64; 8],
    pub family: [u64; 3],
    pub rcode: [u64; 16],
    /// dnstap-receiver's latency buckets (responses only).
    pub latency: [u64; BUCKET_NAMES.len()],
}

/// Per-second message counts for qps/rps.
#[derive(Clone, Debug)]
pub struct Rates {
    /// (second, queries, responses) in a ring indexed by second % 64.
    ring: [(u64, u64, u64); 64],
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            ring: [(u64::MAX, 0, 0); 64],
        }
    }
}

impl Rates {
    pub fn add(&mut self, now_secs: u64, direction: usize) {
        let slot = &mut self.ring[(now_secs % 64) as usize];
        if slot.0 != now_secs {
            *slot = (now_secs, 0, 0);
        }
        if direction == QUERY {
            slot.1 += 1;
        } else {
            slot.2 += 1;
        }
    }

    /// (queries, responses) in the last complete second.
    pub fn last_second(&self, now_secs: u64) -> (u64, u64) {
        let Some(second) = now_secs.checked_sub(1) else {
            return (0, 0);
        };
        let slot = self.ring[(second % 64) as usize];
        if slot.0 == second {
            (slot.1, slot.2)
        } else {
            (0, 0)
        }
    }

    /// Mean (queries, responses) per second over the last 60 complete
    /// seconds (fewer just after start).
    pub fn moving(&self, now_secs: u64) -> (f64, f64) {
        let span = now_secs.clamp(1, 60);
        let (mut q, mut r) = (0u64, 0u64);
        for &(second, queries, responses) in &self.ring {
            if second < now_secs && now_secs - second <= span {
                q += queries;
                r += responses;
            }
        }
        (q as f64 / span as f64, r as f64 / span as f64)
    }
}

/// Everything counted for one scope (a stream or all of them).
#[derive(Debug)]
pub struct Scope {
    pub directions: [Direction; 2],
    /// Messages skipped: no DNS message or shorter than a header.
    pub malformed: u64,
    pub clients: HyperLogLog,
    pub domains: HyperLogLog,
    pub rates: Rates,
    pub latency: Histogram,
    /// Responses paired with their query.
    pub paired: u64,
    /// TLD per direction.
    pub tlds: [Windowed<Arc<str>>; 2],
    /// Registered domains (public suffix list) of queries.
    pub registered: Windowed<Arc<str>>,
    /// Query names by messages, per direction.
    pub qname_hits: [Windowed<Arc<str>>; 2],
    /// Query names by bytes, per direction (since start only).
    pub qname_bytes: [ByBytes<Arc<str>>; 2],
    /// Query names per rcode of [`RCODE_TABLES`], per direction.
    pub qname_rcodes: [[Windowed<Arc<str>>; 4]; 2],
    /// Clients (initiator addresses, `None` when unknown) by messages.
    pub client_hits: Windowed<Option<IpAddr>>,
    /// Clients by bytes (since start only).
    pub client_bytes: ByBytes<Option<IpAddr>>,
    /// Query types per direction.
    pub qtypes: [Windowed<QtypeKey>; 2],
    /// Rcodes per direction.
    pub rcodes: [Windowed<u8>; 2],
}

/// Which tables a [`Scope`] has and how big they are.
#[derive(Clone, Copy, Debug)]
pub struct ScopeSizes {
    pub name_capacity: usize,
    pub client_capacity: usize,
    /// Per window slot; `None` without windows.
    pub slot_name_capacity: Option<usize>,
    pub slot_client_capacity: Option<usize>,
}

impl Scope {
    pub fn new(plan: &Plan, sizes: ScopeSizes) -> Scope {
        let names = || Windowed::new(sizes.name_capacity, sizes.slot_name_capacity);
        let clients = || Windowed::new(sizes.client_capacity, sizes.slot_client_capacity);
        // Tables by bytes are kept since start only: two fewer windowed
        // updates per message.
        let names_since_start = || ByBytes::new(sizes.name_capacity, None);
        let clients_since_start = || ByBytes::new(sizes.client_capacity, None);
        let windows = sizes.slot_name_capacity.is_some();
        let qtypes = || Windowed::new(plan.qtype_capacity, windows.then_some(plan.qtype_capacity));
        let rcodes = || Windowed::new(16, windows.then_some(16));
        Scope {
            directions: Default::default(),
            malformed: 0,
            clients: HyperLogLog::new(plan.hll_precision),
            domains: HyperLogLog::new(plan.hll_precision),
            rates: Rates::default(),
            latency: Histogram::default(),
            paired: 0,
            tlds: [names(), names()],
            registered: names(),
            qname_hits: [names(), names()],
            qname_bytes: [names_since_start(), names_since_start()],
            qname_rcodes: [
                [names(), names(), names(), names()],
                [names(), names(), names(), names()],
            ],
            client_hits: clients(),
            client_bytes: clients_since_start(),
            qtypes: [qtypes(), qtypes()],
            rcodes: [rcodes(), rcodes()],
        }
    }

    /// Every name-keyed table of unit weight.
    pub fn name_tables(&self) -> impl Iterator<Item = &Windowed<Arc<str>>> {
        self.tlds
            .iter()
            .chain(std::iter::once(&self.registered))
            .chain(self.qname_hits.iter())
            .chain(self.qname_rcodes.iter().flatten())
    }

    /// Bytes the tables hold now (keys measured, fixed costs per entry).
    pub fn used_bytes(&self) -> u64 {
        let mut bytes = (self.clients.size_bytes() + self.domains.size_bytes()) as u64
            + Histogram::SIZE_BYTES as u64
            + std::mem::size_of::<Scope>() as u64;
        for table in self.name_tables() {
            for sketch in table.tables() {
                bytes += key_bytes(sketch.entries());
            }
        }
        for table in &self.qname_bytes {
            for sketch in table.tables() {
                bytes += key_bytes(sketch.entries());
            }
        }
        let clients = self.client_hits.tables().map(Tally::len).sum::<usize>()
            + self.client_bytes.tables().map(Tally::len).sum::<usize>();
        bytes += (clients * crate::plan::CLIENT_ENTRY_BYTES) as u64;
        for table in &self.qtypes {
            for sketch in table.tables() {
                bytes += (sketch.len() * crate::plan::SMALL_ENTRY_BYTES) as u64;
            }
        }
        bytes
    }

    /// Keys held in all tables (for `/metrics`).
    pub fn table_entries(&self) -> u64 {
        let names: usize = self
            .name_tables()
            .flat_map(|t| t.tables())
            .map(Tally::len)
            .sum::<usize>()
            + self
                .qname_bytes
                .iter()
                .flat_map(|t| t.tables())
                .map(Tally::len)
                .sum::<usize>();
        let clients = self.client_hits.tables().map(Tally::len).sum::<usize>()
            + self.client_bytes.tables().map(Tally::len).sum::<usize>();
        (names + clients) as u64
    }

    pub fn clear(&mut self) {
        self.directions = Default::default();
        self.malformed = 0;
        self.clients.clear();
        self.domains.clear();
        self.rates = Rates::default();
        self.latency.clear();
        self.paired = 0;
        for table in self
            .tlds
            .iter_mut()
            .chain(std::iter::once(&mut self.registered))
            .chain(self.qname_hits.iter_mut())
            .chain(self.qname_rcodes.iter_mut().flatten())
        {
            table.clear();
        }
        self.qname_bytes.iter_mut().for_each(ByBytes::clear);
        self.client_hits.clear();
        self.client_bytes.clear();
        self.qtypes.iter_mut().for_each(Windowed::clear);
        self.rcodes.iter_mut().for_each(Windowed::clear);
    }

    /// Makes this scope's keyed tables copies of `from`'s since-start ones,
    /// cut to `sizes` ([`Windowed::since_start_copy`]); its counters stay.
    /// For a stream that has seen exactly what `from` (the global scope)
    /// has: see `Inner::mirror` in lib.rs.
    pub fn copy_tables_from(&mut self, from: &Scope, sizes: ScopeSizes) {
        // Every field named, none with `..`: a table added to Scope must
        // be added here too, or this stops compiling.
        let Scope {
            directions: _,
            malformed: _,
            clients: _,
            domains: _,
            rates: _,
            latency: _,
            paired: _,
            tlds,
            registered,
            qname_hits,
            qname_bytes,
            qname_rcodes,
            client_hits,
            client_bytes,
            qtypes,
            rcodes,
        } = from;
        let names = sizes.name_capacity;
        let clients = sizes.client_capacity;
        self.tlds = tlds.each_ref().map(|t| t.since_start_copy(names));
        self.registered = registered.since_start_copy(names);
        self.qname_hits = qname_hits.each_ref().map(|t| t.since_start_copy(names));
        self.qname_bytes = qname_bytes.each_ref().map(|t| t.since_start_copy(names));
        self.qname_rcodes = qname_rcodes
            .each_ref()
            .map(|d| d.each_ref().map(|t| t.since_start_copy(names)));
        self.client_hits = client_hits.since_start_copy(clients);
        self.client_bytes = client_bytes.since_start_copy(clients);
        self.qtypes = qtypes
            .each_ref()
            .map(|t| t.since_start_copy(t.since_start().capacity()));
        self.rcodes = rcodes
            .each_ref()
            .map(|t| t.since_start_copy(t.since_start().capacity()));
    }
}

/// Bytes of name-table entries: the fixed cost and the key.
fn key_bytes<'a>(entries: impl Iterator<Item = &'a crate::spacesaving::Counted<Arc<str>>>) -> u64 {
    entries
        .map(|e| (crate::plan::ENTRY_OVERHEAD + e.key.len()) as u64)
        .sum()
}

/// Transport index of [`TRANSPORTS`].
pub fn transport_index(transport: Option<Transport>) -> usize {
    transport.map_or(0, |t| usize::try_from(t.value()).unwrap_or(0).min(7))
}

/// Family index of [`FAMILIES`].
pub fn family_index(family: Option<Family>) -> usize {
    match family {
        None => 0,
        Some(Family::Inet) => 1,
        Some(Family::Inet6) => 2,
    }
}
