//! What a source knows about a response besides its records.

use std::net::IpAddr;
use std::sync::Arc;

use dnsrecall_core::Name;

/// Metadata of one DNS response, as far as the source knows it.
#[derive(Clone, Debug, Default)]
pub struct ResponseMeta {
    /// The address of the server that sent the response (dnstap
    /// `response_address` of a resolver response, the source address of a
    /// captured response).
    pub server: Option<IpAddr>,
    /// dnstap `query_zone`: the zone the resolver believed it was asking
    /// about. When present it is the bailiwick.
    pub query_zone: Option<Name>,
    /// The question name of the response.
    pub qname: Option<Name>,
    /// The address of the client that asked (the resolver, for upstream
    /// traffic).
    pub client: Option<IpAddr>,
    /// The sensor that saw the response.
    pub sensor_id: Option<Arc<str>>,
    /// When it was seen, epoch seconds. The bailiwick cache ages entries by
    /// this clock.
    pub time: u64,
    /// The server answered recursively (a resolver or forwarder answering a
    /// stub: dnstap `CLIENT_RESPONSE`, a captured response with RD set). It
    /// is authoritative for nothing, so its address cannot be used to
    /// reconstruct a bailiwick; the records are unverifiable, not out of
    /// bailiwick. `server` still applies to the address filters.
    pub recursive: bool,
}
