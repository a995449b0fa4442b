//! The parse path: frame → link layer → IP (→ defragmentation) → UDP/TCP →
//! DNS messages.
//!
//! Headers are parsed by hand on borrowed slices: the path allocates nothing
//! per packet except the emitted message's `Bytes` (TCP and fragment state
//! reuse their buffers). Etherparse's slicers were measured as an option,
//! but the hand-written path is what lets a truncated frame be told apart
//! from a malformed one at every layer, which the drop counters need.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::CaptureConfig;
use crate::defrag::{Defragmenter, FragKey, Fragment};
use crate::dns::{HEADER_LEN, is_response};
use crate::link::{LinkDrop, be16, ip_payload};
use crate::metrics::{add, inc};
use crate::tcp::{Segment, StreamKey, TcpMessage, TcpReassembler};
use crate::{DnsPayload, Metrics, Transport};

const IPPROTO_HOPOPTS: u8 = 0;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_ROUTING: u8 = 43;
const IPPROTO_FRAGMENT: u8 = 44;
const IPPROTO_AH: u8 = 51;
const IPPROTO_DSTOPTS: u8 = 60;
const IPPROTO_MOBILITY: u8 = 135;
const IPPROTO_HIP: u8 = 139;
const IPPROTO_SHIM6: u8 = 140;

/// IP-in-IP nesting followed at most this deep.
const MAX_TUNNEL_DEPTH: u8 = 3;
/// IPv6 extension headers followed at most per packet.
const MAX_EXTENSION_HEADERS: usize = 16;
const NANOS: u64 = 1_000_000_000;

//------------ Decoder -------------------------------------------------------

/// Push-style decoder: feed frames with [`Decoder::decode`], receive
/// [`DnsPayload`]s through the callback. One decoder per packet source;
/// counters go to the shared [`Metrics`].
#[derive(Debug)]
pub struct Decoder {
    config: CaptureConfig,
    metrics: Arc<Metrics>,
    defrag: Defragmenter,
    tcp: TcpReassembler,
    interface: Option<Arc<str>>,
}

/// Per-packet facts carried down the layers.
#[derive(Clone, Copy)]
struct Ctx {
    now_ns: u64,
    defragmented: bool,
}

