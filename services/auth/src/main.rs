use anyhow::Context as _;
use common::lifecycle::Lifecycle;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = auth::config::Settings::from_env().context("invalid configuration")?;
    common::telemetry::init(settings.common.log_format);
    let lifecycle = Lifecycle::new();
    lifecycle.cancel_on_signals();
    let service = auth::startup::build(&settings, &lifecycle).await?;
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", settings.common.port))
        .await
        .with_context(|| format!("binding port {}", settings.common.port))?;
    tracing::info!(port = settings.common.port, "auth listening");
    lifecycle
        .serve(
            listener,
            service.into_app(),
            settings.common.shutdown_timeout,
        )
        .await
}
