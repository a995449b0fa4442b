//! The error type for sources that stop.

use std::path::PathBuf;

//------------ CaptureError --------------------------------------------------

/// Why a capture source stopped or could not start.
///
/// Per-packet problems are not errors: they are counted in
/// [`crate::Metrics`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// The capture file could not be opened or read.
    #[error("cannot read capture file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input is neither pcap nor pcapng (nor a gzip of either).
    #[error("{path} is not a pcap or pcapng capture")]
    NotACapture { path: PathBuf },
    /// The file ends in the middle of a block; every packet before the cut
    /// was delivered.
    #[error("capture file {path} is truncated after {packets} packets")]
    Truncated { path: PathBuf, packets: u64 },
    /// The file has a block that cannot be parsed; reading stops there.
    #[error("capture file {path} is corrupt after {packets} packets: {reason}")]
    Corrupt {
        path: PathBuf,
        packets: u64,
        reason: &'static str,
    },
    /// libpcap refused to open, configure or read the interface.
    #[error("live capture on {interface}: {source}")]
    Live {
        interface: String,
        #[source]
        source: pcap::Error,
    },
    /// The live capture thread could not be started.
    #[error("cannot start capture thread: {0}")]
    Thread(#[source] std::io::Error),
}
