//! `/`: the tickets for sale, a page at a time, searched by words, dates and
//! prices and sorted by date, price or newest (the tickets API does the work).

use askama::Template;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, Ticket, User};
use crate::error::PageError;
use crate::extract::Visitor;
use crate::routes::page;
use crate::startup::AppState;
use crate::view;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    user: Option<User>,
    tickets: Vec<Ticket>,
    /// The query of the next page, when there is one.
    next: Option<String>,
    /// Whether this is a later page (so "newest" is worth a link).
    later_page: bool,
    /// The search as typed, to fill the form again.
    search: SearchForm,
    /// Why the API refused the search, one message per bad field.
    errors: Vec<String>,
}

impl HomePage {
    fn searching(&self) -> bool {
        self.search.is_filtered()
    }

    fn event_date(&self, ticket: &Ticket) -> String {
        ticket
            .details
            .event_date
            .map(view::when)
            .unwrap_or_default()
    }
}

/// The home page's query: the search form's fields and the page cursor.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct SearchForm {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    q: String,
    /// A day (`YYYY-MM-DD`, from a date field) or an RFC 3339 date and time.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    to: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    min_price: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    max_price: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    sort: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    before: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cursor: String,
}

impl SearchForm {
    fn is_filtered(&self) -> bool {
        [
            &self.q,
            &self.from,
            &self.to,
            &self.min_price,
            &self.max_price,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }

    fn is_later_page(&self) -> bool {
        !self.before.is_empty() || !self.cursor.is_empty()
    }

    /// The tickets API's query: days become the start of `from`'s day and
    /// the end of `to`'s, in UTC; everything else goes as typed, for the
    /// API to judge.
    fn api_query(&self) -> String {
        let day = |text: &str, time: &str| {
            let text = text.trim();
            if text.len() == 10 && !text.contains('T') {
                format!("{text}T{time}Z")
            } else {
                text.to_string()
            }
        };
        let api = SearchForm {
            q: self.q.trim().to_string(),
            from: day(&self.from, "00:00:00"),
            to: day(&self.to, "23:59:59"),
            min_price: self.min_price.trim().to_string(),
            max_price: self.max_price.trim().to_string(),
            ..self.clone()
        };
        serde_urlencoded::to_string(&api).unwrap_or_default()
    }

    fn selected(&self, sort: &str) -> bool {
        self.sort == sort || (self.sort.is_empty() && sort == "newest")
    }
}

async fn home(
    State(state): State<AppState>,
    visitor: Visitor,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    // A mangled query is not worth an error page: show the first page.
    let search: SearchForm = query
        .and_then(|q| serde_urlencoded::from_str(&q).ok())
        .unwrap_or_default();
    let api_query = search.api_query();
    let (user, tickets) = tokio::join!(
        state.api.current_user(&visitor),
        state
            .api
            .tickets(&visitor, state.tickets_per_page, &api_query),
    );
    let (status, listing, errors) = match tickets {
        Ok(listing) => (StatusCode::OK, Some(listing), Vec::new()),
        // A search the API refused is shown with its reasons.
        Err(ApiError::Refused(refusal)) if refusal.status == StatusCode::BAD_REQUEST => (
            StatusCode::BAD_REQUEST,
            None,
            refusal.errors.iter().map(|e| e.message.clone()).collect(),
        ),
        // The list is public: any other refusal is the tickets API failing.
        Err(err) => return Err(err.into()),
    };
    let (tickets, next) = listing.map_or((Vec::new(), None), |l| (l.tickets, l.next));
    page(
        status,
        &HomePage {
            user: user?,
            tickets,
            next,
            later_page: search.is_later_page(),
            search,
            errors,
        },
    )
}
