//! `Idempotency-Key` on POST requests, with Stripe's semantics, so that a
//! client can retry a request whose answer it lost without doing it twice:
//!
//! - the first request with a key runs, and its response (status, headers
//!   including `Set-Cookie`, body) is stored with the request's fingerprint;
//! - a retry with the same key and the same body gets the stored response
//!   again, marked `Idempotent-Replayed: true`, and runs nothing;
//! - the same key with a different body is a 422; a key whose first request
//!   is still running is a 409 with `Retry-After` (after
//!   [`IN_FLIGHT_TIMEOUT`] a retry takes the key over: its process died);
//! - 5xx responses are not stored (unlike Stripe's, which stores them):
//!   here a 5xx means the work's transaction was rolled back or never ran,
//!   so a retry should run again;
//! - keys are scoped to the signed-in user (or, anonymous, the client's
//!   address), the method and the path, and kept [`KEY_TTL`]; an hourly
//!   task deletes older ones.
//!
//! The keys live in each service's own database (`idempotency_keys`, a
//! shared migration), in the same place as the work they protect. Requests
//! without the header are untouched.

use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt as _;
use serde_json::Value;
use sha2_legacy::{Digest as _, Sha256};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tower_cookies::{CookieManagerLayer, Cookies};

use crate::client_ip::ClientIpSettings;
use crate::error::ApiError;
use crate::lifecycle::Lifecycle;
use crate::session::{COOKIE_NAME, Sessions};

/// The request header carrying the key.
pub const KEY_HEADER: &str = "idempotency-key";

/// The response header set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// How long a key is remembered.
pub const KEY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest key accepted (Stripe's limit).
const MAX_KEY_LENGTH: usize = 255;

/// The largest response stored for replay.
const MAX_STORED_RESPONSE: usize = 1024 * 1024;

/// How long a key may stay in flight before a retry may take it over: its
/// first request's process died before it could store the answer (longer
/// than any request runs: the request timeout is 30 s by default).
pub const IN_FLIGHT_TIMEOUT: Duration = Duration::from_secs(120);

/// How often old keys are deleted.
const CLEANUP_INTERVAL: Duration = Duration::from_secs(60 * 60);

/// Response headers never stored: they belong to the one response.
const NOT_STORED: [HeaderName; 4] = [
    header::DATE,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::CONNECTION,
];

/// The idempotency keys of one service: its database, and its sessions to
/// tell whose key it is.
#[derive(Clone)]
pub struct Idempotency {
    pool: PgPool,
    sessions: Sessions,
    client_ip: ClientIpSettings,
}

impl Idempotency {
    /// Keys stored in `pool`; users recognised through `sessions`; an
    /// anonymous client known by its peer address (see
    /// [`Idempotency::with_client_ip`]).
    pub fn new(pool: PgPool, sessions: Sessions) -> Self {
        Self {
            pool,
            sessions,
            client_ip: ClientIpSettings::default(),
        }
    }

    /// Finds an anonymous client's address as `client_ip` says (a forwarded
    /// header believed only from trusted proxies), as the rate limits do.
    pub fn with_client_ip(mut self, client_ip: ClientIpSettings) -> Self {
        self.client_ip = client_ip;
        self
    }

    /// `router` with `Idempotency-Key` honoured on its POST routes. The
    /// routes get a cookie jar of their own, so that the cookies a handler
    /// sets are part of the stored response.
    pub fn protect<S>(self, router: Router<S>) -> Router<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        router
            .layer(CookieManagerLayer::new())
            .layer(axum::middleware::from_fn_with_state(self, middleware))
    }
}

/// Deletes keys older than [`KEY_TTL`] every hour, until shutdown.
pub fn spawn_cleanup(lifecycle: &Lifecycle, pool: PgPool) {
    lifecycle.spawn(move |shutdown| cleanup(pool, shutdown));
}

async fn cleanup(pool: PgPool, shutdown: CancellationToken) {
    loop {
        match delete_expired(&pool).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "could not delete expired idempotency keys"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(CLEANUP_INTERVAL) => {}
        }
    }
}

/// Deletes the keys older than [`KEY_TTL`]; returns how many.
pub async fn delete_expired(pool: &PgPool) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)",
    )
    .bind(KEY_TTL.as_secs_f64())
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

