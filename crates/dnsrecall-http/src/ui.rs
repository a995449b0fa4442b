//! The web UI (`dnsrecall-ui`), mounted in [`router`](crate::router): its
//! state built from [`AppState`], with the same keys, store and metrics as
//! the APIs, and the API router itself for the UI's exports.

use axum::Router;
use axum::http::HeaderMap;

use crate::{ApiKeys, AppState};

impl dnsrecall_ui::Keys for ApiKeys {
    fn enabled(&self) -> bool {
        ApiKeys::enabled(self)
    }
    fn accepts(&self, key: &str) -> bool {
        ApiKeys::accepts(self, key)
    }
    fn authorizes(&self, headers: &HeaderMap) -> bool {
        ApiKeys::authorizes(self, headers)
    }
}

/// `api` (the API routes) with the UI's routes merged in; the UI asks
/// `api` itself for its JSON exports.
pub(crate) fn mount(state: &AppState, api: Router<AppState>) -> Router<AppState> {
    let ui = dnsrecall_ui::router(dnsrecall_ui::UiState {
        store: state.store.clone(),
        keys: std::sync::Arc::new((*state.keys).clone()),
        metrics: vec![registry_samples(state.metrics.clone())],
        api: api.clone().with_state(state.clone()),
        max_results: state.config.dnsdb_max_results,
        origin: state.config.origin.clone(),
    });
    api.merge(ui)
}

/// The status page's view of the metrics registry: every counter and gauge
/// series as (name, help, value); the page sums a name's label sets.
fn registry_samples(
    registry: std::sync::Arc<dnsrecall_metrics::Registry>,
) -> dnsrecall_ui::MetricsSource {
    std::sync::Arc::new(move || {
        registry
            .gather()
            .into_iter()
            .filter_map(|sample| match sample.value {
                dnsrecall_metrics::Value::Int(value) => Some((sample.name, sample.help, value)),
                dnsrecall_metrics::Value::Histogram { .. } => None,
            })
            .collect()
    })
}
