//! The stages in order: filter → bailiwick → dedup.

use std::sync::Arc;

use dnsrecall_core::Entry;
use serde::{Deserialize, Serialize};

use crate::bailiwick::{BailiwickConfig, BailiwickMetrics, BailiwickVerifier};
use crate::dedup::{DedupCache, DedupConfig, DedupMetrics};
use crate::error::Error;
use crate::filter::{FilterConfig, FilterHandle, FilterMetrics, FilterSet, ResponseVerdict};
use crate::meta::ResponseMeta;
use crate::metrics::MetricSample;

//---- PipelineConfig ----

/// Configuration of the whole pipeline (the `[pipeline]` table).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Filter lists; see [`FilterConfig`].
    #[serde(default)]
    pub filter: FilterConfig,
    /// Bailiwick verification; see [`BailiwickConfig`].
    #[serde(default)]
    pub bailiwick: BailiwickConfig,
    /// De-duplication cache; see [`DedupConfig`].
    #[serde(default)]
    pub dedup: DedupConfig,
}

//---- PipelineMetrics ----

/// The counters of every stage, readable from any thread.
#[derive(Clone, Debug)]
pub struct PipelineMetrics {
    /// Filter stage (and reloads).
    pub filter: Arc<FilterMetrics>,
    /// Bailiwick stage.
    pub bailiwick: Arc<BailiwickMetrics>,
    /// Dedup stage.
    pub dedup: Arc<DedupMetrics>,
}

impl PipelineMetrics {
    /// Name, help and value of every counter of every stage.
    pub fn snapshot(&self) -> Vec<MetricSample> {
        let mut out = self.filter.snapshot();
        out.extend(self.bailiwick.snapshot());
        out.extend(self.dedup.snapshot());
        out
    }
}

//---- Batch ----

/// What a source hands the pipeline in one go: entries in arrival order
/// and, for sources that see DNS responses (dnstap, capture), the response
/// each run of entries came from, so response-level filters (query name,
/// client and server prefixes) and bailiwick verification apply.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// The entries, response after response.
    pub entries: Vec<Entry>,
    /// Per response, its metadata and how many consecutive entries of
    /// `entries` it produced (zero is allowed: a response with no records
    /// still teaches nothing and costs nothing). Empty for record sources
    /// (passivedns logs, COF files): their entries are filtered by record
    /// and sensor only and keep their bailiwick.
    pub responses: Vec<(ResponseMeta, usize)>,
    /// Entries covered by `responses` (their sum), kept so closing a
    /// response costs O(1).
    covered: usize,
}

impl Batch {
    /// A batch of plain records (no response metadata).
    pub fn records(entries: Vec<Entry>) -> Batch {
        Batch {
            entries,
            responses: Vec::new(),
            covered: 0,
        }
    }