async fn middleware(State(keys): State<Idempotency>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !request.headers().contains_key(KEY_HEADER) {
        return next.run(request).await;
    }
    keys.handle(request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// Which stored request a key names.
struct Slot {
    scope: String,
    method: String,
    path: String,
    key: String,
}

/// What the key's row says when this request did not claim it.
enum Existing {
    InFlight,
    Done {
        status: i16,
        headers: Value,
        body: Vec<u8>,
    },
}

impl Idempotency {
    async fn handle(&self, request: Request, next: Next) -> Result<Response, ApiError> {
        let key = request
            .headers()
            .get(KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|k| {
                !k.is_empty()
                    && k.len() <= MAX_KEY_LENGTH
                    && k.bytes().all(|b| b.is_ascii_graphic())
            })
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters"
                ))
            })?
            .to_string();
        let slot = Slot {
            scope: self.scope_of(&request),
            method: request.method().to_string(),
            path: request.uri().path().to_string(),
            key,
        };
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, crate::http::BODY_LIMIT)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let fingerprint = fingerprint(&body);

        // A row deleted between the claim and the read (a 5xx, the cleanup)
        // is claimed again.
        for _ in 0..3 {
            if self.claim(&slot, &fingerprint).await? {
                let request = Request::from_parts(parts, Body::from(body));
                return Ok(self.run(&slot, &fingerprint, request, next).await);
            }
            match self.existing(&slot, &fingerprint).await? {
                None => continue,
                Some(Err(Mismatch)) => {
                    return Ok(crate::http::error_response(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "This Idempotency-Key was already used with a different request",
                        None,
                    ));
                }
                Some(Ok(Existing::InFlight)) => return Ok(in_flight()),
                Some(Ok(Existing::Done {
                    status,
                    headers,
                    body,
                })) => return Ok(replay(status, &headers, body)),
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!(
            "an idempotency key kept disappearing"
        )))
    }

    /// `user:<id>` for a signed-in user; `ip:<address>` otherwise, the
    /// client's address as [`ClientIpSettings::resolve`] finds it.
    fn scope_of(&self, request: &Request) -> String {
        let user = request
            .extensions()
            .get::<Cookies>()
            .and_then(|cookies| cookies.get(COOKIE_NAME))
            .and_then(|cookie| self.sessions.verify(cookie.value()));
        if let Some(user) = user {
            return format!("user:{}", user.id);
        }
        let client = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| self.client_ip.resolve(peer.ip(), request.headers()));
        format!("ip:{}", client.map(|ip| ip.to_string()).unwrap_or_default())
    }

    /// Takes the key for this request: true when it was free, held by a
    /// request older than [`KEY_TTL`] (an expired key is new again), or in
    /// flight for longer than [`IN_FLIGHT_TIMEOUT`] (its process died).
    async fn claim(&self, slot: &Slot, fingerprint: &[u8]) -> Result<bool, ApiError> {
        let claimed: Option<bool> = sqlx::query_scalar(
            "INSERT INTO idempotency_keys (scope, method, path, key, request_hash) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (scope, method, path, key) DO UPDATE \
               SET request_hash = EXCLUDED.request_hash, status = NULL, headers = NULL, \
                   body = NULL, created_at = now() \
               WHERE idempotency_keys.created_at < now() - make_interval(secs => $6) \
                  OR (idempotency_keys.status IS NULL \
                      AND idempotency_keys.created_at < now() - make_interval(secs => $7)) \
             RETURNING true",
        )
        .bind(&slot.scope)
        .bind(&slot.method)
        .bind(&slot.path)
        .bind(&slot.key)
        .bind(fingerprint)
        .bind(KEY_TTL.as_secs_f64())
        .bind(IN_FLIGHT_TIMEOUT.as_secs_f64())
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("claiming an idempotency key"))
        })?;
        Ok(claimed.is_some())
    }

    async fn existing(
        &self,
        slot: &Slot,
        fingerprint: &[u8],
    ) -> Result<Option<Result<Existing, Mismatch>>, ApiError> {
        type Row = (Vec<u8>, Option<i16>, Option<Value>, Option<Vec<u8>>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT request_hash, status, headers, body FROM idempotency_keys \
             WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4",
        )
        .bind(&slot.scope)
        .bind(&slot.method)
        .bind(&slot.path)
        .bind(&slot.key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| {
            ApiError::Internal(anyhow::Error::new(e).context("reading an idempotency key"))
        })?;
        Ok(row.map(|(hash, status, headers, body)| {
            if hash != fingerprint {
                return Err(Mismatch);
            }
            Ok(match status {
                None => Existing::InFlight,
                Some(status) => Existing::Done {
                    status,
                    headers: headers.unwrap_or(Value::Null),
                    body: body.unwrap_or_default(),
                },
            })
        }))
    }

    /// Runs the request and stores its response (or frees the key after a
    /// 5xx, or when the response cannot be stored).
    async fn run(&self, slot: &Slot, fingerprint: &[u8], request: Request, next: Next) -> Response {
        let response = match AssertUnwindSafe(next.run(request)).catch_unwind().await {
            Ok(response) => response,
            Err(panic) => {
                self.release(slot).await;
                std::panic::resume_unwind(panic);
            }
        };
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_STORED_RESPONSE).await {
            Ok(body) => body,
            Err(e) => {
                self.release(slot).await;
                return ApiError::Internal(anyhow::anyhow!("reading a response to store: {e}"))
                    .into_response();
            }
        };
        if parts.status.is_server_error() {
            self.release(slot).await;
        } else if let Err(e) = self
            .store(slot, fingerprint, &parts.headers, parts.status, &body)
            .await
        {
            tracing::error!(error = %e, "could not store an idempotent response; the key is freed");
            self.release(slot).await;
        }
        Response::from_parts(parts, Body::from(body))
    }

    async fn store(
        &self,
        slot: &Slot,
        fingerprint: &[u8],
        headers: &HeaderMap,
        status: StatusCode,
        body: &Bytes,
    ) -> Result<(), sqlx::Error> {
        let stored: Vec<(String, String)> = headers
            .iter()
            .filter(|(name, _)| !NOT_STORED.contains(name))
            .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
            .collect();
        sqlx::query(
            "UPDATE idempotency_keys SET status = $5, headers = $6, body = $7 \
             WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND request_hash = $8",
        )
        .bind(&slot.scope)
        .bind(&slot.method)
        .bind(&slot.path)
        .bind(&slot.key)
        .bind(i16::try_from(status.as_u16()).unwrap_or(i16::MAX))
        .bind(serde_json::json!(stored))
        .bind(body.as_ref())
        .bind(fingerprint)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Frees the key, so that a retry runs the request again.
    async fn release(&self, slot: &Slot) {
        let released = sqlx::query(
            "DELETE FROM idempotency_keys \
             WHERE scope = $1 AND method = $2 AND path = $3 AND key = $4 AND status IS NULL",
        )
        .bind(&slot.scope)
        .bind(&slot.method)
        .bind(&slot.path)
        .bind(&slot.key)
        .execute(&self.pool)
        .await;
        if let Err(e) = released {
            tracing::error!(error = %e, "could not free an idempotency key; retries get 409 until it expires");
        }
    }
}

