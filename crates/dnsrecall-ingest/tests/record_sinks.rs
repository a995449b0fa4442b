//! The pipeline driver writes what the pipeline releases to every record
//! sink: the RocksDB store (through `StoreSink`) and a second sink both
//! receive each record once its sightings are merged, and a failing sink
//! stops the ingest with an error naming it.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};

use dnsrecall_core::sink::{RecordSink, SinkError};
use dnsrecall_core::store::Store;
use dnsrecall_core::{Entry, Name, Rdata, Record, Rtype, Seen};
use dnsrecall_ingest::driver::{DriverError, StoreWriter};
use dnsrecall_ingest::sinks::{RecordSinks, store::StoreSink};
use dnsrecall_pipeline::{Batch, FilterReloader, PipelineConfig};

/// `(name, rdata)` → `(first, last, count)`.
type Folded = BTreeMap<(String, String), (u64, u64, u64)>;

fn key(entry: &Entry) -> (String, String) {
    (entry.record.rrname.to_dotless(), entry.record.rdata_text())
}

fn fold(folded: &mut Folded, entry: &Entry) {
    let seen = &entry.seen;
    let slot = folded.entry(key(entry)).or_insert((u64::MAX, 0, 0));
    slot.0 = slot.0.min(seen.time_first);
    slot.1 = slot.1.max(seen.time_last);
    slot.2 += seen.count;
}

/// A second record output: keeps what it is given, folded by record.
#[derive(Default)]
struct Collecting {
    folded: Mutex<Folded>,
    flushed: Mutex<u32>,
}

impl RecordSink for Collecting {
    fn name(&self) -> &str {
        "collecting"
    }
    fn write(&self, entries: &[Entry]) -> Result<(), SinkError> {
        let mut folded = self.folded.lock().expect("not poisoned");
        for entry in entries {
            fold(&mut folded, entry);
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), SinkError> {
        *self.flushed.lock().expect("not poisoned") += 1;
        Ok(())
    }
}

/// Sightings of 3,000 A records, each seen 1 to 4 times at different
/// times, in batches of 1,000 (several sink chunks in flight).
fn sightings() -> Vec<Entry> {
    let mut out = Vec::new();
    for i in 0u64..3_000 {
        let name = Name::from_presentation(&format!("host{i}.sinks.example")).expect("name");
        let rdata = Rdata::from_text_lenient(Rtype::A, &format!("198.51.{}.{}", i / 256, i % 256));
        for seen in 0..=(i % 4) {
            out.push(Entry {
                record: Record {
                    rrname: name.clone(),
                    rrtype: Rtype::A,
                    bailiwick: None,
                    rdata: rdata.clone(),
                },
                seen: Seen::once(1_700_000_000 + i * 10 + seen * 3),
            });
        }
    }
    out
}

fn run(sinks: RecordSinks, entries: &[Entry]) -> Result<u64, DriverError> {
    let filters = FilterReloader::new(Default::default()).expect("no filter lists");
    let writer = StoreWriter::start_sinks(sinks, &PipelineConfig::default(), &filters)?;
    let sender = writer.sender();
    for chunk in entries.chunks(1_000) {
        if sender
            .blocking_send(Batch::records(chunk.to_vec()))
            .is_err()
        {
            break;
        }
    }
    drop(sender);
    writer.finish().map(|stats| stats.entries)
}

#[test]
fn every_sink_receives_the_merged_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dnsrecall_store::StoreConfig {
        kind: dnsrecall_store::StoreKind::Rocksdb,
        data_dir: dir.path().join("store"),
        rocksdb: Default::default(),
        redis: None,
    };
    let store =
        dnsrecall_store::open(&config, dnsrecall_store::Access::Writer).expect("store opens");
    let collecting = Arc::new(Collecting::default());
    let mut sinks = RecordSinks::new();
    sinks
        .push(Arc::new(StoreSink::new(store.clone() as Arc<dyn Store>)))
        .push(collecting.clone());
    assert_eq!(sinks.names(), ["store", "collecting"]);

    let entries = sightings();
    let mut expected = Folded::new();
    for entry in &entries {
        fold(&mut expected, entry);
    }
    assert_eq!(expected.len(), 3_000);
    let received = run(sinks, &entries).expect("the driver finishes");
    assert_eq!(received, entries.len() as u64);

    let collected = collecting.folded.lock().expect("not poisoned").clone();
    assert_eq!(
        collected, expected,
        "the second sink got every record merged"
    );
    assert_eq!(*collecting.flushed.lock().expect("not poisoned"), 1);

    let mut stored = Folded::new();
    store
        .scan_all(&mut |entry| {
            fold(&mut stored, &entry);
            ControlFlow::Continue(())
        })
        .expect("scan");
    assert_eq!(stored, expected, "the store got the same records");
}

/// Refuses every write, like a store on a full disk.
struct Refusing;

impl RecordSink for Refusing {
    fn name(&self) -> &str {
        "refusing"
    }
    fn write(&self, _: &[Entry]) -> Result<(), SinkError> {
        Err(SinkError::Other {
            sink: "refusing".into(),
            reason: "disk full".into(),
        })
    }
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

#[test]
fn a_failing_sink_stops_the_ingest_naming_itself() {
    let collecting = Arc::new(Collecting::default());
    let sinks: RecordSinks = [
        collecting.clone() as Arc<dyn RecordSink>,
        Arc::new(Refusing),
    ]
    .into_iter()
    .collect();
    let error = run(sinks, &sightings()).expect_err("the refusing sink fails the run");
    assert!(
        matches!(error, DriverError::Sink(SinkError::Other { .. })),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "record sink refusing: disk full");
    // The sinks before it in the list still saw the chunk that failed.
    assert!(!collecting.folded.lock().expect("not poisoned").is_empty());
}
