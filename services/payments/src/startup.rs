//! Builds the payments service: database (migrated at start), NATS bus,
//! outbox relay, the listeners of the order events, the reconciler, the
//! payment provider, and the router with its state.

use axum::extract::FromRef;
use sqlx::PgPool;

use common::idempotency::Idempotency;
use common::lifecycle::{Lifecycle, Service};
use common::session::Sessions;
use common::startup::Backbone;

use crate::SERVICE;
use crate::config::Settings;
use crate::events::{OrderCancelledListener, OrderCompletedListener, OrderCreatedListener};
use crate::provider::PaymentProvider;

/// The state every handler of the service can extract.
#[derive(Clone, FromRef)]
pub struct AppState {
    /// The payments database.
    pub pool: PgPool,
    /// Reads the session cookie that auth issued.
    pub sessions: Sessions,
    /// Stripe, or the simulation.
    pub provider: PaymentProvider,
    /// The currency every price is charged in.
    #[from_ref(skip)]
    pub currency: String,
    /// The webhook signing secret; `None` turns the webhook off.
    #[from_ref(skip)]
    pub webhook_secret: Option<common::config::SecretString>,
}

/// Connects, migrates, starts the outbox relay, the listeners and the
/// reconciler on `lifecycle`, and returns the service's routes and
/// readiness checks.
pub async fn build(settings: &Settings, lifecycle: &Lifecycle) -> anyhow::Result<Service> {
    let provider = PaymentProvider::from_settings(&settings.stripe)?;
    if provider.is_simulated() {
        tracing::warn!(
            "STRIPE_SECRET_KEY is not set: payments use the simulated provider \
             (Stripe's test tokens such as tok_visa; no money moves)"
        );
    } else {
        tracing::info!(api_base = %settings.stripe.api_base, currency = %settings.stripe.currency, "payments go through Stripe");
    }
    if settings.stripe.webhook_secret.is_none() {
        tracing::info!("STRIPE_WEBHOOK_SECRET is not set: the Stripe webhook answers 503");
    }

    let mut backbone = Backbone::connect(SERVICE, &settings.common.nats, lifecycle).await?;
    let pool = backbone
        .database(&settings.database_url, &crate::MIGRATOR)
        .await?;
    backbone.listen(OrderCreatedListener::new(pool.clone()));
    backbone.listen(OrderCancelledListener::new(pool.clone(), provider.clone()));
    backbone.listen(OrderCompletedListener::new(pool.clone()));
    {
        let (pool, provider) = (pool.clone(), provider.clone());
        lifecycle.spawn(|shutdown| crate::reconcile::run(pool, provider, shutdown));
    }

    let sessions = Sessions::new(&settings.common.session)?;
    backbone.follow_bans(&sessions);
    let state = AppState {
        pool,
        sessions,
        provider,
        currency: settings.stripe.currency.clone(),
        webhook_secret: settings.stripe.webhook_secret.clone(),
    };
    Ok(backbone.into_service(
        crate::routes::serve(Idempotency::new(state.pool.clone(), state.sessions.clone()))
            .with_state(state),
    ))
}
