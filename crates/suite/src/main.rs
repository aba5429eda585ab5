//! Runs every buytickets service in one process, on one port, with the same
//! routes as the Kubernetes ingress (`/api/users` → auth, …). Each service
//! keeps its own database and reaches the others only through NATS, exactly
//! as when deployed; only the process boundary is gone. `scripts/dev up`
//! runs it.

use anyhow::Context as _;
use axum::Router;
use common::config::{self, CommonSettings};
use common::health::Readiness;
use common::lifecycle::Lifecycle;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let common = CommonSettings {
        port: config::optional("PORT", 8080).context("invalid configuration")?,
        ..CommonSettings::from_env().context("invalid configuration")?
    };
    common::telemetry::init(common.log_format);
    let lifecycle = Lifecycle::new();
    lifecycle.cancel_on_signals();

    let auth = auth::startup::build(
        &auth::config::Settings {
            common: common.clone(),
            database_url: config::required("AUTH_DATABASE_URL").context("invalid configuration")?,
        },
        &lifecycle,
    )
    .await
    .context("starting auth")?;

    let services = [auth];
    let mut api = Router::new();
    let mut readiness = Readiness::new();
    for service in services {
        api = api.merge(service.api);
        readiness = readiness.merge(service.readiness);
    }
    let app = common::lifecycle::Service { api, readiness }.into_app();

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", common.port))
        .await
        .with_context(|| {
            format!(
                "binding port {} (is something else using it? set PORT)",
                common.port
            )
        })?;
    tracing::info!(port = common.port, "buytickets suite listening");
    lifecycle
        .serve(listener, app, common.shutdown_timeout)
        .await
}
