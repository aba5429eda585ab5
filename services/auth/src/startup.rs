//! Builds the auth service: database (migrated at start), NATS bus, outbox
//! relay, and the router with its state.

use anyhow::Context as _;
use axum::extract::FromRef;
use sqlx::PgPool;

use common::bus::Bus;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};
use common::outbox::{Relay, RelayOptions};
use common::session::Sessions;

use crate::config::Settings;
use crate::password::Passwords;

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: Sessions,
    pub passwords: Passwords,
}

/// Connects, migrates, starts the background tasks on `lifecycle`, and
/// returns the service's routes and readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let pool = common::db::pool(&settings.database_url)?;
    common::db::migrate(&pool, &crate::MIGRATOR)
        .await
        .context("migrating the users database")?;
    common::metrics::spawn_samplers(lifecycle, "auth", pool.clone());
    let bus = Bus::connect(&settings.common.nats, "auth").await?;

    let relay = Relay::new(pool.clone(), bus.clone(), RelayOptions::default());
    lifecycle.spawn(|shutdown| relay.run(shutdown));

    let state = AppState {
        pool: pool.clone(),
        sessions: Sessions::new(&settings.common.session),
        passwords: Passwords::new(),
    };
    Ok(Service {
        api: crate::routes::router().with_state(state),
        readiness: Readiness::new()
            .postgres("auth-database", pool)
            .nats("nats", bus.client().clone()),
    })
}
