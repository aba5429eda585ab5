//! Builds the auth service: database (migrated at start), NATS bus, outbox
//! relay, the task that keeps the deny cache complete, and the router with
//! its state.

use std::sync::Arc;

use axum::extract::FromRef;
use sqlx::PgPool;

use common::client_ip::ClientIpSettings;
use common::idempotency::Idempotency;
use common::lifecycle::{Lifecycle, Service};
use common::session::Sessions;
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::front_door::FrontDoor;
use crate::password::Passwords;

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub pool: PgPool,
    pub sessions: Sessions,
    pub passwords: Passwords,
    pub front_door: FrontDoor,
    /// `ADMIN_EMAILS`, lower-cased.
    pub admins: Arc<Vec<String>>,
}

impl FromRef<AppState> for ClientIpSettings {
    fn from_ref(state: &AppState) -> Self {
        state.front_door.client_ip().clone()
    }
}

/// Connects, migrates, starts the outbox relay on `lifecycle`, and returns
/// the service's routes and readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    let sessions = Sessions::new(&settings.common.session)?;
    if let Some(cache) = sessions.deny_cache() {
        let (pool, cache, ttl) = (pool.clone(), cache.clone(), sessions.ttl());
        lifecycle
            .spawn(move |shutdown| crate::bans::keep_cache_complete(pool, cache, ttl, shutdown));
    }
    let state = AppState {
        pool,
        sessions,
        passwords: Passwords::new(),
        front_door: FrontDoor::new(&settings.front_door)?,
        admins: Arc::new(settings.admin_emails.clone()),
    };
    Ok(backbone.into_service(
        crate::routes::serve(
            Idempotency::new(state.pool.clone(), state.sessions.clone())
                .with_client_ip(state.front_door.client_ip().clone()),
        )
        .with_state(state),
    ))
}