impl Decoder {
    pub fn new(config: &CaptureConfig, metrics: Arc<Metrics>) -> Self {
        Decoder {
            defrag: Defragmenter::new(
                config.frag_max_datagrams,
                config.frag_max_bytes,
                config.frag_timeout_secs,
            ),
            tcp: TcpReassembler::new(
                config.tcp_max_streams,
                config.tcp_max_stream_bytes,
                config.tcp_max_bytes,
                config.tcp_timeout_secs,
            ),
            config: config.clone(),
            metrics,
            interface: None,
        }
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn config(&self) -> &CaptureConfig {
        &self.config
    }

    /// The interface name put on payloads from now on.
    pub fn set_interface(&mut self, interface: Option<Arc<str>>) {
        self.interface = interface;
    }

    /// Decode one captured frame of link type `linktype` (a `LINKTYPE_*`
    /// value, see [`crate::linktype`]).
    pub fn decode<F: FnMut(DnsPayload)>(
        &mut self,
        ts_sec: u64,
        ts_nsec: u32,
        linktype: u32,
        frame: &[u8],
        emit: &mut F,
    ) {
        inc(&self.metrics.packets);
        add(&self.metrics.bytes, frame.len() as u64);
        let ip = match ip_payload(linktype, frame) {
            Ok(ip) => ip,
            Err(LinkDrop::Unsupported) => return inc(&self.metrics.linktype_unsupported),
            Err(LinkDrop::Malformed) => return inc(&self.metrics.link_malformed),
            Err(LinkDrop::NotIp) => return inc(&self.metrics.not_ip),
        };
        let ctx = Ctx {
            now_ns: ts_sec
                .saturating_mul(NANOS)
                .saturating_add(u64::from(ts_nsec)),
            defragmented: false,
        };
        self.ip(ctx, ip, 0, emit);
    }

    /// End of input: give up TCP gaps (framing what follows them) and drop
    /// incomplete fragments.
    pub fn finish<F: FnMut(DnsPayload)>(&mut self, emit: &mut F) {
        let (config, interface, metrics) = (&self.config, &self.interface, &*self.metrics);
        self.tcp.finish(metrics, &mut |m| {
            tcp_emit(config, interface, metrics, m, false, emit)
        });
        self.defrag.clear(metrics);
    }

    fn ip<F: FnMut(DnsPayload)>(&mut self, ctx: Ctx, data: &[u8], depth: u8, emit: &mut F) {
        match data.first().map(|b| b >> 4) {
            Some(4) => self.ipv4(ctx, data, depth, emit),
            Some(6) => self.ipv6(ctx, data, depth, emit),
            _ => inc(&self.metrics.ip_malformed),
        }
    }

    fn ipv4<F: FnMut(DnsPayload)>(&mut self, ctx: Ctx, data: &[u8], depth: u8, emit: &mut F) {
        if data.len() < 20 {
            return inc(&self.metrics.truncated_packets);
        }
        let ihl = usize::from(data[0] & 0x0f) * 4;
        let total = usize::from(u16::from_be_bytes([data[2], data[3]]));
        if ihl < 20 || total < ihl {
            return inc(&self.metrics.ip_malformed);
        }
        if data.len() < total {
            return inc(&self.metrics.truncated_packets);
        }
        // Cut link-layer padding (short Ethernet frames).
        let data = &data[..total];
        let src = IpAddr::V4(Ipv4Addr::new(data[12], data[13], data[14], data[15]));
        let dst = IpAddr::V4(Ipv4Addr::new(data[16], data[17], data[18], data[19]));
        let protocol = data[9];
        let frag = u16::from_be_bytes([data[6], data[7]]);
        let more = frag & 0x2000 != 0;
        let offset = u32::from(frag & 0x1fff) * 8;
        let payload = &data[ihl..];
        if more || offset != 0 {
            if !self.config.defrag {
                return inc(&self.metrics.fragments_dropped_limit);
            }
            let fragment = Fragment {
                key: FragKey {
                    src,
                    dst,
                    id: u32::from(u16::from_be_bytes([data[4], data[5]])),
                    protocol,
                },
                offset,
                more,
                payload,
            };
            if let Some(buf) = self.defrag.push(ctx.now_ns, fragment, &self.metrics) {
                let ctx = Ctx {
                    defragmented: true,
                    ..ctx
                };
                self.upper(ctx, src, dst, protocol, &buf, depth, emit);
                self.defrag.recycle(buf);
            }
            return;
        }
        self.upper(ctx, src, dst, protocol, payload, depth, emit);
    }

    fn ipv6<F: FnMut(DnsPayload)>(&mut self, ctx: Ctx, data: &[u8], depth: u8, emit: &mut F) {
        if data.len() < 40 {
            return inc(&self.metrics.truncated_packets);
        }
        let payload_len = usize::from(u16::from_be_bytes([data[4], data[5]]));
        if payload_len == 0 {
            // Jumbogram (RFC 2675) or bogus: DNS never needs one.
            return inc(&self.metrics.ip_malformed);
        }
        if data.len() < 40 + payload_len {
            return inc(&self.metrics.truncated_packets);
        }
        let data = &data[..40 + payload_len];
        let src = IpAddr::V6(Ipv6Addr::from(addr16(&data[8..24])));
        let dst = IpAddr::V6(Ipv6Addr::from(addr16(&data[24..40])));
        match walk_extensions(data[6], &data[40..]) {
            Ok(Walked::Upper(protocol, payload)) => {
                self.upper(ctx, src, dst, protocol, payload, depth, emit)
            }
            Ok(Walked::Fragment {
                next,
                offset,
                more,
                id,
                payload,
            }) => {
                if !self.config.defrag {
                    return inc(&self.metrics.fragments_dropped_limit);
                }
                let fragment = Fragment {
                    key: FragKey {
                        src,
                        dst,
                        id,
                        protocol: next,
                    },
                    offset,
                    more,
                    payload,
                };
                let Some(buf) = self.defrag.push(ctx.now_ns, fragment, &self.metrics) else {
                    return;
                };
                let ctx = Ctx {
                    defragmented: true,
                    ..ctx
                };
                // The fragmentable part may itself start with extension
                // headers (destination options); a second fragment header
                // there is invalid.
                match walk_extensions(next, &buf) {
                    Ok(Walked::Upper(protocol, payload)) => {
                        self.upper(ctx, src, dst, protocol, payload, depth, emit)
                    }
                    Ok(Walked::Fragment { .. }) | Err(()) => inc(&self.metrics.ip_malformed),
                }
                self.defrag.recycle(buf);
            }
            Err(()) => inc(&self.metrics.ip_malformed),
        }
    }

    #[allow(clippy::too_many_arguments)] // the 5-tuple plus context, all needed
    fn upper<F: FnMut(DnsPayload)>(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        payload: &[u8],
        depth: u8,
        emit: &mut F,
    ) {
        match protocol {
            IPPROTO_UDP => self.udp(ctx, src, dst, payload, emit),
            IPPROTO_TCP => self.tcp(ctx, src, dst, payload, emit),
            IPPROTO_IPIP | IPPROTO_IPV6 if depth < MAX_TUNNEL_DEPTH => {
                self.ip(ctx, payload, depth + 1, emit)
            }
            _ => inc(&self.metrics.ip_other_protocol),
        }
    }

    fn udp<F: FnMut(DnsPayload)>(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        data: &[u8],
        emit: &mut F,
    ) {
        if data.len() < 8 {
            return inc(&self.metrics.udp_malformed);
        }
        let sport = u16::from_be_bytes([data[0], data[1]]);
        let dport = u16::from_be_bytes([data[2], data[3]]);
        if !self.config.ports.contains(sport) && !self.config.ports.contains(dport) {
            return inc(&self.metrics.non_dns_port);
        }
        let len = usize::from(u16::from_be_bytes([data[4], data[5]]));
        if len < 8 {
            return inc(&self.metrics.udp_malformed);
        }
        if len > data.len() {
            return inc(&self.metrics.truncated_packets);
        }
        let message = &data[8..len];
        if message.len() < HEADER_LEN {
            return inc(&self.metrics.dns_too_short);
        }
        if !self.config.emit_queries && is_response(message) == Some(false) {
            return inc(&self.metrics.queries_skipped);
        }
        inc(&self.metrics.dns_messages);
        inc(&self.metrics.dns_messages_udp);
        emit(DnsPayload {
            ts_sec: ctx.now_ns / NANOS,
            ts_nsec: (ctx.now_ns % NANOS) as u32,
            src,
            dst,
            sport,
            dport,
            transport: Transport::Udp,
            message: Bytes::copy_from_slice(message),
            ip_defragmented: ctx.defragmented,
            tcp_reassembled: false,
            interface: self.interface.clone(),
        });
    }

    fn tcp<F: FnMut(DnsPayload)>(
        &mut self,
        ctx: Ctx,
        src: IpAddr,
        dst: IpAddr,
        data: &[u8],
        emit: &mut F,
    ) {
        if data.len() < 20 {
            return inc(&self.metrics.tcp_malformed);
        }
        let sport = u16::from_be_bytes([data[0], data[1]]);
        let dport = u16::from_be_bytes([data[2], data[3]]);
        if !self.config.ports.contains(sport) && !self.config.ports.contains(dport) {
            return inc(&self.metrics.non_dns_port);
        }
        if !self.config.tcp {
            return;
        }
        let header_len = usize::from(data[12] >> 4) * 4;
        if header_len < 20 || header_len > data.len() {
            return inc(&self.metrics.tcp_malformed);
        }
        let flags = data[13];
        let segment = Segment {
            key: StreamKey {
                src,
                dst,
                sport,
                dport,
            },
            seq: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
            fin: flags & 0x01 != 0,
            syn: flags & 0x02 != 0,
            rst: flags & 0x04 != 0,
            payload: &data[header_len..],
        };
        let (config, interface, metrics) = (&self.config, &self.interface, &*self.metrics);
        let defragmented = ctx.defragmented;
        // `ip_defragmented` describes the packet that completed the message.
        self.tcp.segment(ctx.now_ns, segment, metrics, &mut |m| {
            tcp_emit(config, interface, metrics, m, defragmented, emit)
        });
    }
}

fn tcp_emit<F: FnMut(DnsPayload)>(
    config: &CaptureConfig,
    interface: &Option<Arc<str>>,
    metrics: &Metrics,
    m: TcpMessage,
    defragmented: bool,
    emit: &mut F,
) {
    if !config.emit_queries && is_response(&m.message) == Some(false) {
        return inc(&metrics.queries_skipped);
    }
    inc(&metrics.dns_messages);
    inc(&metrics.dns_messages_tcp);
    emit(DnsPayload {
        ts_sec: m.ts_ns / NANOS,
        ts_nsec: (m.ts_ns % NANOS) as u32,
        src: m.key.src,
        dst: m.key.dst,
        sport: m.key.sport,
        dport: m.key.dport,
        transport: Transport::Tcp,
        message: m.message,
        ip_defragmented: defragmented,
        tcp_reassembled: m.reassembled,
        interface: interface.clone(),
    });
}

fn addr16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    a
}

