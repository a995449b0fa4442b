//! Counters for every stage, every drop by reason.

use std::sync::atomic::{AtomicU64, Ordering};

/// Declares the `Metrics` struct, its field docs and its snapshot table from
/// one list, so a counter cannot exist without a name and help text.
macro_rules! metrics {
    ($( $(#[$doc:meta])* $field:ident => $help:literal, )*) => {
        //------------ Metrics ---------------------------------------------------

        /// Capture counters, shared (`Arc<Metrics>`) between the decoder and
        /// whoever exports them. All increments are `Relaxed`.
        ///
        /// Names in [`Metrics::snapshot`] are
        /// `dnsrecall_capture_<field>_total`.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $( $(#[$doc])* #[doc = $help] pub $field: AtomicU64, )*
        }

        impl Metrics {
            /// Every counter as `(name, help, value)`, in a fixed order, for a
            /// Prometheus exporter.
            pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
                vec![$( (
                    concat!("dnsrecall_capture_", stringify!($field), "_total"),
                    $help,
                    self.$field.load(Ordering::Relaxed),
                ), )*]
            }
        }
    };
}

metrics! {
    packets => "Frames handed to the decoder.",
    bytes => "Captured bytes handed to the decoder.",
    truncated_packets => "Frames cut short by the snap length or file (payload incomplete, skipped).",
    linktype_unsupported => "Frames with a link type the decoder does not handle.",
    link_malformed => "Frames too short or invalid at the link layer.",
    not_ip => "Frames that carry neither IPv4 nor IPv6 (ARP, LLDP, ...).",
    ip_malformed => "IP packets with an invalid header.",
    ip_other_protocol => "IP packets that carry neither UDP nor TCP.",
    fragments => "IP fragments received.",
    fragments_reassembled => "IP datagrams reassembled from fragments.",
    fragments_expired => "IP datagrams dropped incomplete after the fragment timeout.",
    fragments_dropped_limit => "IP fragments dropped because a datagram or total memory bound was hit.",
    fragments_dropped_invalid => "IP fragments dropped as invalid (past 64 KiB, misaligned, conflicting end).",
    fragments_overlapping => "IP fragments overlapping data already received (later data wins).",
    udp_malformed => "UDP headers that are invalid.",
    tcp_malformed => "TCP headers that are invalid.",
    non_dns_port => "UDP/TCP packets on no configured DNS port.",
    dns_too_short => "Payloads or TCP-framed messages shorter than a DNS header.",
    queries_skipped => "DNS queries not emitted because emit_queries is off.",
    dns_messages => "DNS messages emitted.",
    dns_messages_udp => "DNS messages emitted from UDP.",
    dns_messages_tcp => "DNS messages emitted from TCP streams.",
    tcp_streams_opened => "TCP half-streams started.",
    tcp_streams_closed => "TCP half-streams ended by FIN or RST.",
    tcp_streams_evicted => "TCP half-streams evicted because the stream table was full.",
    tcp_streams_timeout => "TCP half-streams dropped after the idle timeout.",
    tcp_segments_duplicate => "TCP segments carrying only data already received.",
    tcp_segments_out_of_order => "TCP segments buffered ahead of a gap.",
    tcp_resyncs => "TCP half-streams (re)synchronised on a plausible DNS length prefix.",
    tcp_bytes_dropped_gap => "TCP bytes dropped because a gap was never filled.",
    tcp_bytes_dropped_limit => "TCP bytes dropped because a stream or total memory bound was hit.",
    tcp_bytes_dropped_resync => "TCP bytes skipped while looking for a DNS message boundary.",
    tcp_bytes_dropped_window => "TCP bytes dropped as out of window (sequence too far ahead).",
    tcp_bytes_dropped_closed => "TCP bytes in segments after the stream was closed.",
    pairing_queries => "Queries entered in the pairing table.",
    pairing_matched => "Responses matched with a query.",
    pairing_unmatched => "Responses without a matching query.",
    pairing_expired => "Queries dropped from the pairing table unanswered.",
    pairing_table_full => "Queries not tracked because the pairing table was full.",
    file_blocks_skipped => "Capture file blocks that carry no packet or name an unknown interface.",
    file_errors => "Capture files that ended with an error (truncated or corrupt).",
    live_received => "Packets received by libpcap (pcap_stats ps_recv).",
    live_dropped => "Packets dropped by the kernel for lack of buffer space (ps_drop).",
    live_if_dropped => "Packets dropped by the interface or driver (ps_ifdrop).",
    live_channel_full => "Times the live capture thread waited on a full output channel.",
}

impl Metrics {
    /// A fresh set of zero counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of one counter by its snapshot name, for tests and logs.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.snapshot()
            .into_iter()
            .find(|(n, _, _)| {
                *n == name
                    || n.strip_prefix("dnsrecall_capture_")
                        .and_then(|n| n.strip_suffix("_total"))
                        == Some(name)
            })
            .map(|(_, _, v)| v)
    }
}

/// Increment by one.
#[inline]
pub(crate) fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Increment by `n`.
#[inline]
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    if n != 0 {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_names() {
        let m = Metrics::new();
        inc(&m.packets);
        add(&m.bytes, 10);
        let snap = m.snapshot();
        assert_eq!(
            snap[0],
            (
                "dnsrecall_capture_packets_total",
                "Frames handed to the decoder.",
                1
            )
        );
        assert_eq!(m.get("bytes"), Some(10));
        assert!(
            snap.iter()
                .all(|(n, h, _)| n.ends_with("_total") && !h.is_empty())
        );
    }
}
