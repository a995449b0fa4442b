//! Running a [`Lookup`]: the store scans behind each lookup kind
//! ([`scan`]), the rows of a lookup through its fences, offset and limit
//! ([`lookup`]), and summaries ([`summarize`]).

use std::net::IpAddr;
use std::ops::ControlFlow;

use dnsrecall_core::store::{NameMatch, RdataQuery, Store};
use dnsrecall_core::{Entry, Name};

use super::{Lookup, Params};
use crate::QueryError;

//---- Rows ------------------------------------------------------------------

/// Where [`lookup`] sends its rows, in store order.
///
/// A closure `FnMut(Entry) -> ControlFlow<()>` is one. A streaming client
/// (SAF, the web UI) implements [`Rows::filtered`] as well: long runs of
/// records that the time fences reject send no row, and that call is the
/// chance to send a keepalive or to notice the client left.
pub trait Rows {
    /// A row that passed the fences, offset and limit; `Break` stops the
    /// lookup (the client is gone, or has enough).
    fn row(&mut self, entry: Entry) -> ControlFlow<()>;

    /// A record the time fences rejected.
    fn filtered(&mut self) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

impl<F: FnMut(Entry) -> ControlFlow<()>> Rows for F {
    fn row(&mut self, entry: Entry) -> ControlFlow<()> {
        self(entry)
    }
}

//---- End -------------------------------------------------------------------

/// How a lookup or summary ended. An answer is never cut silently: a cut
/// one ends [`End::Limited`], naming the bound that cut it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Every matching row was sent.
    Succeeded,
    /// More rows matched than the bound allowed.
    Limited(Limit),
    /// [`Rows::row`] or [`Rows::filtered`] asked to stop.
    Stopped,
}

/// The bound that cut an answer, with its value ("cut at N").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// `limit`: at most this many rows.
    Results(u64),
    /// `max_count`: the counts of the summarized rows reached this.
    MaxCount(u64),
}

/// What [`lookup`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Rows sent.
    pub rows: u64,
    pub end: End,
}

//---- lookups ---------------------------------------------------------------

/// Runs the store scans of `lookup`, visiting matching entries in store
/// order (no fences, offset or limit: see [`self::lookup`]).
pub fn scan(
    store: &dyn Store,
    lookup: &Lookup,
    visit: &mut dyn FnMut(Entry) -> ControlFlow<()>,
) -> Result<(), QueryError> {
    match lookup {
        Lookup::Rrset {
            query,
            single_label,
        } => {
            let mut filtered = |entry: Entry| match single_label {
                Some(n) if entry.record.rrname.label_count() != *n => ControlFlow::Continue(()),
                _ => visit(entry),
            };
            store.scan_rrset(query, &mut filtered)?;
        }
        Lookup::RdataName { name, types } => store.scan_rdata(
            &RdataQuery::Name {
                name: name.clone(),
                types: *types,
            },
            visit,
        )?,
        Lookup::RdataIp { first, last } => store.scan_rdata(
            &RdataQuery::Address {
                first: *first,
                last: *last,
            },
            visit,
        )?,
        Lookup::RdataRaw { bytes, types } => {
            let stopped = std::cell::Cell::new(false);
            let mut exact = |entry: Entry| {
                if entry.record.rdata.wire() != Some(bytes.as_slice())
                    || !types.accepts(entry.record.rrtype)
                {
                    return ControlFlow::Continue(());
                }
                let flow = visit(entry);
                stopped.set(flow.is_break());
                flow
            };
            // Addresses and names inside rdata live in their own indexes.
            let address = match bytes.len() {
                4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(bytes.as_slice())
                    .ok()
                    .map(IpAddr::from),
                _ => None,
            };
            if let Some(address) = address {
                store.scan_rdata(
                    &RdataQuery::Address {
                        first: address,
                        last: address,
                    },
                    &mut exact,
                )?;
            }
            if !stopped.get()
                && let Ok(name) = Name::from_wire(bytes)
            {
                store.scan_rdata(
                    &RdataQuery::Name {
                        name: NameMatch::Exact(name),
                        types: *types,
                    },
                    &mut exact,
                )?;
            }
            if !stopped.get() {
                store.scan_rdata(
                    &RdataQuery::Raw {
                        prefix: bytes.clone(),
                        types: *types,
                    },
                    &mut exact,
                )?;
            }
        }
    }
    Ok(())
}

