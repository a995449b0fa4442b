//! The dnstap protobuf schema (`dnstap.proto`, proto2, package `dnstap`),
//! written by hand with prost derives.
//!
//! Bytes fields are `bytes::Bytes`, so decoding from a `Bytes` frame slices
//! it instead of copying. Enum fields are kept as `i32`: a value this schema
//! does not know (BIND's test file with message type 255) decodes fine and is
//! reported by the typed accessors as unknown. Every field but the types is
//! optional, and prost does not enforce `required`, so missing fields decode
//! as `None`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;

/// The top-level dnstap message: one per Frame Streams data frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dnstap {
    /// Server identity (like NSID).
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub identity: Option<Bytes>,
    /// Server version (like version.bind).
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub version: Option<Bytes>,
    /// Free-form annotation.
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub extra: Option<Bytes>,
    /// Payload type; only MESSAGE is defined.
    #[prost(enumeration = "dnstap::Type", required, tag = "15")]
    pub r#type: i32,
    /// The DNS message event.
    #[prost(message, optional, tag = "14")]
    pub message: Option<Message>,
}

/// Nested types of [`Dnstap`].
pub mod dnstap {
    /// `Dnstap.Type`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        /// A [`super::Message`] payload.
        Message = 1,
    }
}

/// `SocketFamily`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SocketFamily {
    /// IPv4.
    Inet = 1,
    /// IPv6.
    Inet6 = 2,
}

impl SocketFamily {
    /// The proto name, as dnstap-receiver prints it.
    pub fn name(self) -> &'static str {
        match self {
            SocketFamily::Inet => "INET",
            SocketFamily::Inet6 => "INET6",
        }
    }
}

/// `SocketProtocol`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SocketProtocol {
    /// Plain UDP.
    Udp = 1,
    /// Plain TCP.
    Tcp = 2,
    /// DNS over TLS.
    Dot = 3,
    /// DNS over HTTPS.
    Doh = 4,
    /// DNSCrypt over UDP.
    DnsCryptUdp = 5,
    /// DNSCrypt over TCP.
    DnsCryptTcp = 6,
    /// DNS over QUIC.
    Doq = 7,
}

impl SocketProtocol {
    /// The proto name.
    pub fn name(self) -> &'static str {
        match self {
            SocketProtocol::Udp => "UDP",
            SocketProtocol::Tcp => "TCP",
            SocketProtocol::Dot => "DOT",
            SocketProtocol::Doh => "DOH",
            SocketProtocol::DnsCryptUdp => "DNSCryptUDP",
            SocketProtocol::DnsCryptTcp => "DNSCryptTCP",
            SocketProtocol::Doq => "DOQ",
        }
    }
}

/// `HttpProtocol` (only set with DOH).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum HttpProtocol {
    /// HTTP/1.
    Http1 = 1,
    /// HTTP/2.
    Http2 = 2,
    /// HTTP/3.
    Http3 = 3,
}

/// `Policy`: what a policy (e.g. RPZ) did to the message.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Policy {
    /// Policy kind, e.g. "RPZ".
    #[prost(string, optional, tag = "1")]
    pub r#type: Option<String>,
    /// The rule (RPZ: owner name, wire format).
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub rule: Option<Bytes>,
    /// The action taken.
    #[prost(enumeration = "policy::Action", optional, tag = "3")]
    pub action: Option<i32>,
    /// What matched.
    #[prost(enumeration = "policy::Match", optional, tag = "4")]
    pub r#match: Option<i32>,
    /// The matched value.
    #[prost(bytes = "bytes", optional, tag = "5")]
    pub value: Option<Bytes>,
}

/// Nested types of [`Policy`].
pub mod policy {
    /// `Policy.Match`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Match {
        /// Query name.
        Qname = 1,
        /// Client address.
        ClientIp = 2,
        /// An address in the response.
        ResponseIp = 3,
        /// A name server name.
        NsName = 4,
        /// A name server address.
        NsIp = 5,
    }

    /// `Policy.Action`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Action {
        /// Answered NXDOMAIN.
        Nxdomain = 1,
        /// Answered NODATA.
        Nodata = 2,
        /// Passed through.
        Pass = 3,
        /// Dropped.
        Drop = 4,
        /// Truncated.
        Truncate = 5,
        /// Answered from local data.
        LocalData = 6,
    }
}

