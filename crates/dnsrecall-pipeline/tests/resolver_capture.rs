//! A real resolver capture (unbound, dnstap RESOLVER_RESPONSE frames): the
//! bailiwick from dnstap `query_zone` and the reconstructed one must agree,
//! except where reconstruction cannot see a zone cut yet (documented below).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;

use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_pipeline::bailiwick::{BailiwickConfig, BailiwickVerifier};
use dnsrecall_pipeline::{Hints, ResponseMeta};
use serde_json::Value;

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/data/dnstap/unbound/unbound_resolver.dnstap.expected.jsonl"
);

/// The resolver forwards/stubs `test.` and the two reverse zones to
/// 127.0.0.1@5301 and ::1@5301 (data README, "unbound material"): that
/// configuration is its delegation, so it is the seed.
const HINTS: &str = "\
test.                      NS   ns.hints.invalid.
2.0.192.in-addr.arpa.      NS   ns.hints.invalid.
8.b.d.0.1.0.0.2.ip6.arpa.  NS   ns.hints.invalid.
ns.hints.invalid.          A    127.0.0.1
ns.hints.invalid.          AAAA ::1
";

struct Frame {
    query_zone: Name,
    server: IpAddr,
    time: u64,
    entries: Vec<Entry>,
}

fn frames() -> Option<Vec<Frame>> {
    let text = std::fs::read_to_string(CAPTURE).ok()?;
    let mut frames = Vec::new();
    let mut current: Option<Frame> = None;
    for line in text.lines() {
        let value: Value = serde_json::from_str(line).unwrap();
        match value["kind"].as_str() {
            Some("dnstap") => {
                frames.extend(current.take());
                if value["type"] == "RESOLVER_RESPONSE" {
                    current = Some(Frame {
                        query_zone: Name::from_presentation(value["query_zone"].as_str().unwrap())
                            .unwrap(),
                        server: value["response_address"].as_str().unwrap().parse().unwrap(),
                        time: value["response_time"]
                            .as_str()
                            .unwrap()
                            .split('.')
                            .next()
                            .unwrap()
                            .parse()
                            .unwrap(),
                        entries: Vec::new(),
                    });
                }
            }
            Some("rr") => {
                if let Some(frame) = current.as_mut() {
                    let rtype: Rtype = value["rrtype"].as_str().unwrap().parse().unwrap();
                    frame.entries.push(Entry {
                        record: Record {
                            rrname: Name::from_presentation(value["rrname"].as_str().unwrap())
                                .unwrap(),
                            rrtype: rtype,
                            bailiwick: None,
                            rdata: Rdata::from_text_lenient(
                                rtype,
                                value["rdata"].as_str().unwrap(),
                            ),
                        },
                        seen: Seen::once(frame.time),
                    });
                }
            }
            _ => {}
        }
    }
    frames.extend(current);
    Some(frames)
}

/// Bailiwick of each input record after verification, `None` if dropped.
fn verify(
    verifier: &mut BailiwickVerifier,
    entries: &[Entry],
    meta: &ResponseMeta,
) -> Vec<Option<Name>> {
    let mut kept = entries.to_vec();
    verifier.verify(&mut kept, meta);
    let mut kept = kept.into_iter().peekable();
    entries
        .iter()
        .map(|e| match kept.peek() {
            Some(k)
                if k.record.rrname == e.record.rrname
                    && k.record.rrtype == e.record.rrtype
                    && k.record.rdata == e.record.rdata =>
            {
                kept.next().and_then(|k| k.record.bailiwick)
            }
            _ => None,
        })
        .collect()
}

