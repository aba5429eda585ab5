//! The auth service: sign up, sign in, refresh, sign out, the current user
//! and bans. It owns the users database (with sessions and bans), issues the
//! session cookies every service reads, and keeps the deny cache complete.

pub mod config;
pub mod front_door;
pub mod password;
pub mod startup;

mod bans;
mod domain;
mod routes;
mod sessions;
mod store;

/// The service's name: its durable consumers and its NATS connection carry it.
pub const SERVICE: &str = "auth";

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
        "buytickets auth",
        "Sign up, sign in, sign out and the current user.",
    )
}
