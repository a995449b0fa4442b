//! The table updates of one batch of messages, summed per key before they
//! reach the top-N tables.
//!
//! Why: a message updates about twenty keyed tables in each of its two
//! scopes (global and its stream), most of them windowed (three tables
//! each), and the tables by bytes are heaps (a sift per update). Measured
//! in `serve` (perf, realistic traffic), those updates were most of the
//! statistics thread's time, about 4 µs per message. Within a batch of up
//! to [`MAX_BATCH`] messages the same qtype, rcode, TLD, popular names and
//! busy clients come back again and again, so adding each key's summed
//! weight once per batch does the same counting with a fraction of the
//! updates. Weighted Space-Saving keeps its guarantees (a key's count is
//! overestimated by at most the smallest count held), and a key's count
//! is exact wherever it was before (tables that never evict).
//!
//! Bounded: [`Pending`] holds at most two entries per message of the
//! batch (its scope and the global one) per map, and
//! [`Stats::observe_batch_at`](crate::Stats::observe_batch_at) never
//! gives it more than [`MAX_BATCH`] messages before applying it.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::sync::Arc;

use crate::Observation;
use crate::scope::{QtypeKey, RCODE_TABLES, Scope};

/// Most messages summed before the sums are applied.
pub const MAX_BATCH: usize = 1024;

/// Where an update goes: the global scope or a stream's (by index).
pub(crate) type ScopeId = u32;
/// The global scope's id.
pub(crate) const GLOBAL: ScopeId = u32::MAX;

/// The keys are already hashes (foldhash of the key): used as they are.
#[derive(Default)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only (scope, hash) tuples are hashed, through write_u32/u64;
        // anything else still gets a usable mix.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u32(&mut self, scope: u32) {
        self.0 ^= u64::from(scope).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u64(&mut self, hash: u64) {
        self.0 ^= hash;
    }
}

type Map<V> = HashMap<(ScopeId, u64), V, BuildHasherDefault<PassThrough>>;
/// Per scope: one value per direction.
type PerScope<V> = HashMap<ScopeId, [V; 2], BuildHasherDefault<PassThrough>>;

/// A query name's summed updates in one scope.
struct NameSums {
    key: Arc<str>,
    /// Messages per direction.
    hits: [u64; 2],
    /// Bytes per direction.
    bytes: [u64; 2],
    /// Messages per direction and watched rcode ([`RCODE_TABLES`]).
    rcode_hits: [[u64; RCODE_TABLES.len()]; 2],
}

/// A client's summed updates in one scope.
struct ClientSums {
    key: Option<IpAddr>,
    hits: u64,
    bytes: u64,
}

/// The summed updates of the messages seen since the last [`Pending::apply`].
#[derive(Default)]
pub(crate) struct Pending {
    names: Map<NameSums>,
    clients: Map<ClientSums>,
    /// TLD → messages per direction.
    tlds: Map<(Arc<str>, [u64; 2])>,
    /// Registered domain → queries.
    registered: Map<(Arc<str>, u64)>,
    /// Per scope and direction: qtype → messages (a handful of qtypes: a
    /// list beats a map).
    qtypes: PerScope<Vec<(QtypeKey, u64)>>,
    /// Per scope: messages per direction and rcode.
    rcodes: PerScope<[u64; 16]>,
    /// The names and clients of [`Pending::apply`], grouped by scope (kept
    /// for their capacity).
    name_list: Vec<(ScopeId, u64, NameSums)>,
    client_list: Vec<(ScopeId, u64, ClientSums)>,
}

impl Pending {
    /// Adds one message's updates for `scope`.
    pub(crate) fn add(
        &mut self,
        scope: ScopeId,
        u: &Observation<'_>,
        shared_name: &mut Option<Arc<str>>,
    ) {
        let d = u.direction;
        let name = self
            .names
            .entry((scope, u.name_hash))
            .or_insert_with(|| NameSums {
                // One allocation of the name per batch, shared by the
                // scopes and by every table that stores it.
                key: shared_name.get_or_insert_with(|| u.qname.into()).clone(),
                hits: [0; 2],
                bytes: [0; 2],
                rcode_hits: [[0; RCODE_TABLES.len()]; 2],
            });
        name.hits[d] += 1;
        name.bytes[d] += u.bytes;
        if let Some(i) = RCODE_TABLES.iter().position(|(rcode, _)| *rcode == u.rcode) {
            name.rcode_hits[d][i] += 1;
        }
        let client = self
            .clients
            .entry((scope, u.client_hash))
            .or_insert(ClientSums {
                key: u.client,
                hits: 0,
                bytes: 0,
            });
        client.hits += 1;
        client.bytes += u.bytes;
        if let Some((tld, hash)) = u.tld {
            self.tlds
                .entry((scope, hash))
                .or_insert_with(|| (tld.into(), [0; 2]))
                .1[d] += 1;
        }
        if let Some((domain, hash)) = u.registered {
            self.registered
                .entry((scope, hash))
                .or_insert_with(|| (domain.into(), 0))
                .1 += 1;
        }
        let qtypes = &mut self.qtypes.entry(scope).or_default()[d];
        match qtypes.iter_mut().find(|(qtype, _)| *qtype == u.qtype) {
            Some((_, count)) => *count += 1,
            None => qtypes.push((u.qtype, 1)),
        }
        self.rcodes.entry(scope).or_insert([[0; 16]; 2])[d][usize::from(u.rcode & 0x0f)] += 1;
    }

