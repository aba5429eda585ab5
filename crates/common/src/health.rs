//! `GET /healthz` (the process is alive) and `GET /readyz` (it can serve
//! requests), for Kubernetes probes, and `GET /metrics` for Prometheus:
//! the routes every service's app gets once, whatever its API.
//!
//! Readiness has two kinds of checks. A *required* one (a service's own
//! database) failing makes `/readyz` 503, so Kubernetes stops sending the
//! pod requests it cannot serve. A *degrading* one (NATS, which the outbox
//! rides out; the APIs behind the web pages) failing leaves `/readyz` 200
//! with `"status": "degraded"`: pulling every pod out of the load balancer
//! would turn a partial outage into a whole one. Every check's outcome is
//! also the gauge `dependency_up{name}` (1 up, 0 down).

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use futures::future::BoxFuture;
use serde_json::{Map, Value, json};
use sqlx::PgPool;

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// How long one readiness check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether a failing check makes the service unready or only degraded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Required,
    Degrading,
}

/// The named checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, Kind, CheckFn)>,
}

impl Readiness {
    /// No checks yet: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a required check under `name`: while it fails, `/readyz` is 503.
    pub fn check<F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.with(name.into(), Kind::Required, f)
    }

    /// Adds a degrading check under `name`: while it fails, `/readyz` stays
    /// 200 and says `degraded`.
    pub fn degrading<F, Fut>(self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.with(name.into(), Kind::Degrading, f)
    }

    fn with<F, Fut>(mut self, name: String, kind: Kind, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name, kind, Arc::new(move || Box::pin(f()))));
        self
    }

    /// The database answers `SELECT 1`.
    pub fn postgres(self, name: impl Into<String>, pool: PgPool) -> Self {
        self.check(name, move || {
            let pool = pool.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        })
    }

    /// The NATS connection is up; degrading only, as the outbox keeps
    /// writes going while it is down.
    pub fn nats(self, name: impl Into<String>, client: async_nats::Client) -> Self {
        self.degrading(name, move || {
            let state = client.connection_state();
            async move {
                match state {
                    async_nats::connection::State::Connected => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
    }

    /// Adds every check of `other`.
    pub fn merge(mut self, other: Readiness) -> Self {
        self.checks.extend(other.checks);
        self
    }

    /// Runs every check at once; returns the overall state and each
    /// check's outcome (`ok`, `failing: …` or `degraded: …`).
    async fn run(&self) -> (State, Map<String, Value>) {
        let results =
            futures::future::join_all(self.checks.iter().map(|(name, kind, check)| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("timed out".to_string()),
                };
                (name.clone(), *kind, outcome)
            }))
            .await;
        let mut state = State::Ready;
        let mut checks = Map::new();
        for (name, kind, outcome) in results {
            let up = outcome.is_ok();
            metrics::gauge!("dependency_up", "name" => name.clone()).set(if up {
                1.0
            } else {
                0.0
            });
            let value = match (outcome, kind) {
                (Ok(()), _) => Value::from("ok"),
                (Err(e), Kind::Required) => {
                    tracing::warn!(check = %name, error = %e, "readiness check failed");
                    state = State::Unavailable;
                    Value::from(format!("failing: {e}"))
                }
                (Err(e), Kind::Degrading) => {
                    tracing::warn!(check = %name, error = %e, "dependency down; serving degraded");
                    if state == State::Ready {
                        state = State::Degraded;
                    }
                    Value::from(format!("degraded: {e}"))
                }
            };
            checks.insert(name, value);
        }
        (state, checks)
    }
}

/// What `/readyz` says overall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Every check passes.
    Ready,
    /// Required checks pass, some degrading one fails: still serving.
    Degraded,
    /// A required check fails: 503.
    Unavailable,
}

/// The `/healthz`, `/readyz` and `/metrics` routes. Installs the process's
/// metrics recorder (see [`crate::metrics::install`]).
pub fn router(readiness: Readiness) -> Router {
    crate::metrics::install();
    Router::new()
        .route("/metrics", get(crate::metrics::render))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/readyz",
            get(move || {
                let readiness = readiness.clone();
                async move {
                    let (state, checks) = readiness.run().await;
                    let (status, word) = match state {
                        State::Ready => (StatusCode::OK, "ready"),
                        State::Degraded => (StatusCode::OK, "degraded"),
                        State::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
                    };
                    (status, Json(json!({"status": word, "checks": checks})))
                }
            }),
        )
}
