//! The web service as a process: settings from the environment, JSON logs,
//! and a graceful shutdown on SIGTERM or Ctrl-C.

use anyhow::Context as _;
use common::lifecycle::Lifecycle;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = web::config::Settings::from_env().context("invalid configuration")?;
    common::telemetry::init(settings.log_format);
    let lifecycle = Lifecycle::new();
    lifecycle.cancel_on_signals();
    let service = web::startup::build(&settings, &lifecycle).await?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.port))
        .await
        .with_context(|| format!("binding port {}", settings.port))?;
    tracing::info!(port = settings.port, "web listening");
    lifecycle
        .serve(listener, service.into_app(), settings.shutdown_timeout)
        .await
}
