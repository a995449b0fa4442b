//! The Farsight/DomainTools DNSDB API (`reference/dnsdb.md` §1): v2 under
//! `/dnsdb/v2` with SAF framing, and the legacy v1 layout under `/lookup`.
//!
//! * Paths are split on `/` first, then each segment is percent-decoded
//!   (clients escape `*`, `:`, `/` and `,` inside values); what a path
//!   means is `dnsrecall_query::dnsdb`'s grammar.
//! * Answers stream (`saf`): the store scan runs on the blocking pool and
//!   feeds a bounded channel of encoded lines, so memory does not grow with
//!   the answer and `{"cond":"begin"}` goes out before the scan starts.
//! * Keys come in `X-API-Key`; a missing or wrong key is 403 (DNSDB's
//!   convention). Besides `api.api_keys`, `api.dnsdb_keys_file` holds
//!   SHA-256 digests of keys with optional quotas (`keys`: `quota=N`
//!   lookups per UTC day, `burst=N/SECONDS`), reloaded when the file
//!   changes. Quotas are counted in the shared [`crate::quota`] ledger,
//!   whose daily counters are saved to a state file (`serve` writes it on a
//!   timer and at shutdown), so a restart does not reset them.
//! * We store aggregated records only, so `aggr=false` is accepted and
//!   answers with the aggregated rows.
//!
//! `routes.rs` holds the documented handlers; a new DNSDB path
//! is one more line of its `lookups!` table.

mod keys;
mod routes;
mod saf;

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use dnsrecall_core::store::StoreError;
use dnsrecall_query::QueryError;
use dnsrecall_query::dnsdb::{Params, now, parse_params};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

pub use keys::{Limits, Quota, RateLimit, RateLimitAnswer, parse_keys_file};
pub use routes::{
    DnsdbErrors, LookupAnswer, LookupQuery, Ping, SummarizeAnswer, SummarizeQuery, V1Answer,
};
pub use saf::{
    LookupLine, ObjOut, RdataOut, SafCond, SafCondition, SummarizeLine, SummaryOut, Time,
};

use crate::AppState;
use keys::KeyRegistry;

//---- Dnsdb -----------------------------------------------------------------

/// What the DNSDB handlers share: the application state plus the key file
/// and the quota counters.
#[derive(Clone)]
struct Dnsdb {
    app: AppState,
    keys: Arc<KeyRegistry>,
}

/// The DNSDB routes, with their own authentication (403, quotas), each
/// with its documentation.
pub fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    let dnsdb = Dnsdb {
        app: state.clone(),
        keys: Arc::new(KeyRegistry::new(state.config.dnsdb_keys_file.clone())),
    };
    routes::router().with_state(dnsdb)
}

impl Dnsdb {
    /// The query parameters, checked against the server's limits.
    fn params(&self, raw: &HashMap<String, String>) -> Result<Params, Failure> {
        let params = parse_params(raw, self.app.config.dnsdb_max_results, now())?;
        if params.offset > self.app.config.dnsdb_offset_max {
            return Err(Failure(
                StatusCode::RANGE_NOT_SATISFIABLE,
                format!(
                    "offset beyond offset_max ({})",
                    self.app.config.dnsdb_offset_max
                ),
            ));
        }
        Ok(params)
    }
}

//---- Failure ---------------------------------------------------------------

/// A request failure with its DNSDB status code: a short text body,
/// `Error: ...`.
#[derive(Debug)]
struct Failure(StatusCode, String);

impl From<QueryError> for Failure {
    /// An unknown lookup kind is DNSDB's 404, another unreadable query a
    /// 400, a lookup the store's backend cannot answer a 501 naming the
    /// backend that can, a store failure a 500.
    fn from(error: QueryError) -> Failure {
        let status = match &error {
            QueryError::UnknownLookup => StatusCode::NOT_FOUND,
            QueryError::Store(StoreError::Unsupported { .. }) => StatusCode::NOT_IMPLEMENTED,
            QueryError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(%error, "DNSDB request failed");
            return Failure(status, "internal error".into());
        }
        Failure(status, error.to_string())
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        text(self.0, &format!("Error: {}", self.1))
    }
}

fn text(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn json(value: &impl Serialize) -> Response {
    let body = serde_json::to_string(value).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

#[cfg(test)]
mod tests {
    use dnsrecall_core::store::StoreError;
    use dnsrecall_query::dnsdb::Lookup;

    use super::*;

    #[test]
    fn query_errors_become_dnsdb_statuses() {
        let failure = |path: &str| Failure::from(Lookup::from_path(path).unwrap_err());
        let unknown = failure("rdata/bogus/x");
        assert_eq!(unknown.0, StatusCode::NOT_FOUND);
        assert_eq!(unknown.1, "unknown path");
        let bad = failure("rrset/name/example.com/BOGUS");
        assert_eq!(bad.0, StatusCode::BAD_REQUEST);
        assert_eq!(bad.1, "unknown rrtype \"BOGUS\"");
        let unsupported = Failure::from(QueryError::Store(StoreError::Unsupported {
            backend: "redis",
            lookup: "wildcard name lookups",
            alternative: "rocksdb",
        }));
        assert_eq!(unsupported.0, StatusCode::NOT_IMPLEMENTED);
        assert!(unsupported.1.contains("rocksdb"), "{}", unsupported.1);
        let store = Failure::from(QueryError::Store(StoreError::Engine("secret".into())));
        assert_eq!(store.0, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(store.1, "internal error", "store details stay in the log");
    }
}
