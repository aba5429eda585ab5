//! Builds the auth service: database (migrated at start), NATS bus, outbox
//! relay, and the router with its state.

use axum::extract::FromRef;
use sqlx::PgPool;

use common::lifecycle::{Lifecycle, Service};
use common::session::Sessions;
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::password::Passwords;

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: Sessions,
    pub passwords: Passwords,
}

/// Connects, migrates, starts the outbox relay on `lifecycle`, and returns
/// the service's routes and readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    let state = AppState {
        pool,
        sessions: Sessions::new(&settings.common.session),
        passwords: Passwords::new(),
    };
    let (router, _) = crate::routes::router().split_for_parts();
    Ok(backbone.into_service(router.with_state(state)))
}
