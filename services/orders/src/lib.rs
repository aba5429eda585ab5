//! The orders service: buyers reserve tickets, cancel their orders, and see
//! them paid or expired. It owns the orders database, keeps a replica of the
//! tickets from the tickets service's events, and publishes order.created and
//! order.cancelled through its outbox.

pub mod config;
pub mod events;
pub mod expiry;
pub mod startup;

mod domain;
mod routes;
mod store;

/// The service's own migrations (the shared outbox/inbox ones run too).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The service's name: its durable consumers and its inbox rows carry it.
pub const SERVICE: &str = "orders";

/// The service's routes, each with its documentation: [`startup::build`]
/// mounts them and [`openapi`] describes them, so the two cannot differ.
pub fn api() -> utoipa_axum::router::OpenApiRouter<startup::AppState> {
    routes::router()
}

/// The service's OpenAPI document, made from the routes it mounts.
pub fn openapi() -> utoipa::openapi::OpenApi {
    common::openapi::document(
        api().into_openapi(),
        "buytickets orders",
        "Reserve a ticket (an order), list and read one's orders, cancel one.",
    )
}
