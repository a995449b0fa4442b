//! dnsrecall-query: the query engine, over any [`Store`].
//!
//! It owns what a question to the passive DNS store *means* and how it is
//! answered, for every client (the HTTP APIs, the CLI, the web UI):
//!
//! * [`d4`]: the D4/CIRCL lookups — a name's or an address's records,
//!   capped and sorted ([`d4::lookup`]), and D4's `fquery` expansion.
//! * [`dnsdb`]: the DNSDB model — the lookup grammar
//!   (`rrset/name/*.example.com/A` → [`dnsdb::Lookup`]), query parameters
//!   and time fences ([`dnsdb::Params`], [`dnsdb::TimeFence`]), and running
//!   a lookup: rows streamed to a [`dnsdb::Rows`] through fences, offset and
//!   limit, ending with an explicit "cut at N" ([`dnsdb::End::Limited`]),
//!   or a [`dnsdb::Summary`].
//! * [`search`]: the one search box ([`Search::parse`]: a name, an
//!   address, a CIDR, `*.x`, `x.*`, `name/TYPE/bailiwick` → a lookup and
//!   its description).
//! * [`annotate`]: which names pointed at an address at a time
//!   ([`annotate::sightings`], [`annotate::names_at`]), and the flow-record
//!   lines `dnsrecall annotate` reads ([`annotate::flows`]).
//! * [`export`]: every record, or a name's or address's, in store order.
//!
//! The grammar functions are pure (`&str` → value or [`QueryError`]), so
//! they are fuzzed and property-tested on their own. Errors are one type,
//! [`QueryError`]; a client maps it to its own (HTTP statuses, CLI
//! messages).
//!
//! # A client's view
//!
//! The web UI's search page, the CLI's `query` and the DNSDB routes all do
//! this, on a blocking thread (a scan reads the store synchronously; a
//! streaming client hands rows to its response through a bounded channel
//! and returns `Break` from [`dnsdb::Rows`] when the reader left):
//!
//! ```no_run
//! use std::ops::ControlFlow;
//!
//! use dnsrecall_core::Entry;
//! use dnsrecall_core::store::Store;
//! use dnsrecall_query::{End, Params, QueryError, Search, TimeFence, dnsdb};
//!
//! fn page(store: &dyn Store, q: &str, rrtype: &str) -> Result<(), QueryError> {
//!     // `/?q=*.example.com&type=A&after=2024-01-01&strict=1`
//!     let search = Search::parse(q)?.with_type(rrtype)?;
//!     println!("{search} (API: /dnsdb/v2/lookup/{})", search.api_path());
//!     let mut params = Params::with_limit(1_000);
//!     TimeFence::parse(Some("2024-01-01"), None, true, dnsdb::now())?.apply(&mut params);
//!     let outcome = dnsdb::lookup(store, &search.lookup, &params, &mut |entry: Entry| {
//!         println!("{} {} {}", entry.record.rrname, entry.record.rrtype, entry.record.rdata_text());
//!         ControlFlow::Continue(())
//!     })?;
//!     if let End::Limited(limit) = outcome.end {
//!         println!("cut at {limit:?}: more rows match");
//!     }
//!     Ok(())
//! }
//! ```
//!
//! It must not know HTTP (statuses, headers, SAF framing, keys and quotas
//! live in `dnsrecall-http`), the command line, or any storage engine: it
//! reads through the [`Store`] trait of `dnsrecall-core` only.
//!
//! [`Store`]: dnsrecall_core::store::Store

pub mod annotate;
pub mod d4;
pub mod dnsdb;
mod error;
pub mod search;

/// In-memory stores for tests (this crate's and, with the `testing`
/// feature, the HTTP and UI crates').
#[cfg(any(test, feature = "testing"))]
pub mod testing;

use std::ops::ControlFlow;

use dnsrecall_core::Entry;
use dnsrecall_core::store::{Store, TypeFilter};

pub use d4::Subject;
pub use dnsdb::{End, Limit, Lookup, Outcome, Params, Rows, TimeFence};
pub use error::QueryError;
pub use search::Search;

/// `dnsrecall export`: every record (`subject` `None`) or the records of a
/// name (all types) or an address, in store order.
pub fn export(
    store: &dyn Store,
    subject: Option<&Subject>,
    visit: &mut dyn FnMut(Entry) -> ControlFlow<()>,
) -> Result<(), QueryError> {
    match subject {
        None => Ok(store.scan_all(visit)?),
        Some(subject) => d4::scan_subject(store, subject, TypeFilter::All, visit),
    }
}
