//! Builds the tickets service: database (migrated at start), NATS bus, outbox
//! relay, the order listeners, and the router with its state.

use axum::extract::FromRef;
use sqlx::PgPool;

use common::idempotency::Idempotency;
use common::lifecycle::{Lifecycle, Service};
use common::session::Sessions;
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::events::{OrderCancelledListener, OrderCompletedListener, OrderCreatedListener};

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: Sessions,
}

/// Connects, migrates, starts the background tasks (outbox relay and the
/// order.created / order.cancelled / order.completed listeners) on `lifecycle`, and returns the
/// service's routes and readiness checks. Fails only when the database
/// cannot be migrated or the NATS URL is unusable; a broker that is down is
/// waited for in the background.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    backbone.listen(OrderCreatedListener::new(pool.clone()));
    backbone.listen(OrderCancelledListener::new(pool.clone()));
    backbone.listen(OrderCompletedListener::new(pool.clone()));

    let sessions = Sessions::new(&settings.common.session)?;
    backbone.follow_bans(&sessions);
    let state = AppState { pool, sessions };
    Ok(backbone.into_service(
        crate::routes::serve(Idempotency::new(state.pool.clone(), state.sessions.clone()))
            .with_state(state),
    ))
}
