//! The pages, merged in one place, with the headers every page gets.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::map_response_with_state;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::error::PageError;
use crate::startup::AppState;

mod admin;
mod assets;
mod auth;
mod home;
mod mail;
mod orders;
mod tickets;

pub(crate) fn router(state: AppState) -> Router {
    let stripe = state.stripe_publishable_key.is_some();
    Router::new()
        .merge(home::router())
        .merge(auth::router())
        .merge(admin::router())
        .merge(tickets::router())
        .merge(orders::router())
        .merge(mail::router(state.mail_dir.is_some()))
        .route_layer(axum::middleware::from_fn(
            crate::renew::renew_expired_sessions,
        ))
        .with_state(state)
        .merge(assets::router())
        .layer(map_response_with_state(stripe, page_headers))
}

/// A rendered page with `status`.
pub(crate) fn page<T: Template>(status: StatusCode, template: &T) -> Result<Response, PageError> {
    Ok((status, Html(template.render()?)).into_response())
}

/// A 303 to `to`, passing on the cookies an API set (sign in, sign out).
pub(crate) fn redirect_with_cookies(to: &str, api_headers: &HeaderMap) -> Response {
    let mut response = Redirect::to(to).into_response();
    for value in api_headers.get_all(SET_COOKIE) {
        response.headers_mut().append(SET_COOKIE, value.clone());
    }
    response
}

/// Where scripts, frames and connections may go: our own origin only, and
/// Stripe's when payments use Stripe Elements.
fn content_security_policy(stripe: bool) -> &'static str {
    if stripe {
        "default-src 'self'; script-src 'self' https://js.stripe.com; \
         frame-src https://js.stripe.com https://hooks.stripe.com; \
         connect-src 'self' https://api.stripe.com; img-src 'self' data:; \
         style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    } else {
        "default-src 'self'; script-src 'self'; img-src 'self' data:; style-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'self'"
    }
}

/// Security headers on every answer of the web service, and `no-store` on
/// pages: they show who is signed in and what they bought.
async fn page_headers(State(stripe): State<bool>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static(content_security_policy(stripe)),
    );
    headers.insert(
        HeaderName::from_static("x-content-type-options"),
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
