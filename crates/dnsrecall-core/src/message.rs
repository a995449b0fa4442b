//! A DNS message as an input observed it, with its transport metadata.
//!
//! [`DnsMessage`] is what every message input (dnstap streams and files,
//! live capture, pcap files) hands to the rest of the program: the message
//! outputs (logs, forwarding), the traffic statistics and the record decoder
//! all read the same value, so a dnstap frame's protobuf is decoded once.
//!
//! The model follows dnstap's `Message` (the richest of the common
//! descriptions of a DNS event: type, addresses and ports of initiator and
//! responder, times, transport, the wire messages, the resolver's zone), so
//! a dnstap frame maps onto it field by field. A captured packet maps too:
//! its sender and receiver become responder and initiator, its capture time
//! the query or response time, and its type is `CLIENT_QUERY` /
//! `CLIENT_RESPONSE` when the message has RD set (a stub talking to a
//! resolver) and `RESOLVER_QUERY` / `RESOLVER_RESPONSE` when RD is clear (a
//! resolver or forwarder asking an authoritative server), as a resolver's
//! dnstap would label the same traffic.
//!
//! The wire messages are [`Bytes`] slices of the frame or packet they came
//! in: cloning a message or handing it to several outputs copies no DNS data.

use std::fmt;
use std::net::IpAddr;

use bytes::Bytes;

//---- MessageType ----

/// dnstap's `Message.Type`. Odd values are queries, even values responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum MessageType {
    AuthQuery = 1,
    AuthResponse = 2,
    ResolverQuery = 3,
    ResolverResponse = 4,
    ClientQuery = 5,
    ClientResponse = 6,
    ForwarderQuery = 7,
    ForwarderResponse = 8,
    StubQuery = 9,
    StubResponse = 10,
    ToolQuery = 11,
    ToolResponse = 12,
    UpdateQuery = 13,
    UpdateResponse = 14,
}

impl MessageType {
    /// Every type, in value order.
    pub const ALL: [MessageType; 14] = [
        MessageType::AuthQuery,
        MessageType::AuthResponse,
        MessageType::ResolverQuery,
        MessageType::ResolverResponse,
        MessageType::ClientQuery,
        MessageType::ClientResponse,
        MessageType::ForwarderQuery,
        MessageType::ForwarderResponse,
        MessageType::StubQuery,
        MessageType::StubResponse,
        MessageType::ToolQuery,
        MessageType::ToolResponse,
        MessageType::UpdateQuery,
        MessageType::UpdateResponse,
    ];

    /// The type with this dnstap value, if the schema defines it.
    pub fn from_value(value: i32) -> Option<MessageType> {
        let index = usize::try_from(value).ok()?.checked_sub(1)?;
        MessageType::ALL.get(index).copied()
    }

    /// The dnstap value.
    pub fn value(self) -> i32 {
        self as i32
    }

    /// The dnstap name (`CLIENT_QUERY`, ...).
    pub fn name(self) -> &'static str {
        match self {
            MessageType::AuthQuery => "AUTH_QUERY",
            MessageType::AuthResponse => "AUTH_RESPONSE",
            MessageType::ResolverQuery => "RESOLVER_QUERY",
            MessageType::ResolverResponse => "RESOLVER_RESPONSE",
            MessageType::ClientQuery => "CLIENT_QUERY",
            MessageType::ClientResponse => "CLIENT_RESPONSE",
            MessageType::ForwarderQuery => "FORWARDER_QUERY",
            MessageType::ForwarderResponse => "FORWARDER_RESPONSE",
            MessageType::StubQuery => "STUB_QUERY",
            MessageType::StubResponse => "STUB_RESPONSE",
            MessageType::ToolQuery => "TOOL_QUERY",
            MessageType::ToolResponse => "TOOL_RESPONSE",
            MessageType::UpdateQuery => "UPDATE_QUERY",
            MessageType::UpdateResponse => "UPDATE_RESPONSE",
        }
    }

    /// The type named `name` (dnstap spelling, case-insensitive).
    pub fn from_name(name: &str) -> Option<MessageType> {
        MessageType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Whether this is a query type.
    pub fn is_query(self) -> bool {
        self.value() % 2 == 1
    }
}

