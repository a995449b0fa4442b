//! The one search box: a single line of text → the DNSDB [`Lookup`] it
//! means, with a description a person can check ("rrset lookup, left
//! wildcard").
//!
//! What the box understands, tried in this order:
//!
//! | text | lookup |
//! |---|---|
//! | `rrset/name/…`, `rdata/ip/…` (a DNSDB path) | that path ([`Lookup::from_path`]) |
//! | `192.0.2.1`, `2001:db8::1` | A/AAAA records of the address |
//! | `192.0.2.0/24`, `192.0.2.0,24`, `10.0.0.1-10.0.0.9` | A/AAAA records in the prefix or range |
//! | `rdata:NAME[/TYPE]`, `rdata:ADDRESS…` | records whose rdata holds the name (wildcards allowed) or address |
//! | `raw:HEX[/TYPE]` | records with exactly this wire rdata |
//! | `www.example.com` | records of the name |
//! | `*.example.com` | the name and every name below it |
//! | `www.example.*` | names starting with these labels |
//! | `+.example.com` | names exactly one label below |
//! | `NAME/TYPE`, `NAME/TYPE/BAILIWICK` | records of the name of that type (in that zone) |
//!
//! A name may hold a `/` (RFC 2317's `0/26.2.0.192.in-addr.arpa`): a
//! segment after a `/` is read as a type only when it has no dot. The
//! time fence, the type parameter and the limit are not typed in the box:
//! see [`TimeFence`](crate::dnsdb::TimeFence), [`Search::with_type`] and
//! [`Params`](crate::dnsdb::Params).

use std::fmt;
use std::net::IpAddr;

use dnsrecall_core::Name;
use dnsrecall_core::store::{NameMatch, RrsetQuery, TypeFilter};

use crate::QueryError;
use crate::dnsdb::lookup::{pattern_text, prefix_length};
use crate::dnsdb::{
    Lookup, check_address_type, parse_address_range, parse_hex, parse_pattern, parse_types,
};

//---- Search ----------------------------------------------------------------

/// What the search box asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    /// The DNSDB lookup to run ([`crate::dnsdb::lookup()`]).
    pub lookup: Lookup,
}

impl Search {
    /// Reads the search box (see the module docs for what it accepts).
    pub fn parse(text: &str) -> Result<Search, QueryError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(QueryError::EmptySearch);
        }
        if text.starts_with("rrset/") || text.starts_with("rdata/") {
            return Lookup::from_path(text).map(Search::from);
        }
        if let Some(lookup) = address_search(text)? {
            return Ok(Search::from(lookup));
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "rdata:") {
            return rdata_search(rest.trim()).map(Search::from);
        }
        if let Some(rest) = strip_prefix_ignore_case(text, "raw:") {
            let (hex, rrtype) = match rest.trim().split_once('/') {
                Some((hex, rrtype)) => (hex, Some(rrtype)),
                None => (rest.trim(), None),
            };
            return Ok(Search::from(Lookup::RdataRaw {
                bytes: parse_hex(hex.trim())?,
                types: parse_types(rrtype.map(str::trim))?,
            }));
        }
        name_search(text).map(Search::from)
    }

    /// Applies a separate type parameter (the web UI's `type=`): an empty
    /// one changes nothing; an address search takes only A, AAAA or ANY.
    pub fn with_type(mut self, rrtype: &str) -> Result<Search, QueryError> {
        let rrtype = rrtype.trim();
        if rrtype.is_empty() {
            return Ok(self);
        }
        match &mut self.lookup {
            Lookup::Rrset { query, .. } => query.types = parse_types(Some(rrtype))?,
            Lookup::RdataName { types, .. } | Lookup::RdataRaw { types, .. } => {
                *types = parse_types(Some(rrtype))?;
            }
            Lookup::RdataIp { .. } => check_address_type(rrtype)?,
        }
        Ok(self)
    }

    /// The DNSDB path (below `/dnsdb/v2/lookup/`) that runs the same
    /// lookup over the API.
    pub fn api_path(&self) -> String {
        self.lookup.to_path()
    }

    /// What the search means, in words: `rrset lookup, left wildcard`,
    /// `rdata lookup, IPv4 prefix /24, type A`...
    pub fn description(&self) -> String {
        self.to_string()
    }
}

