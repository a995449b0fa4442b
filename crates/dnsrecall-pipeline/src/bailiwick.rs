//! Bailiwick verification: which zone vouched for each record.
//!
//! Per `reference/dnsdb.md` §3.3, the bailiwick of a record is the closest
//! enclosing zone delegated to a name server that served it. For one
//! response, [`BailiwickVerifier::verify`]:
//!
//! 1. with a dnstap `query_zone`: the zone is the bailiwick; records at or
//!    under it are kept, others are out of bailiwick;
//! 2. else, with the server's address: reconstructs it. The verifier keeps
//!    `zone → NS names`, `NS name → addresses` and the reverse index
//!    `address → zones served`, seeded with the root hints. A record's
//!    bailiwick is the deepest ancestor-or-self of its name that the server
//!    is known to serve (one hash probe per label); with none, the record is
//!    out of bailiwick;
//! 3. else (no server known, e.g. passivedns logs, or a recursive server
//!    answering a stub, see [`ResponseMeta::recursive`]): unverifiable.
//!
//! All records of a response are checked against the state from *before*
//! the response. Only then does the verifier learn from the records it
//! accepted: NS records install `zone → NS name`, then A/AAAA records of
//! names some zone lists as a name server install addresses. So a message
//! can never vouch for itself, while a referral (NS + glue checked against
//! the parent's servers) teaches the child zone for the next message.
//!
//! Learned state is bounded (zones, name servers; at most 16 NS names per
//! zone and 16 addresses per name) with FIFO eviction, and expires by age
//! on the response clock (`max_age_secs`). Hints never expire or leave.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use dnsrecall_core::rdata::rdata_target_name;
use dnsrecall_core::{Entry, Name, Rdata, Rtype};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hash::{FastMap, FastSet};
use crate::meta::ResponseMeta;
use crate::metrics::{Counter, MetricSample};

/// The IANA root hints (`named.root`), built in.
pub const BUILTIN_ROOT_HINTS: &str = include_str!("../data/named.root");

/// Longest age accepted for `max_age_secs`: 7 days.
pub const MAX_AGE_CAP_SECS: u64 = 7 * 86_400;

/// Most NS names remembered per zone.
const MAX_NS_PER_ZONE: usize = 16;
/// Most addresses remembered per name server.
const MAX_ADDRS_PER_NS: usize = 16;
/// "Seen at" of hints: never stale.
const PINNED: u64 = u64::MAX;

//---- BailiwickConfig ----

/// What to do with records whose bailiwick cannot be checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnverifiablePolicy {
    /// Keep them with no bailiwick.
    #[default]
    Keep,
    /// Drop them.
    Drop,
}

/// What to do with records the server is not known to be authoritative for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OutOfBailiwickPolicy {
    /// Drop them (the poisoning defence).
    #[default]
    Drop,
    /// Keep them with no bailiwick.
    Keep,
}

/// Configuration of bailiwick verification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BailiwickConfig {
    /// Hints file in `named.root` format (NS, A and AAAA lines) that seeds
    /// reconstruction. Default: the built-in IANA root hints.
    #[serde(default)]
    pub root_hints: Option<PathBuf>,
    /// Records of responses whose server address is unknown: `keep` (with
    /// no bailiwick) or `drop`. Default: `keep`.
    #[serde(default)]
    pub unverifiable: UnverifiablePolicy,
    /// Records outside every zone the server is known to serve (or outside
    /// `query_zone`): `drop` or `keep` (with no bailiwick). Default: `drop`.
    #[serde(default)]
    pub out_of_bailiwick: OutOfBailiwickPolicy,
    /// Learned delegations older than this many seconds are forgotten.
    /// Default: 86400 (1 day); values above 604800 (7 days) are capped.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// Most zones remembered (hints not counted). Default: 200,000.
    #[serde(default = "default_max_zones")]
    pub max_zones: usize,
    /// Most name servers remembered (hints not counted). Default: 200,000.
    #[serde(default = "default_max_nameservers")]
    pub max_nameservers: usize,
}

fn default_max_age_secs() -> u64 {
    86_400
}
fn default_max_zones() -> usize {
    200_000
}
fn default_max_nameservers() -> usize {
    200_000
}

