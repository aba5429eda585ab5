//! The HTTP routes of the payments service, merged in one place.

use utoipa_axum::router::OpenApiRouter;

use crate::startup::AppState;

mod payments;
mod webhook;

/// The tag of these operations in the API document.
const TAG: &str = "payments";

/// Every route with its documentation: a handler is mounted only through
/// `routes!`, which takes its method and path from its `#[utoipa::path]`.
pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(payments::router())
        .merge(webhook::router())
}
