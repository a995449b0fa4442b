//! dnsrecall-metrics: the one metrics vocabulary of dnsrecall.
//!
//! It owns the value types ([`Counter`], [`Gauge`], [`Histogram`]), the
//! [`Registry`] every component registers with (through its context: an
//! input, an output, the pipeline driver, the store writer), the bound on
//! label sets per metric (extra label sets are folded into one
//! `overflow="true"` series and counted) and the Prometheus text rendering
//! that `/metrics` serves. It knows nothing of DNS, HTTP or storage and
//! depends on no other crate.
//!
//! Crates that must stay free of dnsrecall dependencies (dnsrecall-dnstap,
//! dnsrecall-capture) keep lock-free counter structs whose `snapshot()`
//! returns [`LegacySample`] tuples; their owner registers that snapshot
//! with [`Registry::register_samples`], so every counter reaches the same
//! exposition.
//!
//! Why not `prometheus-client` or `metrics`: the hot paths here bump
//! counters owned by one thread with a relaxed load+store (no locked
//! read-modify-write), and most counters already live in per-stage structs
//! read by a snapshot at scrape time. Either crate would need an adapter
//! collector of about the size of this registry; the rendering is 80
//! lines. The exposition follows the Prometheus text format 0.0.4.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One sample in the form the low crates report it: metric name (counters
/// end in `_total`), help text, value.
pub type LegacySample = (&'static str, &'static str, u64);

/// Most label sets one metric name may have; more are folded into one
/// `overflow="true"` series (and counted in
/// `dnsrecall_metrics_label_sets_overflow_total`).
pub const DEFAULT_MAX_LABEL_SETS: usize = 64;

