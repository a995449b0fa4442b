//! DNS-collector-style text templates (`template = "..."` of a text
//! output): a line of space-separated directives (`timestamp identity
//! operation rcode queryip queryport family protocol length-unit qname
//! qtype latency`, DNS-collector's default), `{raw text}` copied as is.
//! A value containing a space is quoted with `"` (DNS-collector's
//! `text-format-boundary`); a missing value prints `-`.
//!
//! Values follow DNS-collector where its users parse them: `family` is
//! `IPv4`/`IPv6`, `qname` has no trailing dot, `latency` is seconds with
//! six decimals, flags print their name when set (`QR`, `TC`, `AA`, `RA`,
//! `RD`, `AD`, `CD`) and `-` otherwise.

use std::fmt::Write as _;

use dnsrecall_core::message::{DnsMessage, Family, Origin};
use dnsrecall_dnstap::dns;
use dnsrecall_dnstap::output::MessageView;

/// One directive of a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive {
    Timestamp,
    TimestampUnixMs,
    TimestampUnixUs,
    TimestampUnixNs,
    Identity,
    Version,
    Operation,
    Opcode,
    Rcode,
    Id,
    QueryIp,
    QueryPort,
    ResponseIp,
    ResponsePort,
    Family,
    Protocol,
    Length,
    LengthUnit,
    Qname,
    Qtype,
    Qclass,
    Latency,
    QdCount,
    AnCount,
    NsCount,
    ArCount,
    QueryZone,
    Flag(u16, &'static str),
    Defragmented,
    Reassembled,
    EdnsClientSubnet,
    GeoCountry,
    GeoCity,
    GeoAsNumber,
    GeoAsOwner,
}

const DIRECTIVES: &[(&str, Directive)] = &[
    ("timestamp", Directive::Timestamp),
    ("timestamp-rfc3339ns", Directive::Timestamp),
    ("timestamp-unixms", Directive::TimestampUnixMs),
    ("timestamp-unixus", Directive::TimestampUnixUs),
    ("timestamp-unixns", Directive::TimestampUnixNs),
    ("identity", Directive::Identity),
    ("version", Directive::Version),
    ("operation", Directive::Operation),
    ("opcode", Directive::Opcode),
    ("rcode", Directive::Rcode),
    ("id", Directive::Id),
    ("queryip", Directive::QueryIp),
    ("queryport", Directive::QueryPort),
    ("responseip", Directive::ResponseIp),
    ("responseport", Directive::ResponsePort),
    ("family", Directive::Family),
    ("protocol", Directive::Protocol),
    ("length", Directive::Length),
    ("length-unit", Directive::LengthUnit),
    ("qname", Directive::Qname),
    ("qtype", Directive::Qtype),
    ("qclass", Directive::Qclass),
    ("latency", Directive::Latency),
    ("qdcount", Directive::QdCount),
    ("questionscount", Directive::QdCount),
    ("ancount", Directive::AnCount),
    ("answercount", Directive::AnCount),
    ("nscount", Directive::NsCount),
    ("arcount", Directive::ArCount),
    ("query-zone", Directive::QueryZone),
    ("qr", Directive::Flag(0x8000, "QR")),
    ("aa", Directive::Flag(0x0400, "AA")),
    ("tc", Directive::Flag(0x0200, "TC")),
    ("rd", Directive::Flag(0x0100, "RD")),
    ("ra", Directive::Flag(0x0080, "RA")),
    ("ad", Directive::Flag(0x0020, "AD")),
    ("cd", Directive::Flag(0x0010, "CD")),
    ("df", Directive::Defragmented),
    ("tr", Directive::Reassembled),
    ("edns-csubnet", Directive::EdnsClientSubnet),
    ("geoip-country", Directive::GeoCountry),
    ("geoip-city", Directive::GeoCity),
    ("geoip-as-number", Directive::GeoAsNumber),
    ("geoip-as-owner", Directive::GeoAsOwner),
];

