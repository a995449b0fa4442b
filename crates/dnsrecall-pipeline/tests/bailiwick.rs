//! Bailiwick reconstruction over hand-built referral chains.

use std::net::IpAddr;

use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_pipeline::bailiwick::{
    BailiwickConfig, BailiwickVerifier, OutOfBailiwickPolicy, UnverifiablePolicy,
};
use dnsrecall_pipeline::{Hints, ResponseMeta};

const ROOT: &str = "198.41.0.4"; // a.root-servers.net
const TLD: &str = "192.0.2.1"; // ns1.nic.example
const TLD6: &str = "2001:db8::2"; // ns2.nic.example
const BANK: &str = "198.51.100.1"; // ns1.bank.example
const ATTACKER: &str = "203.0.113.66"; // ns.attacker.example

fn rr(name: &str, rtype: &str, rdata: &str) -> Entry {
    let rtype: Rtype = rtype.parse().unwrap();
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rtype, rdata),
        },
        seen: Seen::once(0),
    }
}

fn from(server: &str, time: u64) -> ResponseMeta {
    ResponseMeta {
        server: Some(server.parse::<IpAddr>().unwrap()),
        time,
        ..Default::default()
    }
}

/// Runs one response; returns (rrname, rrtype, bailiwick) of the kept
/// records, `"DROP"` standing for dropped ones, in input order.
fn run(verifier: &mut BailiwickVerifier, meta: &ResponseMeta, records: Vec<Entry>) -> Vec<String> {
    let keys: Vec<(String, Rtype, Vec<u8>)> = records
        .iter()
        .map(|e| {
            (
                e.record.rrname.to_fqdn(),
                e.record.rrtype,
                e.record.rdata.wire().unwrap_or_default().to_vec(),
            )
        })
        .collect();
    let mut entries = records;
    verifier.verify(&mut entries, meta);
    let mut kept = entries.into_iter().peekable();
    keys.into_iter()
        .map(|(name, rtype, rdata)| match kept.peek() {
            Some(e)
                if e.record.rrname.to_fqdn() == name
                    && e.record.rrtype == rtype
                    && e.record.rdata.wire() == Some(&rdata[..]) =>
            {
                let e = kept.next().unwrap();
                format!(
                    "{name} {rtype} @{}",
                    e.record.bailiwick.map_or("-".to_string(), |b| b.to_fqdn())
                )
            }
            _ => format!("{name} {rtype} DROP"),
        })
        .collect()
}

fn served(verifier: &BailiwickVerifier, server: &str) -> Vec<String> {
    verifier
        .zones_served_by(server.parse().unwrap())
        .iter()
        .map(Name::to_fqdn)
        .collect()
}

/// Root → `example.` → `bank.example`, as a resolver walks it.
fn walk_to_bank(verifier: &mut BailiwickVerifier) {
    let root_referral = run(
        verifier,
        &from(ROOT, 1000),
        vec![
            rr("example.", "NS", "ns1.nic.example."),
            rr("example.", "NS", "ns2.nic.example."),
            rr("ns1.nic.example.", "A", TLD),
            rr("ns2.nic.example.", "AAAA", TLD6),
        ],
    );
    assert_eq!(
        root_referral,
        [
            "example. NS @.",
            "example. NS @.",
            "ns1.nic.example. A @.",
            "ns2.nic.example. AAAA @.",
        ]
    );
    assert_eq!(served(verifier, TLD), ["example."]);
    assert_eq!(served(verifier, TLD6), ["example."]);

    let tld_referral = run(
        verifier,
        &from(TLD, 1001),
        vec![
            rr("bank.example.", "NS", "ns1.bank.example."),
            rr("bank.example.", "NS", "ns.other.test."),
            rr("ns1.bank.example.", "A", BANK),
            // Glue for a name outside `example.`: the TLD cannot vouch for it.
            rr("ns.other.test.", "A", "203.0.113.9"),
        ],
    );
    assert_eq!(
        tld_referral,
        [
            "bank.example. NS @example.",
            "bank.example. NS @example.",
            "ns1.bank.example. A @example.",
            "ns.other.test. A DROP",
        ]
    );
    assert_eq!(served(verifier, BANK), ["bank.example."]);
    assert!(served(verifier, "203.0.113.9").is_empty());

    let bank_answer = run(
        verifier,
        &from(BANK, 1002),
        vec![
            rr("www.bank.example.", "A", "198.51.100.80"),
            rr("bank.example.", "NS", "ns1.bank.example."),
            rr("ns1.bank.example.", "A", BANK),
            // The bank's server is not authoritative for the parent.
            rr("example.", "NS", "ns.bank.example."),
        ],
    );
    assert_eq!(
        bank_answer,
        [
            "www.bank.example. A @bank.example.",
            "bank.example. NS @bank.example.",
            "ns1.bank.example. A @bank.example.",
            "example. NS DROP",
        ]
    );
}