impl Default for BailiwickConfig {
    fn default() -> Self {
        BailiwickConfig {
            root_hints: None,
            unverifiable: UnverifiablePolicy::default(),
            out_of_bailiwick: OutOfBailiwickPolicy::default(),
            max_age_secs: default_max_age_secs(),
            max_zones: default_max_zones(),
            max_nameservers: default_max_nameservers(),
        }
    }
}

//---- Hints ----

/// Static delegations that seed reconstruction: `zone NS name` and
/// `name A|AAAA address` lines in zone-file (`named.root`) syntax.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hints {
    /// (zone, NS name) pairs.
    pub delegations: Vec<(Name, Name)>,
    /// (name server, address) pairs.
    pub addresses: Vec<(Name, IpAddr)>,
}

impl Hints {
    /// The built-in IANA root hints.
    pub fn builtin() -> Hints {
        // The built-in file is tested to parse; an empty seed is the safe
        // fallback (everything unverifiable is out of bailiwick).
        Hints::parse(Path::new("<builtin named.root>"), BUILTIN_ROOT_HINTS).unwrap_or_default()
    }

    /// Reads a hints file.
    pub fn from_file(path: &Path) -> Result<Hints, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Hints::parse(path, &text)
    }

    /// Parses hints text: `owner [ttl] [IN] NS|A|AAAA rdata`, `;` comments.
    pub fn parse(origin: &Path, text: &str) -> Result<Hints, Error> {
        let mut hints = Hints::default();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.split(';').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let error = |reason: String| Error::Parse {
                path: origin.to_path_buf(),
                line: index + 1,
                reason,
            };
            let tokens: Vec<&str> = line.split_whitespace().collect();
            let (owner, rest) = tokens
                .split_first()
                .ok_or_else(|| error("empty line".into()))?;
            let mut rest = rest;
            while let Some((first, tail)) = rest.split_first() {
                if first.bytes().all(|b| b.is_ascii_digit()) || first.eq_ignore_ascii_case("IN") {
                    rest = tail;
                } else {
                    break;
                }
            }
            let [rtype, value] = rest else {
                return Err(error(format!(
                    "expected `owner [ttl] [IN] type rdata`, got {line:?}"
                )));
            };
            let owner = Name::from_presentation(owner)
                .map_err(|e| error(format!("bad owner {owner:?}: {e}")))?;
            match rtype.to_ascii_uppercase().as_str() {
                "NS" => {
                    let target = Name::from_presentation(value)
                        .map_err(|e| error(format!("bad NS name {value:?}: {e}")))?;
                    hints.delegations.push((owner, target));
                }
                "A" | "AAAA" => {
                    let address: IpAddr = value
                        .parse()
                        .map_err(|_| error(format!("bad address {value:?}")))?;
                    if address.is_ipv4() != rtype.eq_ignore_ascii_case("A") {
                        return Err(error(format!("{value} is not an {rtype} address")));
                    }
                    hints.addresses.push((owner, address));
                }
                other => return Err(error(format!("unsupported hint type {other}"))),
            }
        }
        Ok(hints)
    }
}

//---- BailiwickMetrics ----

/// Counters of the bailiwick stage.
#[derive(Debug, Default)]
pub struct BailiwickMetrics {
    /// Entries checked.
    pub input: Counter,
    /// Entries passed on.
    pub output: Counter,
    /// Kept, bailiwick from dnstap `query_zone`.
    pub verified_query_zone: Counter,
    /// Kept, bailiwick reconstructed from learned delegations.
    pub verified_reconstructed: Counter,
    /// Dropped: outside every zone the server serves.
    pub out_of_bailiwick: Counter,
    /// Kept with no bailiwick although out of bailiwick (`out_of_bailiwick = keep`).
    pub out_of_bailiwick_kept: Counter,
    /// Kept with no bailiwick: no server address known.
    pub unverifiable_kept: Counter,
    /// Dropped: no server address known (`unverifiable = drop`).
    pub unverifiable_dropped: Counter,
    /// Zone → NS name links learned (new, not refreshed).
    pub learned_delegations: Counter,
    /// Name server addresses learned (new, not refreshed).
    pub learned_addresses: Counter,
    /// Zones and name servers evicted to stay within bounds.
    pub evictions: Counter,
    /// Links and addresses forgotten by age.
    pub expired: Counter,
    /// Zones known now (gauge).
    pub zones: Counter,
    /// Name servers known now (gauge).
    pub nameservers: Counter,
}

