//! `GET /metrics`: the process's counters in the Prometheus text format
//! (version 0.0.4), read from the sources `serve` registers (ingest
//! pipeline, dnstap inputs, capture) at each scrape. Behind the same API
//! keys as `/query`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::d4::{Timeout, Unauthorized};

/// One sample: metric name (counters end in `_total`), help text, value.
pub type Sample = (&'static str, &'static str, u64);

/// A source of samples, called at each scrape.
pub type MetricsSource = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// The `/metrics` route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Counters of the ingest pipeline and inputs
///
/// Prometheus text format: filters, bailiwick verification and the
/// de-duplication cache (in, out, dropped by reason, hits, evictions,
/// flushes, entries and bytes held), dnstap inputs and capture counters.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String,
            content_type = "text/plain; version=0.0.4",
            example = "# HELP dnsrecall_pipeline_dedup_hits_total Observations merged into a cached entry.\n# TYPE dnsrecall_pipeline_dedup_hits_total counter\ndnsrecall_pipeline_dedup_hits_total 42\n"),
        (status = 401, response = inline(Unauthorized)),
        (status = 503, response = inline(Timeout))
    ),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn metrics(
    State(state): State<AppState>,
    stats: Option<axum::Extension<Arc<dnsrecall_stats::Stats>>>,
) -> Response {
    let samples: Vec<Sample> = state.metrics.iter().flat_map(|source| source()).collect();
    let mut text = render(&samples);
    text.push_str(&crate::stats::metrics_text(stats.as_deref().map(|s| &**s)));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// The exposition text; a name seen twice (two sources of the same kind)
/// is written once with the values summed.
pub fn render(samples: &[Sample]) -> String {
    let mut merged: Vec<Sample> = Vec::with_capacity(samples.len());
    for &(name, help, value) in samples {
        match merged.iter_mut().find(|(n, _, _)| *n == name) {
            Some(existing) => existing.2 = existing.2.saturating_add(value),
            None => merged.push((name, help, value)),
        }
    }
    let mut out = String::with_capacity(merged.len() * 96);
    for (name, help, value) in merged {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges_and_sums_repeats() {
        let text = render(&[
            ("a_total", "A things.", 2),
            ("b_bytes", "B bytes held.", 7),
            ("a_total", "A things.", 3),
        ]);
        assert_eq!(
            text,
            "# HELP a_total A things.\n# TYPE a_total counter\na_total 5\n\
             # HELP b_bytes B bytes held.\n# TYPE b_bytes gauge\nb_bytes 7\n"
        );
    }
}