#[test]
fn referral_chain_root_tld_zone() {
    let mut verifier = BailiwickVerifier::new(&BailiwickConfig::default()).unwrap();
    walk_to_bank(&mut verifier);
    let metrics = verifier.metrics();
    assert_eq!(metrics.verified_reconstructed.get(), 10);
    assert_eq!(metrics.out_of_bailiwick.get(), 2);
}

#[test]
fn poisoning_from_another_zones_server_is_dropped() {
    let mut verifier = BailiwickVerifier::new(&BailiwickConfig::default()).unwrap();
    walk_to_bank(&mut verifier);
    let attacker_referral = run(
        &mut verifier,
        &from(TLD, 1010),
        vec![
            rr("attacker.example.", "NS", "ns.attacker.example."),
            rr("ns.attacker.example.", "A", ATTACKER),
        ],
    );
    assert_eq!(
        attacker_referral,
        [
            "attacker.example. NS @example.",
            "ns.attacker.example. A @example."
        ]
    );
    let poison = run(
        &mut verifier,
        &from(ATTACKER, 1011),
        vec![
            rr("www.attacker.example.", "A", "203.0.113.67"),
            rr("www.bank.example.", "A", "203.0.113.66"),
            rr("bank.example.", "NS", "ns.attacker.example."),
            rr("ns1.bank.example.", "A", ATTACKER),
            rr("ns.attacker.example.", "A", ATTACKER),
        ],
    );
    assert_eq!(
        poison,
        [
            "www.attacker.example. A @attacker.example.",
            "www.bank.example. A DROP",
            "bank.example. NS DROP",
            "ns1.bank.example. A DROP",
            "ns.attacker.example. A @attacker.example.",
        ]
    );
    // Nothing of the attempt was learned.
    assert_eq!(served(&verifier, ATTACKER), ["attacker.example."]);
    assert_eq!(served(&verifier, BANK), ["bank.example."]);
    let again = run(
        &mut verifier,
        &from(ATTACKER, 1012),
        vec![rr("www.bank.example.", "A", "203.0.113.66")],
    );
    assert_eq!(again, ["www.bank.example. A DROP"]);
}

#[test]
fn a_message_cannot_vouch_for_itself() {
    let mut verifier = BailiwickVerifier::new(&BailiwickConfig::default()).unwrap();
    walk_to_bank(&mut verifier);
    // An unknown server claims a zone, gives its own address as glue and
    // answers from it, all in one message.
    let unknown = "203.0.113.77";
    let claim = vec![
        rr("evil.example.", "NS", "ns.evil.example."),
        rr("ns.evil.example.", "A", unknown),
        rr("www.evil.example.", "A", "192.0.2.200"),
    ];
    let first = run(&mut verifier, &from(unknown, 1020), claim.clone());
    assert_eq!(
        first,
        [
            "evil.example. NS DROP",
            "ns.evil.example. A DROP",
            "www.evil.example. A DROP"
        ]
    );
    assert!(served(&verifier, unknown).is_empty());
    let second = run(&mut verifier, &from(unknown, 1021), claim);
    assert_eq!(
        second,
        [
            "evil.example. NS DROP",
            "ns.evil.example. A DROP",
            "www.evil.example. A DROP"
        ]
    );

    // A known server delegating to itself in one message: the records are
    // judged by what was known before it (bailiwick `example.`), and the new
    // cut applies only to the next message.
    let same = vec![
        rr("deep.example.", "NS", "ns.deep.example."),
        rr("ns.deep.example.", "A", TLD),
        rr("www.deep.example.", "A", "192.0.2.201"),
    ];
    let first = run(&mut verifier, &from(TLD, 1022), same.clone());
    assert_eq!(
        first,
        [
            "deep.example. NS @example.",
            "ns.deep.example. A @example.",
            "www.deep.example. A @example."
        ]
    );
    let second = run(&mut verifier, &from(TLD, 1023), same);
    assert_eq!(
        second,
        [
            "deep.example. NS @deep.example.",
            "ns.deep.example. A @deep.example.",
            "www.deep.example. A @deep.example."
        ]
    );
}

