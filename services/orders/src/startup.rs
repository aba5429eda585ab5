//! Builds the orders service: database (migrated at start), NATS bus, outbox
//! relay, the listeners of the events it consumes, and the router with its
//! state.

use std::time::Duration;

use axum::extract::FromRef;
use sqlx::PgPool;

use common::idempotency::Idempotency;
use common::lifecycle::{Lifecycle, Service};
use common::session::Sessions;
use common::startup::Backbone;

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

/// Connects, migrates, starts the outbox relay, the listeners and the
/// expiry sweeps on `lifecycle`, and returns the service's routes and
/// readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    backbone.listen(TicketCreatedListener::new(pool.clone()));
    backbone.listen(TicketUpdatedListener::new(pool.clone()));
    backbone.listen(ExpirationCompleteListener::new(pool.clone()));
    backbone.listen(PaymentCreatedListener::new(pool.clone()));

    let (sweep, sweep_pool) = (settings.sweep, pool.clone());
    lifecycle.spawn(move |shutdown| crate::expiry::run_sweeps(sweep_pool, sweep, shutdown));

    let sessions = Sessions::new(&settings.common.session)?;
    backbone.follow_bans(&sessions);
    let state = AppState {
        pool,
        sessions,
        order_expiration: settings.order_expiration,
    };
    Ok(backbone.into_service(
        crate::routes::serve(Idempotency::new(state.pool.clone(), state.sessions.clone()))
            .with_state(state),
    ))
}
