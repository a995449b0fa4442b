//! The stages together, and the documented configuration.

use std::sync::Arc;

use arc_swap::ArcSwap;
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_pipeline::{FilterSet, Pipeline, PipelineConfig, ResponseMeta};

fn rr(name: &str, rtype: Rtype, rdata: &str, time: u64) -> Entry {
    Entry {
        record: Record {
            rrname: Name::from_presentation(name).unwrap(),
            rrtype: rtype,
            bailiwick: None,
            rdata: Rdata::from_text_lenient(rtype, rdata),
        },
        seen: Seen::once(time),
    }
}

fn value(samples: &[(&str, &str, u64)], name: &str) -> u64 {
    samples
        .iter()
        .find(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .2
}

/// The default pipeline with one deny list.
fn pipeline_denying(deny: &str) -> Pipeline {
    let set = FilterSet::from_texts(&[], &[("deny".into(), deny.to_string())]).unwrap();
    Pipeline::new(
        &PipelineConfig::default(),
        Arc::new(ArcSwap::from_pointee(set)),
    )
    .unwrap()
}

#[test]
fn response_goes_through_filter_bailiwick_and_dedup() {
    let mut pipeline = pipeline_denying("exact:blocked.example.\ntype:TXT\n");
    let metrics = pipeline.metrics();
    let meta = ResponseMeta {
        server: Some("198.41.0.4".parse().unwrap()),
        qname: Some(Name::from_presentation("www.example.").unwrap()),
        time: 100,
        ..Default::default()
    };
    let mut out = Vec::new();
    pipeline.tick(100, &mut out);
    for time in [100, 101, 102] {
        let entries = vec![
            rr("example.", Rtype::NS, "ns1.nic.example.", time),
            rr("blocked.example.", Rtype::NS, "ns1.nic.example.", time),
            rr("example.", Rtype::TXT, "\"x\"", time),
        ];
        pipeline.process_response(
            entries,
            &ResponseMeta {
                time,
                ..meta.clone()
            },
            &mut out,
        );
    }
    // Unknown server: everything out of bailiwick.
    let stranger = ResponseMeta {
        server: Some("192.0.2.99".parse().unwrap()),
        ..meta.clone()
    };
    pipeline.process_response(
        vec![rr("example.", Rtype::NS, "ns9.nic.example.", 103)],
        &stranger,
        &mut out,
    );
    assert!(out.is_empty());
    pipeline.tick(105, &mut out);
    assert!(
        out.is_empty(),
        "inserted at clock 100, flushed once 10 s have passed"
    );
    pipeline.tick(110, &mut out);
    assert_eq!(out.len(), 1);
    let entry = &out[0];
    assert_eq!(entry.record.bailiwick, Some(Name::root()));
    assert_eq!(
        (
            entry.seen.count,
            entry.seen.time_first,
            entry.seen.time_last
        ),
        (3, 100, 102)
    );
    pipeline.finish(&mut out);
    assert_eq!(out.len(), 1);

    let samples = metrics.snapshot();
    assert_eq!(value(&samples, "dnsrecall_pipeline_filter_in_total"), 10);
    assert_eq!(
        value(
            &samples,
            "dnsrecall_pipeline_filter_dropped_denied_name_total"
        ),
        3
    );
    assert_eq!(
        value(
            &samples,
            "dnsrecall_pipeline_filter_dropped_denied_type_total"
        ),
        3
    );
    assert_eq!(
        value(
            &samples,
            "dnsrecall_pipeline_bailiwick_verified_reconstructed_total"
        ),
        3
    );
    assert_eq!(
        value(
            &samples,
            "dnsrecall_pipeline_bailiwick_out_of_bailiwick_total"
        ),
        1
    );
    assert_eq!(value(&samples, "dnsrecall_pipeline_dedup_hits_total"), 2);
    assert_eq!(value(&samples, "dnsrecall_pipeline_dedup_flushes_total"), 1);
    assert_eq!(value(&samples, "dnsrecall_pipeline_dedup_entries"), 0);
    for (name, help, _) in &samples {
        assert!(name.starts_with("dnsrecall_pipeline_") && !help.is_empty());
    }
}

#[test]
fn importer_records_keep_their_bailiwick() {
    let mut pipeline = Pipeline::new(
        &PipelineConfig::default(),
        Arc::new(ArcSwap::from_pointee(FilterSet::empty())),
    )
    .unwrap();
    let mut entry = rr("www.example.", Rtype::A, "192.0.2.1", 5);
    entry.record.bailiwick = Some(Name::from_presentation("example.").unwrap());
    let mut out = Vec::new();
    pipeline.process_records(vec![entry.clone(), entry.clone()], Some("s1"), &mut out);
    pipeline.finish(&mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].record, entry.record);
    assert_eq!(out[0].seen.count, 2);
}

