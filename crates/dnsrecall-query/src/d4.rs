//! D4/CIRCL lookups: every record of a name or every A/AAAA record of an
//! address ([`lookup`]), and D4's `fquery` expansion ([`expand`]).
//!
//! Answers are collected, capped and sorted here (deterministic order:
//! latest `time_last` first, then name, type and rdata); a cut answer says
//! so ([`Collected::is_cut`]), it is never silently short.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::ops::ControlFlow;
use std::str::FromStr;

use dnsrecall_core::store::{NameMatch, RdataQuery, RrsetQuery, Store, TypeFilter};
use dnsrecall_core::{Entry, Name};

use crate::QueryError;

//---- Subject ---------------------------------------------------------------

/// What a D4 query string asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Address(IpAddr),
    Name(Name),
}

impl Subject {
    /// Strict reading of a query: an IPv4 dotted quad or an IPv6 address is
    /// an address (so `123` is a name); anything else must be a domain name.
    pub fn parse(text: &str) -> Result<Subject, QueryError> {
        let text = text.trim();
        if let Ok(address) = IpAddr::from_str(text) {
            return Ok(Subject::Address(address));
        }
        Name::from_presentation(text)
            .map(Subject::Name)
            .map_err(|reason| QueryError::InvalidSubject {
                text: text.to_string(),
                reason,
            })
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Address(address) => address.fmt(f),
            Subject::Name(name) => f.write_str(&name.to_dotless()),
        }
    }
}

/// [`Subject::parse`] as a function.
pub fn parse_subject(text: &str) -> Result<Subject, QueryError> {
    Subject::parse(text)
}

//---- Collected -------------------------------------------------------------

/// A collected answer with the number of records found before the cap.
#[derive(Clone, Debug, Default)]
pub struct Collected {
    /// At most the cap, sorted.
    pub entries: Vec<Entry>,
    /// Every record that matched, kept or not.
    pub total: usize,
}

impl Collected {
    /// Whether the cap cut the answer (`total` records matched, fewer kept).
    pub fn is_cut(&self) -> bool {
        self.total > self.entries.len()
    }
}

//---- lookups ---------------------------------------------------------------

/// Visits, in store order, every record of `subject`: for a name its
/// records of `types`, for an address the A/AAAA records pointing at it.
pub fn scan_subject(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    visit: &mut dyn FnMut(Entry) -> ControlFlow<()>,
) -> Result<(), QueryError> {
    match subject {
        Subject::Address(address) => {
            let query = RdataQuery::Address {
                first: *address,
                last: *address,
            };
            store.scan_rdata(&query, visit)?;
        }
        Subject::Name(name) => {
            let query = RrsetQuery {
                name: NameMatch::Exact(name.clone()),
                types,
                bailiwick: None,
            };
            store.scan_rrset(&query, visit)?;
        }
    }
    Ok(())
}

/// The D4 `/query` answer for `subject`, sorted, at most `cap` records.
pub fn lookup(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    cap: usize,
) -> Result<Collected, QueryError> {
    let mut collected = collect(store, subject, types, cap)?;
    sort_entries(&mut collected.entries);
    Ok(collected)
}

fn collect(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    cap: usize,
) -> Result<Collected, QueryError> {
    let mut collected = Collected::default();
    scan_subject(store, subject, types, &mut |entry: Entry| {
        collected.total += 1;
        if collected.entries.len() < cap {
            collected.entries.push(entry);
        }
        ControlFlow::Continue(())
    })?;
    Ok(collected)
}

/// The D4 `/fquery` answer: the names whose rdata is `subject`, then every
/// record of those names (at most `cap` in all), keeping those of `types`,
/// sorted.
///
/// `total` counts the expansion's records of every type, as D4's server
/// did, so a type filter alone makes [`Collected::is_cut`] true.
pub fn expand(
    store: &dyn Store,
    subject: &Subject,
    types: TypeFilter,
    cap: usize,
) -> Result<Collected, QueryError> {
    let mut names = BTreeSet::new();
    let mut add_name = |entry: Entry| {
        names.insert(entry.record.rrname);
        ControlFlow::Continue(())
    };
    match subject {
        Subject::Address(address) => store.scan_rdata(
            &RdataQuery::Address {
                first: *address,
                last: *address,
            },
            &mut add_name,
        )?,
        Subject::Name(name) => store.scan_rdata(
            &RdataQuery::Name {
                name: NameMatch::Exact(name.clone()),
                types: TypeFilter::All,
            },
            &mut add_name,
        )?,
    }
    let mut collected = Collected::default();
    for name in names {
        let part = collect(
            store,
            &Subject::Name(name),
            TypeFilter::All,
            cap.saturating_sub(collected.entries.len()),
        )?;
        collected.total += part.total;
        collected.entries.extend(part.entries);
    }
    collected.entries.retain(|e| types.accepts(e.record.rrtype));
    sort_entries(&mut collected.entries);
    Ok(collected)
}

