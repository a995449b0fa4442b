//! The Farsight/DomainTools DNSDB query model (`reference/dnsdb.md` §1):
//! the lookup grammar ([`lookup`](mod@lookup): `rrset/name/*.example.com/A`
//! → [`Lookup`]), the query parameters and time fences ([`params`]), and
//! running a lookup over a store ([`scan`](mod@scan): rows through fences,
//! offset and limit, or a [`Summary`]).
//!
//! How the answers are framed (SAF, v1 lines, the CLI's tables, the web
//! UI's pages) is each client's business.

pub mod lookup;
pub mod params;
pub mod scan;

pub use lookup::{
    Lookup, check_address_type, encode_segment, parse_address_range, parse_hex, parse_lookup,
    parse_pattern, parse_types, percent_decode, split_path,
};
pub use params::{DEFAULT_LIMIT, Params, TimeFence, now, parse_bool, parse_params, parse_time};
pub use scan::{End, Limit, Outcome, Rows, Summary, lookup, scan, summarize};