impl BailiwickMetrics {
    /// Name, help and value of every counter.
    pub fn snapshot(&self) -> Vec<MetricSample> {
        vec![
            (
                "dnsrecall_pipeline_bailiwick_in_total",
                "Entries checked by bailiwick verification.",
                self.input.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_out_total",
                "Entries passed by bailiwick verification.",
                self.output.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_verified_query_zone_total",
                "Entries whose bailiwick is the dnstap query_zone.",
                self.verified_query_zone.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_verified_reconstructed_total",
                "Entries whose bailiwick was reconstructed.",
                self.verified_reconstructed.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_out_of_bailiwick_total",
                "Entries dropped as out of bailiwick.",
                self.out_of_bailiwick.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_out_of_bailiwick_kept_total",
                "Out-of-bailiwick entries kept without bailiwick.",
                self.out_of_bailiwick_kept.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_unverifiable_kept_total",
                "Entries kept without bailiwick: no server address.",
                self.unverifiable_kept.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_unverifiable_dropped_total",
                "Entries dropped: no server address.",
                self.unverifiable_dropped.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_learned_delegations_total",
                "Zone to name server links learned.",
                self.learned_delegations.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_learned_addresses_total",
                "Name server addresses learned.",
                self.learned_addresses.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_evictions_total",
                "Zones and name servers evicted by the size bound.",
                self.evictions.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_expired_total",
                "Links and addresses forgotten by age.",
                self.expired.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_zones",
                "Zones known to the bailiwick cache.",
                self.zones.get(),
            ),
            (
                "dnsrecall_pipeline_bailiwick_nameservers",
                "Name servers known to the bailiwick cache.",
                self.nameservers.get(),
            ),
        ]
    }
}

//---- BailiwickVerifier ----

/// A wire name shared between the maps.
type Key = Arc<[u8]>;

#[derive(Debug, Default)]
struct ZoneState {
    /// NS names with the time they were last seen.
    ns: Vec<(Key, u64)>,
    pinned: bool,
}

#[derive(Debug, Default)]
struct NsState {
    addrs: Vec<(IpAddr, u64)>,
    pinned: bool,
}

/// The bailiwick cache and the verification rules; see the module docs.
pub struct BailiwickVerifier {
    zones: FastMap<Key, ZoneState>,
    nameservers: FastMap<Key, NsState>,
    /// NS name → zones listing it.
    ns_zones: FastMap<Key, FastSet<Key>>,
    /// Address → zone → number of (NS name, address) links behind it.
    served: FastMap<IpAddr, FastMap<Key, u32>>,
    zone_fifo: VecDeque<Key>,
    ns_fifo: VecDeque<Key>,
    pinned_zones: usize,
    pinned_nameservers: usize,
    config: BailiwickConfig,
    now: u64,
    last_sweep: u64,
    metrics: Arc<BailiwickMetrics>,
}

/// Verdict for one record against the pre-message state.
enum Check {
    Zone(usize),
    Outside,
}

impl BailiwickVerifier {
    /// A verifier seeded with the configured hints (the built-in root hints
    /// unless `root_hints` names a file).
    pub fn new(config: &BailiwickConfig) -> Result<BailiwickVerifier, Error> {
        let hints = match &config.root_hints {
            Some(path) => Hints::from_file(path)?,
            None => Hints::builtin(),
        };
        Ok(Self::with_hints(config, &hints))
    }

    /// A verifier seeded with `hints` (the config's `root_hints` ignored).
    pub fn with_hints(config: &BailiwickConfig, hints: &Hints) -> BailiwickVerifier {
        let mut config = config.clone();
        if config.max_age_secs > MAX_AGE_CAP_SECS {
            tracing::warn!(
                max_age_secs = config.max_age_secs,
                cap = MAX_AGE_CAP_SECS,
                "bailiwick max age capped"
            );
            config.max_age_secs = MAX_AGE_CAP_SECS;
        }
        let mut verifier = BailiwickVerifier {
            zones: FastMap::default(),
            nameservers: FastMap::default(),
            ns_zones: FastMap::default(),
            served: FastMap::default(),
            zone_fifo: VecDeque::new(),
            ns_fifo: VecDeque::new(),
            pinned_zones: 0,
            pinned_nameservers: 0,
            config,
            now: 0,
            last_sweep: 0,
            metrics: Arc::new(BailiwickMetrics::default()),
        };
        for (zone, ns) in &hints.delegations {
            verifier.install_ns(zone.as_wire(), ns.as_wire(), PINNED);
        }
        for (ns, address) in &hints.addresses {
            verifier.install_address(ns.as_wire(), *address, PINNED);
        }
        verifier.publish();
        verifier
    }

