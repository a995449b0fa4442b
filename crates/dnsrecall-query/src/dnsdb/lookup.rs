//! The DNSDB lookup grammar (`reference/dnsdb.md` §1.3): what a path below
//! `lookup/` (or `summarize/`) asks for, and back.
//!
//! Every function here is pure, from text to a value or a [`QueryError`],
//! so each can be fuzzed and property-tested alone.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::str::FromStr;

use dnsrecall_core::name::write_label;
use dnsrecall_core::store::{NameMatch, RrsetQuery, TypeFilter};
use dnsrecall_core::{Name, Rtype};

use crate::QueryError;

//---- Lookup ----------------------------------------------------------------

/// What a lookup path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Forward lookup; `single_label` is DNSDB's `+.name` wildcard (the
    /// number of labels a name must have).
    Rrset {
        query: RrsetQuery,
        single_label: Option<usize>,
    },
    /// Inverse lookup on a name inside rdata.
    RdataName { name: NameMatch, types: TypeFilter },
    /// Inverse lookup on A/AAAA addresses in `first..=last`.
    RdataIp { first: IpAddr, last: IpAddr },
    /// Inverse lookup on exact raw rdata.
    RdataRaw { bytes: Vec<u8>, types: TypeFilter },
}

impl Lookup {
    /// Whether this is a forward (rrset) lookup: its rows carry a bailiwick.
    pub fn is_rrset(&self) -> bool {
        matches!(self, Lookup::Rrset { .. })
    }

    /// Reads a lookup path such as `rrset/name/%2A.example.com/A`: split on
    /// `/`, each segment percent-decoded, then [`parse_lookup`].
    pub fn from_path(path: &str) -> Result<Lookup, QueryError> {
        parse_lookup(&split_path(path)?)
    }

    /// The DNSDB path of this lookup (without `/dnsdb/v2/lookup/`), each
    /// segment percent-encoded where it must be. [`Lookup::from_path`]
    /// reads it back to an equal lookup; a raw owner comes back as a name
    /// lookup (the same query), and [`TypeFilter::All`], which DNSDB cannot
    /// say, is written `ANY`.
    pub fn to_path(&self) -> String {
        let mut path = String::new();
        match self {
            Lookup::Rrset {
                query,
                single_label,
            } => {
                path.push_str("rrset/name/");
                let pattern = match (&query.name, single_label) {
                    (NameMatch::Subtree(base), Some(_)) => format!("+.{}", name_text(base)),
                    (name, _) => pattern_text(name),
                };
                path.push_str(&encode_segment(&pattern));
                match (&query.bailiwick, types_segment(query.types)) {
                    (Some(zone), types) => {
                        let _ = write!(
                            path,
                            "/{}/{}",
                            types.unwrap_or("ANY".into()),
                            encode_segment(&name_text(zone))
                        );
                    }
                    (None, Some(types)) => {
                        let _ = write!(path, "/{types}");
                    }
                    (None, None) => {}
                }
            }
            Lookup::RdataName { name, types } => {
                path.push_str("rdata/name/");
                path.push_str(&encode_segment(&pattern_text(name)));
                if let Some(types) = types_segment(*types) {
                    let _ = write!(path, "/{types}");
                }
            }
            Lookup::RdataIp { first, last } => {
                path.push_str("rdata/ip/");
                path.push_str(&encode_segment(&address_range_text(*first, *last)));
            }
            Lookup::RdataRaw { bytes, types } => {
                path.push_str("rdata/raw/");
                path.push_str(&hex::encode(bytes));
                if let Some(types) = types_segment(*types) {
                    let _ = write!(path, "/{types}");
                }
            }
        }
        path
    }
}