/// `Message`: one DNS message event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Message {
    /// Event type, see [`message::Type`].
    #[prost(enumeration = "message::Type", required, tag = "1")]
    pub r#type: i32,
    /// Address family of the transport.
    #[prost(enumeration = "SocketFamily", optional, tag = "2")]
    pub socket_family: Option<i32>,
    /// Transport protocol.
    #[prost(enumeration = "SocketProtocol", optional, tag = "3")]
    pub socket_protocol: Option<i32>,
    /// Initiator address (4 or 16 bytes).
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub query_address: Option<Bytes>,
    /// Responder address.
    #[prost(bytes = "bytes", optional, tag = "5")]
    pub response_address: Option<Bytes>,
    /// Initiator port.
    #[prost(uint32, optional, tag = "6")]
    pub query_port: Option<u32>,
    /// Responder port.
    #[prost(uint32, optional, tag = "7")]
    pub response_port: Option<u32>,
    /// Query time, seconds since the epoch.
    #[prost(uint64, optional, tag = "8")]
    pub query_time_sec: Option<u64>,
    /// Query time, nanoseconds.
    #[prost(fixed32, optional, tag = "9")]
    pub query_time_nsec: Option<u32>,
    /// The query, wire format.
    #[prost(bytes = "bytes", optional, tag = "10")]
    pub query_message: Option<Bytes>,
    /// Zone/bailiwick of a resolver query, wire-format name.
    #[prost(bytes = "bytes", optional, tag = "11")]
    pub query_zone: Option<Bytes>,
    /// Response time, seconds since the epoch.
    #[prost(uint64, optional, tag = "12")]
    pub response_time_sec: Option<u64>,
    /// Response time, nanoseconds.
    #[prost(fixed32, optional, tag = "13")]
    pub response_time_nsec: Option<u32>,
    /// The response, wire format.
    #[prost(bytes = "bytes", optional, tag = "14")]
    pub response_message: Option<Bytes>,
    /// Policy applied.
    #[prost(message, optional, tag = "15")]
    pub policy: Option<Policy>,
    /// HTTP version with DOH.
    #[prost(enumeration = "HttpProtocol", optional, tag = "16")]
    pub http_protocol: Option<i32>,
}

/// Nested types of [`Message`].
pub mod message {
    /// `Message.Type`. Odd values are queries, even values responses.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
    #[repr(i32)]
    pub enum Type {
        /// AQ.
        AuthQuery = 1,
        /// AR.
        AuthResponse = 2,
        /// RQ.
        ResolverQuery = 3,
        /// RR.
        ResolverResponse = 4,
        /// CQ.
        ClientQuery = 5,
        /// CR.
        ClientResponse = 6,
        /// FQ.
        ForwarderQuery = 7,
        /// FR.
        ForwarderResponse = 8,
        /// SQ.
        StubQuery = 9,
        /// SR.
        StubResponse = 10,
        /// TQ.
        ToolQuery = 11,
        /// TR.
        ToolResponse = 12,
        /// UQ.
        UpdateQuery = 13,
        /// UR.
        UpdateResponse = 14,
    }

    impl Type {
        /// The proto name (`CLIENT_QUERY`, ...).
        pub fn name(self) -> &'static str {
            match self {
                Type::AuthQuery => "AUTH_QUERY",
                Type::AuthResponse => "AUTH_RESPONSE",
                Type::ResolverQuery => "RESOLVER_QUERY",
                Type::ResolverResponse => "RESOLVER_RESPONSE",
                Type::ClientQuery => "CLIENT_QUERY",
                Type::ClientResponse => "CLIENT_RESPONSE",
                Type::ForwarderQuery => "FORWARDER_QUERY",
                Type::ForwarderResponse => "FORWARDER_RESPONSE",
                Type::StubQuery => "STUB_QUERY",
                Type::StubResponse => "STUB_RESPONSE",
                Type::ToolQuery => "TOOL_QUERY",
                Type::ToolResponse => "TOOL_RESPONSE",
                Type::UpdateQuery => "UPDATE_QUERY",
                Type::UpdateResponse => "UPDATE_RESPONSE",
            }
        }
    }
}

