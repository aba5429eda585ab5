//! Keeps a visitor signed in while the site stays open. An access token
//! lives 15 minutes; its cookie lives as long as the session. When a page is
//! asked for (GET) with an access token that has expired, the browser is
//! first sent to renew it (`/api/users/refresh`, the only path its refresh
//! cookie goes to), which comes straight back to the page with fresh cookies,
//! or goes to the sign-in page when the session is over. The token is only
//! read here to see its `exp`, never trusted: the APIs check it.

use axum::extract::Request;
use axum::http::Method;
use axum::http::header::COOKIE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::refresh_url;

/// Sends a GET for a page with an expired access token to renew it first.
pub(crate) async fn renew_expired_sessions(request: Request, next: Next) -> Response {
    if request.method() == Method::GET
        && access_expiry(&request).is_some_and(|exp| exp < chrono::Utc::now().timestamp())
    {
        let here = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        return Redirect::to(&refresh_url(&here)).into_response();
    }
    next.run(request).await
}

/// The `exp` of the request's access token, if it has one that reads as a JWT.
fn access_expiry(request: &Request) -> Option<i64> {
    let token = request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| {
            *name == common::session::COOKIE_NAME || *name == common::session::SECURE_COOKIE_NAME
        })
        .map(|(_, value)| value)?;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    claims["exp"].as_i64()
}