    /// An empty batch with room for `entries` entries.
    pub fn with_capacity(entries: usize) -> Batch {
        Batch {
            entries: Vec::with_capacity(entries),
            responses: Vec::with_capacity(entries / 2),
            covered: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries held (responses without records do not count).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Notes that the entries appended since the previous response (or
    /// since the start) came from the response `meta` describes.
    pub fn close_response(&mut self, meta: ResponseMeta) {
        let n = self.entries.len().saturating_sub(self.covered);
        self.covered += n;
        self.responses.push((meta, n));
    }
}

//---- Pipeline ----

/// Filter → bailiwick → dedup for one source thread.
///
/// Not shared between threads: each ingest thread owns one (the filter set
/// and the counters are shared through `Arc`s).
pub struct Pipeline {
    filters: FilterHandle,
    bailiwick: BailiwickVerifier,
    dedup: DedupCache,
    flush_interval: u64,
    filter_metrics: Arc<FilterMetrics>,
    /// Entries between stages, reused across calls.
    batch: Vec<Entry>,
    /// Presentation-form scratch for regex filters.
    scratch: String,
}

impl Pipeline {
    /// Builds the stages. `filters` is usually [`crate::FilterReloader::handle`].
    pub fn new(config: &PipelineConfig, filters: FilterHandle) -> Result<Pipeline, Error> {
        Self::with_filter_metrics(config, filters, Arc::new(FilterMetrics::default()))
    }

    /// Like [`Pipeline::new`], counting filter verdicts in `filter_metrics`
    /// (pass [`crate::FilterReloader::metrics`] to get reloads in the same
    /// snapshot).
    pub fn with_filter_metrics(
        config: &PipelineConfig,
        filters: FilterHandle,
        filter_metrics: Arc<FilterMetrics>,
    ) -> Result<Pipeline, Error> {
        let bailiwick = BailiwickVerifier::new(&config.bailiwick)?;
        Self::from_parts(config, filters, filter_metrics, bailiwick)
    }

    /// Builds the pipeline around a verifier built by the caller (custom
    /// hints).
    pub fn from_parts(
        config: &PipelineConfig,
        filters: FilterHandle,
        filter_metrics: Arc<FilterMetrics>,
        bailiwick: BailiwickVerifier,
    ) -> Result<Pipeline, Error> {
        Ok(Pipeline {
            filters,
            bailiwick,
            dedup: DedupCache::new(&config.dedup)?,
            flush_interval: config.dedup.flush_interval_secs,
            filter_metrics,
            batch: Vec::new(),
            scratch: String::new(),
        })
    }

    /// The counters of all stages.
    pub fn metrics(&self) -> PipelineMetrics {
        PipelineMetrics {
            filter: Arc::clone(&self.filter_metrics),
            bailiwick: self.bailiwick.metrics(),
            dedup: self.dedup.metrics(),
        }
    }

    /// The dedup cache (for its byte count, length).
    pub fn dedup(&self) -> &DedupCache {
        &self.dedup
    }

    /// The bailiwick verifier (for diagnostics).
    pub fn bailiwick(&self) -> &BailiwickVerifier {
        &self.bailiwick
    }

    /// One decoded response: filters, bailiwick verification, dedup.
    /// Entries the cache evicts are appended to `out`.
    pub fn process_response(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
        meta: &ResponseMeta,
        out: &mut Vec<Entry>,
    ) {
        let set = self.filters.load();
        let verdict = set.check_response(meta, &mut self.scratch);
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        filter_into(
            &set,
            verdict,
            entries,
            &mut batch,
            &self.filter_metrics,
            &mut self.scratch,
        );
        drop(set);
        self.bailiwick.verify(&mut batch, meta);
        for entry in batch.drain(..) {
            self.dedup.insert(entry, out);
        }
        self.batch = batch;
    }

    /// Records from an importer with no response metadata (passivedns
    /// logs, COF files): filters (record name, type and `sensor`), then
    /// dedup. Bailiwicks are kept as given.
    pub fn process_records(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
        sensor: Option<&str>,
        out: &mut Vec<Entry>,
    ) {
        let set = self.filters.load();
        if set.is_empty() {
            drop(set);
            let mut count = 0u64;
            for entry in entries {
                count += 1;
                self.dedup.insert(entry, out);
            }
            self.filter_metrics.record_batch(count, count, &[0; 7]);
            return;
        }
        let verdict = set.check_context(None, sensor, None, None, &mut self.scratch);
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        filter_into(
            &set,
            verdict,
            entries,
            &mut batch,
            &self.filter_metrics,
            &mut self.scratch,
        );
        drop(set);
        for entry in batch.drain(..) {
            self.dedup.insert(entry, out);
        }
        self.batch = batch;
    }

    /// A source's batch: per response through [`Pipeline::process_response`]
    /// when it carries response metadata, else per run of one sensor
    /// through [`Pipeline::process_records`]. Entries a response list does
    /// not cover are processed as plain records.
    pub fn process_batch(&mut self, batch: Batch, out: &mut Vec<Entry>) {
        let Batch {
            entries, responses, ..
        } = batch;
        let mut entries = entries.into_iter().peekable();
        for (meta, n) in &responses {
            self.process_response(entries.by_ref().take(*n), meta, out);
        }
        // The filter's sensor rules apply per run of one sensor.
        while let Some(first) = entries.next() {
            let sensor = first.seen.sensor_id.clone();
            let mut run = vec![first];
            while let Some(next) = entries.next_if(|e| e.seen.sensor_id == sensor) {
                run.push(next);
            }
            self.process_records(run, sensor.as_deref(), out);
        }
    }

    /// Interval flush: advances the cache clock to `now` (epoch seconds)
    /// and emits entries inserted at least `flush_interval_secs` ago.
    pub fn tick(&mut self, now: u64, out: &mut Vec<Entry>) {
        self.tick_at_most(now, usize::MAX, out);
    }

    /// Like [`Pipeline::tick`], emitting at most `max` entries; returns how
    /// many (call again while it returns `max`).
    pub fn tick_at_most(&mut self, now: u64, max: usize, out: &mut Vec<Entry>) -> usize {
        self.dedup.set_clock(now);
        match now.checked_sub(self.flush_interval) {
            Some(cutoff) => self
                .dedup
                .flush_older_than_at_most(cutoff.saturating_add(1), max, out),
            None => 0,
        }
    }

    /// Shutdown: emits everything the cache holds.
    pub fn finish(&mut self, out: &mut Vec<Entry>) {
        self.dedup.drain_all(out);
    }

    /// Shutdown in steps: emits at most `max` entries; returns how many
    /// (zero once the cache is empty).
    pub fn finish_at_most(&mut self, max: usize, out: &mut Vec<Entry>) -> usize {
        self.dedup.drain_at_most(max, out)
    }
}

/// Moves the entries that pass `set` into `batch`, counting verdicts.
fn filter_into(
    set: &FilterSet,
    verdict: ResponseVerdict,
    entries: impl IntoIterator<Item = Entry>,
    batch: &mut Vec<Entry>,
    metrics: &FilterMetrics,
    scratch: &mut String,
) {
    let mut input = 0u64;
    let mut dropped = [0u64; 7];
    for entry in entries {
        input += 1;
        match set.check_record(&entry.record, verdict, scratch) {
            None => batch.push(entry),
            Some(reason) => dropped[reason as usize] += 1,
        }
    }
    metrics.record_batch(input, batch.len() as u64, &dropped);
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("bailiwick", &self.bailiwick)
            .field("dedup", &self.dedup)
            .finish()
    }
}
