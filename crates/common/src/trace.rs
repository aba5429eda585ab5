//! Trace context across requests and events, in the W3C `traceparent` format
//! (`00-<trace id>-<parent id>-<flags>`), so one reservation can be followed
//! through every service's logs by its trace id.
//!
//! The HTTP [`middleware`] accepts a request's `traceparent` (or starts a new
//! trace), records the trace id on the request span and makes the context
//! [`current`] for the request's task. [`crate::outbox::enqueue`] stores the
//! current context with the event, the relay sends it as the `traceparent`
//! header, and the listener makes it current again while the handler runs,
//! so the events a handler enqueues carry the same trace id. No exporter is
//! involved: the ids are for logs.

use std::fmt;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// The header a trace context travels in, on HTTP requests and NATS messages.
pub const TRACEPARENT: &str = "traceparent";

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// A position in a trace: the trace id shared by everything caused by one
/// request, and the id of the operation that caused what comes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    parent_id: u64,
    flags: u8,
}

impl TraceContext {
    /// Starts a new trace (sampled flag set).
    pub fn new_root() -> TraceContext {
        TraceContext {
            trace_id: nonzero_u128(),
            parent_id: nonzero_u64(),
            flags: 0x01,
        }
    }

    /// The same trace, with a fresh parent id: what an operation passes on to
    /// the work it causes.
    pub fn child(&self) -> TraceContext {
        TraceContext {
            parent_id: nonzero_u64(),
            ..*self
        }
    }

    /// Parses a `traceparent` value. `None` for anything malformed, for an
    /// all-zero trace or parent id, and for version `ff`, as the W3C
    /// specification asks; a future version's extra fields are ignored.
    pub fn parse(value: &str) -> Option<TraceContext> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace_id = parts.next()?;
        let parent_id = parts.next()?;
        let flags = parts.next()?;
        if version.len() != 2 || version.eq_ignore_ascii_case("ff") {
            return None;
        }
        u8::from_str_radix(version, 16).ok()?;
        if version == "00" && parts.next().is_some() {
            return None;
        }
        if trace_id.len() != 32 || parent_id.len() != 16 || flags.len() != 2 {
            return None;
        }
        let all_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if !all_hex(trace_id) || !all_hex(parent_id) || !all_hex(flags) {
            return None;
        }
        let context = TraceContext {
            trace_id: u128::from_str_radix(trace_id, 16).ok()?,
            parent_id: u64::from_str_radix(parent_id, 16).ok()?,
            flags: u8::from_str_radix(flags, 16).ok()?,
        };
        (context.trace_id != 0 && context.parent_id != 0).then_some(context)
    }

    /// The trace id as 32 lower-case hex digits: what logs show.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The `traceparent` header value (version 00).
    pub fn header(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.parent_id, self.flags
        )
    }
}

fn nonzero_u128() -> u128 {
    // UUID v4 bits are random (bar 6 version/variant bits) and never all zero.
    uuid::Uuid::new_v4().as_u128()
}

fn nonzero_u64() -> u64 {
    let bits = uuid::Uuid::new_v4().as_u64_pair().1;
    if bits == 0 { 1 } else { bits }
}

/// The trace context of the request or event the current task works for.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(|c| *c).ok()
}

/// Runs `work` with `context` as the [`current`] trace context.
pub async fn scope<F: Future>(context: TraceContext, work: F) -> F::Output {
    CURRENT.scope(context, work).await
}

/// Axum middleware: takes the request's `traceparent` or starts a trace,
/// records `trace_id` on the current (request) span, runs the request with
/// the context [`current`], and answers with the `traceparent` the request
/// was served under.
pub async fn middleware(request: Request, next: Next) -> Response {
    let context = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map(|incoming| incoming.child())
        .unwrap_or_else(TraceContext::new_root);
    tracing::Span::current().record("trace_id", context.trace_id());
    let mut response = scope(context, next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&context.header()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_round_trips() {
        let value = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(value).expect("valid");
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.header(), value);
    }

    #[test]
    fn malformed_or_zero_traceparents_are_refused() {
        for value in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(value), None, "{value:?}");
        }
    }

    #[test]
    fn a_later_version_with_extra_fields_is_accepted() {
        let value = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert!(TraceContext::parse(value).is_some());
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_parent() {
        let root = TraceContext::new_root();
        let child = root.child();
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.header(), root.header());
        assert_eq!(TraceContext::parse(&child.header()), Some(child));
    }

    #[tokio::test]
    async fn the_scoped_context_is_current_only_inside_its_scope() {
        let context = TraceContext::new_root();
        assert_eq!(current(), None);
        let inside = scope(context, async { current() }).await;
        assert_eq!(inside, Some(context));
        assert_eq!(current(), None);
    }

    async fn served_under(traceparent: Option<&str>) -> (TraceContext, TraceContext) {
        use tower::ServiceExt as _;
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|| async { current().map(|c| c.header()).unwrap_or_default() }),
            )
            .layer(axum::middleware::from_fn(middleware));
        let mut request = axum::http::Request::get("/");
        if let Some(value) = traceparent {
            request = request.header(TRACEPARENT, value);
        }
        let response = app
            .oneshot(request.body(axum::body::Body::empty()).expect("request"))
            .await
            .expect("response");
        let answered = response
            .headers()
            .get(TRACEPARENT)
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse)
            .expect("a traceparent answer");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        let inside = TraceContext::parse(std::str::from_utf8(&body).expect("utf-8"))
            .expect("the handler saw a context");
        (answered, inside)
    }

    #[tokio::test]
    async fn a_request_continues_the_trace_it_comes_with() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        let (answered, inside) = served_under(Some(incoming)).await;

        assert_eq!(inside.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(answered, inside);
        assert_ne!(inside.header(), incoming, "the request is a new span of it");
    }

    #[tokio::test]
    async fn a_request_without_a_valid_trace_starts_one() {
        let (first, inside) = served_under(None).await;
        let (second, _) = served_under(Some("garbage")).await;

        assert_eq!(first, inside);
        assert_ne!(first.trace_id(), second.trace_id());
    }
}
