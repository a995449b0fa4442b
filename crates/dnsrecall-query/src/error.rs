//! The one error type of the query engine.

use dnsrecall_core::name::NameError;
use dnsrecall_core::store::StoreError;

//---- QueryError ------------------------------------------------------------

/// Why a query could not be read or answered.
///
/// Every variant but [`QueryError::Store`] and [`QueryError::UnknownLookup`]
/// is the asker's mistake (HTTP maps them to 400); `UnknownLookup` is a
/// lookup kind DNSDB does not have (404); `Store` is the server's fault
/// (500). `Display` is the text the APIs answer with: a lowercase phrase
/// naming the bad value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// A D4 query is neither a strict address nor a domain name.
    #[error("invalid query {text:?}: {reason}")]
    InvalidSubject { text: String, reason: NameError },
    /// A DNSDB path segment has a `%` not followed by two hex digits.
    #[error("bad percent escape in {segment:?}")]
    BadPercentEscape { segment: String },
    /// A DNSDB path segment decodes to bytes that are not UTF-8.
    #[error("segment {segment:?} is not UTF-8")]
    SegmentNotUtf8 { segment: String },
    /// A DNSDB path names no lookup kind DNSDB has (`rrset/name`,
    /// `rrset/raw`, `rdata/name`, `rdata/ip`, `rdata/raw`).
    #[error("unknown path")]
    UnknownLookup,
    /// A DNSDB lookup path ends before its value.
    #[error("missing lookup value")]
    MissingValue,
    /// A DNSDB lookup path has segments after its last parameter.
    #[error("too many path segments")]
    TooManySegments,
    /// A bailiwick that is not a domain name.
    #[error("bad bailiwick {text:?}: {reason}")]
    BadBailiwick { text: String, reason: NameError },
    /// `rrset/raw/HEX/TYPE/BAILIWICK`: DNSDB has no bailiwick on raw lookups.
    #[error("a bailiwick may not be given with raw queries")]
    BailiwickWithRaw,
    /// The hex of `rrset/raw` is not a DNS wire name.
    #[error("raw owner is not a wire name: {0}")]
    RawOwnerNotName(NameError),
    /// `+.name` on an rdata name lookup (DNSDB allows it on owners only).
    #[error("the + wildcard is supported on rrset names only")]
    SingleLabelOnRdata,
    /// An address lookup with a type other than A, AAAA or ANY.
    #[error("rrtype {0:?} is not allowed with rdata/ip (A, AAAA or ANY)")]
    TypeNotForAddress(String),
    /// A type that is neither a mnemonic, `TYPEnnn`, `ANY` nor `ANY-DNSSEC`.
    #[error("unknown rrtype {0:?}")]
    UnknownRrtype(String),
    /// A name (or name pattern) that is not a domain name.
    #[error("bad name {text:?}: {reason}")]
    BadName { text: String, reason: NameError },
    /// `*`, `+` (or with a dot): a wildcard with nothing under it.
    #[error("a wildcard needs at least one label")]
    BareWildcard,
    /// A `*` somewhere else than the first or the last label.
    #[error("bad name {0:?}: a wildcard must be the first or last label")]
    WildcardInside(String),
    /// Raw hex of odd length (or empty).
    #[error("raw value {0:?} must be an even number of hex digits")]
    OddHex(String),
    /// Raw hex with a character that is not a hex digit.
    #[error("raw value {0:?} is not hex")]
    NotHex(String),
    /// An address that is neither IPv4 nor IPv6.
    #[error("bad address {0:?}")]
    BadAddress(String),
    /// `FIRST-LAST` with one IPv4 and one IPv6 end.
    #[error("a range must not mix IPv4 and IPv6")]
    MixedRange,
    /// `FIRST-LAST` with `FIRST` above `LAST`.
    #[error("a range must start at its lower address")]
    ReversedRange,
    /// `ADDR,LEN` (or `ADDR/LEN`) whose length is not a number.
    #[error("bad prefix length {0:?}")]
    BadPrefixLength(String),
    /// A prefix length beyond the family's bits (32 or 128).
    #[error("prefix length {length} > {max}")]
    PrefixTooLong { length: u32, max: u32 },
    /// A query parameter whose value does not read (`limit=x`,
    /// `humantime=maybe`); `name` is the parameter.
    #[error("bad {name} {value:?}")]
    BadParameter { name: &'static str, value: String },
    /// `max_count=0`.
    #[error("max_count must be at least 1")]
    ZeroMaxCount,
    /// The search box was empty.
    #[error("empty search")]
    EmptySearch,
    /// A time fence that is not epoch seconds, `-SECONDS`, a date or an
    /// RFC 3339 timestamp.
    #[error("bad time {0:?} (epoch seconds, -SECONDS before now, YYYY-MM-DD or RFC 3339)")]
    BadTime(String),
    /// The store failed.
    #[error("store failure: {0}")]
    Store(#[from] StoreError),
}

impl QueryError {
    /// Whether the asker can fix it (everything but a store failure).
    pub fn is_invalid_query(&self) -> bool {
        !matches!(self, QueryError::Store(_))
    }
}