impl From<Lookup> for Search {
    fn from(lookup: Lookup) -> Search {
        Search { lookup }
    }
}

impl fmt::Display for Search {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.lookup {
            Lookup::Rrset {
                query,
                single_label,
            } => {
                f.write_str("rrset lookup, ")?;
                match (&query.name, single_label) {
                    (_, Some(_)) => f.write_str("one label below")?,
                    (name, None) => f.write_str(pattern_words(name))?,
                }
                write_types(f, query.types)?;
                if let Some(zone) = &query.bailiwick {
                    write!(
                        f,
                        ", bailiwick {}",
                        pattern_text(&NameMatch::Exact(zone.clone()))
                    )?;
                }
                Ok(())
            }
            Lookup::RdataName { name, types } => {
                write!(f, "rdata lookup, {}", pattern_words(name))?;
                write_types(f, *types)
            }
            Lookup::RdataIp { first, last } => {
                f.write_str("rdata lookup, ")?;
                if first == last {
                    f.write_str("address")
                } else if let Some(len) = prefix_length(*first, *last) {
                    let family = if first.is_ipv4() { "IPv4" } else { "IPv6" };
                    write!(f, "{family} prefix /{len}")
                } else {
                    f.write_str("address range")
                }
            }
            Lookup::RdataRaw { types, .. } => {
                f.write_str("rdata lookup, raw rdata")?;
                write_types(f, *types)
            }
        }
    }
}

fn pattern_words(name: &NameMatch) -> &'static str {
    match name {
        NameMatch::Exact(_) => "exact name",
        NameMatch::Subtree(_) => "left wildcard",
        NameMatch::Prefix(_) => "right wildcard",
    }
}

fn write_types(f: &mut fmt::Formatter<'_>, types: TypeFilter) -> fmt::Result {
    match types {
        TypeFilter::AnyNonDnssec => Ok(()),
        TypeFilter::All => f.write_str(", every type"),
        TypeFilter::Dnssec => f.write_str(", DNSSEC types"),
        TypeFilter::Only(rtype) => write!(f, ", type {rtype}"),
    }
}

//---- reading ---------------------------------------------------------------

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// An address, `ADDR/LEN`, `ADDR,LEN` or `FIRST-LAST` when the text starts
/// with an address (`None`: it is not an address search).
fn address_search(text: &str) -> Result<Option<Lookup>, QueryError> {
    let head = text
        .split(['/', ',', '-'])
        .next()
        .unwrap_or_default()
        .trim();
    if head.parse::<IpAddr>().is_err() {
        return Ok(None);
    }
    let (first, last) = parse_address_range(text)?;
    Ok(Some(Lookup::RdataIp { first, last }))
}

fn rdata_search(text: &str) -> Result<Lookup, QueryError> {
    if let Some(lookup) = address_search(text)? {
        return Ok(lookup);
    }
    let (pattern, rrtype, bailiwick) = split_name_type(text)?;
    if bailiwick.is_some() {
        return Err(QueryError::TooManySegments);
    }
    let (name, single_label) = parse_pattern(pattern)?;
    if single_label.is_some() {
        return Err(QueryError::SingleLabelOnRdata);
    }
    Ok(Lookup::RdataName {
        name,
        types: parse_types(rrtype)?,
    })
}

fn name_search(text: &str) -> Result<Lookup, QueryError> {
    let (pattern, rrtype, bailiwick) = split_name_type(text)?;
    let (name, single_label) = parse_pattern(pattern)?;
    let bailiwick = bailiwick
        .map(|zone| {
            Name::from_presentation(zone).map_err(|reason| QueryError::BadBailiwick {
                text: zone.to_string(),
                reason,
            })
        })
        .transpose()?;
    Ok(Lookup::Rrset {
        query: RrsetQuery {
            name,
            types: parse_types(rrtype)?,
            bailiwick,
        },
        single_label,
    })
}

