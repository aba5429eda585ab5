//! The auth service: sign up, sign in, sign out and the current user. It owns
//! the users database and issues the session cookie every service reads.

pub mod config;
pub mod password;
pub mod startup;

mod domain;
mod routes;
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
