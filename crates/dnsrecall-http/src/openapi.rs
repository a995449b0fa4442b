//! The OpenAPI document of every route, served at `/openapi.json`.
//!
//! Nothing here is written by hand but the frame (title, tags, security
//! schemes): each handler carries a `#[utoipa::path]` annotation, and the
//! routers are built with utoipa-axum's [`OpenApiRouter`], which registers a
//! handler and adds its annotation to the document in one call (`routes!`).
//! So the document is assembled from the same calls that build the router,
//! and [`crate::router`] serves what it built.
//!
//! Streams (`application/x-ndjson`: the D4 answers and DNSDB's SAF) are
//! documented the way OpenAPI 3.2 defines sequential media types while
//! staying a 3.1 document: the `schema` reads the lines as one array, so
//! each line is an item.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

/// Security scheme names, as the handlers' `security(...)` cite them.
pub const API_KEY: &str = "api_key";
pub const AUTHORIZATION: &str = "authorization";
pub const BASIC: &str = "basic";

/// The document's frame; `paths` come from the routers.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "dnsrecall",
        description = "Passive DNS query APIs: D4/CIRCL COF (`/query`, `/fquery`, `/info`), \
            PyPDNS (`/pdns/query`), DNSDB v2 SAF (`/dnsdb/v2/...`) and v1 (`/lookup/...`), \
            flow annotation (`/annotate`), ingest counters (`/metrics`).\n\n\
            Authentication applies only when the server has API keys or users configured \
            (`api.api_keys`, `api.api_keys_file`, `api.dnsdb_keys_file`, `api.users_file`); without them the API is open. \
            D4, PyPDNS and annotate routes answer 401 without a key or user, DNSDB routes (keys only) 403."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "D4", description = "D4/CIRCL passive DNS (COF, draft-dulaunoy-dnsop-passive-dns-cof)"),
        (name = "PyPDNS", description = "The `/query` answers at the default URL of the `pypdns` client, with dribble pagination"),
        (name = "DNSDB v2", description = "Farsight/DomainTools DNSDB API v2: Streaming API Framing (SAF) over NDJSON"),
        (name = "DNSDB v1", description = "The legacy DNSDB layout: bare JSON lines, 404 when nothing is found"),
        (name = "annotate", description = "Batch address-to-names lookups for flow records"),
        (name = "metrics", description = "Ingest counters in the Prometheus text format"),
        (name = "stats", description = "DNS traffic statistics: dnstap-receiver's API and ours under /stats/"),
        (name = "meta", description = "This document")
    )
)]
struct Frame;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-API-Key",
                "One of the configured API keys",
            ))),
        );
        components.add_security_scheme(
            AUTHORIZATION,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "The key itself, or `Bearer KEY` (PyPDNS `auth_token`)",
            ))),
        );
        components.add_security_scheme(
            BASIC,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Any user name with an API key as password (PyPDNS `basic_auth`), \
                         or a user name and password of `api.users_file` (argon2 hashes)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The frame the routers add their paths to.
pub fn frame() -> OpenApi {
    Frame::openapi()
}

/// Registers documented handlers whose last path parameter takes the rest
/// of the path, slashes included: the document names it `{q}`, axum
/// routes it as `{*q}` (OpenAPI has no such parameter; a name with a slash
/// such as RFC 2317's `0/26.2.0.192.in-addr.arpa` must still reach the
/// handler).
pub fn rest_routes<S>(
    router: OpenApiRouter<S>,
    (schemas, paths, method_router): UtoipaMethodRouter<S>,
) -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut documented = OpenApiRouter::new();
    for path in paths.paths.keys() {
        documented = documented.route(&catch_all(path), method_router.clone());
    }
    let openapi = documented.get_openapi_mut();
    openapi.paths = paths;
    openapi
        .components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
    router.merge(documented)
}

/// `/query/{q}` → `/query/{*q}`: the last parameter becomes a catch-all.
fn catch_all(path: &str) -> String {
    match path.rfind('{') {
        Some(at) if path.ends_with('}') => format!("{}{{*{}", &path[..at], &path[at + 1..]),
        _ => path.to_string(),
    }
}

/// The serialized document, handed to [`document`] as an extension.
#[derive(Clone)]
pub struct Document(pub Bytes);

impl Document {
    pub fn new(openapi: &OpenApi) -> Document {
        // Serializing a tree of strings and maps cannot fail.
        Document(Bytes::from(openapi.to_json().unwrap_or_default()))
    }
}

/// This OpenAPI document
///
/// Generated from the code; needs no key.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of every route", body = Object))
)]
pub async fn document(Extension(document): Extension<Document>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.0).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catch_all_turns_the_last_parameter() {
        assert_eq!(catch_all("/query/{q}"), "/query/{*q}");
        assert_eq!(catch_all("/a/{b}/c/{d}"), "/a/{b}/c/{*d}");
        assert_eq!(catch_all("/info"), "/info");
    }
}