/// Parses `rrset/name/…`, `rrset/raw/…`, `rdata/{name,ip,raw}/…` (decoded
/// segments). [`QueryError::UnknownLookup`] for an unknown kind, another
/// variant for a bad value.
pub fn parse_lookup(segments: &[String]) -> Result<Lookup, QueryError> {
    let (Some(kind), Some(sub)) = (segments.first(), segments.get(1)) else {
        return Err(QueryError::UnknownLookup);
    };
    let Some(value) = segments.get(2).filter(|v| !v.is_empty()) else {
        return Err(QueryError::MissingValue);
    };
    let rrtype = segments
        .get(3)
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    let extra = segments
        .get(4)
        .map(String::as_str)
        .filter(|t| !t.is_empty());
    if segments.len() > 5 || (extra.is_some() && kind != "rrset") {
        return Err(QueryError::TooManySegments);
    }
    match (kind.as_str(), sub.as_str()) {
        ("rrset", "name") => {
            let types = parse_types(rrtype)?;
            let bailiwick = match extra {
                None => None,
                Some(text) => Some(Name::from_presentation(text).map_err(|reason| {
                    QueryError::BadBailiwick {
                        text: text.to_string(),
                        reason,
                    }
                })?),
            };
            let (name, single_label) = parse_pattern(value)?;
            Ok(Lookup::Rrset {
                query: RrsetQuery {
                    name,
                    types,
                    bailiwick,
                },
                single_label,
            })
        }
        ("rrset", "raw") => {
            if extra.is_some() {
                return Err(QueryError::BailiwickWithRaw);
            }
            let types = parse_types(rrtype)?;
            let bytes = parse_hex(value)?;
            let name = Name::from_wire(&bytes).map_err(QueryError::RawOwnerNotName)?;
            Ok(Lookup::Rrset {
                query: RrsetQuery {
                    name: NameMatch::Exact(name),
                    types,
                    bailiwick: None,
                },
                single_label: None,
            })
        }
        ("rdata", "name") => {
            let types = parse_types(rrtype)?;
            let (name, single_label) = parse_pattern(value)?;
            if single_label.is_some() {
                return Err(QueryError::SingleLabelOnRdata);
            }
            Ok(Lookup::RdataName { name, types })
        }
        ("rdata", "ip") => {
            if let Some(t) = rrtype {
                check_address_type(t)?;
            }
            let (first, last) = parse_address_range(value)?;
            Ok(Lookup::RdataIp { first, last })
        }
        ("rdata", "raw") => {
            let types = parse_types(rrtype)?;
            Ok(Lookup::RdataRaw {
                bytes: parse_hex(value)?,
                types,
            })
        }
        _ => Err(QueryError::UnknownLookup),
    }
}

/// An address lookup takes `A`, `AAAA` or `ANY` (any case) as its type.
pub fn check_address_type(text: &str) -> Result<(), QueryError> {
    if ["A", "AAAA", "ANY"]
        .iter()
        .any(|ok| text.eq_ignore_ascii_case(ok))
    {
        Ok(())
    } else {
        Err(QueryError::TypeNotForAddress(text.to_string()))
    }
}

/// `ANY` (default), `ANY-DNSSEC`, a mnemonic in any case, `TYPEnnn`.
pub fn parse_types(text: Option<&str>) -> Result<TypeFilter, QueryError> {
    let Some(text) = text else {
        return Ok(TypeFilter::AnyNonDnssec);
    };
    if text.eq_ignore_ascii_case("ANY") {
        return Ok(TypeFilter::AnyNonDnssec);
    }
    if text.eq_ignore_ascii_case("ANY-DNSSEC") {
        return Ok(TypeFilter::Dnssec);
    }
    match Rtype::from_str(text) {
        Ok(Rtype::ANY) => Ok(TypeFilter::AnyNonDnssec),
        Ok(rtype) => Ok(TypeFilter::Only(rtype)),
        Err(_) => Err(QueryError::UnknownRrtype(text.to_string())),
    }
}

/// A name with an optional wildcard: `*.example.com` (the name and below),
/// `www.example.*` (names starting with these labels), `+.example.com`
/// (exactly one label more; returns the label count wanted).
pub fn parse_pattern(text: &str) -> Result<(NameMatch, Option<usize>), QueryError> {
    let bad = |reason| QueryError::BadName {
        text: text.to_string(),
        reason,
    };
    if text == "*" || text == "*." || text == "+" || text == "+." {
        return Err(QueryError::BareWildcard);
    }
    if let Some(rest) = text.strip_prefix("*.") {
        return Ok((
            NameMatch::Subtree(Name::from_presentation(rest).map_err(bad)?),
            None,
        ));
    }
    if let Some(rest) = text.strip_prefix("+.") {
        let name = Name::from_presentation(rest).map_err(bad)?;
        let labels = name.label_count() + 1;
        return Ok((NameMatch::Subtree(name), Some(labels)));
    }
    if let Some(rest) = text.strip_suffix(".*") {
        let name = Name::from_presentation(rest).map_err(bad)?;
        // `..*` (the root and a wildcard) is a bare wildcard too (found by
        // fuzzing: it was read as a prefix of no labels, written back as `*`).
        if name.is_root() {
            return Err(QueryError::BareWildcard);
        }
        let labels = name.labels().map(|l| l.to_ascii_lowercase()).collect();
        return Ok((NameMatch::Prefix(labels), None));
    }
    if has_unescaped_star(text) {
        return Err(QueryError::WildcardInside(text.to_string()));
    }
    Ok((
        NameMatch::Exact(Name::from_presentation(text).map_err(bad)?),
        None,
    ))
}