/// Whether a `/` segment is meant as a type: a word without dots
/// (`A`, `ANY-DNSSEC`, `TYPE65`, or a misspelt type, which then fails as
/// one rather than as part of a name).
fn is_type_word(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `NAME`, `NAME/TYPE` or `NAME/TYPE/BAILIWICK`, where NAME may itself hold
/// slashes.
fn split_name_type(text: &str) -> Result<(&str, Option<&str>, Option<&str>), QueryError> {
    if let Some((rest, last)) = text.rsplit_once('/') {
        if is_type_word(last) {
            return Ok((rest, Some(last), None));
        }
        if let Some((name, rrtype)) = rest.rsplit_once('/')
            && is_type_word(rrtype)
        {
            return Ok((name, Some(rrtype), Some(last)));
        }
    }
    Ok((text, None, None))
}

#[cfg(test)]
mod tests {
    use dnsrecall_core::Rtype;
    use proptest::prelude::*;

    use super::*;

    fn described(text: &str) -> String {
        Search::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .description()
    }

    #[test]
    fn what_the_box_understands() {
        assert_eq!(described("www.example.com"), "rrset lookup, exact name");
        assert_eq!(described(" *.example.com "), "rrset lookup, left wildcard");
        assert_eq!(described("www.example.*"), "rrset lookup, right wildcard");
        assert_eq!(described("+.example.com"), "rrset lookup, one label below");
        assert_eq!(described("192.0.2.1"), "rdata lookup, address");
        assert_eq!(described("2001:db8::1"), "rdata lookup, address");
        assert_eq!(described("192.0.2.0/24"), "rdata lookup, IPv4 prefix /24");
        assert_eq!(described("192.0.2.7,24"), "rdata lookup, IPv4 prefix /24");
        assert_eq!(described("2001:db8::/48"), "rdata lookup, IPv6 prefix /48");
        assert_eq!(
            described("10.0.0.1-10.0.0.9"),
            "rdata lookup, address range"
        );
        assert_eq!(
            described("www.example.com/A"),
            "rrset lookup, exact name, type A"
        );
        assert_eq!(
            described("example.com/ns/example.com"),
            "rrset lookup, exact name, type NS, bailiwick example.com"
        );
        assert_eq!(
            described("*.example.com/ANY-DNSSEC"),
            "rrset lookup, left wildcard, DNSSEC types"
        );
        assert_eq!(
            described("rdata:ns1.example.net"),
            "rdata lookup, exact name"
        );
        assert_eq!(
            described("RDATA:*.example.net/MX"),
            "rdata lookup, left wildcard, type MX"
        );
        assert_eq!(
            described("rdata:192.0.2.0/24"),
            "rdata lookup, IPv4 prefix /24"
        );
        assert_eq!(
            described("raw:c000020a/A"),
            "rdata lookup, raw rdata, type A"
        );
        assert_eq!(
            described("rrset/name/%2A.example.com/A"),
            "rrset lookup, left wildcard, type A"
        );
        assert_eq!(
            described("0/26.2.0.192.in-addr.arpa"),
            "rrset lookup, exact name"
        );
        assert_eq!(
            described("0/26.2.0.192.in-addr.arpa/PTR"),
            "rrset lookup, exact name, type PTR"
        );
    }

    #[test]
    fn the_lookups_behind_the_words() {
        let search = Search::parse("0/26.2.0.192.in-addr.arpa/PTR").unwrap();
        let Lookup::Rrset { query, .. } = &search.lookup else {
            panic!("{search:?}")
        };
        assert_eq!(
            query.name,
            NameMatch::Exact(Name::from_presentation("0/26.2.0.192.in-addr.arpa").unwrap())
        );
        assert_eq!(query.types, TypeFilter::Only(Rtype::PTR));
        assert_eq!(
            Search::parse("192.0.2.0/24").unwrap().lookup,
            Lookup::RdataIp {
                first: "192.0.2.0".parse().unwrap(),
                last: "192.0.2.255".parse().unwrap()
            }
        );
        assert_eq!(
            Search::parse("*.example.com").unwrap().api_path(),
            "rrset/name/*.example.com"
        );
        assert_eq!(
            Search::parse("www.example.com")
                .unwrap()
                .with_type("aaaa")
                .unwrap()
                .api_path(),
            "rrset/name/www.example.com/AAAA"
        );
        assert_eq!(
            Search::parse("192.0.2.0/24").unwrap().api_path(),
            "rdata/ip/192.0.2.0,24"
        );
    }

    #[test]
    fn what_the_box_refuses() {
        let refused = |text: &str| Search::parse(text).unwrap_err();
        assert!(matches!(refused("  "), QueryError::EmptySearch));
        assert!(matches!(
            refused("www.example.com/BOGUS"),
            QueryError::UnknownRrtype(_)
        ));
        assert!(matches!(
            refused("192.0.2.0/33"),
            QueryError::PrefixTooLong { .. }
        ));
        assert!(matches!(
            refused("192.0.2.9-192.0.2.1"),
            QueryError::ReversedRange
        ));
        assert!(matches!(
            refused("a.*.example"),
            QueryError::WildcardInside(_)
        ));
        assert!(matches!(refused("*"), QueryError::BareWildcard));
        assert!(matches!(
            refused("rdata:+.example.com"),
            QueryError::SingleLabelOnRdata
        ));
        assert!(matches!(refused("raw:xyz"), QueryError::OddHex(_)));
        assert!(matches!(refused("a..b"), QueryError::BadName { .. }));
        assert!(matches!(
            Search::parse("192.0.2.1").unwrap().with_type("MX"),
            Err(QueryError::TypeNotForAddress(_))
        ));
    }

    fn label() -> impl Strategy<Value = String> {
        "[a-z][a-z0-9-]{0,8}"
    }

    fn name() -> impl Strategy<Value = String> {
        proptest::collection::vec(label(), 2..5).prop_map(|labels| labels.join("."))
    }

    proptest! {
        /// Whatever is typed, the box answers (never panics).
        #[test]
        fn any_text_is_answered(text in "\\PC{0,60}") {
            let _ = Search::parse(&text).map(|s| s.description());
        }

        /// A name typed in any of its forms is searched as that form, and
        /// the API path of the search reads back to the same lookup.
        #[test]
        fn names_in_every_form(name in name(), form in 0..4u8, rrtype in proptest::option::of(prop_oneof![Just("A"), Just("NS"), Just("TXT")])) {
            let (text, words) = match form {
                0 => (name.clone(), "exact name"),
                1 => (format!("*.{name}"), "left wildcard"),
                2 => (format!("{name}.*"), "right wildcard"),
                _ => (format!("+.{name}"), "one label below"),
            };
            let text = match rrtype {
                Some(t) => format!("{text}/{t}"),
                None => text,
            };
            let search = Search::parse(&text).unwrap();
            let description = search.description();
            prop_assert!(description.starts_with(&format!("rrset lookup, {words}")), "{}", description);
            prop_assert_eq!(rrtype.is_some(), description.contains(", type "));
            prop_assert_eq!(Lookup::from_path(&search.api_path()).unwrap(), search.lookup);
        }

        #[test]
        fn addresses_and_prefixes(address in any::<[u8; 4]>(), len in 0u32..=32) {
            let address = IpAddr::from(address);
            let search = Search::parse(&address.to_string()).unwrap();
            prop_assert_eq!(search.lookup, Lookup::RdataIp { first: address, last: address });
            let search = Search::parse(&format!("{address}/{len}")).unwrap();
            let Lookup::RdataIp { first, last } = search.lookup else { panic!() };
            prop_assert!(first <= address && address <= last);
            prop_assert_eq!(prefix_length(first, last), Some(len));
        }
    }
}
