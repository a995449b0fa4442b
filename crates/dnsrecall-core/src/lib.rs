//! dnsrecall-core: the passive DNS record model and the formats around it.
//!
//! It owns what a passive DNS record *is* — canonical names ([`name`]),
//! record types and rdata in wire and presentation form ([`rdata`]), the
//! record and its sightings ([`record`]) — how records are read from and
//! written to the interchange formats (COF NDJSON in [`cof`], passivedns
//! `||` logs in [`passivedns`]), what a DNS message event is
//! ([`message::DnsMessage`], shared by every message input and output), how
//! DNS responses become records ([`decode`]), the storage contract
//! ([`store`]) and the record output contract ([`sink`]: what receives the
//! records the ingest pipeline releases; the store is one).
//!
//! It must not know about any storage engine, network protocol, HTTP or the
//! command line: those live in `dnsrecall-store`, `dnsrecall-dnstap`,
//! `dnsrecall-capture`, `dnsrecall-http` and the `dnsrecall` binary.

pub mod cof;
pub mod decode;
pub mod message;
pub mod name;
pub mod passivedns;
pub mod rdata;
pub mod record;
pub mod sink;
pub mod store;

pub use name::Name;
pub use rdata::Rtype;
pub use record::{Entry, Rdata, Record, Seen};
