//! The HTTP routes of the payments service, merged in one place.

use axum::Router;

use crate::startup::AppState;

mod payments;
mod webhook;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .merge(payments::router())
        .merge(webhook::router())
}