#[test]
fn learned_delegations_expire_by_age_but_hints_do_not() {
    let config = BailiwickConfig {
        max_age_secs: 3600,
        ..BailiwickConfig::default()
    };
    let mut verifier = BailiwickVerifier::new(&config).unwrap();
    walk_to_bank(&mut verifier);
    let later = run(
        &mut verifier,
        &from(BANK, 1002 + 3600),
        vec![rr("www.bank.example.", "A", "198.51.100.80")],
    );
    assert_eq!(later, ["www.bank.example. A @bank.example."]);
    let too_late = run(
        &mut verifier,
        &from(BANK, 1002 + 3601),
        vec![rr("www.bank.example.", "A", "198.51.100.80")],
    );
    assert_eq!(too_late, ["www.bank.example. A DROP"]);
    assert!(served(&verifier, BANK).is_empty());
    let root = run(
        &mut verifier,
        &from(ROOT, 1_000_000),
        vec![rr("test.", "NS", "ns.test.")],
    );
    assert_eq!(root, ["test. NS @."]);
    assert!(verifier.metrics().expired.get() > 0);
}

#[test]
fn query_zone_and_unverifiable_policies() {
    let mut verifier = BailiwickVerifier::new(&BailiwickConfig::default()).unwrap();
    let meta = ResponseMeta {
        query_zone: Some(Name::from_presentation("bank.example").unwrap()),
        ..Default::default()
    };
    let kept = run(
        &mut verifier,
        &meta,
        vec![
            rr("www.bank.example.", "A", "192.0.2.1"),
            rr("www.other.example.", "A", "192.0.2.2"),
        ],
    );
    assert_eq!(
        kept,
        [
            "www.bank.example. A @bank.example.",
            "www.other.example. A DROP"
        ]
    );
    let unknown = run(
        &mut verifier,
        &ResponseMeta::default(),
        vec![rr("a.test.", "A", "192.0.2.3")],
    );
    assert_eq!(unknown, ["a.test. A @-"]);

    let strict = BailiwickConfig {
        unverifiable: UnverifiablePolicy::Drop,
        out_of_bailiwick: OutOfBailiwickPolicy::Keep,
        ..BailiwickConfig::default()
    };
    let mut verifier = BailiwickVerifier::new(&strict).unwrap();
    assert_eq!(
        run(
            &mut verifier,
            &ResponseMeta::default(),
            vec![rr("a.test.", "A", "192.0.2.3")]
        ),
        ["a.test. A DROP"]
    );
    assert_eq!(
        run(
            &mut verifier,
            &from(BANK, 1),
            vec![rr("a.test.", "A", "192.0.2.3")]
        ),
        ["a.test. A @-"]
    );
    let metrics = verifier.metrics();
    assert_eq!(
        (
            metrics.unverifiable_dropped.get(),
            metrics.out_of_bailiwick_kept.get()
        ),
        (1, 1)
    );
}

#[test]
fn custom_hints_and_bounds() {
    let hints = Hints::parse(
        std::path::Path::new("hints"),
        "test. NS ns.hints.invalid.\nns.hints.invalid. A 127.0.0.1\n",
    )
    .unwrap();
    let config = BailiwickConfig {
        max_zones: 2,
        ..BailiwickConfig::default()
    };
    let mut verifier = BailiwickVerifier::with_hints(&config, &hints);
    assert_eq!(served(&verifier, "127.0.0.1"), ["test."]);
    for (i, zone) in ["a.test.", "b.test.", "c.test."].iter().enumerate() {
        let ns = format!("ns.{zone}");
        let got = run(
            &mut verifier,
            &from("127.0.0.1", i as u64),
            vec![rr(zone, "NS", &ns), rr(&ns, "A", "127.0.0.1")],
        );
        assert_eq!(got, [format!("{zone} NS @test."), format!("{ns} A @test.")]);
    }
    // Two learned zones at most; the hint zone stays.
    assert_eq!(
        served(&verifier, "127.0.0.1"),
        ["b.test.", "c.test.", "test."]
    );
    assert_eq!(verifier.metrics().evictions.get(), 1);
}
