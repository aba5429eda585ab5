//! Builds the orders service: database (migrated at start), NATS bus, outbox
//! relay, the listeners of the events it consumes, and the router with its
//! state.

use std::time::Duration;

use anyhow::Context as _;
use axum::extract::FromRef;
use sqlx::PgPool;

use common::bus::Bus;
use common::health::Readiness;
use common::lifecycle::{Lifecycle, Service};
use common::listener;
use common::outbox::{Relay, RelayOptions};
use common::session::Sessions;

use crate::SERVICE;
use crate::config::Settings;
use crate::events::{
    ExpirationCompleteListener, PaymentCreatedListener, TicketCreatedListener,
    TicketUpdatedListener,
};

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The orders database.
    pub pool: PgPool,
    /// Reads the session cookie that auth issued.
    pub sessions: Sessions,
    /// How long a new order holds its ticket.
    pub order_expiration: Duration,
}

/// Connects, migrates, starts the outbox relay and the listeners on
/// `lifecycle`, and returns the service's routes and readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let pool = common::db::pool(&settings.database_url)?;
    common::db::migrate(&pool, &crate::MIGRATOR)
        .await
        .context("migrating the orders database")?;
    common::metrics::spawn_samplers(lifecycle, SERVICE, pool.clone());
    let bus = Bus::connect(&settings.common.nats, SERVICE).await?;

    let relay = Relay::new(pool.clone(), bus.clone(), RelayOptions::default());
    lifecycle.spawn(|shutdown| relay.run(shutdown));

    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        TicketCreatedListener::new(pool.clone()),
    );
    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        TicketUpdatedListener::new(pool.clone()),
    );
    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        ExpirationCompleteListener::new(pool.clone()),
    );
    listener::spawn(
        lifecycle,
        &bus,
        SERVICE,
        PaymentCreatedListener::new(pool.clone()),
    );

    let sweep = settings.sweep;
    let sweep_pool = pool.clone();
    lifecycle.spawn(move |shutdown| crate::expiry::run_sweeps(sweep_pool, sweep, shutdown));

    let state = AppState {
        pool: pool.clone(),
        sessions: Sessions::new(&settings.common.session),
        order_expiration: settings.order_expiration,
    };
    Ok(Service {
        api: crate::routes::router().with_state(state),
        readiness: Readiness::new()
            .postgres("orders-database", pool)
            .nats("nats", bus.client().clone()),
    })
}
