//! The HTTP routes of the payments service, merged in one place.

use axum::Router;
use common::idempotency::Idempotency;
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

/// The routes as served: POSTs honour `Idempotency-Key`, except Stripe's
/// webhook (Stripe de-duplicates by event id, which the webhook records).
pub(crate) fn serve(idempotency: Idempotency) -> Router<AppState> {
    let (payments, _) = OpenApiRouter::new()
        .merge(payments::router())
        .split_for_parts();
    let (webhook, _) = OpenApiRouter::new()
        .merge(webhook::router())
        .split_for_parts();
    idempotency.protect(payments).merge(webhook)
}