/// The example in README.md parses, and an empty table gives the defaults.
#[test]
fn documented_config_parses() {
    let readme = include_str!("../README.md");
    let start = readme.find("```toml\n").expect("README has a toml example") + "```toml\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let config: PipelineConfig = toml::from_str(&readme[start..end]).unwrap();
    assert_eq!(config, PipelineConfig::default());
    let empty: PipelineConfig = toml::from_str("").unwrap();
    assert_eq!(empty, PipelineConfig::default());
    let unknown = toml::from_str::<PipelineConfig>("[dedup]\nmax_entrys = 5\n").unwrap_err();
    assert!(unknown.to_string().contains("max_entrys"), "{unknown}");
}

/// A source's batch: each response's entries go through the response
/// stages with their own metadata; a recursive server's address vouches for
/// nothing (kept unverified), an authority's is checked by reconstruction;
/// entries no response covers are plain records.
#[test]
fn batches_apply_each_response_meta() {
    let mut pipeline = pipeline_denying("client:10.9.0.0/16\n");
    let metrics = pipeline.metrics();
    let stranger: std::net::IpAddr = "192.0.2.99".parse().unwrap();
    let mut batch = dnsrecall_pipeline::Batch::default();
    // 1. An unknown authority (RD clear) answering for bank.example: dropped.
    batch
        .entries
        .push(rr("bank.example.", Rtype::A, "192.0.2.1", 100));
    batch.close_response(ResponseMeta {
        server: Some(stranger),
        time: 100,
        ..Default::default()
    });
    // 2. The same address as a recursive resolver answering a stub: kept,
    //    with no bailiwick.
    batch
        .entries
        .push(rr("www.bank.example.", Rtype::A, "192.0.2.2", 100));
    batch.close_response(ResponseMeta {
        server: Some(stranger),
        time: 100,
        recursive: true,
        ..Default::default()
    });
    // 3. A response to a denied client: filtered out.
    batch
        .entries
        .push(rr("mail.bank.example.", Rtype::A, "192.0.2.3", 100));
    batch.close_response(ResponseMeta {
        server: Some(stranger),
        client: Some("10.9.1.1".parse().unwrap()),
        time: 100,
        recursive: true,
        ..Default::default()
    });
    // 4. A response with no records, then a plain record no response covers.
    batch.close_response(ResponseMeta::default());
    batch
        .entries
        .push(rr("plain.example.", Rtype::A, "192.0.2.4", 100));
    assert_eq!(batch.len(), 4);
    assert_eq!(
        batch.responses.iter().map(|r| r.1).collect::<Vec<_>>(),
        [1, 1, 1, 0]
    );
    let mut out = Vec::new();
    pipeline.process_batch(batch, &mut out);
    pipeline.finish(&mut out);
    let mut names: Vec<String> = out
        .iter()
        .map(|e| {
            assert_eq!(e.record.bailiwick, None);
            e.record.rrname.to_string()
        })
        .collect();
    names.sort();
    assert_eq!(names, ["plain.example.", "www.bank.example."]);
    let samples = metrics.snapshot();
    let get = |name| value(&samples, name);
    assert_eq!(
        get("dnsrecall_pipeline_bailiwick_out_of_bailiwick_total"),
        1
    );
    assert_eq!(
        get("dnsrecall_pipeline_bailiwick_unverifiable_kept_total"),
        1
    );
}
