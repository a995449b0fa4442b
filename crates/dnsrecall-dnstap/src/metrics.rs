//! Counters of the dnstap receiver, its outputs and its consumer.
//!
//! One [`Metrics`] is shared (`Arc`) by the servers, the client and the
//! outputs. [`Metrics::snapshot`] lists every counter as
//! `(name, help, value)` for a Prometheus exporter; names follow
//! `dnsrecall_dnstap_<what>_total`.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::framestream::FrameError;

/// Why a connection or a frame was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorReason {
    /// A data or control frame over its cap.
    Oversized,
    /// A control frame that could not be parsed, or came out of order.
    MalformedControl,
    /// READY/START with a content type we do not accept.
    ContentTypeMismatch,
    /// The peer disconnected inside a frame or before the handshake ended.
    Truncated,
    /// A transport error (including TLS handshakes).
    Io,
    /// A data frame the consumer could not decode as dnstap protobuf.
    Protobuf,
}

impl ErrorReason {
    /// Classifies a Frame Streams error.
    pub fn of(error: &FrameError) -> Self {
        match error {
            FrameError::DataFrameTooLarge { .. } | FrameError::ControlFrameTooLarge { .. } => {
                ErrorReason::Oversized
            }
            FrameError::ContentTypeMismatch { .. } => ErrorReason::ContentTypeMismatch,
            FrameError::Truncated { .. } | FrameError::Closed { .. } => ErrorReason::Truncated,
            FrameError::Io(_) => ErrorReason::Io,
            _ => ErrorReason::MalformedControl,
        }
    }

    /// A short label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorReason::Oversized => "oversized",
            ErrorReason::MalformedControl => "malformed_control",
            ErrorReason::ContentTypeMismatch => "content_type_mismatch",
            ErrorReason::Truncated => "truncated",
            ErrorReason::Io => "io",
            ErrorReason::Protobuf => "protobuf",
        }
    }
}

/// Receiver counters. All are monotonic.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections accepted (or made, in client mode).
    pub connections_accepted: AtomicU64,
    /// Connections closed, for any reason.
    pub connections_closed: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub connections_rejected: AtomicU64,
    /// Data frames received and handed to the sink.
    pub frames_received: AtomicU64,
    /// Bytes of data frames received.
    pub bytes_received: AtomicU64,
    /// Control frames received.
    pub control_frames: AtomicU64,
    /// Errors: oversized frames.
    pub errors_oversized: AtomicU64,
    /// Errors: malformed or out-of-order control frames.
    pub errors_malformed_control: AtomicU64,
    /// Errors: content type mismatch.
    pub errors_content_type: AtomicU64,
    /// Errors: disconnect mid-frame or mid-handshake.
    pub errors_truncated: AtomicU64,
    /// Errors: transport.
    pub errors_io: AtomicU64,
    /// Errors: undecodable protobuf (counted by the consumer).
    pub errors_protobuf: AtomicU64,
    /// Messages written by outputs.
    pub output_written: AtomicU64,
    /// Messages dropped because an output queue was full.
    pub output_dropped: AtomicU64,
    /// Output write failures.
    pub output_errors: AtomicU64,
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an error by reason.
    pub fn record_error(&self, reason: ErrorReason) {
        let counter = match reason {
            ErrorReason::Oversized => &self.errors_oversized,
            ErrorReason::MalformedControl => &self.errors_malformed_control,
            ErrorReason::ContentTypeMismatch => &self.errors_content_type,
            ErrorReason::Truncated => &self.errors_truncated,
            ErrorReason::Io => &self.errors_io,
            ErrorReason::Protobuf => &self.errors_protobuf,
        };
        Metrics::inc(counter);
    }

    /// Every counter as `(name, help, value)`.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        vec![
            (
                "dnsrecall_dnstap_connections_accepted_total",
                "Frame Streams connections accepted or established.",
                get(&self.connections_accepted),
            ),
            (
                "dnsrecall_dnstap_connections_closed_total",
                "Frame Streams connections closed.",
                get(&self.connections_closed),
            ),
            (
                "dnsrecall_dnstap_connections_rejected_total",
                "Connections refused because the connection limit was reached.",
                get(&self.connections_rejected),
            ),
            (
                "dnsrecall_dnstap_frames_received_total",
                "Data frames received.",
                get(&self.frames_received),
            ),
            (
                "dnsrecall_dnstap_bytes_received_total",
                "Bytes of data frames received.",
                get(&self.bytes_received),
            ),
            (
                "dnsrecall_dnstap_control_frames_total",
                "Control frames received.",
                get(&self.control_frames),
            ),
            (
                "dnsrecall_dnstap_errors_oversized_total",
                "Connections dropped for a frame over the size limit.",
                get(&self.errors_oversized),
            ),
            (
                "dnsrecall_dnstap_errors_malformed_control_total",
                "Connections dropped for a malformed or unexpected control frame.",
                get(&self.errors_malformed_control),
            ),
            (
                "dnsrecall_dnstap_errors_content_type_total",
                "Connections dropped for a content type mismatch.",
                get(&self.errors_content_type),
            ),
            (
                "dnsrecall_dnstap_errors_truncated_total",
                "Connections closed by the peer inside a frame or the handshake.",
                get(&self.errors_truncated),
            ),
            (
                "dnsrecall_dnstap_errors_io_total",
                "Connections dropped for a transport or TLS error.",
                get(&self.errors_io),
            ),
            (
                "dnsrecall_dnstap_errors_protobuf_total",
                "Data frames that did not decode as dnstap protobuf.",
                get(&self.errors_protobuf),
            ),
            (
                "dnsrecall_dnstap_output_written_total",
                "Messages written by outputs.",
                get(&self.output_written),
            ),
            (
                "dnsrecall_dnstap_output_dropped_total",
                "Messages dropped because an output queue was full.",
                get(&self.output_dropped),
            ),
            (
                "dnsrecall_dnstap_output_errors_total",
                "Output write errors.",
                get(&self.output_errors),
            ),
        ]
    }

    /// The value of the counter named `name` in [`Metrics::snapshot`].
    pub fn value(&self, name: &str) -> Option<u64> {
        self.snapshot()
            .into_iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, _, v)| v)
    }
}
