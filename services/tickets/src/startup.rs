//! Builds the tickets service: database (migrated at start), NATS bus, outbox
//! relay, the order listeners, and the router with its state.

use anyhow::Context as _;
use axum::extract::FromRef;
use sqlx::PgPool;

use common::bus::Bus;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};
use common::listener;
use common::outbox::{Relay, RelayOptions};
use common::session::Sessions;

use crate::config::Settings;
use crate::events::{OrderCancelledListener, OrderCreatedListener};

/// The name the service's durable consumers are created under.
const SERVICE: &str = "tickets";

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: Sessions,
}

/// Connects, migrates, starts the background tasks (outbox relay and the
/// order.created / order.cancelled listeners) on `lifecycle`, and returns the
/// service's routes and readiness checks. Fails only when the database
/// cannot be migrated or the NATS URL is unusable; a broker that is down is
/// waited for in the background.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let pool = common::db::pool(&settings.database_url)?;
    common::db::migrate(&pool, &crate::MIGRATOR)
        .await
        .context("migrating the tickets database")?;
    common::metrics::spawn_samplers(lifecycle, SERVICE, pool.clone());
    let bus = Bus::connect(&settings.common.nats, SERVICE).await?;

    let relay = Relay::new(pool.clone(), bus.clone(), RelayOptions::default());
    lifecycle.spawn(|shutdown| relay.run(shutdown));

    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        OrderCreatedListener::new(pool.clone()),
    );
    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        OrderCancelledListener::new(pool.clone()),
    );

    let state = AppState {
        pool: pool.clone(),
        sessions: Sessions::new(&settings.common.session),
    };
    Ok(Service {
        api: crate::routes::router().with_state(state),
        readiness: Readiness::new()
            .postgres("tickets-database", pool)
            .nats("nats", bus.client().clone()),
    })
}
