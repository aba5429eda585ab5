//! The payments service: a buyer pays an order by card, through Stripe (or,
//! without a Stripe key, a simulated provider that honours Stripe's test
//! tokens). It owns the payments database, keeps a replica of the orders
//! from the orders service's events, publishes payment.created through its
//! outbox, and refunds every charge that has no ticket to show for it.

pub mod config;
pub mod events;
pub mod provider;
pub mod reconcile;
pub mod startup;

mod billing;
mod domain;
mod routes;
mod signature;
mod store;

/// The service's own migrations (the shared outbox/inbox ones run too).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's name: its durable consumers carry it.
pub const SERVICE: &str = "payments";

/// The service's routes, each with its documentation: [`startup::build`]
/// mounts them and [`openapi`] describes them, so the two cannot differ.
pub fn api() -> utoipa_axum::router::OpenApiRouter<startup::AppState> {
    routes::router()
}

/// The service's OpenAPI document, made from the routes it mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::document(
        api().into_openapi(),
        "buytickets payments",
        "Pay an order by card; the payment provider's webhook.",
    )
}