    /// The stage's counters.
    pub fn metrics(&self) -> Arc<BailiwickMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The zones `server` is currently known to serve, deepest first within
    /// no particular order (for tests and diagnostics).
    pub fn zones_served_by(&self, server: IpAddr) -> Vec<Name> {
        let mut zones: Vec<Name> = self
            .served
            .get(&server)
            .into_iter()
            .flat_map(|zones| zones.keys())
            .filter(|zone| self.confirm(server, zone))
            .filter_map(|zone| Name::from_wire(zone).ok())
            .collect();
        zones.sort();
        zones
    }

    /// Verifies one response's entries in place: kept entries get their
    /// bailiwick set (or cleared), dropped ones are removed. Then learns from
    /// the accepted records.
    pub fn verify(&mut self, entries: &mut Vec<Entry>, meta: &ResponseMeta) {
        self.now = self.now.max(meta.time);
        let metrics = Arc::clone(&self.metrics);
        metrics.input.add(entries.len() as u64);
        let out_of_bailiwick = self.config.out_of_bailiwick;
        let mut oob = 0u64;
        let mut oob_kept = 0u64;
        let mut verified = 0u64;
        if let Some(zone) = &meta.query_zone {
            entries.retain_mut(|entry| {
                if entry.record.rrname.is_subdomain_of(zone) {
                    // Decoders usually set it already: no new allocation then.
                    if entry.record.bailiwick.as_ref() != Some(zone) {
                        entry.record.bailiwick = Some(zone.clone());
                    }
                    verified += 1;
                    return true;
                }
                entry.record.bailiwick = None;
                match out_of_bailiwick {
                    OutOfBailiwickPolicy::Drop => {
                        oob += 1;
                        false
                    }
                    OutOfBailiwickPolicy::Keep => {
                        oob_kept += 1;
                        true
                    }
                }
            });
            metrics.verified_query_zone.add(verified);
        } else if let Some(server) = meta.server.filter(|_| !meta.recursive) {
            entries.retain_mut(|entry| {
                if let Check::Zone(offset) = self.check(server, entry.record.rrname.as_wire())
                    && let Some(zone) = entry.record.rrname.as_wire().get(offset..)
                    && let Ok(zone) = Name::from_wire(zone)
                {
                    entry.record.bailiwick = Some(zone);
                    verified += 1;
                    return true;
                }
                entry.record.bailiwick = None;
                match out_of_bailiwick {
                    OutOfBailiwickPolicy::Drop => {
                        oob += 1;
                        false
                    }
                    OutOfBailiwickPolicy::Keep => {
                        oob_kept += 1;
                        true
                    }
                }
            });
            metrics.verified_reconstructed.add(verified);
        } else {
            for entry in entries.iter_mut() {
                entry.record.bailiwick = None;
            }
            match self.config.unverifiable {
                UnverifiablePolicy::Keep => metrics.unverifiable_kept.add(entries.len() as u64),
                UnverifiablePolicy::Drop => {
                    metrics.unverifiable_dropped.add(entries.len() as u64);
                    entries.clear();
                }
            }
        }
        metrics.out_of_bailiwick.add(oob);
        metrics.out_of_bailiwick_kept.add(oob_kept);
        metrics.output.add(entries.len() as u64);
        // Learning happens strictly after every record was checked, and
        // only from servers that answer for zones (never from a recursive
        // resolver's answers).
        if meta.server.is_some() && !meta.recursive {
            self.learn(entries);
        }
        self.maybe_sweep();
        self.publish();
    }

    /// Offset in `rrname` of the deepest ancestor-or-self zone `server` is
    /// known (and still fresh) to serve.
    fn check(&self, server: IpAddr, rrname: &[u8]) -> Check {
        let Some(zones) = self.served.get(&server) else {
            return Check::Outside;
        };
        let mut pos = 0;
        while let Some(suffix) = rrname.get(pos..) {
            if zones.contains_key(suffix) && self.confirm(server, suffix) {
                return Check::Zone(pos);
            }
            match suffix.first() {
                Some(&len) if len != 0 => pos += usize::from(len) + 1,
                _ => break,
            }
        }
        Check::Outside
    }

