//! What can stop a page from being shown, and the page shown instead.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

use crate::api::User;

/// Why a page is not shown.
#[derive(Debug)]
pub(crate) enum PageError {
    /// The id names nothing (or is not an id).
    NotFound,
    /// Signed in, but this is someone else's; the message says what.
    Forbidden(&'static str),
    /// The page needs a signed-in user: renew the session (or sign in),
    /// then back to `next`.
    SignIn { next: String },
    /// The signed-in user is banned.
    Banned,
    /// The body of a form could not be read.
    BadForm,
    /// An API could not be reached or failed; logged, shown as "try again".
    Unavailable(anyhow::Error),
    /// Anything else unexpected; logged, shown as "something went wrong".
    Internal(anyhow::Error),
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub(crate) user: Option<User>,
    pub(crate) heading: &'a str,
    pub(crate) message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match &self {
            Self::SignIn { next } => return Redirect::to(&refresh_url(next)).into_response(),
            Self::Banned => return Redirect::to(BANNED_PAGE).into_response(),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here. The link may be wrong, or the ticket or order may be gone.",
            ),
            Self::Forbidden(message) => (StatusCode::FORBIDDEN, "Not yours", *message),
            Self::BadForm => (
                StatusCode::BAD_REQUEST,
                "That did not work",
                "The form could not be read. Go back and try again.",
            ),
            Self::Unavailable(err) => {
                tracing::error!(error = format!("{err:#}"), "an API call failed");
                (
                    StatusCode::BAD_GATEWAY,
                    "Temporarily unavailable",
                    "We could not reach our servers. Please try again in a moment.",
                )
            }
            Self::Internal(err) => {
                tracing::error!(error = format!("{err:#}"), "a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "Something went wrong on our side. Please try again.",
                )
            }
        };
        let page = ErrorPage {
            user: None,
            heading,
            message,
        };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, message.to_string()).into_response(),
        }
    }
}

impl From<askama::Error> for PageError {
    fn from(err: askama::Error) -> Self {
        Self::Internal(anyhow::Error::new(err).context("rendering a template"))
    }
}

pub(crate) use common::http::local_path;

/// Where the browser goes when an API says it is not signed in: the refresh
/// route, which renews the session from the refresh cookie (sent only to that
/// path) and comes back to `next`, or goes to sign in when there is none.
pub(crate) fn refresh_url(next: &str) -> String {
    match serde_urlencoded::to_string([("next", next)]) {
        Ok(query) => format!("{}?{query}", common::session::REFRESH_PATH),
        Err(_) => common::session::REFRESH_PATH.into(),
    }
}

/// The page a banned user is sent to.
pub(crate) const BANNED_PAGE: &str = "/auth/banned";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_signing_in() {
        assert_eq!(local_path("/tickets/new"), "/tickets/new");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path(""), "/");
    }

    #[test]
    fn the_refresh_link_carries_the_way_back() {
        assert_eq!(
            refresh_url("/orders/1?x=1"),
            "/api/users/refresh?next=%2Forders%2F1%3Fx%3D1"
        );
    }
}