/// The rows of `lookup`: records that pass the time fences, after
/// `offset` of them, at most `limit`, in store order. One more matching
/// row makes the end [`End::Limited`].
pub fn lookup(
    store: &dyn Store,
    lookup: &Lookup,
    params: &Params,
    rows: &mut dyn Rows,
) -> Result<Outcome, QueryError> {
    let mut skipped = 0u64;
    let mut sent = 0u64;
    let mut end = End::Succeeded;
    scan(store, lookup, &mut |entry: Entry| {
        if !params.fences(&entry) {
            let flow = rows.filtered();
            if flow.is_break() {
                end = End::Stopped;
            }
            return flow;
        }
        if skipped < params.offset {
            skipped += 1;
            return ControlFlow::Continue(());
        }
        if sent >= params.limit {
            // One more row exists: the limit cut the answer.
            end = End::Limited(Limit::Results(params.limit));
            return ControlFlow::Break(());
        }
        sent += 1;
        let flow = rows.row(entry);
        if flow.is_break() {
            end = End::Stopped;
        }
        flow
    })?;
    Ok(Outcome { rows: sent, end })
}

//---- Summary ---------------------------------------------------------------

/// DNSDB's summarize: how many rows a lookup has, their summed counts and
/// their time span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Sum of the rows' counts (a count of 0 counts as 1).
    pub count: u64,
    /// Rows summarized.
    pub num_results: u64,
    /// Earliest first and latest last sighting.
    pub times: Option<(u64, u64)>,
    /// Earliest first and latest last zone-file sighting.
    pub zone_times: Option<(u64, u64)>,
    /// [`End::Limited`] when `limit` or `max_count` stopped it.
    pub end: End,
}