    /// Whether `zone` has a fresh NS name with a fresh address `server`
    /// (the reverse index may still hold links that have aged out).
    fn confirm(&self, server: IpAddr, zone: &[u8]) -> bool {
        let Some(state) = self.zones.get(zone) else {
            return false;
        };
        state.ns.iter().any(|(ns, seen)| {
            self.fresh(*seen)
                && self.nameservers.get(ns).is_some_and(|ns| {
                    ns.addrs
                        .iter()
                        .any(|(addr, seen)| *addr == server && self.fresh(*seen))
                })
        })
    }

    fn fresh(&self, seen: u64) -> bool {
        self.now.saturating_sub(seen) <= self.config.max_age_secs
    }

    /// Learns delegations and addresses from accepted (verified) entries.
    fn learn(&mut self, entries: &[Entry]) {
        let now = self.now;
        for entry in entries
            .iter()
            .filter(|e| e.record.bailiwick.is_some() && e.record.rrtype == Rtype::NS)
        {
            if let Rdata::Wire(wire) = &entry.record.rdata
                && let Some(target) = rdata_target_name(Rtype::NS, wire)
            {
                let target = target.to_ascii_lowercase();
                self.install_ns(entry.record.rrname.as_wire(), &target, now);
            }
        }
        for entry in entries.iter().filter(|e| e.record.bailiwick.is_some()) {
            let address = match (&entry.record.rdata, entry.record.rrtype) {
                (Rdata::Wire(wire), Rtype::A) => {
                    <[u8; 4]>::try_from(&wire[..]).ok().map(IpAddr::from)
                }
                (Rdata::Wire(wire), Rtype::AAAA) => {
                    <[u8; 16]>::try_from(&wire[..]).ok().map(IpAddr::from)
                }
                _ => None,
            };
            if let Some(address) = address
                && self.ns_zones.contains_key(entry.record.rrname.as_wire())
            {
                self.install_address(entry.record.rrname.as_wire(), address, now);
            }
        }
    }

