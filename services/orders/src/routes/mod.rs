//! The HTTP routes of the orders service, merged in one place.

use axum::Router;

use crate::startup::AppState;

mod orders;

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(orders::router())
}
