//! The HTTP routes of the payments service, merged in one place.

use axum::Router;
use common::idempotency::Idempotency;

use crate::startup::AppState;

mod payments;
mod webhook;

/// The routes; POSTs honour `Idempotency-Key`, except Stripe's webhook
/// (Stripe de-duplicates by event id, which the webhook records).
pub(crate) fn router(idempotency: Idempotency) -> Router<AppState> {
    idempotency
        .protect(Router::new().merge(payments::router()))
        .merge(webhook::router())
}