/// A message type that may be outside the schema (a sender's bug or a
/// newer schema): kept as the number, never rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    Known(MessageType),
    Unknown(i32),
}

impl MessageKind {
    /// The kind of a dnstap type value.
    pub fn from_value(value: i32) -> MessageKind {
        MessageType::from_value(value).map_or(MessageKind::Unknown(value), MessageKind::Known)
    }

    /// The dnstap value.
    pub fn value(self) -> i32 {
        match self {
            MessageKind::Known(t) => t.value(),
            MessageKind::Unknown(v) => v,
        }
    }

    /// Whether this is a query (odd value, as dnstap-receiver decides).
    pub fn is_query(self) -> bool {
        self.value() % 2 == 1
    }

    /// The known type, if any.
    pub fn known(self) -> Option<MessageType> {
        match self {
            MessageKind::Known(t) => Some(t),
            MessageKind::Unknown(_) => None,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageKind::Known(t) => f.write_str(t.name()),
            MessageKind::Unknown(v) => write!(f, "{v}"),
        }
    }
}

//---- Family and Transport ----

/// Address family of the transport (dnstap `SocketFamily`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    Inet,
    Inet6,
}

impl Family {
    /// dnstap's name (`INET`, `INET6`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "INET",
            Family::Inet6 => "INET6",
        }
    }

    /// The family of an address.
    pub fn of(address: IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
}

/// Transport protocol (dnstap `SocketProtocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// DNS over TLS.
    Dot,
    /// DNS over HTTPS.
    Doh,
    DnscryptUdp,
    DnscryptTcp,
    /// DNS over QUIC.
    Doq,
}

impl Transport {
    /// The transport with this dnstap `SocketProtocol` value.
    pub fn from_value(value: i32) -> Option<Transport> {
        Some(match value {
            1 => Transport::Udp,
            2 => Transport::Tcp,
            3 => Transport::Dot,
            4 => Transport::Doh,
            5 => Transport::DnscryptUdp,
            6 => Transport::DnscryptTcp,
            7 => Transport::Doq,
            _ => return None,
        })
    }

    /// The dnstap `SocketProtocol` value.
    pub fn value(self) -> i32 {
        match self {
            Transport::Udp => 1,
            Transport::Tcp => 2,
            Transport::Dot => 3,
            Transport::Doh => 4,
            Transport::DnscryptUdp => 5,
            Transport::DnscryptTcp => 6,
            Transport::Doq => 7,
        }
    }

    /// dnstap's name (`UDP`, `TCP`, `DOT`, `DOH`, `DNSCryptUDP`,
    /// `DNSCryptTCP`, `DOQ`).
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Dot => "DOT",
            Transport::Doh => "DOH",
            Transport::DnscryptUdp => "DNSCryptUDP",
            Transport::DnscryptTcp => "DNSCryptTCP",
            Transport::Doq => "DOQ",
        }
    }
}

//---- Timestamp ----

/// A point in time: seconds since the Unix epoch and nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    pub secs: u64,
    /// Always below 1e9 (larger values are clamped when built).
    pub nanos: u32,
}

impl Timestamp {
    /// A timestamp; nanoseconds beyond a second are clamped.
    pub fn new(secs: u64, nanos: u32) -> Timestamp {
        Timestamp {
            secs,
            nanos: nanos.min(999_999_999),
        }
    }

    /// Nanoseconds since the epoch (saturating).
    pub fn as_nanos(self) -> u64 {
        self.secs
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(self.nanos))
    }

    /// Seconds since the epoch as a float (for JSON outputs).
    pub fn as_secs_f64(self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }
}

//---- Origin ----

/// Which kind of input produced a message, and what only that kind knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A dnstap frame; `frame` is the encoded protobuf as received, so a
    /// dnstap relay forwards it without encoding it again.
    Dnstap { frame: Bytes },
    /// A captured packet (live or from a file).
    Capture {
        /// The IP datagram was reassembled from fragments.
        ip_defragmented: bool,
        /// The message was put together from several TCP segments.
        tcp_reassembled: bool,
    },
}