/// Every directive name a template accepts.
pub fn directive_names() -> impl Iterator<Item = &'static str> {
    DIRECTIVES.iter().map(|(name, _)| *name)
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Directive(Directive),
    Raw(String),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; an unknown directive or an unclosed `{` is an error.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(raw) = rest.strip_prefix('{') {
                let end = raw
                    .find('}')
                    .ok_or_else(|| format!("unclosed {{ in {text:?}"))?;
                parts.push(Part::Raw(raw[..end].to_string()));
                rest = &raw[end + 1..];
            } else {
                let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
                let word = &rest[..end];
                let directive = DIRECTIVES
                    .iter()
                    .find(|(name, _)| *name == word)
                    .map(|(_, d)| *d)
                    .ok_or_else(|| format!("unknown directive {word:?}"))?;
                parts.push(Part::Directive(directive));
                rest = &rest[end..];
            }
            rest = rest.trim_start();
        }
        if parts.is_empty() {
            return Err("empty template".to_string());
        }
        Ok(Template { parts })
    }

    /// Appends the line of `message` (whose dnstap-receiver view is `view`)
    /// to `out`, without a newline.
    pub fn render(&self, view: &MessageView, message: &DnsMessage, out: &mut String) {
        let wire = message.payload().map(|p| &p[..]).unwrap_or_default();
        let mut value = String::new();
        for (index, part) in self.parts.iter().enumerate() {
            if index > 0 {
                out.push(' ');
            }
            match part {
                Part::Raw(text) => out.push_str(text),
                Part::Directive(directive) => {
                    value.clear();
                    render_directive(*directive, view, message, wire, &mut value);
                    if value.is_empty() {
                        out.push('-');
                    } else if value.contains(' ') {
                        out.push('"');
                        out.push_str(&value);
                        out.push('"');
                    } else {
                        out.push_str(&value);
                    }
                }
            }
        }
    }
}

fn header_u16(wire: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*wire.get(at)?, *wire.get(at + 1)?]))
}