    /// Adds the sums to the tables of their scopes (as seen `now` seconds
    /// after start) and empties itself, keeping its capacity (bounded by
    /// the batch size).
    pub(crate) fn apply(
        &mut self,
        now: u64,
        global: &mut Scope,
        streams: &mut [(Box<str>, Scope)],
    ) {
        // Table after table, not key after key (`Windowed::add_many`).
        by_scope(
            &mut self.names,
            &mut self.name_list,
            global,
            streams,
            |scope, group| {
                for d in 0..2 {
                    let seen = || group.iter().filter(move |(_, _, s)| s.hits[d] > 0);
                    scope.qname_hits[d]
                        .add_many(now, seen().map(|(_, h, s)| (*h, s.hits[d], &s.key)));
                    scope.qname_bytes[d]
                        .add_many(now, seen().map(|(_, h, s)| (*h, s.bytes[d], &s.key)));
                    for (i, table) in scope.qname_rcodes[d].iter_mut().enumerate() {
                        let items = group
                            .iter()
                            .filter(move |(_, _, s)| s.rcode_hits[d][i] > 0)
                            .map(move |(_, h, s)| (*h, s.rcode_hits[d][i], &s.key));
                        table.add_many(now, items);
                    }
                }
            },
        );
        by_scope(
            &mut self.clients,
            &mut self.client_list,
            global,
            streams,
            |scope, group| {
                let items = || group.iter().map(|(_, h, s)| (*h, s.hits, &s.key));
                scope.client_hits.add_many(now, items());
                let items = || group.iter().map(|(_, h, s)| (*h, s.bytes, &s.key));
                scope.client_bytes.add_many(now, items());
            },
        );
        for ((id, hash), (tld, counts)) in self.tlds.drain() {
            let Some(scope) = scope_of(id, global, streams) else {
                continue;
            };
            for (d, &count) in counts.iter().enumerate() {
                if count > 0 {
                    scope.tlds[d].add(now, hash, count, || tld.clone());
                }
            }
        }
        for ((id, hash), (domain, count)) in self.registered.drain() {
            let Some(scope) = scope_of(id, global, streams) else {
                continue;
            };
            scope.registered.add(now, hash, count, || domain.clone());
        }
        for (id, per_direction) in self.qtypes.iter_mut() {
            let Some(scope) = scope_of(*id, global, streams) else {
                continue;
            };
            for (d, qtypes) in per_direction.iter_mut().enumerate() {
                for (qtype, count) in qtypes.drain(..) {
                    scope.qtypes[d].add(now, u64::from(qtype), count, || qtype);
                }
            }
        }
        for (id, per_direction) in self.rcodes.iter_mut() {
            let Some(scope) = scope_of(*id, global, streams) else {
                continue;
            };
            for (d, counts) in per_direction.iter_mut().enumerate() {
                for (rcode, count) in counts.iter_mut().enumerate() {
                    if *count > 0 {
                        let rcode = rcode as u8;
                        scope.rcodes[d].add(now, u64::from(rcode), *count, || rcode);
                        *count = 0;
                    }
                }
            }
        }
    }
}

/// Drains `map` into `list` (emptied again after, kept for its capacity)
/// and calls `apply` once per scope with that scope's entries.
fn by_scope<V>(
    map: &mut Map<V>,
    list: &mut Vec<(ScopeId, u64, V)>,
    global: &mut Scope,
    streams: &mut [(Box<str>, Scope)],
    mut apply: impl FnMut(&mut Scope, &[(ScopeId, u64, V)]),
) {
    list.extend(map.drain().map(|((id, hash), value)| (id, hash, value)));
    list.sort_unstable_by_key(|(id, _, _)| *id);
    for group in list.chunk_by(|a, b| a.0 == b.0) {
        if let Some(scope) = group.first().and_then(|g| scope_of(g.0, global, streams)) {
            apply(scope, group);
        }
    }
    list.clear();
}

/// The scope an id names (`None` for a stream that is no longer there).
fn scope_of<'a>(
    id: ScopeId,
    global: &'a mut Scope,
    streams: &'a mut [(Box<str>, Scope)],
) -> Option<&'a mut Scope> {
    if id == GLOBAL {
        Some(global)
    } else {
        streams.get_mut(id as usize).map(|(_, scope)| scope)
    }
}
