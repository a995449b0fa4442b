//! Stores over a vector, for tests (this crate's unit tests; the HTTP and
//! UI crates' tests through the `testing` feature): the scans follow the
//! `Store` contract's meaning plainly (no index), so the engine's logic and
//! the routes can be tested without linking a storage engine. The RocksDB
//! store runs the same engine in the binary's integration tests.

use std::net::IpAddr;
use std::ops::ControlFlow;

use dnsrecall_core::rdata::rdata_target_name;
use dnsrecall_core::store::{
    NameMatch, RdataQuery, RrsetQuery, Store, StoreError, StoreInfo, Visitor,
};
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};

//---- MemoryStore -----------------------------------------------------------

/// Fixed records, read-only (a write is refused with `ReadOnly`).
pub struct MemoryStore {
    entries: Vec<Entry>,
}

impl MemoryStore {
    /// Kept in the RocksDB store's rrset order (reversed name, type).
    pub fn new(entries: impl IntoIterator<Item = Entry>) -> MemoryStore {
        let mut entries: Vec<Entry> = entries.into_iter().collect();
        entries.sort_by(|a, b| {
            (a.record.rrname.reversed(), a.record.rrtype)
                .cmp(&(b.record.rrname.reversed(), b.record.rrtype))
        });
        MemoryStore { entries }
    }

    /// A store with nothing in it (for tests of what is not the store:
    /// limits, statistics routes, the OpenAPI document).
    pub fn empty() -> MemoryStore {
        MemoryStore {
            entries: Vec::new(),
        }
    }

    fn visit_where(
        &self,
        wanted: impl Fn(&Entry) -> bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        for entry in self.entries.iter().filter(|e| wanted(e)) {
            if visit(entry.clone()).is_break() {
                break;
            }
        }
        Ok(())
    }
}

pub fn name_matches(pattern: &NameMatch, name: &Name) -> bool {
    match pattern {
        NameMatch::Exact(exact) => name == exact,
        NameMatch::Subtree(base) => name.is_subdomain_of(base),
        NameMatch::Prefix(labels) => {
            let own: Vec<Vec<u8>> = name.labels().map(|l| l.to_ascii_lowercase()).collect();
            own.len() >= labels.len() && own[..labels.len()] == labels[..]
        }
    }
}

fn address_of(entry: &Entry) -> Option<IpAddr> {
    let wire = entry.record.rdata.wire()?;
    match entry.record.rrtype {
        Rtype::A => <[u8; 4]>::try_from(wire).ok().map(IpAddr::from),
        Rtype::AAAA => <[u8; 16]>::try_from(wire).ok().map(IpAddr::from),
        _ => None,
    }
}

impl Store for MemoryStore {
    fn write(&self, _: &[Entry]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }

    fn scan_rrset(&self, query: &RrsetQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        self.visit_where(
            |e| {
                name_matches(&query.name, &e.record.rrname)
                    && query.types.accepts(e.record.rrtype)
                    && query
                        .bailiwick
                        .as_ref()
                        .is_none_or(|b| e.record.bailiwick.as_ref() == Some(b))
            },
            visit,
        )
    }

    fn scan_rdata(&self, query: &RdataQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        match query {
            RdataQuery::Address { first, last } => self.visit_where(
                |e| address_of(e).is_some_and(|a| first <= &a && &a <= last),
                visit,
            ),
            RdataQuery::Name { name, types } => self.visit_where(
                |e| {
                    types.accepts(e.record.rrtype)
                        && e.record
                            .rdata
                            .wire()
                            .and_then(|w| rdata_target_name(e.record.rrtype, w))
                            .and_then(|w| Name::from_wire(w).ok())
                            .is_some_and(|target| name_matches(name, &target))
                },
                visit,
            ),
            RdataQuery::Raw { prefix, types } => self.visit_where(
                |e| {
                    // Like the RocksDB store, addresses and name-bearing
                    // rdata are in their own indexes, not the raw one.
                    types.accepts(e.record.rrtype)
                        && address_of(e).is_none()
                        && e.record.rdata.wire().is_some_and(|w| {
                            w.starts_with(prefix) && rdata_target_name(e.record.rrtype, w).is_none()
                        })
                },
                visit,
            ),
            RdataQuery::Text { text, types } => self.visit_where(
                |e| {
                    types.accepts(e.record.rrtype)
                        && matches!(&e.record.rdata, Rdata::Text(t) if **t == **text)
                },
                visit,
            ),
        }
    }

    fn scan_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError> {
        self.visit_where(|_| true, visit)
    }

    fn info(&self) -> Result<StoreInfo, StoreError> {
        Ok(StoreInfo::default())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store whose every scan fails.
pub struct FailingStore;

impl Store for FailingStore {
    fn write(&self, _: &[Entry]) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly)
    }
    fn scan_rrset(&self, _: &RrsetQuery, _: &mut Visitor<'_>) -> Result<(), StoreError> {
        Err(StoreError::Engine("disk on fire".into()))
    }
    fn scan_rdata(&self, _: &RdataQuery, _: &mut Visitor<'_>) -> Result<(), StoreError> {
        Err(StoreError::Engine("disk on fire".into()))
    }
    fn scan_all(&self, _: &mut Visitor<'_>) -> Result<(), StoreError> {
        Err(StoreError::Engine("disk on fire".into()))
    }
    fn info(&self) -> Result<StoreInfo, StoreError> {
        Err(StoreError::Engine("disk on fire".into()))
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A record seen `count` = 1 time from `first` to `last`.
pub fn entry(name: &str, rrtype: Rtype, rdata: &str, first: u64, last: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).expect("test name"),
            rrtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rrtype, rdata),
        },
        seen: Seen {
            time_first: first,
            time_last: last,
            ..Seen::once(first)
        },
    }
}

/// Entries a visitor saw, as `name type rdata`.
pub fn describe(entries: &[Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e.record.rrname.to_dotless(),
                e.record.rrtype,
                e.record.rdata_text()
            )
        })
        .collect()
}

/// Collects what a scan visits.
pub fn collect(scan: impl FnOnce(&mut dyn FnMut(Entry) -> ControlFlow<()>)) -> Vec<Entry> {
    let mut out = Vec::new();
    scan(&mut |entry| {
        out.push(entry);
        ControlFlow::Continue(())
    });
    out
}
