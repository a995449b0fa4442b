//! Per-output filters: which messages one output gets.
//!
//! The keys sit at the `[[outputs]]` level beside `kind` and apply to any
//! kind. Every key that is set must match (AND); a list matches when any
//! of its values does (OR). The regexes follow python dnstap-receiver's
//! `filter.qname-regex` / `filter.dnstap-identities`: Python's `re.match`,
//! anchored at the start of the name or identity only. The rest (message
//! types, rcode, qtype, client CIDR, GeoIP country and ASN, sampling) are
//! DNS-collector's and users' wishes. A refused message is counted per
//! output and [`FilterReason`] (`dnsrecall_output_filtered_total`).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use dnsrecall_core::message::{DnsMessage, MessageType};
use dnsrecall_dnstap::dns;
use dnsrecall_dnstap::output::Geo;
use ipnet::IpNet;
use regex::Regex;
use serde::{Deserialize, Serialize};

/// The filter keys of an `[[outputs]]` table (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterConfig {
    /// Keep messages whose first question name (presentation form with the
    /// trailing dot, as logged) matches this regex at its start
    /// (dnstap-receiver's `qname-regex`) [default: unset].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qname_regex: Option<String>,
    /// Keep messages whose identity (dnstap `identity`, capture sensor)
    /// matches this regex at its start [default: unset].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_regex: Option<String>,
    /// Keep these dnstap message types (`CLIENT_QUERY`,
    /// `RESOLVER_RESPONSE`, ...) [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_types: Vec<String>,
    /// Keep these RCODEs of the DNS header (`NOERROR`, `NXDOMAIN`, or a
    /// number 0-15) [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rcodes: Vec<String>,
    /// Keep these question types (`A`, `AAAA`, `TYPE65`, or a number)
    /// [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qtypes: Vec<String>,
    /// Keep messages whose client (the initiator, dnstap `query_address`)
    /// is inside one of these prefixes (`192.0.2.0/24`, `2001:db8::/32`,
    /// or one address) [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_cidrs: Vec<String>,
    /// Keep messages whose client's GeoIP country ISO code is one of these
    /// (`FR`, `DE`); needs `[geoip]` [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub countries: Vec<String>,
    /// Keep messages whose client's autonomous system is one of these;
    /// needs `[geoip]` with an ASN database [default: all].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub asns: Vec<u32>,
    /// Keep one message in N of those the other filters kept (1 in N,
    /// every N-th); 0 or 1 keeps all [default: 0].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub sample: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// Which filter refused a message (the `filter` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum FilterReason {
    MessageType = 0,
    Identity = 1,
    Qname = 2,
    Rcode = 3,
    Qtype = 4,
    Client = 5,
    Country = 6,
    Asn = 7,
    Sample = 8,
}

impl FilterReason {
    /// Every reason, in `repr` order.
    pub const ALL: [FilterReason; 9] = [
        FilterReason::MessageType,
        FilterReason::Identity,
        FilterReason::Qname,
        FilterReason::Rcode,
        FilterReason::Qtype,
        FilterReason::Client,
        FilterReason::Country,
        FilterReason::Asn,
        FilterReason::Sample,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterReason::MessageType => "message_type",
            FilterReason::Identity => "identity",
            FilterReason::Qname => "qname",
            FilterReason::Rcode => "rcode",
            FilterReason::Qtype => "qtype",
            FilterReason::Client => "client",
            FilterReason::Country => "country",
            FilterReason::Asn => "asn",
            FilterReason::Sample => "sample",
        }
    }
}

/// A filter key with a value that cannot mean anything.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{key}: invalid regex: {source}")]
    Regex {
        key: &'static str,
        source: regex::Error,
    },
    #[error("message_types: unknown message type {0:?} (CLIENT_QUERY, RESOLVER_RESPONSE, ...)")]
    MessageType(String),
    #[error("rcodes: unknown rcode {0:?} (NOERROR, NXDOMAIN, ..., or 0-15)")]
    Rcode(String),
    #[error("qtypes: unknown type {0:?} (A, AAAA, TYPE65, or a number)")]
    Qtype(String),
    #[error("client_cidrs: {0:?} is neither an address nor a prefix")]
    Cidr(String),
    #[error("countries: {0:?} is not a two-letter ISO code")]
    Country(String),
}

/// A compiled [`FilterConfig`].
#[derive(Debug)]
pub struct Filter {
    qname: Option<Regex>,
    identity: Option<Regex>,
    /// Bit `t` set: dnstap type value `t` kept; `None`: all.
    types: Option<u32>,
    /// Bit `r` set: RCODE `r` kept.
    rcodes: Option<u16>,
    qtypes: Option<Vec<u16>>,
    clients: Vec<IpNet>,
    countries: Vec<String>,
    asns: Vec<u32>,
    sample: u64,
    seen: AtomicU64,
}

fn anchored(key: &'static str, pattern: &Option<String>) -> Result<Option<Regex>, FilterError> {
    pattern
        .as_ref()
        .map(|p| {
            Regex::new(&format!("^(?:{p})")).map_err(|source| FilterError::Regex { key, source })
        })
        .transpose()
}

