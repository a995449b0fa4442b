//! The DNSDB lookup grammar (`dnsrecall_query::dnsdb::lookup`) and the search
//! box (`dnsrecall_query::Search`): a path or a search that parses renders
//! to a path that parses again, and renders the same the second time.
#![no_main]

use dnsrecall_query::dnsdb::lookup::{encode_segment, percent_decode};
use dnsrecall_query::{Lookup, Search};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lookup) = Lookup::from_path(text) {
        round_trip(&lookup, text);
    }
    if let Ok(search) = Search::parse(text) {
        let _ = search.description();
        round_trip(&search.lookup, text);
        let _ = search.clone().with_type("A");
        let _ = search.with_type(text);
    }
    // A segment survives encoding.
    match percent_decode(&encode_segment(text)) {
        Ok(decoded) => assert_eq!(decoded, text),
        Err(e) => panic!("encoded {text:?} does not decode: {e}"),
    }
});

fn round_trip(lookup: &Lookup, input: &str) {
    let path = lookup.to_path();
    let again = match Lookup::from_path(&path) {
        Ok(again) => again,
        Err(e) => panic!("{input:?} parsed, its path {path:?} does not: {e}"),
    };
    assert_eq!(again.to_path(), path, "{input:?}");
}