/// Where an IPv6 extension header chain ends.
enum Walked<'a> {
    /// The upper-layer protocol and its data.
    Upper(u8, &'a [u8]),
    /// A fragment header: the rest is a fragment of the payload.
    Fragment {
        next: u8,
        offset: u32,
        more: bool,
        id: u32,
        payload: &'a [u8],
    },
}

fn walk_extensions(mut next: u8, mut data: &[u8]) -> Result<Walked<'_>, ()> {
    for _ in 0..MAX_EXTENSION_HEADERS {
        match next {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_DSTOPTS | IPPROTO_MOBILITY
            | IPPROTO_HIP | IPPROTO_SHIM6 => {
                let len = (usize::from(*data.get(1).ok_or(())?) + 1) * 8;
                next = data[0];
                data = data.get(len..).ok_or(())?;
            }
            IPPROTO_AH => {
                let len = (usize::from(*data.get(1).ok_or(())?) + 2) * 4;
                next = data[0];
                data = data.get(len..).ok_or(())?;
            }
            IPPROTO_FRAGMENT => {
                let h = data.get(..8).ok_or(())?;
                let field = be16(h, 2).ok_or(())?;
                let offset = u32::from(field & 0xfff8);
                let more = field & 1 != 0;
                let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
                if offset == 0 && !more {
                    // Atomic fragment (RFC 6946): not really fragmented.
                    next = h[0];
                    data = &data[8..];
                    continue;
                }
                return Ok(Walked::Fragment {
                    next: h[0],
                    offset,
                    more,
                    id,
                    payload: &data[8..],
                });
            }
            _ => return Ok(Walked::Upper(next, data)),
        }
    }
    Err(())
}
