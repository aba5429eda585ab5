//! `/static/...`: the stylesheet, the scripts and the icon, compiled into
//! the binary so that the service needs no files at run time.

use axum::Router;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const STYLE: &str = include_str!("../../static/style.css");
const COUNTDOWN: &str = include_str!("../../static/countdown.js");
const STRIPE_PAY: &str = include_str!("../../static/stripe-pay.js");
const ICON: &str = include_str!("../../static/icon.svg");

pub(super) fn router() -> Router {
    Router::new()
        .route(
            "/static/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route(
            "/static/countdown.js",
            get(|| async { asset("text/javascript; charset=utf-8", COUNTDOWN) }),
        )
        .route(
            "/static/stripe-pay.js",
            get(|| async { asset("text/javascript; charset=utf-8", STRIPE_PAY) }),
        )
        .route(
            "/static/icon.svg",
            get(|| async { asset("image/svg+xml", ICON) }),
        )
}

/// The files change only with a new release; an hour of caching is a fair
/// trade between fewer requests and seeing a new release soon.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}