//---- DnsMessage ----

/// One DNS message event. See the module documentation for how dnstap
/// frames and captured packets map onto it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMessage {
    /// Query or response, and where in the resolution it was seen.
    pub kind: MessageKind,
    /// Who reported it: the dnstap `identity`, or the capture's sensor id
    /// (the interface name unless configured).
    pub identity: Option<Bytes>,
    /// dnstap `version` (the sender's software), when given.
    pub version: Option<Bytes>,
    pub family: Option<Family>,
    pub transport: Option<Transport>,
    /// The initiator (the client of this exchange).
    pub query_address: Option<IpAddr>,
    pub query_port: Option<u16>,
    /// The responder (the server of this exchange).
    pub response_address: Option<IpAddr>,
    pub response_port: Option<u16>,
    pub query_time: Option<Timestamp>,
    pub response_time: Option<Timestamp>,
    /// The zone a resolver sent the query to (dnstap `query_zone`, wire
    /// form), which is the bailiwick of the response's records.
    pub query_zone: Option<Bytes>,
    /// The query, wire form.
    pub query_message: Option<Bytes>,
    /// The response, wire form.
    pub response_message: Option<Bytes>,
    pub origin: Origin,
}

impl DnsMessage {
    /// Whether this is a query event.
    pub fn is_query(&self) -> bool {
        self.kind.is_query()
    }

    /// The wire message this event is about: the query of a query event,
    /// the response of a response event.
    pub fn payload(&self) -> Option<&Bytes> {
        if self.is_query() {
            self.query_message.as_ref()
        } else {
            self.response_message.as_ref()
        }
    }

    /// The time of the event: the query time of a query, the response time
    /// of a response (falling back to the other one when missing).
    pub fn time(&self) -> Option<Timestamp> {
        if self.is_query() {
            self.query_time.or(self.response_time)
        } else {
            self.response_time.or(self.query_time)
        }
    }

    /// The identity as text (lossy UTF-8), if any.
    pub fn identity_text(&self) -> Option<String> {
        self.identity
            .as_ref()
            .map(|i| String::from_utf8_lossy(i).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_values_and_names() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_value(t.value()), Some(t));
            assert_eq!(MessageType::from_name(t.name()), Some(t));
            assert_eq!(t.is_query(), t.name().ends_with("_QUERY"));
        }
        assert_eq!(MessageType::from_value(0), None);
        assert_eq!(MessageType::from_value(15), None);
        assert_eq!(MessageType::from_value(-1), None);
        assert_eq!(MessageKind::from_value(255), MessageKind::Unknown(255));
        assert!(MessageKind::Unknown(255).is_query());
        assert_eq!(MessageKind::Unknown(255).to_string(), "255");
        assert_eq!(
            MessageType::from_name("client_response"),
            Some(MessageType::ClientResponse)
        );
    }

    #[test]
    fn transports_round_trip() {
        for value in 1..=7 {
            let transport = Transport::from_value(value).unwrap();
            assert_eq!(transport.value(), value);
        }
        assert_eq!(Transport::from_value(0), None);
    }

    #[test]
    fn payload_and_time_follow_the_direction() {
        let message = DnsMessage {
            kind: MessageKind::Known(MessageType::ClientResponse),
            identity: None,
            version: None,
            family: Some(Family::Inet),
            transport: Some(Transport::Udp),
            query_address: None,
            query_port: None,
            response_address: None,
            response_port: None,
            query_time: Some(Timestamp::new(10, 0)),
            response_time: None,
            query_zone: None,
            query_message: Some(Bytes::from_static(b"q")),
            response_message: Some(Bytes::from_static(b"r")),
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        };
        assert_eq!(message.payload().map(|p| &p[..]), Some(&b"r"[..]));
        assert_eq!(message.time(), Some(Timestamp::new(10, 0)));
        assert_eq!(Timestamp::new(1, 2_000_000_000).nanos, 999_999_999);
    }
}