/// A monotonically increasing count, readable from any thread.
///
/// [`Counter::add`] is for the single thread that owns a stage (a relaxed
/// load and store: a plain `mov` on x86-64, which matters at millions of
/// entries per second); [`Counter::add_shared`] for counters bumped from
/// several threads.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the single thread that owns the counter may call this.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0.store(
            self.0.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Adds `n` from any thread.
    #[inline]
    pub fn add_shared(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Adds one from any thread.
    #[inline]
    pub fn inc(&self) {
        self.add_shared(1);
    }

    /// Sets the value (for gauges kept in a `Counter`).
    #[inline]
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (entries held, bytes held, ...).
pub type Gauge = Counter;

/// A distribution over fixed upper bounds (Prometheus `le` buckets).
#[derive(Debug)]
pub struct Histogram {
    bounds: Vec<f64>,
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: Vec<AtomicU64>,
    /// Sum of observations in micro-units (observations × 1e6, rounded).
    sum_micros: AtomicU64,
}

impl Histogram {
    /// A histogram with these ascending upper bounds (`+Inf` is implied).
    pub fn new(bounds: &[f64]) -> Histogram {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        Histogram {
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation (from any thread).
    pub fn observe(&self, value: f64) {
        let index = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        let micros = (value.max(0.0) * 1e6).round();
        self.sum_micros
            .fetch_add(micros.min(u64::MAX as f64) as u64, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    fn value(&self) -> Value {
        let mut cumulative = 0;
        let mut buckets = Vec::with_capacity(self.buckets.len());
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            buckets.push((self.bounds.get(index).copied(), cumulative));
        }
        Value::Histogram {
            buckets,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// What a metric is, for the `# TYPE` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A counter or gauge.
    Int(u64),
    /// Cumulative buckets (`None`: `+Inf`) and the sum.
    Histogram {
        buckets: Vec<(Option<f64>, u64)>,
        sum: f64,
    },
}

/// One series at scrape time.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// Label names and values, in the order they are rendered.
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

/// Produces samples at each scrape.
pub type Collector = Arc<dyn Fn(&mut Vec<Sample>) + Send + Sync>;

#[derive(Clone)]
enum Handle {
    Counter(Arc<Counter>),
    Gauge(Arc<Gauge>),
    Histogram(Arc<Histogram>),
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Vec<(&'static str, String)>, Handle>,
}

#[derive(Default)]
struct Inner {
    families: BTreeMap<&'static str, Family>,
    collectors: Vec<Collector>,
}

/// The process's metrics: owned series and collectors, rendered together.
pub struct Registry {
    inner: Mutex<Inner>,
    max_label_sets: usize,
    overflow: Arc<Counter>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new(DEFAULT_MAX_LABEL_SETS)
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("max_label_sets", &self.max_label_sets)
            .finish_non_exhaustive()
    }
}

const OVERFLOW_LABEL: (&str, &str) = ("overflow", "true");

impl Registry {
    /// A registry allowing up to `max_label_sets` label sets per name.
    pub fn new(max_label_sets: usize) -> Registry {
        Registry {
            inner: Mutex::new(Inner::default()),
            max_label_sets: max_label_sets.max(1),
            overflow: Arc::new(Counter::default()),
        }
    }

    /// The counter `name{labels}`, created on first use (the same one on
    /// later calls).
    pub fn counter(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Arc<Counter> {
        match self.series(name, help, Kind::Counter, labels, || {
            Handle::Counter(Arc::default())
        }) {
            Some(Handle::Counter(counter)) => counter.clone(),
            _ => Arc::default(),
        }
    }

    /// The gauge `name{labels}`, created on first use.
    pub fn gauge(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
    ) -> Arc<Gauge> {
        match self.series(name, help, Kind::Gauge, labels, || {
            Handle::Gauge(Arc::default())
        }) {
            Some(Handle::Gauge(gauge)) => gauge.clone(),
            _ => Arc::default(),
        }
    }

    /// The histogram `name{labels}` with these bucket bounds, created on
    /// first use (later calls get the first one's buckets).
    pub fn histogram(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        bounds: &[f64],
    ) -> Arc<Histogram> {
        match self.series(name, help, Kind::Histogram, labels, || {
            Handle::Histogram(Arc::new(Histogram::new(bounds)))
        }) {
            Some(Handle::Histogram(histogram)) => histogram.clone(),
            _ => Arc::new(Histogram::new(bounds)),
        }
    }

    /// Looks up or creates a series; a name registered with another kind
    /// yields `None` (the caller gets a detached value, counted as an
    /// overflow).
    fn series(
        &self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
        make: impl FnOnce() -> Handle,
    ) -> Option<Handle> {
        let Ok(mut inner) = self.inner.lock() else {
            self.overflow.inc();
            return None;
        };
        let family = inner.families.entry(name).or_insert_with(|| Family {
            help,
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            self.overflow.inc();
            return None;
        }
        let mut key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, (*v).to_string())).collect();
        if !family.series.contains_key(&key) && family.series.len() >= self.max_label_sets {
            self.overflow.inc();
            key = vec![(OVERFLOW_LABEL.0, OVERFLOW_LABEL.1.to_string())];
        }
        Some(family.series.entry(key).or_insert_with(make).clone())
    }

    /// Adds a collector called at each scrape (for counters kept in a
    /// component's own structs).
    pub fn register(&self, collector: Collector) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.collectors.push(collector);
        }
    }

    /// Adds a snapshot function of a crate that reports [`LegacySample`]s
    /// (names ending in `_total` are counters, others gauges).
    pub fn register_samples(
        &self,
        snapshot: impl Fn() -> Vec<LegacySample> + Send + Sync + 'static,
    ) {
        self.register(Arc::new(move |out: &mut Vec<Sample>| {
            out.extend(snapshot().into_iter().map(|(name, help, value)| Sample {
                name,
                help,
                kind: if name.ends_with("_total") {
                    Kind::Counter
                } else {
                    Kind::Gauge
                },
                labels: Vec::new(),
                value: Value::Int(value),
            }));
        }));
    }

    /// Every sample: owned series, then collectors' (in registration order).
    pub fn gather(&self) -> Vec<Sample> {
        let (mut out, collectors) = match self.inner.lock() {
            Ok(inner) => {
                let mut out = Vec::new();
                for (name, family) in &inner.families {
                    for (labels, handle) in &family.series {
                        let value = match handle {
                            Handle::Counter(c) | Handle::Gauge(c) => Value::Int(c.get()),
                            Handle::Histogram(h) => h.value(),
                        };
                        out.push(Sample {
                            name,
                            help: family.help,
                            kind: family.kind,
                            labels: labels.clone(),
                            value,
                        });
                    }
                }
                (out, inner.collectors.clone())
            }
            Err(_) => (Vec::new(), Vec::new()),
        };
        // Collectors run outside the lock: they may register series.
        for collector in collectors {
            collector(&mut out);
        }
        out.push(Sample {
            name: "dnsrecall_metrics_label_sets_overflow_total",
            help: "Series folded into an overflow series (label set bound reached) or detached (kind clash).",
            kind: Kind::Counter,
            labels: Vec::new(),
            value: Value::Int(self.overflow.get()),
        });
        out
    }

    /// The Prometheus text exposition of [`Registry::gather`].
    pub fn render(&self) -> String {
        render(&self.gather())
    }
}

/// Renders samples as Prometheus text (format 0.0.4). Samples of one name
/// are grouped under one `# HELP`/`# TYPE` header in first-seen order; the
/// same name and labels seen twice (two inputs of one kind) are summed.
pub fn render(samples: &[Sample]) -> String {
    let mut order: Vec<&'static str> = Vec::new();
    let mut groups: BTreeMap<&'static str, (&'static str, Kind, Vec<Sample>)> = BTreeMap::new();
    for sample in samples {
        let group = groups.entry(sample.name).or_insert_with(|| {
            order.push(sample.name);
            (sample.help, sample.kind, Vec::new())
        });
        match group.2.iter_mut().find(|s| s.labels == sample.labels) {
            Some(existing) => merge(&mut existing.value, &sample.value),
            None => group.2.push(sample.clone()),
        }
    }
    let mut out = String::with_capacity(samples.len() * 96);
    for name in order {
        let Some((help, kind, series)) = groups.get(name) else {
            continue;
        };
        let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
        for sample in series {
            match &sample.value {
                Value::Int(value) => {
                    let _ = writeln!(out, "{name}{} {value}", labels(&sample.labels, None));
                }
                Value::Histogram { buckets, sum } => {
                    let mut count = 0;
                    for (bound, cumulative) in buckets {
                        let le = bound.map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {cumulative}",
                            labels(&sample.labels, Some(&le))
                        );
                        count = *cumulative;
                    }
                    let _ = writeln!(out, "{name}_sum{} {sum}", labels(&sample.labels, None));
                    let _ = writeln!(out, "{name}_count{} {count}", labels(&sample.labels, None));
                }
            }
        }
    }
    out
}

fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Int(a), Value::Int(b)) => *a = a.saturating_add(*b),
        (
            Value::Histogram { buckets, sum },
            Value::Histogram {
                buckets: other,
                sum: other_sum,
            },
        ) if buckets.len() == other.len() => {
            for (bucket, extra) in buckets.iter_mut().zip(other) {
                bucket.1 = bucket.1.saturating_add(extra.1);
            }
            *sum += other_sum;
        }
        // Different shapes under one name: keep the first.
        _ => {}
    }
}

