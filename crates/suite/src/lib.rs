//! Every buytickets service in one process, on one port, with the same
//! routes as the Kubernetes ingress (`/api/users` → auth, `/api/tickets` →
//! tickets, `/api/orders` → orders, `/api/payments` → payments, `/` → web;
//! expiration and notifications have no routes), and the merged API
//! document at `/api/openapi.json` with Swagger UI at `/api/docs`. Each service keeps its own database and
//! reaches the others only through NATS, exactly as when deployed; only the
//! process boundary is gone. The `buytickets-suite` binary (`scripts/dev
//! up`) and the web client's page tests both assemble it with [`build`].

use anyhow::Context as _;
use common::config::ConfigError;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};

/// The settings of every service in the suite.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The auth service's.
    pub auth: auth::config::Settings,
    /// The tickets service's.
    pub tickets: tickets::config::Settings,
    /// The orders service's.
    pub orders: orders::config::Settings,
    /// The payments service's.
    pub payments: payments::config::Settings,
    /// The expiration service's; `None` leaves it out (reservations then end
    /// only through the orders service's backstop).
    pub expiration: Option<expiration::config::Settings>,
    /// The notifications service's; `None` leaves it out (no mails).
    pub notifications: Option<notifications::config::Settings>,
    /// The web client's.
    pub web: web::config::Settings,
}

impl Settings {
    /// Reads every service's settings from the environment; each service
    /// finds its own database in `<SERVICE>_DATABASE_URL`. The pages call
    /// the APIs at `own_origin` unless `API_URL` says otherwise.
    pub fn from_env(own_origin: &web::config::Url) -> Result<Settings, ConfigError> {
        Ok(Settings {
            auth: auth::config::Settings::from_env(auth::SERVICE)?,
            tickets: tickets::config::Settings::from_env(tickets::SERVICE)?,
            orders: orders::config::Settings::from_env()?,
            payments: payments::config::Settings::from_env()?,
            expiration: Some(expiration::config::Settings::from_env()?),
            notifications: Some(notifications::config::Settings::from_env()?),
            web: web::config::Settings::from_env_with_api_url(own_origin)?,
        })
    }
}

/// The API document of the suite: every API service's own document
/// (auth, tickets, orders, payments), merged. Served at `/api/openapi.json`,
/// with Swagger UI at `/api/docs`; deployed, the web service serves its
/// published copy (`services/web/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = auth::openapi();
    for other in [tickets::openapi(), orders::openapi(), payments::openapi()] {
        api.merge(other);
    }
    api.info = utoipa::openapi::InfoBuilder::new()
        .title("buytickets")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "The buytickets API: users, tickets, orders and payments. Errors always have the \
             body `Errors`; operations that need a signed-in user take the `session` cookie.",
        ))
        .build();
    api
}

/// Starts every service on `lifecycle` and merges their routes and
/// readiness checks into one service.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut services = vec![
        auth::startup::build(&settings.auth, lifecycle)
            .await
            .context("starting auth")?,
        tickets::startup::build(&settings.tickets, lifecycle)
            .await
            .context("starting tickets")?,
        orders::startup::build(&settings.orders, lifecycle)
            .await
            .context("starting orders")?,
        payments::startup::build(&settings.payments, lifecycle)
            .await
            .context("starting payments")?,
        web::startup::build(&settings.web, lifecycle)
            .await
            .context("starting web")?,
    ];
    if let Some(expiration) = &settings.expiration {
        services.push(
            expiration::startup::build(expiration, lifecycle)
                .await
                .context("starting expiration")?,
        );
    }
    if let Some(notifications) = &settings.notifications {
        services.push(
            notifications::startup::build(notifications, lifecycle)
                .await
                .context("starting notifications")?,
        );
    }
    let document = serde_json::to_value(openapi()).context("rendering the API document")?;
    let mut api = web::docs::router(document);
    let mut readiness = Readiness::new();
    for service in services {
        api = api.merge(service.api);
        readiness = readiness.merge(service.readiness);
    }
    Ok(Service { api, readiness })
}
