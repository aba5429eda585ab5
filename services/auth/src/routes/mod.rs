//! The HTTP routes of the auth service, merged in one place.

use axum::Router;
use common::idempotency::Idempotency;
use utoipa_axum::router::OpenApiRouter;

use crate::startup::AppState;

mod bans;
mod users;

/// Every route with its documentation: a handler is mounted only through
/// `routes!`, which takes its method and path from its `#[utoipa::path]`.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(users::router())
        .merge(bans::router())
}

/// The routes as served: POSTs honour `Idempotency-Key`.
pub(crate) fn serve(idempotency: Idempotency) -> Router<AppState> {
    idempotency.protect(router().split_for_parts().0)
}
