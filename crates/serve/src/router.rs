//! The routes, and what every request passes through: size limits and security headers.

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http_error::HttpError;
use crate::pages;
use crate::state::Shared;

/// Longest query string accepted (a steering prompt or a "what fires" text fits well).
pub const MAX_QUERY_BYTES: usize = 8 * 1024;
/// No route takes a body; anything larger than this is refused before it is read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Pages may use inline styles and nothing from anywhere else.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(pages::index::page))
        .route("/d/{name}", get(pages::dictionary::page))
        .route("/d/{name}/search", get(pages::search::page))
        .route("/d/{name}/jump", get(pages::dictionary::jump))
        .route("/d/{name}/f/{feature}", get(pages::feature::page))
        .route(
            "/d/{name}/f/{feature}/ablation/{example}",
            get(pages::ablation::page),
        )
        .route("/fires", get(pages::fires::page))
        .route("/steer", get(pages::steer::page))
        .route("/api/dictionaries", get(pages::api::dictionaries))
        .route("/api/d/{name}/f/{feature}", get(pages::api::feature))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(guard))
        .with_state(state)
}

async fn not_found() -> HttpError {
    HttpError::not_found("no such page")
}

async fn guard(request: Request, next: Next) -> Response {
    let query_len = request.uri().query().map_or(0, str::len);
    if query_len > MAX_QUERY_BYTES {
        return HttpError::new(
            StatusCode::URI_TOO_LONG,
            format!("the query string is {query_len} bytes; the limit is {MAX_QUERY_BYTES}"),
        )
        .into_response();
    }
    let body_len = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    if body_len > MAX_BODY_BYTES as u64 {
        return HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is {body_len} bytes; the limit is {MAX_BODY_BYTES}"),
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}