    /// Adds or refreshes `zone → ns`.
    fn install_ns(&mut self, zone: &[u8], ns: &[u8], seen: u64) {
        let pinned = seen == PINNED;
        if !self.zones.contains_key(zone) {
            if !pinned {
                self.make_room_for_zone();
            }
            let key: Key = zone.into();
            if pinned {
                self.pinned_zones += 1;
            } else {
                self.zone_fifo.push_back(Arc::clone(&key));
            }
            self.zones.insert(
                key,
                ZoneState {
                    ns: Vec::new(),
                    pinned,
                },
            );
        }
        let Some((zone_key, state)) = self.zones.get_key_value_mut(zone) else {
            return;
        };
        let zone_key = Arc::clone(zone_key);
        if let Some(link) = state.ns.iter_mut().find(|(name, _)| **name == *ns) {
            link.1 = link.1.max(seen);
            return;
        }
        let ns_key: Key = self
            .ns_zones
            .get_key_value(ns)
            .map_or_else(|| ns.into(), |(k, _)| Arc::clone(k));
        let replaced = if state.ns.len() >= MAX_NS_PER_ZONE {
            // Replace the link seen longest ago.
            let oldest = state
                .ns
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(i, _)| i);
            oldest.map(|i| std::mem::replace(&mut state.ns[i], (Arc::clone(&ns_key), seen)).0)
        } else {
            state.ns.push((Arc::clone(&ns_key), seen));
            None
        };
        if let Some(old) = replaced {
            self.unlink(&zone_key, &old);
        }
        self.link(&zone_key, &ns_key);
        self.metrics.learned_delegations.add(1);
    }

    /// Adds or refreshes `ns → address`.
    fn install_address(&mut self, ns: &[u8], address: IpAddr, seen: u64) {
        let pinned = seen == PINNED;
        if !self.nameservers.contains_key(ns) {
            if !pinned {
                self.make_room_for_nameserver();
            }
            let key: Key = self
                .ns_zones
                .get_key_value(ns)
                .map_or_else(|| ns.into(), |(k, _)| Arc::clone(k));
            if pinned {
                self.pinned_nameservers += 1;
            } else {
                self.ns_fifo.push_back(Arc::clone(&key));
            }
            self.nameservers.insert(
                key,
                NsState {
                    addrs: Vec::new(),
                    pinned,
                },
            );
        }
        let Some((ns_key, state)) = self.nameservers.get_key_value_mut(ns) else {
            return;
        };
        let ns_key = Arc::clone(ns_key);
        if let Some(known) = state.addrs.iter_mut().find(|(a, _)| *a == address) {
            known.1 = known.1.max(seen);
            return;
        }
        let replaced = if state.addrs.len() >= MAX_ADDRS_PER_NS {
            let oldest = state
                .addrs
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(i, _)| i);
            oldest.map(|i| std::mem::replace(&mut state.addrs[i], (address, seen)).0)
        } else {
            state.addrs.push((address, seen));
            None
        };
        let zones: Vec<Key> = self
            .ns_zones
            .get(&*ns_key)
            .map(|z| z.iter().cloned().collect())
            .unwrap_or_default();
        for zone in &zones {
            if let Some(old) = replaced {
                self.served_dec(old, zone);
            }
            self.served_inc(address, zone);
        }
        self.metrics.learned_addresses.add(1);
    }

    /// Records that `zone` lists `ns`: every address of `ns` now serves it.
    fn link(&mut self, zone: &Key, ns: &Key) {
        self.ns_zones
            .entry(Arc::clone(ns))
            .or_default()
            .insert(Arc::clone(zone));
        let addrs: Vec<IpAddr> = self
            .nameservers
            .get(&**ns)
            .map(|s| s.addrs.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default();
        for address in addrs {
            self.served_inc(address, zone);
        }
    }

    /// Undoes [`Self::link`].
    fn unlink(&mut self, zone: &Key, ns: &Key) {
        if let Some(zones) = self.ns_zones.get_mut(&**ns) {
            zones.remove(&**zone);
            if zones.is_empty() {
                self.ns_zones.remove(&**ns);
            }
        }
        let addrs: Vec<IpAddr> = self
            .nameservers
            .get(&**ns)
            .map(|s| s.addrs.iter().map(|(a, _)| *a).collect())
            .unwrap_or_default();
        for address in addrs {
            self.served_dec(address, zone);
        }
    }

    fn served_inc(&mut self, address: IpAddr, zone: &Key) {
        *self
            .served
            .entry(address)
            .or_default()
            .entry(Arc::clone(zone))
            .or_insert(0) += 1;
    }

    fn served_dec(&mut self, address: IpAddr, zone: &Key) {
        if let Some(zones) = self.served.get_mut(&address) {
            if let Some(count) = zones.get_mut(&**zone) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    zones.remove(&**zone);
                }
            }
            if zones.is_empty() {
                self.served.remove(&address);
            }
        }
    }

    fn remove_zone(&mut self, zone: &[u8]) {
        if let Some((key, state)) = self.zones.remove_entry(zone) {
            for (ns, _) in &state.ns {
                self.unlink(&key, ns);
            }
        }
    }

    fn remove_nameserver(&mut self, ns: &[u8]) {
        if let Some((key, state)) = self.nameservers.remove_entry(ns) {
            let zones: Vec<Key> = self
                .ns_zones
                .get(&*key)
                .map(|z| z.iter().cloned().collect())
                .unwrap_or_default();
            for (address, _) in &state.addrs {
                for zone in &zones {
                    self.served_dec(*address, zone);
                }
            }
        }
    }

    fn make_room_for_zone(&mut self) {
        while self.zones.len() - self.pinned_zones >= self.config.max_zones {
            let Some(victim) = self.zone_fifo.pop_front() else {
                break;
            };
            // Stale queue items (already expired) are skipped.
            if self.zones.get(&*victim).is_some_and(|z| !z.pinned) {
                self.remove_zone(&victim);
                self.metrics.evictions.add(1);
            }
        }
        if self.zone_fifo.len() > 2 * self.zones.len() + 64 {
            let zones = &self.zones;
            self.zone_fifo.retain(|k| zones.contains_key(&**k));
        }
    }

    fn make_room_for_nameserver(&mut self) {
        while self.nameservers.len() - self.pinned_nameservers >= self.config.max_nameservers {
            let Some(victim) = self.ns_fifo.pop_front() else {
                break;
            };
            if self.nameservers.get(&*victim).is_some_and(|n| !n.pinned) {
                self.remove_nameserver(&victim);
                self.metrics.evictions.add(1);
            }
        }
        if self.ns_fifo.len() > 2 * self.nameservers.len() + 64 {
            let nameservers = &self.nameservers;
            self.ns_fifo.retain(|k| nameservers.contains_key(&**k));
        }
    }

    /// Forgets stale links and addresses, at most once a minute of
    /// response time (lookups check freshness themselves meanwhile).
    fn maybe_sweep(&mut self) {
        if self.now.saturating_sub(self.last_sweep) >= 60 {
            self.sweep();
        }
    }

    /// Forgets every link and address older than `max_age_secs`.
    pub fn sweep(&mut self) {
        self.last_sweep = self.now;
        let stale_links: Vec<(Key, Key)> = self
            .zones
            .iter()
            .flat_map(|(zone, state)| {
                state
                    .ns
                    .iter()
                    .filter(|(_, seen)| !self.fresh(*seen))
                    .map(move |(ns, _)| (Arc::clone(zone), Arc::clone(ns)))
            })
            .collect();
        for (zone, ns) in &stale_links {
            if let Some(state) = self.zones.get_mut(&**zone) {
                state.ns.retain(|(name, _)| name != ns);
                let empty = state.ns.is_empty() && !state.pinned;
                self.unlink(zone, ns);
                if empty {
                    self.zones.remove(&**zone);
                }
            }
        }
        let stale_addrs: Vec<(Key, IpAddr)> = self
            .nameservers
            .iter()
            .flat_map(|(ns, state)| {
                state
                    .addrs
                    .iter()
                    .filter(|(_, seen)| !self.fresh(*seen))
                    .map(move |(a, _)| (Arc::clone(ns), *a))
            })
            .collect();
        for (ns, address) in &stale_addrs {
            if let Some(state) = self.nameservers.get_mut(&**ns) {
                state.addrs.retain(|(a, _)| a != address);
                let empty = state.addrs.is_empty() && !state.pinned;
                let zones: Vec<Key> = self
                    .ns_zones
                    .get(&**ns)
                    .map(|z| z.iter().cloned().collect())
                    .unwrap_or_default();
                for zone in &zones {
                    self.served_dec(*address, zone);
                }
                if empty {
                    self.nameservers.remove(&**ns);
                }
            }
        }
        self.metrics
            .expired
            .add((stale_links.len() + stale_addrs.len()) as u64);
        self.publish();
    }

    fn publish(&self) {
        self.metrics.zones.set(self.zones.len() as u64);
        self.metrics.nameservers.set(self.nameservers.len() as u64);
    }
}