fn labels(labels: &[(&'static str, String)], le: Option<&str>) -> String {
    if labels.is_empty() && le.is_none() {
        return String::new();
    }
    let mut out = String::from("{");
    let pairs = labels
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(le.map(|le| ("le", le)));
    for (index, (key, value)) in pairs.enumerate() {
        if index > 0 {
            out.push(',');
        }
        let _ = write!(out, "{key}=\"{}\"", escape_value(value));
    }
    out.push('}');
    out
}

fn escape_value(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(help: &str) -> String {
    help.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_sums_repeats() {
        let registry = Registry::default();
        registry.register_samples(|| vec![("a_total", "A things.", 2), ("b_bytes", "B held.", 7)]);
        registry.register_samples(|| vec![("a_total", "A things.", 3)]);
        let text = registry.render();
        assert!(
            text.starts_with(
                "# HELP a_total A things.\n# TYPE a_total counter\na_total 5\n\
                 # HELP b_bytes B held.\n# TYPE b_bytes gauge\nb_bytes 7\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn labelled_counters_are_shared_and_bounded() {
        let registry = Registry::new(2);
        let first = registry.counter("x_total", "X.", &[("reason", "a")]);
        first.inc();
        registry
            .counter("x_total", "X.", &[("reason", "a")])
            .add_shared(2);
        registry
            .counter("x_total", "X.", &[("reason", "b\"q")])
            .inc();
        registry
            .counter("x_total", "X.", &[("reason", "c")])
            .add_shared(5);
        registry.counter("x_total", "X.", &[("reason", "d")]).inc();
        let text = registry.render();
        assert!(text.contains("x_total{reason=\"a\"} 3\n"), "{text}");
        assert!(text.contains("x_total{reason=\"b\\\"q\"} 1\n"), "{text}");
        assert!(text.contains("x_total{overflow=\"true\"} 6\n"), "{text}");
        assert!(!text.contains("reason=\"c\""), "{text}");
        assert!(
            text.contains("dnsrecall_metrics_label_sets_overflow_total 2\n"),
            "{text}"
        );
        // A kind clash is detached and counted, not rendered twice.
        registry.gauge("x_total", "X.", &[]).set(99);
        assert!(!registry.render().contains(" 99\n"));
        assert!(
            registry
                .render()
                .contains("dnsrecall_metrics_label_sets_overflow_total 3\n")
        );
    }

    #[test]
    fn histograms_render_cumulative_buckets() {
        let registry = Registry::default();
        let h = registry.histogram("w_seconds", "W.", &[("sink", "0")], &[0.1, 1.0]);
        for value in [0.05, 0.5, 0.7, 3.0] {
            h.observe(value);
        }
        assert_eq!(h.count(), 4);
        let text = registry.render();
        assert!(text.contains("# TYPE w_seconds histogram\n"), "{text}");
        assert!(
            text.contains("w_seconds_bucket{sink=\"0\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("w_seconds_bucket{sink=\"0\",le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("w_seconds_bucket{sink=\"0\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("w_seconds_sum{sink=\"0\"} 4.25\n"), "{text}");
        assert!(text.contains("w_seconds_count{sink=\"0\"} 4\n"), "{text}");
    }
}