/// Whether `text` holds a `*` that is not escaped (`\\*`): a wildcard
/// where [`parse_pattern`] does not take one. Checking each star, not just
/// whether some `\\*` exists, keeps `a\\*b*` from slipping through.
fn has_unescaped_star(text: &str) -> bool {
    let mut bytes = text.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            // The escaped character (or the first digit of `\DDD`, never a star).
            b'\\' => {
                bytes.next();
            }
            b'*' => return true,
            _ => {}
        }
    }
    false
}

/// Raw wire bytes as an even number of hex digits.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, QueryError> {
    if text.is_empty() || !text.len().is_multiple_of(2) {
        return Err(QueryError::OddHex(text.to_string()));
    }
    hex::decode(text).map_err(|_| QueryError::NotHex(text.to_string()))
}

/// `addr`, `addr,prefix` (or `addr/prefix`), `first-last`.
pub fn parse_address_range(text: &str) -> Result<(IpAddr, IpAddr), QueryError> {
    let address =
        |t: &str| IpAddr::from_str(t.trim()).map_err(|_| QueryError::BadAddress(t.to_string()));
    if let Some((a, b)) = text.split_once('-') {
        let (first, last) = (address(a)?, address(b)?);
        if first.is_ipv4() != last.is_ipv4() {
            return Err(QueryError::MixedRange);
        }
        if first > last {
            return Err(QueryError::ReversedRange);
        }
        return Ok((first, last));
    }
    if let Some((a, len)) = text.split_once(',').or_else(|| text.split_once('/')) {
        let base = address(a)?;
        let len: u32 = len
            .trim()
            .parse()
            .map_err(|_| QueryError::BadPrefixLength(len.to_string()))?;
        return prefix_range(base, len);
    }
    let single = address(text)?;
    Ok((single, single))
}

/// The first and last address of `base/len`.
pub fn prefix_range(base: IpAddr, len: u32) -> Result<(IpAddr, IpAddr), QueryError> {
    match base {
        IpAddr::V4(v4) => {
            if len > 32 {
                return Err(QueryError::PrefixTooLong {
                    length: len,
                    max: 32,
                });
            }
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let first = u32::from(v4) & mask;
            Ok((IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into())))
        }
        IpAddr::V6(v6) => {
            if len > 128 {
                return Err(QueryError::PrefixTooLong {
                    length: len,
                    max: 128,
                });
            }
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let first = u128::from(v6) & mask;
            Ok((IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into())))
        }
    }
}

/// The prefix length of `first..=last` when the range is exactly one
/// prefix (`10.0.0.0..=10.0.0.255` → 24).
pub fn prefix_length(first: IpAddr, last: IpAddr) -> Option<u32> {
    let (first, last, bits) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return None,
    };
    let host = first ^ last;
    // A prefix's host part is all ones in `last` and all zeros in `first`.
    let host_bits = 128 - host.leading_zeros();
    let all_ones = if host_bits == 0 {
        0
    } else {
        u128::MAX >> (128 - host_bits)
    };
    (host == all_ones && first & all_ones == 0).then(|| bits - host_bits)
}

//---- path segments ---------------------------------------------------------

/// Splits a path on `/` and percent-decodes each segment (DNSDB clients
/// escape `*`, `:`, `/` and `,` inside values).
pub fn split_path(path: &str) -> Result<Vec<String>, QueryError> {
    path.split('/').map(percent_decode).collect()
}