/// The same key was used for another request.
struct Mismatch;

/// SHA-256 of the body; of its canonical form (keys sorted, no spaces) when
/// it is JSON, so that the same request serialised differently matches.
fn fingerprint(body: &[u8]) -> Vec<u8> {
    let canonical = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|value| serde_json::to_vec(&canonical(value)).ok());
    Sha256::digest(canonical.as_deref().unwrap_or(body)).to_vec()
}

fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// 409: the key's first request is still running.
fn in_flight() -> Response {
    crate::http::error_response(
        StatusCode::CONFLICT,
        "A request with this Idempotency-Key is still being processed; retry shortly",
        Some(1),
    )
}

/// The stored response again, marked as replayed.
fn replay(status: i16, headers: &Value, body: Vec<u8>) -> Response {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let pairs = headers.as_array().map(Vec::as_slice).unwrap_or_default();
    for pair in pairs {
        let (Some(name), Some(value)) = (pair[0].as_str(), pair[1].as_str()) else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().append(name, value);
        }
    }
    response
        .headers_mut()
        .insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_json_written_differently_has_one_fingerprint() {
        assert_eq!(
            fingerprint(br#"{"a":1,"b":{"d":2,"c":[1,2]}}"#),
            fingerprint(b"{ \"b\": {\"c\": [1, 2], \"d\": 2}, \"a\": 1 }")
        );
        assert_ne!(fingerprint(br#"{"a":1}"#), fingerprint(br#"{"a":2}"#));
        assert_ne!(fingerprint(b"not json"), fingerprint(b"not json!"));
    }
}
