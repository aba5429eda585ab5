//! The HTTP routes of the tickets service, merged in one place.

use axum::Router;

use crate::startup::AppState;

mod tickets;

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(tickets::router())
}
