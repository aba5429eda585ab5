//! Request work runs to completion. Each request's handling runs in a task
//! of its own, so that neither a client that goes away (axum then drops the
//! response future) nor the request timeout cancels it half-way: sqlx 0.9.0
//! returns a connection to the pool inside an open transaction when a
//! `begin()` future is dropped while `BEGIN` is in flight, and the next
//! borrower's statements would then run in that transaction.
//!
//! The timeout only stops the waiting: the client gets a 503 with
//! `Retry-After` and the error body while the work finishes in the
//! background (a retry with the same `Idempotency-Key` then gets its result).

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use tower::{Layer, Service};
use tracing::Instrument as _;

use crate::error::ApiError;

/// How long a client waits for an answer by default (`REQUEST_TIMEOUT_SECONDS`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What `Retry-After` says (seconds) when a request timed out.
const RETRY_AFTER_SECONDS: u32 = 1;

/// Runs each request in its own task and answers 503 after `timeout`
/// without cancelling the task.
#[derive(Debug, Clone, Copy)]
pub struct RunToCompletionLayer {
    timeout: Duration,
}

impl RunToCompletionLayer {
    /// Requests answer 503 after `timeout`; their work goes on.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }
}

impl<S> Layer<S> for RunToCompletionLayer {
    type Service = RunToCompletion<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RunToCompletion {
            inner,
            timeout: self.timeout,
        }
    }
}

/// The service [`RunToCompletionLayer`] makes.
#[derive(Debug, Clone)]
pub struct RunToCompletion<S> {
    inner: S,
    timeout: Duration,
}

impl<S> Service<Request<Body>> for RunToCompletion<S>
where
    S: Service<Request<Body>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The clone that was driven to readiness is the one to call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let work = inner.call(request);
        // The request span goes along, so the work's logs keep their request id.
        let task = tokio::spawn(work.instrument(tracing::Span::current()));
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, task).await {
                Ok(Ok(response)) => response,
                // The panic handler sits inside the task, so this is a
                // runtime shutting down (or a panic that escaped it).
                Ok(Err(join_error)) => Ok(ApiError::Internal(
                    anyhow::Error::new(join_error).context("request task ended"),
                )
                .into_response()),
                Err(_) => {
                    tracing::warn!(?timeout, "request timed out; its work goes on");
                    metrics::counter!("http_request_timeouts_total").increment(1);
                    Ok(timed_out())
                }
            }
        })
    }
}

/// 503 with `Retry-After` and the error body.
fn timed_out() -> Response {
    crate::http::error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "The request took too long to answer; it is still being completed. Retry shortly.",
        Some(RETRY_AFTER_SECONDS),
    )
}
