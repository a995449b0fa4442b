//! Packets in, DNS messages out.
//!
//! This crate owns everything between a packet source and a DNS message:
//!
//! * **capture files**: pcap and pcapng, optionally gzip-compressed, read as a
//!   stream ([`PcapFileReader`], format sniffing with [`sniff_capture`]);
//! * **live capture** through libpcap ([`live::LiveCapture`]);
//! * **link layers**: Ethernet (802.1Q/QinQ, MPLS, PPPoE), Linux SLL and SLL2,
//!   raw IPv4/IPv6, BSD null/loop, PPP;
//! * **network layers**: IPv4 and IPv6 with extension headers, IP-in-IP, and
//!   IP fragment reassembly ([`defrag`]);
//! * **transport**: DNS over UDP on a configurable port set and DNS over TCP
//!   with an in-house stream reassembler ([`tcp`]);
//! * **DNS message extraction** (the 2-byte TCP length prefix is removed) and
//!   **query/response pairing** ([`pairing::QueryTable`]).
//!
//! The lead types are [`Decoder`] (push one frame, get [`DnsPayload`]s),
//! [`PcapFileReader`] (an iterator over a capture file), [`CaptureConfig`]
//! (ports and resource bounds) and [`Metrics`] (counters, every drop by
//! reason).
//!
//! What this crate must not know: DNS records beyond a 12-byte header peek,
//! storage, HTTP, or any other dnsrecall crate. It hands out raw DNS messages
//! as [`bytes::Bytes`]; parsing them is somebody else's job.
//!
//! # Error handling
//!
//! Per-packet problems (malformed headers, truncated frames, fragments that
//! never complete, TCP gaps) are never errors: they are counted in
//! [`Metrics`] and the packet is skipped. [`CaptureError`] is returned only for
//! things that stop a source: an unreadable file, an unknown format, a
//! truncated file (after every message before the cut was delivered), or a
//! libpcap failure.

#![forbid(unsafe_code)]

mod config;
pub mod defrag;
mod dns;
mod error;
mod file;
mod link;
pub mod live;
mod metrics;
pub mod pairing;
mod parse;
mod ports;
pub mod tcp;

pub use config::{
    CaptureConfig, DEFAULT_DNS_PORT, DEFAULT_FRAG_MAX_BYTES, DEFAULT_FRAG_MAX_DATAGRAMS,
    DEFAULT_FRAG_TIMEOUT_SECS, DEFAULT_TCP_MAX_BYTES, DEFAULT_TCP_MAX_STREAM_BYTES,
    DEFAULT_TCP_MAX_STREAMS, DEFAULT_TCP_TIMEOUT_SECS, LLMNR_PORT, MDNS_PORT,
};
pub use dns::{dns_id, is_response};
pub use error::CaptureError;
pub use file::{CaptureFormat, PcapFileReader, sniff_capture, sniff_file};
pub use link::linktype;
pub use metrics::Metrics;
pub use parse::Decoder;
pub use ports::PortSet;

use std::net::IpAddr;
use std::sync::Arc;

//------------ Transport -----------------------------------------------------

/// The transport a DNS message travelled over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// Lowercase name, as used in logs and reference decodings.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

//------------ DnsPayload ----------------------------------------------------

/// One DNS message seen on the wire, with where and when it was seen.
///
/// `src` is the sender of this message: for a response that is the
/// responding server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsPayload {
    /// Capture time, seconds since the Unix epoch.
    pub ts_sec: u64,
    /// Capture time, nanoseconds within the second.
    pub ts_nsec: u32,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub transport: Transport,
    /// Exactly one DNS message; for TCP the 2-byte length prefix is removed.
    pub message: bytes::Bytes,
    /// The IP datagram carrying the message was reassembled from fragments.
    pub ip_defragmented: bool,
    /// The message was put together from more than one TCP segment.
    pub tcp_reassembled: bool,
    /// Live capture interface name (pcapng files: the interface's `if_name`).
    pub interface: Option<Arc<str>>,
}

impl DnsPayload {
    /// The QR bit of the message header, `None` if shorter than a header.
    pub fn is_response(&self) -> Option<bool> {
        is_response(&self.message)
    }

    /// Capture time in nanoseconds since the Unix epoch (saturating).
    pub fn ts_nanos(&self) -> u64 {
        self.ts_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(self.ts_nsec))
    }
}
