//! Runs every buytickets service in one process, on one port, with the same
//! routes as the Kubernetes ingress (`/api/users` → auth, `/api/tickets` →
//! tickets, `/api/orders` → orders, `/api/payments` → payments, `/` → web;
//! expiration has no routes). Each service keeps its own database
//! (`<SERVICE>_DATABASE_URL`; expiration uses `REDIS_URL`) and reaches the
//! others only through NATS, exactly as when deployed; only the process
//! boundary is gone.
//! `scripts/dev up` runs it.

use anyhow::Context as _;
use axum::Router;
use common::config::{self, CommonSettings};
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let common = CommonSettings::from_env().context("invalid configuration")?;
    let port: u16 = config::optional("PORT", 8080).context("invalid configuration")?;
    let auth = auth::config::Settings::from_env_with("AUTH_DATABASE_URL")
        .context("invalid configuration")?;
    let tickets = tickets::config::Settings::from_env_with("TICKETS_DATABASE_URL")
        .context("invalid configuration")?;
    let orders = orders::config::Settings::from_env_with("ORDERS_DATABASE_URL")
        .context("invalid configuration")?;
    let expiration = expiration::config::Settings::from_env().context("invalid configuration")?;
    let payments = payments::config::Settings::from_env_with("PAYMENTS_DATABASE_URL")
        .context("invalid configuration")?;
    // The pages call the APIs on this same port unless API_URL says otherwise.
    let own_origin: web::config::Url = format!("http://127.0.0.1:{port}")
        .parse()
        .context("the suite's own URL")?;
    let web = web::config::Settings::from_env_with_api_url(&own_origin)
        .context("invalid configuration")?;
    common::telemetry::init(common.log_format);
    let lifecycle = Lifecycle::new();
    lifecycle.cancel_on_signals();

    let services = [
        auth::startup::build(&auth, &lifecycle)
            .await
            .context("starting auth")?,
        tickets::startup::build(&tickets, &lifecycle)
            .await
            .context("starting tickets")?,
        orders::startup::build(&orders, &lifecycle)
            .await
            .context("starting orders")?,
        expiration::startup::build(&expiration, &lifecycle)
            .await
            .context("starting expiration")?,
        payments::startup::build(&payments, &lifecycle)
            .await
            .context("starting payments")?,
        web::startup::build(&web, &lifecycle)
            .await
            .context("starting web")?,
    ];
    let mut api = Router::new();
    let mut readiness = Readiness::new();
    for service in services {
        api = api.merge(service.api);
        readiness = readiness.merge(service.readiness);
    }
    let app = Service { api, readiness }.into_app();

    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .with_context(|| format!("binding port {port} (is something else using it? set PORT)"))?;
    tracing::info!(port, "buytickets suite listening");
    lifecycle
        .serve(listener, app, common.shutdown_timeout)
        .await
}
