//! `/`: the tickets for sale, newest first, a page at a time.

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use uuid::Uuid;

use crate::api::{Ticket, User};
use crate::error::PageError;
use crate::extract::Visitor;
use crate::routes::page;
use crate::startup::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<User>,
    tickets: Vec<Ticket>,
    /// The cursor of the next page, when there is one.
    next: Option<Uuid>,
    /// Whether this is a later page (so "newest" is worth a link).
    later_page: bool,
}

#[derive(Deserialize, Default)]
struct HomeQuery {
    #[serde(default)]
    before: Option<String>,
}

async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    // A mangled cursor is not worth an error page: show the first page.
    let before = query
        .and_then(|q| serde_urlencoded::from_str::<HomeQuery>(&q).ok())
        .and_then(|q| q.before)
        .and_then(|b| Uuid::parse_str(b.trim()).ok());
    let (user, tickets) = tokio::join!(
        state.api.current_user(&visitor),
        state.api.tickets(&visitor, state.tickets_per_page, before),
    );
    // The list is public: any refusal is the tickets API failing.
    let listing = tickets?;
    page(
        StatusCode::OK,
        &HomePage {
            user: user?,
            tickets: listing.tickets,
            next: listing.next,
            later_page: before.is_some(),
        },
    )
}
