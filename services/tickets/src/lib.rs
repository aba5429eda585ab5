//! The tickets service: sellers list and edit tickets; the service reserves
//! and releases them as orders are created and cancelled, and publishes every
//! change (ticket.created, ticket.updated) through its outbox.

pub mod config;
pub mod startup;

mod domain;
mod events;
mod routes;
mod store;

/// The service's name: its durable consumers and its NATS connection carry it.
pub const SERVICE: &str = "tickets";

/// The service's own migrations (the shared outbox/inbox ones run too).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's routes, each with its documentation: [`startup::build`]
/// mounts them and [`openapi`] describes them, so the two cannot differ.
pub fn api() -> utoipa_axum::router::OpenApiRouter<startup::AppState> {
    routes::router()
}

/// The service's OpenAPI document, made from the routes it mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::document(
        api().into_openapi(),
        "buytickets tickets",
        "List, search, show and edit tickets for sale, and a seller's totals.",
    )
}