/// Percent-decodes one path segment.
pub fn percent_decode(segment: &str) -> Result<String, QueryError> {
    let bytes = segment.as_bytes();
    let bad = || QueryError::BadPercentEscape {
        segment: segment.to_string(),
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let text = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(text, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| QueryError::SegmentNotUtf8 {
        segment: segment.to_string(),
    })
}

/// Percent-encodes one path segment: what RFC 3986 allows in a segment
/// stays readable (`*`, `+`, `,`, `:` included), the rest (`/`, `%`, `?`,
/// `#`, space, backslash, non-ASCII...) is escaped.
pub fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z'
            | b'a'..=b'z'
            | b'0'..=b'9'
            | b'-'
            | b'.'
            | b'_'
            | b'~'
            | b'!'
            | b'$'
            | b'&'
            | b'\''
            | b'('
            | b')'
            | b'*'
            | b'+'
            | b','
            | b';'
            | b'='
            | b':'
            | b'@' => out.push(byte as char),
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

//---- text of values --------------------------------------------------------

/// A name in presentation form without the trailing dot (`.` for the root).
fn name_text(name: &Name) -> String {
    if name.is_root() {
        ".".to_string()
    } else {
        // A literal `*` in a label is escaped so that it reads back as a
        // character, not as a wildcard (`write_label` leaves it bare); so is
        // a leading `+`, which would read back as the `+.` wildcard.
        let text = name.to_dotless().replace('*', "\\*");
        match text.strip_prefix('+') {
            Some(rest) => format!("\\+{rest}"),
            None => text,
        }
    }
}

/// A name pattern as [`parse_pattern`] reads it.
pub fn pattern_text(pattern: &NameMatch) -> String {
    match pattern {
        NameMatch::Exact(name) => name_text(name),
        NameMatch::Subtree(base) => format!("*.{}", name_text(base)),
        NameMatch::Prefix(labels) => {
            let mut out = String::new();
            for label in labels {
                let start = out.len();
                write_label(label, &mut out);
                let escaped = out[start..].replace('*', "\\*");
                out.truncate(start);
                out.push_str(&escaped);
                out.push('.');
            }
            out.push('*');
            out
        }
    }
}

/// The type segment of a filter, `None` for DNSDB's default (`ANY`).
fn types_segment(types: TypeFilter) -> Option<String> {
    match types {
        TypeFilter::All | TypeFilter::AnyNonDnssec => None,
        TypeFilter::Dnssec => Some("ANY-DNSSEC".into()),
        TypeFilter::Only(rtype) => Some(rtype.to_string()),
    }
}

/// `addr`, `addr,len` when the range is one prefix, else `first-last`.
pub fn address_range_text(first: IpAddr, last: IpAddr) -> String {
    if first == last {
        return first.to_string();
    }
    match prefix_length(first, last) {
        Some(len) => format!("{first},{len}"),
        None => format!("{first}-{last}"),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn segs(path: &str) -> Vec<String> {
        split_path(path).unwrap()
    }

    /// Fuzzing (dnsdb_lookup): an unescaped `*` inside a label used to pass
    /// as soon as the text held some `\*`; the name then rendered with a
    /// bare `*` that did not read back. Literal stars now render escaped.
    #[test]
    fn stars_inside_labels_are_refused_or_escaped() {
        assert!(matches!(
            parse_pattern("raw?$000*c2\\*"),
            Err(QueryError::WildcardInside(_))
        ));
        let lookup = Lookup::from_path("rrset/name/a%5C%2Ab.example.com/A").unwrap();
        let path = lookup.to_path();
        assert_eq!(path, "rrset/name/a%5C*b.example.com/A");
        assert_eq!(Lookup::from_path(&path).unwrap(), lookup);
        assert!(matches!(
            parse_pattern("..*"),
            Err(QueryError::BareWildcard)
        ));
        let search = crate::Search::parse("raw\\*.example.*").unwrap();
        let again = Lookup::from_path(&search.lookup.to_path()).unwrap();
        assert_eq!(again, search.lookup);
    }

    #[test]
    fn paths_and_wildcards() {
        let Lookup::Rrset { query, .. } =
            parse_lookup(&segs("rrset/name/%2A.example.com/a")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Subtree(Name::from_presentation("example.com").unwrap())
        );
        assert_eq!(query.types, TypeFilter::Only(Rtype::A));
        let Lookup::Rrset { query, .. } = parse_lookup(&segs("rrset/name/www.example.*")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Prefix(vec![b"www".to_vec(), b"example".to_vec()])
        );
        assert_eq!(query.types, TypeFilter::AnyNonDnssec);
        let Lookup::Rrset { query, .. } =
            parse_lookup(&segs("rrset/name/a%5C.b.example/ANY-DNSSEC/example.")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            query.name,
            NameMatch::Exact(Name::from_presentation("a\\.b.example").unwrap())
        );
        assert_eq!(query.types, TypeFilter::Dnssec);
        assert!(query.bailiwick.is_some());
        assert!(matches!(
            parse_lookup(&segs("rrset/raw/0366736902696f00/A/io")),
            Err(QueryError::BailiwickWithRaw)
        ));
        assert!(parse_lookup(&segs("rrset/raw/0366736902696f00/TYPE1")).is_ok());
        assert!(matches!(
            parse_lookup(&segs("rrset/name/example.com/BOGUS")),
            Err(QueryError::UnknownRrtype(t)) if t == "BOGUS"
        ));
        assert!(matches!(
            parse_lookup(&segs("rdata/ip/10.0.0.1/MX")),
            Err(QueryError::TypeNotForAddress(_))
        ));
        assert!(matches!(
            parse_lookup(&segs("rdata/bogus/x")),
            Err(QueryError::UnknownLookup)
        ));
        assert!(matches!(
            parse_lookup(&segs("rrset/name/a.*.com")),
            Err(QueryError::WildcardInside(_))
        ));
        assert!(matches!(
            parse_lookup(&segs("rrset/name/+.example.com")),
            Ok(Lookup::Rrset {
                single_label: Some(3),
                ..
            })
        ));
        assert!(matches!(
            parse_lookup(&segs("rdata/name/+.example.com")),
            Err(QueryError::SingleLabelOnRdata)
        ));
        assert!(matches!(
            parse_lookup(&segs("rrset/name")),
            Err(QueryError::MissingValue)
        ));
        assert!(matches!(
            parse_lookup(&segs("rrset/name/x/A/y/z")),
            Err(QueryError::TooManySegments)
        ));
        assert!(matches!(
            split_path("rrset/name/%zz"),
            Err(QueryError::BadPercentEscape { .. })
        ));
        assert!(matches!(
            split_path("rrset/name/%ff"),
            Err(QueryError::SegmentNotUtf8 { .. })
        ));
    }

    /// The messages are the API's answers: they must not drift.
    #[test]
    fn messages_name_the_bad_value() {
        let message = |path: &str| Lookup::from_path(path).unwrap_err().to_string();
        assert_eq!(message("rdata/bogus/x"), "unknown path");
        assert_eq!(
            message("rrset/name/example.com/BOGUS"),
            "unknown rrtype \"BOGUS\""
        );
        assert_eq!(
            message("rdata/ip/10.0.0.1/MX"),
            "rrtype \"MX\" is not allowed with rdata/ip (A, AAAA or ANY)"
        );
        assert_eq!(
            message("rdata/raw/abc"),
            "raw value \"abc\" must be an even number of hex digits"
        );
        assert_eq!(message("rdata/raw/zz"), "raw value \"zz\" is not hex");
        assert_eq!(message("rdata/ip/10.0.0.0,33"), "prefix length 33 > 32");
        assert_eq!(message("rdata/ip/x"), "bad address \"x\"");
        assert_eq!(
            message("rrset/name/a.*.com"),
            "bad name \"a.*.com\": a wildcard must be the first or last label"
        );
        assert_eq!(
            message("rrset/name/*"),
            "a wildcard needs at least one label"
        );
    }

    #[test]
    fn address_ranges() {
        let v4 = |s: &str| IpAddr::from_str(s).unwrap();
        assert_eq!(
            parse_address_range("10.0.0.0,24").unwrap(),
            (v4("10.0.0.0"), v4("10.0.0.255"))
        );
        assert_eq!(
            parse_address_range("10.1.2.3,0").unwrap(),
            (v4("0.0.0.0"), v4("255.255.255.255"))
        );
        assert_eq!(
            parse_address_range("10.1.2.3,32").unwrap(),
            (v4("10.1.2.3"), v4("10.1.2.3"))
        );
        assert_eq!(
            parse_address_range("2001:db8::1,128").unwrap(),
            (v4("2001:db8::1"), v4("2001:db8::1"))
        );
        assert_eq!(
            parse_address_range("::ffff:1.2.3.4").unwrap().0,
            v4("::ffff:1.2.3.4")
        );
        assert!(parse_address_range("::ffff:1.2.3.4").unwrap().0.is_ipv6());
        assert!(matches!(
            parse_address_range("10.0.0.2-10.0.0.1"),
            Err(QueryError::ReversedRange)
        ));
        assert!(parse_address_range("10.0.0.0,33").is_err());
        assert!(matches!(
            parse_address_range("10.0.0.1-::1"),
            Err(QueryError::MixedRange)
        ));
        assert_eq!(prefix_length(v4("10.0.0.0"), v4("10.0.0.255")), Some(24));
        assert_eq!(prefix_length(v4("10.0.0.1"), v4("10.0.0.255")), None);
        assert_eq!(prefix_length(v4("10.0.0.0"), v4("10.0.0.254")), None);
        assert_eq!(prefix_length(v4("0.0.0.0"), v4("255.255.255.255")), Some(0));
        assert_eq!(prefix_length(v4("::"), v4("::ffff")), Some(112));
        assert_eq!(
            address_range_text(v4("10.0.0.0"), v4("10.0.0.255")),
            "10.0.0.0,24"
        );
        assert_eq!(
            address_range_text(v4("10.0.0.3"), v4("10.0.0.9")),
            "10.0.0.3-10.0.0.9"
        );
    }

    #[test]
    fn paths_are_written_back() {
        for path in [
            "rrset/name/www.example.com",
            "rrset/name/*.example.com/A",
            "rrset/name/www.example.*/ANY-DNSSEC",
            "rrset/name/+.example.com/ANY/example.com",
            "rrset/name/a%5C.b.example/TYPE65280",
            "rrset/name/0%2F26.2.0.192.in-addr.arpa/PTR",
            "rdata/name/ns1.example.net/NS",
            "rdata/ip/10.0.0.0,8",
            "rdata/ip/10.0.0.3-10.0.0.9",
            "rdata/ip/2001:db8::1",
            "rdata/raw/c000020a/A",
        ] {
            let lookup = Lookup::from_path(path).unwrap();
            assert_eq!(lookup.to_path(), path);
        }
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z0-9][a-z0-9-]{0,10}"
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(label(), 1..5).prop_map(|labels| labels.join("."))
    }

    fn pattern() -> impl Strategy<Value = String> {
        prop_oneof![
            name(),
            name().prop_map(|n| format!("*.{n}")),
            name().prop_map(|n| format!("{n}.*")),
        ]
    }

    fn types() -> impl Strategy<Value = Option<&'static str>> {
        proptest::option::of(prop_oneof![
            Just("A"),
            Just("aaaa"),
            Just("ANY"),
            Just("ANY-DNSSEC"),
            Just("TYPE999"),
            Just("NS")
        ])
    }

    fn address() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<u32>().prop_map(|a| IpAddr::from(a.to_be_bytes())),
            any::<u128>().prop_map(|a| IpAddr::from(a.to_be_bytes())),
        ]
    }

    proptest! {
        /// Whatever the bytes, the grammar answers (never panics).
        #[test]
        fn any_path_is_answered(path in "\\PC{0,60}") {
            let _ = Lookup::from_path(&path);
        }

        #[test]
        fn any_segments_are_answered(segments in proptest::collection::vec("[a-z0-9.*+,/:%-]{0,12}", 0..7)) {
            let _ = parse_lookup(&segments);
        }

        /// A parsed lookup written back and read again is the same lookup.
        #[test]
        fn written_paths_read_back(
            kind in 0..3u8,
            pattern in pattern(),
            rrtype in types(),
            zone in proptest::option::of(name()),
            first in address(),
            len in 0u32..129,
        ) {
            let path = match kind {
                0 => {
                    let mut path = format!("rrset/name/{pattern}");
                    match (rrtype, &zone) {
                        (t, Some(zone)) => path.push_str(&format!("/{}/{zone}", t.unwrap_or("ANY"))),
                        (Some(t), None) => path.push_str(&format!("/{t}")),
                        (None, None) => {}
                    }
                    path
                }
                1 => match rrtype {
                    Some(t) => format!("rdata/name/{pattern}/{t}"),
                    None => format!("rdata/name/{pattern}"),
                },
                _ => {
                    let max = if first.is_ipv4() { 32 } else { 128 };
                    format!("rdata/ip/{first},{}", len.min(max))
                }
            };
            let lookup = Lookup::from_path(&path).unwrap();
            let written = lookup.to_path();
            prop_assert_eq!(Lookup::from_path(&written).unwrap(), lookup, "{} → {}", path, written);
        }

        #[test]
        fn prefixes_are_their_ranges(base in address(), len in 0u32..129) {
            let max = if base.is_ipv4() { 32 } else { 128 };
            let len = len.min(max);
            let (first, last) = prefix_range(base, len).unwrap();
            prop_assert_eq!(prefix_length(first, last), Some(len));
            prop_assert_eq!(parse_address_range(&address_range_text(first, last)).unwrap(), (first, last));
        }

        #[test]
        fn segments_decode_what_they_encode(text in "\\PC{0,30}") {
            prop_assert_eq!(percent_decode(&encode_segment(&text)).unwrap(), text);
        }
    }
}
