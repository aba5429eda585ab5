//! The middleware every service's router gets once, at the top: request
//! metrics, request ids, tracing (spans carry the matched route, never the
//! raw path, which would carry ids), the body limit, panic recovery, cookies,
//! and error-format answers for unknown routes and methods.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use tower::ServiceBuilder;
use tower_cookies::CookieManagerLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::error::ApiError;

/// The largest request body accepted, in bytes. Bigger bodies get a 413.
pub const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a router (one service's, or several merged) with the shared stack.
pub fn finish(router: Router) -> Router {
    router
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(crate::metrics::track_requests))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<_>| {
                            let id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            let route = crate::metrics::route_of(req);
                            tracing::info_span!("request", method = %req.method(), route = %route, request_id = %id, trace_id = tracing::field::Empty)
                        })
                        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
                )
                .layer(axum::middleware::from_fn(crate::trace::middleware))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
                }))
                .layer(DefaultBodyLimit::max(BODY_LIMIT))
                .layer(CookieManagerLayer::new()),
        )
}

/// `next` if it is a path on this site, else the home page: a link that
/// sends people back somewhere (after signing in, after a refresh) must not
/// be a way to send them to another site.
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    if local { next } else { "/" }
}
