//! The HTTP routes of the auth service, merged in one place.

use axum::Router;

use crate::startup::AppState;

mod bans;
mod users;

pub(crate) fn router() -> Router<AppState> {
    Router::new().merge(users::router()).merge(bans::router())
}
