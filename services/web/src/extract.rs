//! Request extractors of the pages. Their rejections are pages too, never
//! the APIs' JSON errors.

use std::convert::Infallible;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_TYPE, COOKIE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::PageError;

/// Whoever is browsing, as the APIs will see them: the browser's cookies,
/// forwarded untouched on every API call made for this request, and its
/// address, appended to `X-Forwarded-For` as a proxy does (the APIs believe
/// it when the web client's pods are among their trusted proxies).
#[derive(Debug, Clone, Default)]
pub(crate) struct Visitor {
    cookie: Option<HeaderValue>,
    forwarded_for: Option<HeaderValue>,
}

impl Visitor {
    pub(crate) fn cookie(&self) -> Option<&HeaderValue> {
        self.cookie.as_ref()
    }

    pub(crate) fn forwarded_for(&self) -> Option<&HeaderValue> {
        self.forwarded_for.as_ref()
    }
}

/// The request's `X-Forwarded-For` hops with the peer's address appended.
fn forwarded_for(parts: &Parts) -> Option<HeaderValue> {
    let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
    let mut hops: Vec<&str> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let peer = peer.ip().to_canonical().to_string();
    hops.push(&peer);
    HeaderValue::from_str(&hops.join(", ")).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // HTTP/2 may split cookies over several headers; the APIs expect one.
        let values: Vec<&str> = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let cookie = if values.is_empty() {
            None
        } else {
            HeaderValue::from_str(&values.join("; ")).ok()
        };
        Ok(Self {
            cookie,
            forwarded_for: forwarded_for(parts),
        })
    }
}

/// A form body (`application/x-www-form-urlencoded`), as browsers post it.
#[derive(Debug, Clone)]
pub(crate) struct Form<T>(pub(crate) T);

impl<T, S> FromRequest<S> for Form<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| {
                essence
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(PageError::BadForm);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| PageError::BadForm)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|_| PageError::BadForm)
    }
}

/// The `{id}` of a page's path. Anything but a UUID names nothing: 404.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageId(pub(crate) Uuid);

impl<S: Send + Sync> FromRequestParts<S> for PageId {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::NotFound)?;
        Uuid::parse_str(&raw)
            .map(PageId)
            .map_err(|_| PageError::NotFound)
    }
}
