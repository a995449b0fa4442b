//! Inputs' native events ⇄ [`DnsMessage`]: a dnstap protobuf (decoded once,
//! by the dnstap input) and a captured packet both become the one message
//! value that outputs and the record decoder read.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use dnsrecall_capture::DnsPayload;
use dnsrecall_core::message::{
    DnsMessage, Family, MessageKind, MessageType, Origin, Timestamp, Transport,
};
use dnsrecall_dnstap::Dnstap;
use dnsrecall_dnstap::proto::{self, SocketFamily};

/// The message of a decoded dnstap frame; `None` when the payload carries
/// no message. `frame` is the protobuf as received (kept for relays and
/// dnstap file outputs).
pub fn from_dnstap(tap: Dnstap, frame: Bytes) -> Option<DnsMessage> {
    let message = tap.message?;
    let family = message.family();
    let address =
        |bytes: &Option<Bytes>| bytes.as_deref().and_then(|b| proto::ip_address(b, family));
    let time = |secs: Option<u64>, nanos: Option<u32>| {
        secs.map(|secs| Timestamp::new(secs, nanos.unwrap_or(0)))
    };
    Some(DnsMessage {
        kind: MessageKind::from_value(message.r#type),
        identity: tap.identity,
        version: tap.version,
        family: family.map(|family| match family {
            SocketFamily::Inet => Family::Inet,
            SocketFamily::Inet6 => Family::Inet6,
        }),
        transport: message.socket_protocol.and_then(Transport::from_value),
        query_address: address(&message.query_address),
        query_port: message.query_port.and_then(|p| u16::try_from(p).ok()),
        response_address: address(&message.response_address),
        response_port: message.response_port.and_then(|p| u16::try_from(p).ok()),
        query_time: time(message.query_time_sec, message.query_time_nsec),
        response_time: time(message.response_time_sec, message.response_time_nsec),
        query_zone: message.query_zone,
        query_message: message.query_message,
        response_message: message.response_message,
        origin: Origin::Dnstap { frame },
    })
}

/// The message of a captured packet. Its sender is the responder of a
/// response and the initiator of a query; RD set makes it a client
/// exchange (a stub asking a resolver), RD clear a resolver's (asking an
/// authority), as a resolver's dnstap would label the same traffic.
/// `sensor` is the identity (the interface name when unset).
pub fn from_capture(payload: &DnsPayload, sensor: Option<&Arc<str>>) -> DnsMessage {
    let response = payload.is_response().unwrap_or(false);
    let recursion_desired = payload.message.get(2).is_some_and(|flags| flags & 1 != 0);
    let kind = match (response, recursion_desired) {
        (false, true) => MessageType::ClientQuery,
        (true, true) => MessageType::ClientResponse,
        (false, false) => MessageType::ResolverQuery,
        (true, false) => MessageType::ResolverResponse,
    };
    let (initiator, initiator_port, responder, responder_port) = if response {
        (payload.dst, payload.dport, payload.src, payload.sport)
    } else {
        (payload.src, payload.sport, payload.dst, payload.dport)
    };
    let time = Some(Timestamp::new(payload.ts_sec, payload.ts_nsec));
    let identity = sensor
        .or(payload.interface.as_ref())
        .map(|s| Bytes::copy_from_slice(s.as_bytes()));
    DnsMessage {
        kind: MessageKind::Known(kind),
        identity,
        version: None,
        family: Some(Family::of(payload.src)),
        transport: Some(match payload.transport {
            dnsrecall_capture::Transport::Udp => Transport::Udp,
            dnsrecall_capture::Transport::Tcp => Transport::Tcp,
        }),
        query_address: Some(initiator),
        query_port: Some(initiator_port),
        response_address: Some(responder),
        response_port: Some(responder_port),
        query_time: if response { None } else { time },
        response_time: if response { time } else { None },
        query_zone: None,
        query_message: (!response).then(|| payload.message.clone()),
        response_message: response.then(|| payload.message.clone()),
        origin: Origin::Capture {
            ip_defragmented: payload.ip_defragmented,
            tcp_reassembled: payload.tcp_reassembled,
        },
    }
}

fn address_bytes(address: IpAddr) -> Bytes {
    match address {
        IpAddr::V4(v4) => Bytes::copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => Bytes::copy_from_slice(&v6.octets()),
    }
}

/// The dnstap protobuf of a message (what a dnstap log or relay shows of
/// it). No data is copied but addresses.
pub fn to_dnstap(message: &DnsMessage) -> Dnstap {
    let secs = |t: Option<Timestamp>| t.map(|t| t.secs);
    let nanos = |t: Option<Timestamp>| t.map(|t| t.nanos);
    Dnstap {
        identity: message.identity.clone(),
        version: message.version.clone(),
        extra: None,
        r#type: proto::dnstap::Type::Message as i32,
        message: Some(proto::Message {
            r#type: message.kind.value(),
            socket_family: message.family.map(|family| match family {
                Family::Inet => SocketFamily::Inet as i32,
                Family::Inet6 => SocketFamily::Inet6 as i32,
            }),
            socket_protocol: message.transport.map(Transport::value),
            query_address: message.query_address.map(address_bytes),
            response_address: message.response_address.map(address_bytes),
            query_port: message.query_port.map(u32::from),
            response_port: message.response_port.map(u32::from),
            query_time_sec: secs(message.query_time),
            query_time_nsec: nanos(message.query_time),
            query_message: message.query_message.clone(),
            query_zone: message.query_zone.clone(),
            response_time_sec: secs(message.response_time),
            response_time_nsec: nanos(message.response_time),
            response_message: message.response_message.clone(),
            policy: None,
            http_protocol: None,
        }),
    }
}

/// The protobuf as received (dnstap), or encoded from the message.
pub fn dnstap_frame(message: &DnsMessage) -> Bytes {
    match &message.origin {
        Origin::Dnstap { frame } => frame.clone(),
        Origin::Capture { .. } => Bytes::from(prost::Message::encode_to_vec(&to_dnstap(message))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dnsrecall_dnstap::output::MessageView;
    use std::net::Ipv4Addr;

    fn response_wire(rd: bool) -> Bytes {
        // id 7, QR, RD as asked, one question www.test A, no answers.
        let mut wire = vec![0, 7, 0x80 | u8::from(rd), 0, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(b"\x03www\x04test\x00\x00\x01\x00\x01");
        Bytes::from(wire)
    }

    #[test]
    fn dnstap_round_trip_keeps_what_logs_show() {
        let tap = Dnstap {
            identity: Some(Bytes::from_static(b"ns1")),
            version: None,
            extra: None,
            r#type: 1,
            message: Some(proto::Message {
                r#type: 4,
                socket_family: Some(1),
                socket_protocol: Some(2),
                // 16 bytes with INET: IPv4 in the last four (older CoreDNS).
                query_address: Some(Bytes::from_static(&[
                    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
                ])),
                response_address: Some(Bytes::from_static(&[192, 0, 2, 53])),
                query_port: Some(5300),
                response_port: Some(53),
                query_time_sec: Some(1_700_000_000),
                query_time_nsec: Some(5),
                query_message: None,
                query_zone: Some(Bytes::from_static(b"\x04test\x00")),
                response_time_sec: Some(1_700_000_001),
                response_time_nsec: Some(250_000_000),
                response_message: Some(response_wire(false)),
                policy: None,
                http_protocol: None,
            }),
        };
        let frame = Bytes::from(prost::Message::encode_to_vec(&tap));
        let message = from_dnstap(tap.clone(), frame.clone()).expect("a message");
        assert_eq!(
            message.kind,
            MessageKind::Known(MessageType::ResolverResponse)
        );
        assert_eq!(
            message.query_address,
            Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))
        );
        assert_eq!(message.transport, Some(Transport::Tcp));
        assert_eq!(dnstap_frame(&message), frame, "the frame as received");
        let original = MessageView::new(&tap, None).expect("view");
        let again = MessageView::new(&to_dnstap(&message), None).expect("view");
        assert_eq!(original, again);
        assert_eq!(again.qname.as_deref(), Some("www.test."));
        assert_eq!(again.response_ip.as_deref(), Some("192.0.2.53"));
        let no_message = Dnstap {
            message: None,
            ..tap
        };
        assert!(from_dnstap(no_message, Bytes::new()).is_none());
    }

    fn payload(response: bool, rd: bool) -> DnsPayload {
        let server = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 53));
        let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut wire = response_wire(rd).to_vec();
        if !response {
            wire[2] &= 0x7f;
        }
        DnsPayload {
            ts_sec: 1_700_000_000,
            ts_nsec: 42,
            src: if response { server } else { client },
            dst: if response { client } else { server },
            sport: if response { 53 } else { 40000 },
            dport: if response { 40000 } else { 53 },
            transport: dnsrecall_capture::Transport::Udp,
            message: Bytes::from(wire),
            ip_defragmented: false,
            tcp_reassembled: true,
            interface: Some(Arc::from("eth0")),
        }
    }

    #[test]
    fn captured_packets_map_by_direction_and_rd() {
        let answer = from_capture(&payload(true, false), None);
        assert_eq!(
            answer.kind,
            MessageKind::Known(MessageType::ResolverResponse)
        );
        assert_eq!(answer.response_address, Some("192.0.2.53".parse().unwrap()));
        assert_eq!(
            (answer.query_port, answer.response_port),
            (Some(40000), Some(53))
        );
        assert_eq!(
            answer.response_time,
            Some(Timestamp::new(1_700_000_000, 42))
        );
        assert_eq!(answer.identity.as_deref(), Some(&b"eth0"[..]));
        assert!(answer.query_message.is_none() && answer.response_message.is_some());
        let sensor: Arc<str> = Arc::from("s1");
        let query = from_capture(&payload(false, true), Some(&sensor));
        assert_eq!(query.kind, MessageKind::Known(MessageType::ClientQuery));
        assert_eq!(query.query_address, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(query.identity.as_deref(), Some(&b"s1"[..]));
        assert_eq!(query.query_time, Some(Timestamp::new(1_700_000_000, 42)));
        // A dnstap log of a captured packet: encoded, and decodes back.
        let frame = dnstap_frame(&answer);
        let decoded = dnsrecall_dnstap::decode_dnstap(frame.clone()).expect("protobuf");
        assert_eq!(
            from_dnstap(decoded, frame).map(|m| m.response_address),
            Some(answer.response_address)
        );
    }
}
