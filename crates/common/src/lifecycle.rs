//! Start-up and graceful shutdown. SIGTERM or Ctrl-C cancels one token; the
//! server stops accepting, in-flight requests finish, background tasks
//! (outbox relay, listeners) see the same token and drain, and the whole
//! shutdown is bounded so the process always exits.

use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The shutdown signal and the background tasks that must drain before exit.
#[derive(Clone, Default)]
pub struct Lifecycle {
    /// Cancelled once, when the process is to stop.
    pub shutdown: CancellationToken,
    /// The background tasks to drain before exit.
    pub tasks: TaskTracker,
}

impl Lifecycle {
    /// A lifecycle with nothing running yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns a background task that owns a child of the shutdown token and
    /// is awaited on the way out.
    pub fn spawn<F, Fut>(&self, task: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(task(self.shutdown.child_token()));
    }

    /// Cancels the shutdown token on SIGTERM or Ctrl-C.
    pub fn cancel_on_signals(&self) {
        let token = self.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received");
            token.cancel();
        });
    }

    /// Serves `app` on `listener` until shutdown, then drains requests and
    /// background tasks for at most `drain`.
    pub async fn serve(
        self,
        listener: TcpListener,
        app: Router,
        drain: Duration,
    ) -> anyhow::Result<()> {
        let token = self.shutdown.clone();
        // The peer's address is where the client's IP comes from (see
        // `client_ip`) and how anonymous idempotency keys are scoped.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server =
            axum::serve(listener, app).with_graceful_shutdown(token.clone().cancelled_owned());
        let mut server = tokio::spawn(async move { server.await });
        let finished = tokio::select! {
            result = &mut server => Some(result),
            () = token.cancelled() => None,
        };
        // Whatever ended the serving, everything else stops now too.
        token.cancel();
        self.tasks.close();
        let drained = tokio::time::timeout(drain, async {
            let result = match finished {
                Some(result) => result,
                None => server.await,
            };
            self.tasks.wait().await;
            result
        })
        .await;
        match drained {
            Ok(result) => {
                result
                    .map_err(anyhow::Error::from)?
                    .map_err(anyhow::Error::from)?;
                tracing::info!("shut down cleanly");
            }
            Err(_) => tracing::warn!(
                ?drain,
                "shutdown drain timed out; exiting with work in flight"
            ),
        }
        Ok(())
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// What a service contributes to a process: its API routes (without the
/// shared middleware) and its readiness checks. A service binary serves one;
/// the local all-in-one runner merges several on one port.
pub struct Service {
    /// Its routes, with their state, without the shared middleware.
    pub api: Router,
    /// What `/readyz` checks for it.
    pub readiness: crate::health::Readiness,
}

impl Service {
    /// The complete application of a single service: its API, `/healthz`,
    /// `/readyz` and the shared middleware.
    pub fn into_app(self) -> Router {
        self.into_app_with_timeout(crate::completion::DEFAULT_REQUEST_TIMEOUT)
    }

    /// [`Service::into_app`], with requests answering 503 after `timeout`
    /// (their work still finishes).
    pub fn into_app_with_timeout(self, timeout: Duration) -> Router {
        crate::http::finish_with_timeout(
            self.api.merge(crate::health::router(self.readiness)),
            timeout,
        )
    }
}

pub use crate::config::ProcessSettings;

/// The whole life of a service process: logs in `settings.log_format`,
/// shutdown on SIGTERM or Ctrl-C, `build` (which connects, migrates and
/// starts the background tasks on the lifecycle it is given), then serving
/// on `settings.port` until shutdown and draining for at most
/// `settings.shutdown_timeout`. Every service binary's `main` is this call.
pub async fn run_service<F, Fut>(
    name: &str,
    settings: ProcessSettings,
    build: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Lifecycle) -> Fut,
    Fut: Future<Output = anyhow::Result<Service>>,
{
    use anyhow::Context as _;

    crate::telemetry::init(settings.log_format);
    let lifecycle = Lifecycle::new();
    lifecycle.cancel_on_signals();
    let service = build(lifecycle.clone())
        .await
        .with_context(|| format!("starting {name}"))?;
    let listener = TcpListener::bind(("0.0.0.0", settings.port))
        .await
        .with_context(|| {
            format!(
                "binding port {} (is something else using it?)",
                settings.port
            )
        })?;
    tracing::info!(port = settings.port, "{name} listening");
    lifecycle
        .serve(
            listener,
            service.into_app_with_timeout(settings.request_timeout),
            settings.shutdown_timeout,
        )
        .await
}
