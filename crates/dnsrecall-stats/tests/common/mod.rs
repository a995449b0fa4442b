//! Real captures turned into `DnsMessage`s, the way the inputs will do it:
//! dnstap frames field by field, captured packets by the mapping described
//! in `dnsrecall_core::message`.

#![allow(dead_code)]

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use bytes::Bytes;
use dnsrecall_capture::{CaptureConfig, PcapFileReader};
use dnsrecall_core::message::{
    DnsMessage, Family, MessageKind, MessageType, Origin, Timestamp, Transport,
};
use dnsrecall_dnstap::framestream::FileReader;
use dnsrecall_dnstap::proto::{SocketFamily, decode_dnstap};

/// Every data frame of a Frame Streams file.
pub fn dnstap_frames(path: &Path) -> Vec<Bytes> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = FileReader::new(BufReader::new(file));
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_data().expect("frame") {
        frames.push(frame);
    }
    frames
}

/// One dnstap frame as the dnstap input makes it a message, field by
/// field; `None` for a frame without a message.
pub fn message_from_frame(frame: Bytes) -> Option<DnsMessage> {
    let tap = decode_dnstap(frame.clone()).expect("dnstap protobuf");
    let m = tap.message.as_ref()?;
    let time =
        |sec: Option<u64>, nsec: Option<u32>| sec.map(|s| Timestamp::new(s, nsec.unwrap_or(0)));
    Some(DnsMessage {
        kind: MessageKind::from_value(m.r#type),
        identity: tap.identity.clone(),
        version: tap.version.clone(),
        family: m.family().map(|f| match f {
            SocketFamily::Inet => Family::Inet,
            SocketFamily::Inet6 => Family::Inet6,
        }),
        transport: m.socket_protocol.and_then(Transport::from_value),
        query_address: m.query_ip(),
        query_port: m.query_port.and_then(|p| u16::try_from(p).ok()),
        response_address: m.response_ip(),
        response_port: m.response_port.and_then(|p| u16::try_from(p).ok()),
        query_time: time(m.query_time_sec, m.query_time_nsec),
        response_time: time(m.response_time_sec, m.response_time_nsec),
        query_zone: m.query_zone.clone(),
        query_message: m.query_message.clone(),
        response_message: m.response_message.clone(),
        origin: Origin::Dnstap { frame },
    })
}

/// Every frame of a dnstap file, as messages.
pub fn dnstap_messages(path: &Path) -> Vec<DnsMessage> {
    dnstap_frames(path)
        .into_iter()
        .filter_map(message_from_frame)
        .collect()
}

/// A query's wire form: id 1, RD, one question `name` type A.
pub fn query_wire(name: &str) -> Vec<u8> {
    let mut wire = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.extend_from_slice(&[0, 0, 1, 0, 1]);
    wire
}

/// `template` made a client query for `name` from `client`.
pub fn query_from(template: &DnsMessage, name: &str, client: u32) -> DnsMessage {
    let mut message = template.clone();
    message.kind = MessageKind::Known(MessageType::ClientQuery);
    message.query_message = Some(query_wire(name).into());
    message.response_message = None;
    message.query_address = Some(std::net::IpAddr::from(client.to_be_bytes()));
    message
}

/// Every DNS message of a capture file.
pub fn pcap_messages(path: &Path, sensor: &str) -> Vec<DnsMessage> {
    let reader = PcapFileReader::open(path, &CaptureConfig::default()).expect("capture");
    let mut messages = Vec::new();
    for payload in reader {
        let Ok(payload) = payload else {
            break;
        };
        let message: Bytes = payload.message.clone();
        let response = payload.is_response().unwrap_or(false);
        let recursion_desired = message.get(2).is_some_and(|b| b & 0x01 != 0);
        let kind = match (response, recursion_desired) {
            (false, true) => MessageType::ClientQuery,
            (true, true) => MessageType::ClientResponse,
            (false, false) => MessageType::ResolverQuery,
            (true, false) => MessageType::ResolverResponse,
        };
        let time = Some(Timestamp::new(payload.ts_sec, payload.ts_nsec));
        let (client, client_port, server, server_port) = if response {
            (payload.dst, payload.dport, payload.src, payload.sport)
        } else {
            (payload.src, payload.sport, payload.dst, payload.dport)
        };
        messages.push(DnsMessage {
            kind: MessageKind::Known(kind),
            identity: Some(Bytes::copy_from_slice(sensor.as_bytes())),
            version: None,
            family: Some(Family::of(client)),
            transport: Some(match payload.transport {
                dnsrecall_capture::Transport::Udp => Transport::Udp,
                dnsrecall_capture::Transport::Tcp => Transport::Tcp,
            }),
            query_address: Some(client),
            query_port: Some(client_port),
            response_address: Some(server),
            response_port: Some(server_port),
            query_time: if response { None } else { time },
            response_time: if response { time } else { None },
            query_zone: None,
            query_message: if response {
                None
            } else {
                Some(message.clone())
            },
            response_message: if response { Some(message) } else { None },
            origin: Origin::Capture {
                ip_defragmented: payload.ip_defragmented,
                tcp_reassembled: payload.tcp_reassembled,
            },
        });
    }
    messages
}

/// The reference decoding of a capture (`X.expected.jsonl`), one JSON
/// object per line.
pub fn expected(path: &Path) -> Vec<serde_json::Value> {
    let mut name = path.as_os_str().to_owned();
    name.push(".expected.jsonl");
    std::fs::read_to_string(&name)
        .expect("expected file")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}