#[test]
fn query_zone_and_reconstruction_agree_on_the_unbound_capture() {
    let Some(frames) = frames() else {
        eprintln!("skipped: {CAPTURE} not present");
        return;
    };
    assert_eq!(frames.len(), 112, "RESOLVER_RESPONSE frames");
    let hints = Hints::parse(Path::new("capture hints"), HINTS).unwrap();
    let config = BailiwickConfig::default();
    let mut by_query_zone = BailiwickVerifier::with_hints(&config, &Hints::default());
    let mut reconstructed = BailiwickVerifier::with_hints(&config, &hints);

    let mut records = 0;
    let mut agree = 0;
    // (query_zone, reconstructed) → records, for each disagreement.
    let mut coarser: BTreeMap<(String, String), usize> = BTreeMap::new();
    // (zone, server) pairs for which reconstruction reached query_zone.
    let mut proven: HashSet<(Name, IpAddr)> = HashSet::new();
    for frame in &frames {
        let with_zone = ResponseMeta {
            query_zone: Some(frame.query_zone.clone()),
            time: frame.time,
            ..Default::default()
        };
        let with_server = ResponseMeta {
            server: Some(frame.server),
            time: frame.time,
            ..Default::default()
        };
        let a = verify(&mut by_query_zone, &frame.entries, &with_zone);
        let b = verify(&mut reconstructed, &frame.entries, &with_server);
        for ((entry, a), b) in frame.entries.iter().zip(a).zip(b) {
            records += 1;
            // Every record of the capture is inside its query zone.
            let a = a.unwrap_or_else(|| {
                panic!("{} dropped by the query_zone path", entry.record.rrname)
            });
            let b =
                b.unwrap_or_else(|| panic!("{} dropped by reconstruction", entry.record.rrname));
            if a == b {
                agree += 1;
                proven.insert((a, frame.server));
                continue;
            }
            // The only allowed disagreement: reconstruction stops at an
            // ancestor of query_zone, because the cut below it has not been
            // proven to this server (see below).
            assert!(
                a.is_subdomain_of(&b) && a != b,
                "{} {}: query_zone {a} vs reconstructed {b}",
                entry.record.rrname,
                entry.record.rrtype
            );
            // Once a cut is proven for a server, it stays proven.
            assert!(
                !proven.contains(&(a.clone(), frame.server)),
                "{a} regressed for {}",
                frame.server
            );
            *coarser.entry((a.to_fqdn(), b.to_fqdn())).or_default() += 1;
        }
    }
    eprintln!("{records} records, {agree} agree, coarser: {coarser:?}");
    assert_eq!(records, 292);
    // Documented disagreements (all "reconstruction stops at `test.`"):
    // - example.test. is unbound `local-data` on the auth instance: its NS
    //   names (ns1/ns2.example.test.) never appear with addresses, so no
    //   response proves that 127.0.0.1 serves the cut; reconstruction says
    //   `test.` (the forwarding seed) for every one of its records.
    // - signed.test. (127.0.0.1) and nsec3.test. (::1): until a response
    //   carries the zone's NS set and the glue `ns1 A 127.0.0.1` /
    //   `ns2 AAAA ::1`, reconstruction can only prove `test.`; records of
    //   that very response are judged on the state before it (no
    //   self-vouching). From the next response on, the two paths agree, and
    //   the `proven` check above makes sure they never diverge again.
    // - The reverse zones are seeded, so they agree from the start.
    let example_test = coarser
        .get(&("example.test.".to_string(), "test.".to_string()))
        .copied()
        .unwrap_or(0);
    let example_total = frames
        .iter()
        .filter(|f| f.query_zone.to_fqdn() == "example.test.")
        .map(|f| f.entries.len())
        .sum::<usize>();
    assert_eq!(
        example_test, example_total,
        "every example.test. record is coarser"
    );
    for (zone, got) in coarser.keys() {
        assert_eq!(got, "test.", "{zone}");
        assert!(
            ["example.test.", "signed.test.", "nsec3.test."].contains(&zone.as_str()),
            "{zone}"
        );
    }
    for zone in [
        "signed.test.",
        "nsec3.test.",
        "2.0.192.in-addr.arpa.",
        "8.b.d.0.1.0.0.2.ip6.arpa.",
    ] {
        let zone = Name::from_presentation(zone).unwrap();
        assert!(
            proven.iter().any(|(z, _)| *z == zone),
            "{zone} never proven"
        );
    }
    assert_eq!(agree + coarser.values().sum::<usize>(), records);
}