fn render_directive(
    directive: Directive,
    view: &MessageView,
    message: &DnsMessage,
    wire: &[u8],
    out: &mut String,
) {
    let time = message.time();
    let geo = view.geo.as_ref();
    match directive {
        Directive::Timestamp => {
            if let Some(time) = time
                && let Ok(seconds) = i64::try_from(time.secs)
                && let Ok(ts) = jiff::Timestamp::new(seconds, time.nanos as i32)
            {
                let civil = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
                let _ = write!(
                    out,
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                    civil.year(),
                    civil.month(),
                    civil.day(),
                    civil.hour(),
                    civil.minute(),
                    civil.second(),
                    civil.subsec_nanosecond()
                );
            }
        }
        Directive::TimestampUnixMs => {
            if let Some(t) = time {
                let _ = write!(out, "{}", t.as_nanos() / 1_000_000);
            }
        }
        Directive::TimestampUnixUs => {
            if let Some(t) = time {
                let _ = write!(out, "{}", t.as_nanos() / 1_000);
            }
        }
        Directive::TimestampUnixNs => {
            if let Some(t) = time {
                let _ = write!(out, "{}", t.as_nanos());
            }
        }
        Directive::Identity => out.push_str(view.identity.as_deref().unwrap_or_default()),
        Directive::Version => {
            if let Some(version) = &message.version {
                out.push_str(&String::from_utf8_lossy(version));
            }
        }
        Directive::Operation => out.push_str(&view.message),
        Directive::Opcode => {
            if let Some(flags) = header_u16(wire, 2) {
                let _ = write!(out, "{}", (flags >> 11) & 0xf);
            }
        }
        Directive::Rcode => out.push_str(view.rcode.as_deref().unwrap_or_default()),
        Directive::Id => {
            if let Some(id) = view.id {
                let _ = write!(out, "{id}");
            }
        }
        Directive::QueryIp => out.push_str(view.query_ip.as_deref().unwrap_or_default()),
        Directive::QueryPort => {
            if let Some(port) = view.query_port {
                let _ = write!(out, "{port}");
            }
        }
        Directive::ResponseIp => out.push_str(view.response_ip.as_deref().unwrap_or_default()),
        Directive::ResponsePort => {
            if let Some(port) = view.response_port {
                let _ = write!(out, "{port}");
            }
        }
        Directive::Family => match message.family {
            Some(Family::Inet) => out.push_str("IPv4"),
            Some(Family::Inet6) => out.push_str("IPv6"),
            None => {}
        },
        Directive::Protocol => out.push_str(view.protocol.as_deref().unwrap_or_default()),
        Directive::Length => {
            if let Some(length) = view.length {
                let _ = write!(out, "{length}");
            }
        }
        Directive::LengthUnit => {
            if let Some(length) = view.length {
                let _ = write!(out, "{length}b");
            }
        }
        Directive::Qname => {
            if let Some(qname) = &view.qname {
                out.push_str(if qname == "." {
                    qname
                } else {
                    qname.strip_suffix('.').unwrap_or(qname)
                });
            }
        }
        Directive::Qtype => out.push_str(view.rrtype.as_deref().unwrap_or_default()),
        Directive::Qclass => {
            if let Some((_, end)) = (header_u16(wire, 4).unwrap_or(0) > 0)
                .then(|| dns::read_name(wire, 12))
                .flatten()
                && let Some(class) = header_u16(wire, end + 2)
            {
                match class {
                    1 => out.push_str("IN"),
                    3 => out.push_str("CH"),
                    4 => out.push_str("HS"),
                    255 => out.push_str("ANY"),
                    other => {
                        let _ = write!(out, "CLASS{other}");
                    }
                }
            }
        }
        Directive::Latency => {
            if let Some(latency) = view.latency {
                let _ = write!(out, "{latency:.6}");
            }
        }
        Directive::QdCount | Directive::AnCount | Directive::NsCount | Directive::ArCount => {
            let at = match directive {
                Directive::QdCount => 4,
                Directive::AnCount => 6,
                Directive::NsCount => 8,
                _ => 10,
            };
            if let Some(count) = header_u16(wire, at) {
                let _ = write!(out, "{count}");
            }
        }
        Directive::QueryZone => {
            if let Some(zone) = message.query_zone.as_deref().and_then(dns::name_to_text) {
                out.push_str(&zone);
            }
        }
        Directive::Flag(bit, name) => {
            if let Some(flags) = header_u16(wire, 2)
                && flags & bit != 0
            {
                out.push_str(name);
            }
        }
        Directive::Defragmented | Directive::Reassembled => {
            let set = match message.origin {
                Origin::Capture {
                    ip_defragmented,
                    tcp_reassembled,
                } => {
                    if directive == Directive::Defragmented {
                        ip_defragmented
                    } else {
                        tcp_reassembled
                    }
                }
                Origin::Dnstap { .. } => false,
            };
            if set {
                out.push_str(if directive == Directive::Defragmented {
                    "DF"
                } else {
                    "TR"
                });
            }
        }
        Directive::EdnsClientSubnet => {
            if let Some(subnet) = super::geoip::client_subnet(wire) {
                let _ = write!(out, "{subnet}");
            }
        }
        Directive::GeoCountry => {
            out.push_str(geo.and_then(|g| g.country.as_deref()).unwrap_or_default())
        }
        Directive::GeoCity => out.push_str(geo.and_then(|g| g.city.as_deref()).unwrap_or_default()),
        Directive::GeoAsNumber => {
            if let Some(asn) = geo.and_then(|g| g.asn) {
                let _ = write!(out, "{asn}");
            }
        }
        Directive::GeoAsOwner => out.push_str(
            geo.and_then(|g| g.organization.as_deref())
                .unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dnsrecall_core::message::{MessageKind, MessageType, Timestamp, Transport};

    #[test]
    fn parse_and_render() {
        assert!(Template::parse("qname nonsense").is_err());
        assert!(Template::parse("qname {open").is_err());
        assert!(Template::parse("  ").is_err());
        let template =
            Template::parse("timestamp identity operation family qname qtype rd qr {a b} latency")
                .unwrap();
        let mut wire = vec![0, 9, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(b"\x03www\x07example\x00\x00\x1c\x00\x01");
        let message = DnsMessage {
            kind: MessageKind::Known(MessageType::ClientQuery),
            identity: Some(Bytes::from_static(b"my resolver")),
            version: None,
            family: Some(Family::Inet6),
            transport: Some(Transport::Udp),
            query_address: Some("2001:db8::1".parse().unwrap()),
            query_port: Some(4000),
            response_address: None,
            response_port: None,
            query_time: Some(Timestamp::new(1_700_000_000, 5)),
            response_time: None,
            query_zone: None,
            query_message: Some(Bytes::from(wire)),
            response_message: None,
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        };
        let tap = crate::message::to_dnstap(&message);
        let view = MessageView::new(&tap, None).unwrap();
        let mut line = String::new();
        template.render(&view, &message, &mut line);
        assert_eq!(
            line,
            "2023-11-14T22:13:20.000000005Z \"my resolver\" CLIENT_QUERY IPv6 www.example AAAA RD - a b -"
        );
        assert!(directive_names().any(|n| n == "geoip-as-owner"));
    }
}