impl std::fmt::Debug for BailiwickVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BailiwickVerifier")
            .field("zones", &self.zones.len())
            .field("nameservers", &self.nameservers.len())
            .field("addresses", &self.served.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_root_hints_have_13_servers() {
        let hints = Hints::parse(Path::new("named.root"), BUILTIN_ROOT_HINTS).unwrap();
        assert_eq!(hints.delegations.len(), 13);
        assert!(hints.delegations.iter().all(|(zone, _)| zone.is_root()));
        assert_eq!(
            hints.addresses.iter().filter(|(_, a)| a.is_ipv4()).count(),
            13
        );
        assert_eq!(
            hints.addresses.iter().filter(|(_, a)| a.is_ipv6()).count(),
            13
        );
        let verifier = BailiwickVerifier::with_hints(&BailiwickConfig::default(), &hints);
        assert_eq!(
            verifier.zones_served_by("198.41.0.4".parse().unwrap()),
            vec![Name::root()]
        );
        assert_eq!(
            verifier.zones_served_by("2001:7fd::1".parse().unwrap()),
            vec![Name::root()]
        );
    }

    #[test]
    fn hints_errors_name_the_line() {
        let error = Hints::parse(Path::new("h"), ". NS a.\na. A 2001:db8::1\n").unwrap_err();
        assert!(error.to_string().starts_with("h:2: "), "{error}");
        let error = Hints::parse(Path::new("h"), "a. MX 10 b.\n").unwrap_err();
        assert!(error.to_string().starts_with("h:1: "), "{error}");
    }
}
