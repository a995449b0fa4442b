//! The PyPDNS layout: `/pdns/query` (the `/query` answer at the default URL
//! of the `pypdns` client) and the dribble headers that page and filter
//! every D4 answer.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use dnsrecall_core::Rtype;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::d4::{QueryResponses, answer, query_text};
use crate::{ApiError, AppState, openapi};

/// Largest page a PyPDNS client may ask for.
const MAX_PAGE: usize = 10_000;

/// The route of this module, with its documentation.
pub fn routes() -> OpenApiRouter<AppState> {
    openapi::rest_routes(OpenApiRouter::new(), routes!(pdns_query))
}

//---- documentation ---------------------------------------------------------

/// PyPDNS dribble request headers.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct DribbleHeaders {
    /// Page size (at most 10,000): answer this many records from the
    /// cursor on; `x-dribble-cursor` names the next page.
    #[param(rename = "dribble-paginate-count", minimum = 1, nullable = false)]
    pub count: Option<u64>,
    /// Offset of the page (a previous answer's `x-dribble-cursor`).
    #[param(rename = "dribble-paginate-cursor", nullable = false)]
    pub cursor: Option<u64>,
    /// Only records of this type (an unknown type answers nothing).
    #[param(rename = "dribble-filter-rrtype", example = "AAAA", nullable = false)]
    pub rrtype: Option<String>,
}

//---- dribble ---------------------------------------------------------------

/// Dribble request headers, checked.
pub(crate) struct Dribble {
    /// Records per page; `None`: the whole answer.
    pub page_size: Option<usize>,
    /// Offset of the page.
    pub cursor: usize,
    /// `Some(None)`: a type was asked for that does not exist.
    pub filter: Option<Option<Rtype>>,
}

pub(crate) fn dribble(headers: &HeaderMap) -> Result<Dribble, ApiError> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let page_size = match get("dribble-paginate-count") {
        None => None,
        Some(text) => Some(
            text.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    ApiError::BadRequest(format!("bad dribble-paginate-count {text:?}"))
                })?
                .min(MAX_PAGE),
        ),
    };
    let cursor = match get("dribble-paginate-cursor") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| ApiError::BadRequest(format!("bad dribble-paginate-cursor {text:?}")))?,
    };
    // An unknown type filters everything out (PyPDNS documents an empty
    // answer, not an error).
    let filter = get("dribble-filter-rrtype").map(|text| text.parse::<Rtype>().ok());
    Ok(Dribble {
        page_size,
        cursor,
        filter,
    })
}

//---- routes ----------------------------------------------------------------

/// Records of a name or an address (PyPDNS)
///
/// `/query` at the default URL of the `pypdns` client.
#[utoipa::path(
    get,
    path = "/pdns/query/{q}",
    tag = "PyPDNS",
    params(
        ("q" = String, Path, description = "A name or an address, as for `/query`", example = "www.example.com"),
        DribbleHeaders
    ),
    responses(QueryResponses),
    security(("api_key" = []), ("authorization" = []), ("basic" = []))
)]
async fn pdns_query(
    State(state): State<AppState>,
    q: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    answer(state, query_text(q)?, headers, false).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn dribble_headers() {
        let none = dribble(&HeaderMap::new()).unwrap();
        assert_eq!((none.page_size, none.cursor, none.filter), (None, 0, None));
        let paged = dribble(&headers(&[
            ("dribble-paginate-count", "20000"),
            ("dribble-paginate-cursor", " 7 "),
            ("dribble-filter-rrtype", "aaaa"),
        ]))
        .unwrap();
        assert_eq!(paged.page_size, Some(MAX_PAGE));
        assert_eq!(paged.cursor, 7);
        assert_eq!(paged.filter, Some(Some(Rtype::AAAA)));
        let unknown = dribble(&headers(&[("dribble-filter-rrtype", "NOPE")])).unwrap();
        assert_eq!(unknown.filter, Some(None));
        for bad in [
            ("dribble-paginate-count", "0"),
            ("dribble-paginate-count", "x"),
            ("dribble-paginate-cursor", "-1"),
        ] {
            assert!(matches!(
                dribble(&headers(&[bad])),
                Err(ApiError::BadRequest(_))
            ));
        }
    }
}