/// Summarizes the rows of `lookup` that pass the time fences, stopping at
/// `limit` rows or once the counts reach `max_count`.
pub fn summarize(
    store: &dyn Store,
    lookup: &Lookup,
    params: &Params,
) -> Result<Summary, QueryError> {
    let mut summary = Summary {
        count: 0,
        num_results: 0,
        times: None,
        zone_times: None,
        end: End::Succeeded,
    };
    scan(store, lookup, &mut |entry: Entry| {
        if !params.fences(&entry) {
            return ControlFlow::Continue(());
        }
        if summary.num_results >= params.limit {
            summary.end = End::Limited(Limit::Results(params.limit));
            return ControlFlow::Break(());
        }
        if let Some(max) = params.max_count
            && summary.count >= max
        {
            summary.end = End::Limited(Limit::MaxCount(max));
            return ControlFlow::Break(());
        }
        summary.num_results += 1;
        summary.count = summary.count.saturating_add(entry.seen.count.max(1));
        let seen = &entry.seen;
        summary.times = Some(
            summary
                .times
                .map_or((seen.time_first, seen.time_last), |(a, b)| {
                    (a.min(seen.time_first), b.max(seen.time_last))
                }),
        );
        if let Some((first, last)) = seen.zone_times {
            summary.zone_times = Some(
                summary
                    .zone_times
                    .map_or((first, last), |(a, b)| (a.min(first), b.max(last))),
            );
        }
        ControlFlow::Continue(())
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use dnsrecall_core::Rtype;

    use super::*;
    use crate::testing::{FailingStore, MemoryStore, collect, describe, entry};

    fn store() -> MemoryStore {
        MemoryStore::new([
            entry("www.example.com", Rtype::A, "192.0.2.1", 100, 200),
            entry("www.example.com", Rtype::AAAA, "2001:db8::1", 100, 300),
            entry("a.b.example.com", Rtype::A, "192.0.2.2", 400, 500),
            entry("example.com", Rtype::NS, "ns1.example.net.", 100, 900),
            entry(
                "mail.example.org",
                Rtype::MX,
                "10 mx.example.net.",
                100,
                900,
            ),
            entry("www.example.org", Rtype::CNAME, "www.example.com.", 50, 60),
        ])
    }

    fn rows_of(lookup_path: &str, params: &Params) -> (Vec<String>, Outcome) {
        let mut found = Vec::new();
        let outcome = lookup(
            &store(),
            &Lookup::from_path(lookup_path).unwrap(),
            params,
            &mut |entry: Entry| {
                found.push(entry);
                ControlFlow::Continue(())
            },
        )
        .unwrap();
        (describe(&found), outcome)
    }

    fn all() -> Params {
        Params {
            limit: 100,
            ..Params::default()
        }
    }

    #[test]
    fn each_lookup_kind_scans_its_index() {
        let (rows, _) = rows_of("rrset/name/*.example.com", &all());
        assert_eq!(rows.len(), 4);
        let (rows, _) = rows_of("rrset/name/+.example.com", &all());
        assert_eq!(
            rows,
            [
                "www.example.com A 192.0.2.1",
                "www.example.com AAAA 2001:db8::1"
            ]
        );
        let (rows, _) = rows_of("rrset/name/www.example.*/A", &all());
        assert_eq!(rows, ["www.example.com A 192.0.2.1"]);
        let (rows, _) = rows_of("rdata/name/*.example.net", &all());
        assert_eq!(rows.len(), 2);
        let (rows, _) = rows_of("rdata/ip/192.0.2.0,24", &all());
        assert_eq!(rows.len(), 2);
        let (rows, _) = rows_of("rdata/raw/c0000201", &all());
        assert_eq!(rows, ["www.example.com A 192.0.2.1"]);
        let raw_name = hex::encode(
            Name::from_presentation("www.example.com")
                .unwrap()
                .as_wire(),
        );
        let (rows, _) = rows_of(&format!("rdata/raw/{raw_name}/CNAME"), &all());
        assert_eq!(rows, ["www.example.org CNAME www.example.com."]);
    }

    #[test]
    fn limit_offset_and_fences() {
        let (rows, outcome) = rows_of(
            "rrset/name/*.example.com",
            &Params {
                limit: 2,
                ..Params::default()
            },
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            outcome,
            Outcome {
                rows: 2,
                end: End::Limited(Limit::Results(2))
            }
        );
        // Exactly the limit: nothing was cut.
        let (_, outcome) = rows_of(
            "rrset/name/*.example.com",
            &Params {
                limit: 4,
                ..Params::default()
            },
        );
        assert_eq!(outcome.end, End::Succeeded);
        let (rows, _) = rows_of(
            "rrset/name/*.example.com",
            &Params {
                limit: 100,
                offset: 3,
                ..Params::default()
            },
        );
        assert_eq!(rows.len(), 1);
        let (rows, _) = rows_of(
            "rrset/name/*.example.com",
            &Params {
                limit: 100,
                time_last_after: Some(400),
                ..Params::default()
            },
        );
        assert_eq!(rows.len(), 2);
    }

    struct Stopper {
        rows: usize,
        filtered: usize,
    }

    impl Rows for Stopper {
        fn row(&mut self, _: Entry) -> ControlFlow<()> {
            self.rows += 1;
            ControlFlow::Continue(())
        }
        fn filtered(&mut self) -> ControlFlow<()> {
            self.filtered += 1;
            ControlFlow::Break(())
        }
    }

    #[test]
    fn a_consumer_may_stop_on_filtered_records() {
        let mut stopper = Stopper {
            rows: 0,
            filtered: 0,
        };
        let outcome = lookup(
            &store(),
            &Lookup::from_path("rrset/name/*.example.com").unwrap(),
            &Params {
                limit: 100,
                time_first_after: Some(1000),
                ..Params::default()
            },
            &mut stopper,
        )
        .unwrap();
        assert_eq!((stopper.rows, stopper.filtered), (0, 1));
        assert_eq!(outcome.end, End::Stopped);
    }

    #[test]
    fn summaries() {
        let lookup = Lookup::from_path("rrset/name/*.example.com").unwrap();
        let summary = summarize(&store(), &lookup, &all()).unwrap();
        assert_eq!(summary.num_results, 4);
        assert_eq!(summary.count, 4);
        assert_eq!(summary.times, Some((100, 900)));
        assert_eq!(summary.end, End::Succeeded);
        let limited = summarize(
            &store(),
            &lookup,
            &Params {
                limit: 100,
                max_count: Some(2),
                ..Params::default()
            },
        )
        .unwrap();
        assert_eq!(limited.num_results, 2);
        assert_eq!(limited.end, End::Limited(Limit::MaxCount(2)));
    }

    #[test]
    fn store_failures_are_errors() {
        let lookup = Lookup::from_path("rrset/name/example.com").unwrap();
        assert!(matches!(
            summarize(&FailingStore, &lookup, &all()),
            Err(QueryError::Store(_))
        ));
        let found = collect(|visit| {
            assert!(scan(&FailingStore, &lookup, visit).is_err());
        });
        assert!(found.is_empty());
    }
}