/// Deterministic order: latest first, then by name, type and rdata.
pub fn sort_entries(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        b.seen
            .time_last
            .cmp(&a.seen.time_last)
            .then_with(|| a.record.rrname.cmp(&b.record.rrname))
            .then_with(|| a.record.rrtype.cmp(&b.record.rrtype))
            .then_with(|| a.record.rdata.cmp(&b.record.rdata))
    });
}

#[cfg(test)]
mod tests {
    use dnsrecall_core::Rtype;

    use super::*;
    use crate::testing::{MemoryStore, entry};

    #[test]
    fn strict_subjects() {
        assert!(matches!(
            parse_subject("192.0.2.1").unwrap(),
            Subject::Address(_)
        ));
        assert!(matches!(
            parse_subject("2001:DB8::1").unwrap(),
            Subject::Address(_)
        ));
        assert!(matches!(parse_subject("123").unwrap(), Subject::Name(_)));
        assert!(matches!(parse_subject("10.1").unwrap(), Subject::Name(_)));
        assert!(
            matches!(parse_subject("Example.COM.").unwrap(), Subject::Name(n) if n.to_dotless() == "example.com")
        );
        let error = parse_subject("a..b").unwrap_err();
        assert!(matches!(error, QueryError::InvalidSubject { .. }));
        assert!(error.to_string().starts_with("invalid query \"a..b\": "));
    }

    #[test]
    fn lookup_caps_sorts_and_says_it_cut() {
        let store = MemoryStore::new([
            entry("www.example.com", Rtype::A, "192.0.2.1", 10, 20),
            entry("www.example.com", Rtype::A, "192.0.2.2", 10, 30),
            entry("www.example.com", Rtype::AAAA, "2001:db8::1", 10, 25),
            entry("other.example.com", Rtype::A, "192.0.2.1", 10, 40),
        ]);
        let subject = Subject::parse("www.example.com").unwrap();
        let all = lookup(&store, &subject, TypeFilter::All, 10).unwrap();
        let lasts: Vec<u64> = all.entries.iter().map(|e| e.seen.time_last).collect();
        assert_eq!(lasts, [30, 25, 20]);
        assert!(!all.is_cut());
        let cut = lookup(&store, &subject, TypeFilter::All, 2).unwrap();
        assert_eq!((cut.entries.len(), cut.total), (2, 3));
        assert!(cut.is_cut());
        let only_a = lookup(&store, &subject, TypeFilter::Only(Rtype::A), 10).unwrap();
        assert_eq!(only_a.entries.len(), 2);
        let address = Subject::parse("192.0.2.1").unwrap();
        let names: Vec<String> = lookup(&store, &address, TypeFilter::All, 10)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.record.rrname.to_dotless())
            .collect();
        assert_eq!(names, ["other.example.com", "www.example.com"]);
    }

    #[test]
    fn expand_follows_names_pointing_at_the_subject() {
        let store = MemoryStore::new([
            entry("www.example.com", Rtype::A, "192.0.2.1", 10, 20),
            entry("www.example.com", Rtype::TXT, "\"hello\"", 10, 21),
            entry("mail.example.com", Rtype::A, "192.0.2.9", 10, 30),
        ]);
        let expanded = expand(
            &store,
            &Subject::parse("192.0.2.1").unwrap(),
            TypeFilter::All,
            10,
        )
        .unwrap();
        assert_eq!(expanded.entries.len(), 2);
        assert!(
            expanded
                .entries
                .iter()
                .all(|e| e.record.rrname.to_dotless() == "www.example.com")
        );
        let only_txt = expand(
            &store,
            &Subject::parse("192.0.2.1").unwrap(),
            TypeFilter::Only(Rtype::TXT),
            10,
        )
        .unwrap();
        assert_eq!((only_txt.entries.len(), only_txt.total), (1, 2));
    }
}
