//! Builds the payments service: database (migrated at start), NATS bus,
//! outbox relay, the listeners of the order events, the reconciler, the
//! payment provider, and the router with its state.

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
use crate::events::{OrderCancelledListener, OrderCreatedListener};
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
    pub webhook_secret: Option<String>,
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

    let pool = common::db::pool(&settings.database_url)?;
    common::db::migrate(&pool, &crate::MIGRATOR)
        .await
        .context("migrating the payments database")?;
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
        OrderCancelledListener::new(pool.clone(), provider.clone()),
    );
    {
        let (pool, provider) = (pool.clone(), provider.clone());
        lifecycle.spawn(|shutdown| crate::reconcile::run(pool, provider, shutdown));
    }

    let state = AppState {
        pool: pool.clone(),
        sessions: Sessions::new(&settings.common.session),
        provider,
        currency: settings.stripe.currency.clone(),
        webhook_secret: settings.stripe.webhook_secret.clone(),
    };
    Ok(Service {
        api: crate::routes::router().with_state(state),
        readiness: Readiness::new()
            .postgres("payments-database", pool)
            .nats("nats", bus.client().clone()),
    })
}
