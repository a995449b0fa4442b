//! Decoder configuration: which ports are DNS and how much state to keep.

use crate::PortSet;

/// Standard DNS port.
pub const DEFAULT_DNS_PORT: u16 = 53;
/// Multicast DNS (RFC 6762), opt-in.
pub const MDNS_PORT: u16 = 5353;
/// LLMNR (RFC 4795), opt-in.
pub const LLMNR_PORT: u16 = 5355;

/// Fragment reassembly: datagrams under reassembly at once.
pub const DEFAULT_FRAG_MAX_DATAGRAMS: usize = 4096;
/// Fragment reassembly: bytes buffered over all datagrams (32 MiB).
pub const DEFAULT_FRAG_MAX_BYTES: usize = 32 << 20;
/// Fragment reassembly: a datagram not completed within this many seconds
/// of packet time is dropped (Linux `ipfrag_time` is 30 s).
pub const DEFAULT_FRAG_TIMEOUT_SECS: u64 = 30;
/// TCP: half-streams (one direction of a connection) tracked at once.
pub const DEFAULT_TCP_MAX_STREAMS: usize = 65_536;
/// TCP: bytes buffered per half-stream. Must hold one maximal DNS message
/// (2 + 65535 bytes) plus out-of-order data, hence 256 KiB.
pub const DEFAULT_TCP_MAX_STREAM_BYTES: usize = 256 << 10;
/// TCP: bytes buffered over all streams (64 MiB).
pub const DEFAULT_TCP_MAX_BYTES: usize = 64 << 20;
/// TCP: a half-stream idle for this many seconds of packet time is dropped.
pub const DEFAULT_TCP_TIMEOUT_SECS: u64 = 60;

//------------ CaptureConfig -------------------------------------------------

/// What counts as DNS and how much memory the decoder may use.
///
/// Every limit is enforced with a counted drop (see [`crate::Metrics`]),
/// never with an error.
#[derive(Clone, Debug)]
pub struct CaptureConfig {
    /// Ports carrying DNS; a packet matches if either port is in the set.
    /// Default: 53 only. Add [`MDNS_PORT`] / [`LLMNR_PORT`] to opt in.
    pub ports: PortSet,
    /// Emit queries (QR=0) as well as responses. Default: true.
    pub emit_queries: bool,
    /// Reassemble DNS over TCP. Default: true.
    pub tcp: bool,
    /// Reassemble IP fragments. Default: true.
    pub defrag: bool,
    /// See [`DEFAULT_FRAG_MAX_DATAGRAMS`].
    pub frag_max_datagrams: usize,
    /// See [`DEFAULT_FRAG_MAX_BYTES`].
    pub frag_max_bytes: usize,
    /// See [`DEFAULT_FRAG_TIMEOUT_SECS`].
    pub frag_timeout_secs: u64,
    /// See [`DEFAULT_TCP_MAX_STREAMS`].
    pub tcp_max_streams: usize,
    /// See [`DEFAULT_TCP_MAX_STREAM_BYTES`].
    pub tcp_max_stream_bytes: usize,
    /// See [`DEFAULT_TCP_MAX_BYTES`].
    pub tcp_max_bytes: usize,
    /// See [`DEFAULT_TCP_TIMEOUT_SECS`].
    pub tcp_timeout_secs: u64,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            ports: PortSet::default(),
            emit_queries: true,
            tcp: true,
            defrag: true,
            frag_max_datagrams: DEFAULT_FRAG_MAX_DATAGRAMS,
            frag_max_bytes: DEFAULT_FRAG_MAX_BYTES,
            frag_timeout_secs: DEFAULT_FRAG_TIMEOUT_SECS,
            tcp_max_streams: DEFAULT_TCP_MAX_STREAMS,
            tcp_max_stream_bytes: DEFAULT_TCP_MAX_STREAM_BYTES,
            tcp_max_bytes: DEFAULT_TCP_MAX_BYTES,
            tcp_timeout_secs: DEFAULT_TCP_TIMEOUT_SECS,
        }
    }
}

impl CaptureConfig {
    /// The default configuration with DNS on exactly these ports.
    pub fn with_ports(ports: impl IntoIterator<Item = u16>) -> Self {
        CaptureConfig {
            ports: PortSet::from_ports(ports),
            ..Self::default()
        }
    }
}
