//! The HTTP routes of the auth service, merged in one place.

use utoipa_axum::router::OpenApiRouter;

use crate::startup::AppState;

mod users;

/// Every route with its documentation: a handler is mounted only through
/// `routes!`, which takes its method and path from its `#[utoipa::path]`.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().merge(users::router())
}
