//! The middleware every service's router gets once, at the top: request
//! metrics, request ids, tracing (spans carry the matched route, never the
//! raw path, which would carry ids), the body limit, panic recovery, cookies,
//! error-format answers for unknown routes and methods, and running each
//! request to completion (see [`crate::completion`]) with a timeout.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_cookies::CookieManagerLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::completion::RunToCompletionLayer;
use crate::error::ApiError;

/// The largest request body accepted, in bytes. Bigger bodies get a 413.
pub const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a router (one service's, or several merged) with the shared stack
/// and the default request timeout.
pub fn finish(router: Router) -> Router {
    finish_with_timeout(router, crate::completion::DEFAULT_REQUEST_TIMEOUT)
}

/// [`finish`], answering 503 after `timeout` (the work goes on).
pub fn finish_with_timeout(router: Router, timeout: Duration) -> Router {
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
                // Everything inside runs in the request's own task: the
                // handlers, and the cookies and panic handling around them.
                .layer(RunToCompletionLayer::new(timeout))
                .layer(axum::middleware::from_fn(crate::trace::middleware))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::Internal(anyhow::anyhow!("a request handler panicked")).into_response()
                }))
                .layer(DefaultBodyLimit::max(BODY_LIMIT))
                .layer(CookieManagerLayer::new()),
        )
}

/// An error response in the API's format (`{"errors": [{"message"}]}`)
/// with `status`, and `Retry-After: <seconds>` when given: for the answers
/// the shared middleware gives itself.
pub fn error_response(status: StatusCode, message: &str, retry_after: Option<u32>) -> Response {
    let body = serde_json::json!({"errors": [{"message": message}]});
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
