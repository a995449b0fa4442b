//! `GET /metrics`: the process's metrics registry
//! ([`dnsrecall_metrics::Registry`]: ingest pipeline, inputs, outputs,
//! store writer) rendered in the Prometheus text format (version 0.0.4) at
//! each scrape. This module only renders. Behind the same API keys as
//! `/query`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::d4::{Timeout, Unauthorized};

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
    let mut text = state.metrics.render();
    text.push_str(&crate::stats::metrics_text(stats.as_deref().map(|s| &**s)));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
