//! The middleware every service's router gets once, at the top: request
//! metrics, request ids, tracing (spans carry the matched route, never the
//! raw path, which would carry ids), cross-origin protection, the body
//! limit, panic recovery, cookies, error-format answers for unknown routes
//! and methods, and running each request to completion (see
//! [`crate::completion`]) with a timeout.

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_cookies::CookieManagerLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::csrf::{CsrfLayer, ProtectionError};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::completion::RunToCompletionLayer;
use crate::error::ApiError;

/// The largest request body accepted, in bytes. Bigger bodies get a 413.
pub const BODY_LIMIT: usize = 64 * 1024;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The one state-changing route that takes cross-site requests: Stripe's
/// webhook, which posts from Stripe's servers and is authenticated by its
/// signature instead.
pub const CROSS_ORIGIN_EXEMPT: &str = "/api/payments/webhook";

/// Refuses state-changing requests (anything but GET, HEAD and OPTIONS)
/// that a browser marks as coming from another origin: `Sec-Fetch-Site`
/// other than `same-origin` or `none` (a sibling such as
/// staging.buytickets.dev is `same-site`: refused too), or, from browsers
/// without it, an `Origin` whose host and port are not the request's
/// `Host`. Requests with neither header (curl, the services calling each
/// other) pass. The answer is a 403 in the error format.
pub fn cross_origin_protection() -> CsrfLayer<fn(ProtectionError) -> axum::response::Response> {
    CsrfLayer::new()
        .with_insecure_bypass(|_method, uri| uri.path() == CROSS_ORIGIN_EXEMPT)
        .with_rejection_response(refuse_cross_origin as fn(_) -> _)
}

fn refuse_cross_origin(reason: ProtectionError) -> axum::response::Response {
    tracing::info!(%reason, "cross-origin request refused");
    ApiError::CrossOrigin.into_response()
}

/// The page a browser navigating to a refused form post sees instead of
/// the JSON error (a form post asks for `text/html` first; API clients do not).
const CROSS_ORIGIN_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Request refused · buytickets</title></head><body><h1>Request refused</h1>\
<p>This form was sent from another site, so it was not carried out.</p>\
<p><a href=\"/\">Go to buytickets</a></p></body></html>";

/// Turns a cross-origin refusal into an HTML page for browsers navigating
/// (`Accept` starting with `text/html`); the status stays 403.
async fn cross_origin_page(
    request: Request<axum::body::Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let wants_html = request
        .headers()
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.trim_start().starts_with("text/html"));
    let response = next.run(request).await;
    if wants_html && response.extensions().get::<ProtectionError>().is_some() {
        return (
            axum::http::StatusCode::FORBIDDEN,
            axum::response::Html(CROSS_ORIGIN_PAGE),
        )
            .into_response();
    }
    response
}

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
                .layer(axum::middleware::from_fn(cross_origin_page))
                .layer(cross_origin_protection())
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