/// The RCODE named `text` (mnemonic or number).
pub fn parse_rcode(text: &str) -> Option<u8> {
    if let Ok(value) = text.parse::<u8>() {
        return (value < 16).then_some(value);
    }
    (0..16u8).find(|r| dns::rcode_name(*r).eq_ignore_ascii_case(text))
}

/// The RR type named `text` (mnemonic, `TYPEnnn`, or number).
pub fn parse_qtype(text: &str) -> Option<u16> {
    if let Ok(value) = text.parse::<u16>() {
        return Some(value);
    }
    let upper = text.to_ascii_uppercase();
    if let Some(number) = upper.strip_prefix("TYPE") {
        return number.parse().ok();
    }
    (0..=300u16).find(|t| dns::rrtype_name(*t) == upper)
}

impl Filter {
    /// Compiles `config`.
    pub fn new(config: &FilterConfig) -> Result<Filter, FilterError> {
        let types = if config.message_types.is_empty() {
            None
        } else {
            let mut mask = 0u32;
            for name in &config.message_types {
                let t = MessageType::from_name(name)
                    .ok_or_else(|| FilterError::MessageType(name.clone()))?;
                mask |= 1 << t.value();
            }
            Some(mask)
        };
        let rcodes = if config.rcodes.is_empty() {
            None
        } else {
            let mut mask = 0u16;
            for text in &config.rcodes {
                let rcode = parse_rcode(text).ok_or_else(|| FilterError::Rcode(text.clone()))?;
                mask |= 1 << rcode;
            }
            Some(mask)
        };
        let qtypes = if config.qtypes.is_empty() {
            None
        } else {
            Some(
                config
                    .qtypes
                    .iter()
                    .map(|t| parse_qtype(t).ok_or_else(|| FilterError::Qtype(t.clone())))
                    .collect::<Result<Vec<_>, _>>()?,
            )
        };
        let clients = config
            .client_cidrs
            .iter()
            .map(|text| {
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| FilterError::Cidr(text.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let countries = config
            .countries
            .iter()
            .map(|c| {
                if c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()) {
                    Ok(c.to_ascii_uppercase())
                } else {
                    Err(FilterError::Country(c.clone()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Filter {
            qname: anchored("qname_regex", &config.qname_regex)?,
            identity: anchored("identity_regex", &config.identity_regex)?,
            types,
            rcodes,
            qtypes,
            clients,
            countries,
            asns: config.asns.clone(),
            sample: config.sample,
            seen: AtomicU64::new(0),
        })
    }

    /// Whether a country or ASN filter is set (GeoIP must be configured).
    pub fn needs_geo(&self) -> bool {
        !self.countries.is_empty() || !self.asns.is_empty()
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        self.qname.is_none()
            && self.identity.is_none()
            && self.types.is_none()
            && self.rcodes.is_none()
            && self.qtypes.is_none()
            && self.clients.is_empty()
            && !self.needs_geo()
            && self.sample <= 1
    }

    /// `Ok` when `message` passes, else the first filter that refused it.
    /// Cheap checks first; the DNS header is read only when a filter needs
    /// it. `geo` is the message's enrichment (country/ASN filters refuse a
    /// message without one).
    pub fn check(&self, message: &DnsMessage, geo: Option<&Geo>) -> Result<(), FilterReason> {
        if let Some(mask) = self.types {
            let value = message.kind.value();
            if !(0..32).contains(&value) || mask & (1 << value) == 0 {
                return Err(FilterReason::MessageType);
            }
        }
        if let Some(regex) = &self.identity {
            let identity = message
                .identity
                .as_deref()
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            if !regex.is_match(&identity) {
                return Err(FilterReason::Identity);
            }
        }
        if !self.clients.is_empty() {
            let inside = message
                .query_address
                .is_some_and(|a| self.clients.iter().any(|net| net.contains(&a)));
            if !inside {
                return Err(FilterReason::Client);
            }
        }
        if self.qname.is_some() || self.rcodes.is_some() || self.qtypes.is_some() {
            let summary = message.payload().and_then(|p| dns::summarize(p));
            if let Some(regex) = &self.qname {
                let name = summary.as_ref().and_then(|s| s.qname.as_deref());
                if !name.is_some_and(|n| regex.is_match(n)) {
                    return Err(FilterReason::Qname);
                }
            }
            if let Some(mask) = self.rcodes
                && summary.as_ref().is_none_or(|s| mask & (1 << s.rcode) == 0)
            {
                return Err(FilterReason::Rcode);
            }
            if let Some(qtypes) = &self.qtypes {
                let qtype = summary.as_ref().and_then(|s| s.qtype);
                if !qtype.is_some_and(|t| qtypes.contains(&t)) {
                    return Err(FilterReason::Qtype);
                }
            }
        }
        if !self.countries.is_empty() {
            let country = geo.and_then(|g| g.country_iso.as_deref());
            if !country.is_some_and(|c| self.countries.iter().any(|k| k.eq_ignore_ascii_case(c))) {
                return Err(FilterReason::Country);
            }
        }
        if !self.asns.is_empty() {
            let asn = geo.and_then(|g| g.asn);
            if !asn.is_some_and(|a| self.asns.contains(&a)) {
                return Err(FilterReason::Asn);
            }
        }
        if self.sample > 1 {
            let n = self.seen.fetch_add(1, Ordering::Relaxed);
            if !n.is_multiple_of(self.sample) {
                return Err(FilterReason::Sample);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use dnsrecall_core::message::{Family, MessageKind, Origin, Timestamp, Transport};

    fn message(kind: MessageType, qname: &[u8], qtype: u16, rcode: u8, client: &str) -> DnsMessage {
        let mut wire = vec![0, 1, 0x81, rcode, 0, 1, 0, 0, 0, 0, 0, 0];
        wire.extend_from_slice(qname);
        wire.extend_from_slice(&qtype.to_be_bytes());
        wire.extend_from_slice(&[0, 1]);
        let wire = Bytes::from(wire);
        DnsMessage {
            kind: MessageKind::Known(kind),
            identity: Some(Bytes::from_static(b"resolver-1")),
            version: None,
            family: Some(Family::Inet),
            transport: Some(Transport::Udp),
            query_address: Some(client.parse().unwrap()),
            query_port: Some(5353),
            response_address: None,
            response_port: None,
            query_time: Some(Timestamp::new(1, 0)),
            response_time: Some(Timestamp::new(1, 0)),
            query_zone: None,
            query_message: Some(wire.clone()),
            response_message: Some(wire),
            origin: Origin::Capture {
                ip_defragmented: false,
                tcp_reassembled: false,
            },
        }
    }

    fn filter(toml_text: &str) -> Filter {
        let config: FilterConfig = toml::from_str(toml_text).unwrap();
        Filter::new(&config).unwrap()
    }

    #[test]
    fn each_filter_refuses_with_its_reason() {
        let www = message(
            MessageType::ClientResponse,
            b"\x03www\x07example\x00",
            1,
            3,
            "192.0.2.7",
        );
        let mail = message(
            MessageType::ClientQuery,
            b"\x04mail\x07example\x00",
            28,
            0,
            "198.51.100.1",
        );
        let cases = [
            ("qname_regex = 'www\\.'", FilterReason::Qname),
            ("identity_regex = 'resolver-'", FilterReason::Identity),
            (
                "message_types = ['client_response']",
                FilterReason::MessageType,
            ),
            ("rcodes = ['NXDOMAIN']", FilterReason::Rcode),
            ("qtypes = ['A', 'TYPE99']", FilterReason::Qtype),
            (
                "client_cidrs = ['192.0.2.0/24', '2001:db8::1']",
                FilterReason::Client,
            ),
        ];
        for (text, reason) in cases {
            let f = filter(text);
            assert_eq!(f.check(&www, None), Ok(()), "{text} keeps www");
            let refused = f.check(&mail, None);
            if reason == FilterReason::Identity {
                assert_eq!(refused, Ok(()), "same identity");
            } else {
                assert_eq!(refused, Err(reason), "{text} refuses mail");
            }
        }
        // The regex is anchored at the start only, like Python's re.match.
        assert_eq!(
            filter("qname_regex = 'example'").check(&www, None),
            Err(FilterReason::Qname)
        );
        assert_eq!(filter("qname_regex = 'www'").check(&www, None), Ok(()));
        assert!(filter("").is_empty());
    }

    #[test]
    fn geo_filters_need_enrichment() {
        let m = message(MessageType::ClientQuery, b"\x00", 1, 0, "192.0.2.1");
        let f = filter("countries = ['fr']\nasns = [64496]");
        assert!(f.needs_geo());
        assert_eq!(f.check(&m, None), Err(FilterReason::Country));
        let geo = Geo {
            country_iso: Some("FR".into()),
            asn: Some(64496),
            ..Geo::default()
        };
        assert_eq!(f.check(&m, Some(&geo)), Ok(()));
        let elsewhere = Geo {
            asn: Some(1),
            ..geo.clone()
        };
        assert_eq!(f.check(&m, Some(&elsewhere)), Err(FilterReason::Asn));
    }

    #[test]
    fn sampling_keeps_one_in_n() {
        let m = message(MessageType::ClientQuery, b"\x00", 1, 0, "192.0.2.1");
        let f = filter("sample = 4");
        let kept = (0..100).filter(|_| f.check(&m, None).is_ok()).count();
        assert_eq!(kept, 25);
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "qname_regex = '('",
            "message_types = ['CLIENT']",
            "rcodes = ['BOGUS']",
            "rcodes = ['16']",
            "qtypes = ['NOPE']",
            "client_cidrs = ['10.0.0.0/33']",
            "countries = ['France']",
        ] {
            let config: FilterConfig = toml::from_str(text).unwrap();
            assert!(Filter::new(&config).is_err(), "{text}");
        }
        assert_eq!(parse_qtype("aaaa"), Some(28));
        assert_eq!(parse_rcode("nxdomain"), Some(3));
    }
}
