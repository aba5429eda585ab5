//! The HTTP routes of the auth service, merged in one place.

use axum::Router;
use common::idempotency::Idempotency;

use crate::startup::AppState;

mod bans;
mod users;

/// The routes; POSTs honour `Idempotency-Key`.
pub(crate) fn router(idempotency: Idempotency) -> Router<AppState> {
    idempotency.protect(Router::new().merge(users::router()).merge(bans::router()))
}
