//! The HTTP routes of the tickets service, merged in one place.

use axum::Router;
use common::idempotency::Idempotency;

use crate::startup::AppState;

mod tickets;

/// The routes; POSTs honour `Idempotency-Key`.
pub(crate) fn router(idempotency: Idempotency) -> Router<AppState> {
    idempotency.protect(Router::new().merge(tickets::router()))
}
