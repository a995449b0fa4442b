//! The status page, `GET /ui/status`: what the store holds (size on disk,
//! records, observations, sensors) and what the inputs do, from the same
//! sources as `/metrics`: every counter with its rate since the previous
//! view of the page, drops and rejects picked out per input.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::html::{self, Theme};
use crate::session::RequestKey;
use crate::{Sample, Ui};

/// Counter values at the previous view, to give rates.
#[derive(Default)]
pub struct Rates {
    last: Mutex<Option<(Instant, HashMap<&'static str, u64>)>>,
}

impl Rates {
    /// Per-second rates of `samples` since the previous call (none the
    /// first time), and the seconds between the two.
    fn update(&self, samples: &[Sample]) -> (HashMap<&'static str, f64>, Option<f64>) {
        let now = Instant::now();
        let current: HashMap<&'static str, u64> = summed(samples)
            .into_iter()
            .map(|(n, _, v)| (n, v))
            .collect();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let mut rates = HashMap::new();
        let mut window = None;
        if let Some((at, previous)) = last.as_ref() {
            let seconds = now.duration_since(*at).as_secs_f64();
            if seconds > 0.0 {
                window = Some(seconds);
                for (name, value) in &current {
                    if let Some(before) = previous.get(name) {
                        rates.insert(*name, value.saturating_sub(*before) as f64 / seconds);
                    }
                }
            }
        }
        *last = Some((now, current));
        (rates, window)
    }
}

/// Samples with repeated names summed (two inputs of one kind), in order.
fn summed(samples: &[Sample]) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::with_capacity(samples.len());
    for &(name, help, value) in samples {
        match out.iter_mut().find(|(n, _, _)| *n == name) {
            Some(existing) => existing.2 = existing.2.saturating_add(value),
            None => out.push((name, help, value)),
        }
    }
    out
}

pub struct Counter {
    pub name: String,
    pub help: String,
    pub value: u64,
    pub rate: String,
    pub drop: bool,
}

pub struct Group {
    pub input: String,
    pub counters: Vec<Counter>,
    pub drops: u64,
}

#[derive(Template)]
#[template(path = "status.html")]
pub(crate) struct StatusPage {
    pub theme: Theme,
    pub logged_in: bool,
    pub disk: String,
    pub records: u64,
    pub observations: u64,
    pub sensors: Vec<(String, u64)>,
    pub retention: String,
    pub ingest_rate: String,
    pub window: String,
    pub groups: Vec<Group>,
    pub sessions_evicted: u64,
    pub error: Option<String>,
}

/// The input (or stage) a metric belongs to: `dnsrecall_dnstap_frames_total`
/// and `dnsrecall_ingest_dnstap_entries_total` → `dnstap`.
fn input_of(name: &str) -> String {
    let bare = name.strip_prefix("dnsrecall_").unwrap_or(name);
    let bare = bare.strip_prefix("ingest_").unwrap_or(bare);
    bare.split('_').next().unwrap_or(name).to_string()
}

fn is_drop(name: &str) -> bool {
    ["drop", "reject", "error", "evict", "lost", "overflow"]
        .iter()
        .any(|word| name.contains(word))
}

/// `GET /ui/status`.
pub(crate) async fn page(
    State(ui): State<Ui>,
    Extension(key): Extension<RequestKey>,
    headers: HeaderMap,
) -> Response {
    let store = ui.state.store.clone();
    let info = tokio::task::spawn_blocking(move || store.info()).await;
    let (info, error) = match info {
        Ok(Ok(info)) => (info, None),
        Ok(Err(error)) => {
            tracing::error!(%error, "store info failed");
            (
                Default::default(),
                Some("the store did not answer".to_string()),
            )
        }
        Err(error) => {
            tracing::error!(%error, "store info task failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let samples: Vec<Sample> = ui
        .state
        .metrics
        .iter()
        .flat_map(|source| source())
        .collect();
    let mut all = samples.clone();
    all.push((
        "dnsrecall_store_observations_total",
        "Observations written to the store.",
        info.observations,
    ));
    let (rates, window) = ui.rates.update(&all);
    let mut groups: Vec<Group> = Vec::new();
    for (name, help, value) in summed(&samples) {
        let input = input_of(name);
        let counter = Counter {
            name: name.to_string(),
            help: help.to_string(),
            value,
            rate: rates
                .get(name)
                .map(|r| format!("{r:.1}/s"))
                .unwrap_or_default(),
            drop: is_drop(name) && name.ends_with("_total"),
        };
        let group = match groups.iter_mut().position(|g| g.input == input) {
            Some(at) => &mut groups[at],
            None => {
                groups.push(Group {
                    input,
                    counters: Vec::new(),
                    drops: 0,
                });
                groups.last_mut().expect("just pushed")
            }
        };
        if counter.drop {
            group.drops = group.drops.saturating_add(counter.value);
        }
        group.counters.push(counter);
    }
    let page = StatusPage {
        theme: Theme::of(&headers),
        logged_in: key.0.is_some() && ui.state.keys.enabled(),
        disk: info
            .disk_bytes
            .map(html::bytes)
            .unwrap_or_else(|| "unknown".into()),
        records: info.records_estimate,
        observations: info.observations,
        sensors: info.sensors,
        retention: info
            .retention_secs
            .map(html::span)
            .unwrap_or_else(|| "none".into()),
        ingest_rate: rates
            .get("dnsrecall_store_observations_total")
            .map(|r| format!("{r:.1} observations/s"))
            .unwrap_or_else(|| "— (reload to measure)".into()),
        window: window.map(|w| format!("{w:.0} s")).unwrap_or_default(),
        groups,
        sessions_evicted: ui.sessions.evicted(),
        error,
    };
    html::render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_come_from_the_previous_view() {
        let rates = Rates::default();
        let (first, window) = rates.update(&[("a_total", "A.", 10)]);
        assert!(first.is_empty());
        assert!(window.is_none());
        std::thread::sleep(std::time::Duration::from_millis(20));
        let (second, window) = rates.update(&[("a_total", "A.", 30)]);
        let rate = second["a_total"];
        let seconds = window.expect("window");
        assert!(
            (rate - 20.0 / seconds).abs() < 1e-6,
            "{rate} over {seconds}"
        );
    }

    #[test]
    fn inputs_and_drops() {
        assert_eq!(input_of("dnsrecall_dnstap_frames_total"), "dnstap");
        assert_eq!(
            input_of("dnsrecall_ingest_capture_messages_total"),
            "capture"
        );
        assert_eq!(input_of("other"), "other");
        assert!(is_drop("dnsrecall_pipeline_dedup_dropped_total"));
        assert!(!is_drop("dnsrecall_pipeline_in_total"));
    }
}
