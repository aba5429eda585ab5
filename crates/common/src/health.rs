//! `GET /healthz` (the process is alive) and `GET /readyz` (its dependencies
//! are reachable), for Kubernetes probes, and `GET /metrics` for Prometheus:
//! the routes every service's app gets once, whatever its API.

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

/// The named checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<(String, CheckFn)>,
}

impl Readiness {
    /// No checks yet: always ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check under `name`.
    pub fn check<F, Fut>(mut self, name: impl Into<String>, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks
            .push((name.into(), Arc::new(move || Box::pin(f()))));
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

    /// The NATS connection is up.
    pub fn nats(self, name: impl Into<String>, client: async_nats::Client) -> Self {
        self.check(name, move || {
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

    async fn run(&self) -> (bool, Map<String, Value>) {
        let results =
            futures::future::join_all(self.checks.iter().map(|(name, check)| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err("timed out".to_string()),
                };
                (name.clone(), outcome)
            }))
            .await;
        let ready = results.iter().all(|(_, r)| r.is_ok());
        let checks = results
            .into_iter()
            .map(|(name, r)| {
                let v = match r {
                    Ok(()) => Value::from("ok"),
                    Err(e) => {
                        tracing::warn!(check = %name, error = %e, "readiness check failed");
                        Value::from(format!("failing: {e}"))
                    }
                };
                (name, v)
            })
            .collect();
        (ready, checks)
    }
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
                    let (ready, checks) = readiness.run().await;
                    let status = if ready {
                        StatusCode::OK
                    } else {
                        StatusCode::SERVICE_UNAVAILABLE
                    };
                    let word = if ready { "ready" } else { "unavailable" };
                    (status, Json(json!({"status": word, "checks": checks})))
                }
            }),
        )
}
