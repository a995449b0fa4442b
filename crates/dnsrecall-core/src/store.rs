//! The storage contract: what the query side and the ingest side need from
//! a store, independent of its engine (RocksDB now, Redis/kvrocks later).

use std::net::IpAddr;
use std::ops::ControlFlow;

use crate::name::Name;
use crate::rdata::Rtype;
use crate::record::Entry;

/// How a name pattern matches owner or rdata names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameMatch {
    /// Exactly this name.
    Exact(Name),
    /// This name and every name below it (`*.example.com`).
    Subtree(Name),
    /// Names whose leading labels are these (`www.example.*`); the labels
    /// are lower-case, leftmost first.
    Prefix(Vec<Vec<u8>>),
}

/// Which types a query wants.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TypeFilter {
    /// Every type.
    #[default]
    All,
    /// One type.
    Only(Rtype),
    /// DNSDB's `ANY`: every type but the DNSSEC ones.
    AnyNonDnssec,
    /// DNSDB's `ANY-DNSSEC`.
    Dnssec,
}

impl TypeFilter {
    pub fn accepts(self, rtype: Rtype) -> bool {
        match self {
            TypeFilter::All => true,
            TypeFilter::Only(only) => only == rtype,
            TypeFilter::AnyNonDnssec => !rtype.is_dnssec(),
            TypeFilter::Dnssec => rtype.is_dnssec(),
        }
    }
}

/// A forward lookup: records by owner name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetQuery {
    pub name: NameMatch,
    pub types: TypeFilter,
    /// Only records with exactly this bailiwick.
    pub bailiwick: Option<Name>,
}

/// An inverse lookup: records by what their rdata holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RdataQuery {
    /// Names inside rdata (NS, CNAME, MX, SRV, PTR, SOA, SVCB targets, ...).
    Name { name: NameMatch, types: TypeFilter },
    /// A/AAAA records whose address is in `first..=last` (same family).
    Address { first: IpAddr, last: IpAddr },
    /// Records whose wire rdata starts with these bytes.
    Raw { prefix: Vec<u8>, types: TypeFilter },
    /// Records kept as opaque text (unparsed importer rdata) equal to this.
    Text { text: String, types: TypeFilter },
}

/// Totals a store reports for `/info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreInfo {
    /// Observations written since the store was created.
    pub observations: u64,
    /// Observations per sensor, highest first.
    pub sensors: Vec<(String, u64)>,
    /// Estimated number of distinct records.
    pub records_estimate: u64,
    /// Bytes on disk, if known.
    pub disk_bytes: Option<u64>,
    /// Retention period in seconds (records not seen for longer are
    /// removed by compaction), if set.
    pub retention_secs: Option<u64>,
}

/// A store failure, with enough text to say what and where.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The engine reported an error.
    #[error("store engine error: {0}")]
    Engine(String),
    /// The data directory was written by an incompatible schema version.
    #[error("data directory schema version {found}, this build reads version {expected}")]
    Schema { found: u32, expected: u32 },
    /// A stored key or value does not decode.
    #[error("corrupt stored data: {0}")]
    Corrupt(&'static str),
    /// The store was opened read-only.
    #[error("store is read-only")]
    ReadOnly,
    /// The store's layout cannot answer this kind of lookup (a key-value
    /// schema such as D4's has no ordered index for wildcards or ranges);
    /// `alternative` names the backend that can. A client error, not a
    /// fault: the answer would otherwise be silently empty.
    #[error("the {backend} store cannot answer {lookup}; use the {alternative} store for it")]
    Unsupported {
        backend: &'static str,
        lookup: &'static str,
        alternative: &'static str,
    },
}

/// A visitor receives entries in store order and may stop the scan.
pub type Visitor<'a> = dyn FnMut(Entry) -> ControlFlow<()> + 'a;

/// A passive DNS store. Writes merge (min/max/sum), so they never read.
pub trait Store: Send + Sync + 'static {
    /// Merges a batch of entries.
    fn write(&self, entries: &[Entry]) -> Result<(), StoreError>;
    /// Visits records by owner name.
    fn scan_rrset(&self, query: &RrsetQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError>;
    /// Visits records by rdata.
    fn scan_rdata(&self, query: &RdataQuery, visit: &mut Visitor<'_>) -> Result<(), StoreError>;
    /// Visits every record.
    fn scan_all(&self, visit: &mut Visitor<'_>) -> Result<(), StoreError>;
    /// Totals for `/info`.
    fn info(&self) -> Result<StoreInfo, StoreError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Catches up with a writer, for stores opened as followers of another
    /// process (a no-op elsewhere).
    fn refresh(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
