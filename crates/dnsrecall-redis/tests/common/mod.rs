//! Shared helpers of the dnsrecall-redis tests.
#![allow(dead_code)] // each test target uses a different subset

use std::ops::ControlFlow;
use std::sync::Arc;

use dnsrecall_core::store::{NameMatch, RrsetQuery, Store, TypeFilter};
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};

/// An entry from presentation text.
pub fn entry(name: &str, rtype: Rtype, rdata: &str, first: u64, last: u64, count: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).expect("test name"),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rtype, rdata),
        },
        seen: Seen {
            time_first: first,
            time_last: last,
            count,
            zone_times: None,
            sensor_id: None,
        },
    }
}

/// The same with a sensor.
pub fn entry_from(sensor: &str, mut entry: Entry) -> Entry {
    entry.seen.sensor_id = Some(Arc::from(sensor));
    entry
}

/// Every record of `name` (all types), as `(rrtype, rdata text, first, last, count)`.
pub fn lookup(store: &dyn Store, name: &str) -> Vec<(Rtype, String, u64, u64, u64)> {
    let query = RrsetQuery {
        name: NameMatch::Exact(Name::from_presentation(name).expect("test name")),
        types: TypeFilter::All,
        bailiwick: None,
    };
    let mut out = Vec::new();
    store
        .scan_rrset(&query, &mut |entry: Entry| {
            out.push(summary(&entry));
            ControlFlow::Continue(())
        })
        .expect("lookup");
    out
}

/// `(rrtype, rdata text, first, last, count)` of an entry.
pub fn summary(entry: &Entry) -> (Rtype, String, u64, u64, u64) {
    (
        entry.record.rrtype,
        entry.record.rdata_text(),
        entry.seen.time_first,
        entry.seen.time_last,
        entry.seen.count,
    )
}

/// A raw connection to a single test server.
pub fn raw(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .and_then(|client| client.get_connection())
        .expect("raw redis connection")
}
