//! Every rdata of the independent reference decodings (tshark + dnspython,
//! `tests/data/*/*.expected.jsonl`) goes through our parser into wire
//! form and back to presentation format, and must equal dnspython's text up
//! to two documented naming conventions:
//!
//! 1. **Base64 and hex blobs** (DNSKEY/CDNSKEY keys, RRSIG signatures, DS/CDS
//!    digests, TLSA data, SSHFP fingerprints): dnspython breaks them into
//!    space-separated chunks, we print them unbroken like dig and ldns. The
//!    comparison joins the trailing blob.
//! 2. **Names inside rdata** are stored in canonical (lower-case) form, so
//!    the comparison is case-insensitive for types whose rdata holds names;
//!    types holding text (TXT, SPF, HINFO, CAA, NAPTR, URI, ...) compare
//!    exactly, case and quoting included.

use std::path::{Path, PathBuf};

use dnsrecall_core::Rtype;
use dnsrecall_core::rdata::{from_presentation, to_presentation};

fn expected_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data");
    let mut files = Vec::new();
    for group in ["pcap", "dnstap"] {
        for source in std::fs::read_dir(root.join(group)).expect("tests/data") {
            for file in std::fs::read_dir(source.unwrap().path()).unwrap() {
                let path = file.unwrap().path();
                if path.to_string_lossy().ends_with(".expected.jsonl") {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    files
}

/// Number of leading fields before the blob, for types with a trailing blob.
fn blob_start(rtype: &str) -> Option<usize> {
    match rtype {
        "DNSKEY" | "CDNSKEY" | "DS" | "CDS" | "TLSA" => Some(3),
        "SSHFP" => Some(2),
        "RRSIG" => Some(8),
        _ => None,
    }
}

fn has_names(rtype: &str) -> bool {
    matches!(
        rtype,
        "NS" | "CNAME"
            | "PTR"
            | "MX"
            | "SOA"
            | "SRV"
            | "DNAME"
            | "RRSIG"
            | "NSEC"
            | "AFSDB"
            | "RP"
            | "SVCB"
            | "HTTPS"
            | "KX"
            | "MINFO"
    )
}

fn normalise(rtype: &str, text: &str) -> String {
    let mut tokens: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    if let Some(start) = blob_start(rtype).filter(|start| tokens.len() > *start) {
        let blob: String = tokens.drain(start..).collect();
        tokens.push(blob);
    }
    let joined = tokens.join(" ");
    if has_names(rtype) {
        joined.to_ascii_lowercase()
    } else {
        joined
    }
}

#[test]
fn every_reference_rdata_round_trips_to_the_same_text() {
    let mut checked = 0;
    let mut types = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for file in expected_files() {
        for (number, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            if value["kind"] != "rr" {
                continue;
            }
            let rtype_text = value["rrtype"].as_str().unwrap();
            let rdata = value["rdata"].as_str().unwrap();
            let rtype: Rtype = rtype_text
                .parse()
                .unwrap_or_else(|_| panic!("type {rtype_text}"));
            let place = format!("{}:{}", file.display(), number + 1);
            match from_presentation(rtype, rdata) {
                Ok(wire) => {
                    let ours = to_presentation(rtype, &wire);
                    if normalise(rtype_text, &ours) != normalise(rtype_text, rdata) {
                        failures.push(format!(
                            "{place}: {rtype_text}\n  reference: {rdata}\n  ours:      {ours}"
                        ));
                    }
                }
                Err(error) => failures.push(format!(
                    "{place}: {rtype_text} {rdata:?} does not parse: {error}"
                )),
            }
            checked += 1;
            types.insert(rtype_text.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} differ:\n{}",
        failures.len(),
        failures[..failures.len().min(400)].join("\n")
    );
    assert!(checked > 3000, "only {checked} rdata checked");
    assert!(types.len() >= 25, "only {} types: {types:?}", types.len());
}