/// Decodes one data frame. Zero-copy: bytes fields slice `frame`.
pub fn decode_dnstap(frame: Bytes) -> Result<Dnstap, prost::DecodeError> {
    <Dnstap as prost::Message>::decode(frame)
}

/// A message type that may be outside the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// A type of the schema.
    Known(message::Type),
    /// A value the schema does not define.
    Unknown(i32),
}

impl MessageKind {
    /// Whether this is a query (odd type value, as dnstap-receiver decides).
    pub fn is_query(self) -> bool {
        let value = match self {
            MessageKind::Known(t) => t as i32,
            MessageKind::Unknown(v) => v,
        };
        value % 2 == 1
    }
}

impl std::fmt::Display for MessageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageKind::Known(t) => f.write_str(t.name()),
            MessageKind::Unknown(v) => write!(f, "{v}"),
        }
    }
}

impl Message {
    /// The message type, `Unknown` for values outside the schema.
    pub fn kind(&self) -> MessageKind {
        match message::Type::try_from(self.r#type) {
            Ok(t) => MessageKind::Known(t),
            Err(_) => MessageKind::Unknown(self.r#type),
        }
    }

    /// The socket family, if set and known.
    pub fn family(&self) -> Option<SocketFamily> {
        self.socket_family
            .and_then(|v| SocketFamily::try_from(v).ok())
    }

    /// The socket protocol, if set and known.
    pub fn protocol(&self) -> Option<SocketProtocol> {
        self.socket_protocol
            .and_then(|v| SocketProtocol::try_from(v).ok())
    }

    /// The query address as an IP, see [`ip_address`].
    pub fn query_ip(&self) -> Option<IpAddr> {
        ip_address(self.query_address.as_deref()?, self.family())
    }

    /// The response address as an IP, see [`ip_address`].
    pub fn response_ip(&self) -> Option<IpAddr> {
        ip_address(self.response_address.as_deref()?, self.family())
    }
}

/// Interprets an address field: 4 bytes are IPv4, 16 bytes IPv6, except that
/// 16 bytes with family INET are IPv4 in the last 4 bytes (older CoreDNS).
/// Any other length gives `None`.
pub fn ip_address(bytes: &[u8], family: Option<SocketFamily>) -> Option<IpAddr> {
    match (bytes.len(), family) {
        (4, _) => {
            let octets: [u8; 4] = bytes.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        (16, Some(SocketFamily::Inet)) => {
            let octets: [u8; 4] = bytes.get(12..16)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(octets)))
        }
        (16, _) => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn round_trip_and_unknown_type() {
        let tap = Dnstap {
            identity: Some(Bytes::from_static(b"ns1")),
            version: None,
            extra: None,
            r#type: dnstap::Type::Message as i32,
            message: Some(Message {
                r#type: 255,
                socket_family: Some(SocketFamily::Inet as i32),
                socket_protocol: Some(SocketProtocol::Doq as i32),
                query_address: Some(Bytes::from_static(&[0; 16])),
                ..Default::default()
            }),
        };
        let wire = Bytes::from(tap.encode_to_vec());
        let decoded = decode_dnstap(wire).unwrap();
        assert_eq!(decoded, tap);
        let message = decoded.message.unwrap();
        assert_eq!(message.kind(), MessageKind::Unknown(255));
        assert!(message.kind().is_query());
        assert_eq!(message.protocol(), Some(SocketProtocol::Doq));
        assert_eq!(message.query_ip(), Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode_dnstap(Bytes::from_static(&[0xff, 0xff, 0xff])).is_err());
    }
}
