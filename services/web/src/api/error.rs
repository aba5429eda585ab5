//! Why an API call gave the page no value, and the page shown for it when
//! the page has nothing better to do. Pages match the refusals they handle
//! themselves (a form's field errors, a declined card) and pass the rest on
//! with `?` or with one of the mappings here.

use axum::http::StatusCode;

use crate::api::Refusal;
use crate::error::PageError;

/// A call that did not give the value asked for.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The API answered with a client error (4xx) and its error body.
    Refused(Refusal),
    /// The API could not be reached, failed (5xx) or answered something
    /// that could not be read: no page can work around it.
    Unavailable(anyhow::Error),
}

impl ApiError {
    /// Whether the API refused with `status`.
    pub(crate) fn is_refused_with(&self, status: StatusCode) -> bool {
        matches!(self, Self::Refused(refusal) if refusal.status == status)
    }

    /// The page for a call that needs a signed-in user: a 401 goes to sign
    /// in and back to `here`; anything else as [`PageError::from`].
    pub(crate) fn sign_in_to(self, here: &str) -> PageError {
        match self {
            Self::Refused(refusal) if is_banned(&refusal) => PageError::Banned,
            Self::Refused(refusal) if needs_sign_in(&refusal) => PageError::SignIn {
                next: here.to_string(),
            },
            other => other.into(),
        }
    }

    /// The page for a call about one's own resource shown at `here`: a 401
    /// goes to sign in and back to `here`, a 403 shows `forbidden`, a 404
    /// the not-found page; anything else as [`PageError::from`].
    pub(crate) fn owned_at(self, here: &str, forbidden: &'static str) -> PageError {
        match self {
            Self::Refused(refusal) if is_banned(&refusal) => PageError::Banned,
            Self::Refused(refusal) if refusal.status == StatusCode::FORBIDDEN => {
                PageError::Forbidden(forbidden)
            }
            Self::Refused(refusal) if refusal.status == StatusCode::NOT_FOUND => {
                PageError::NotFound
            }
            other => other.sign_in_to(here),
        }
    }

    /// The refusal, when it is one that [`ApiError::owned_at`] has no page
    /// for (not a 401, 403 or 404): a form's errors, a refused action, which
    /// the page shows itself. Anything else is given back.
    pub(crate) fn into_shown(self) -> Result<Refusal, Self> {
        match self {
            Self::Refused(refusal)
                if !matches!(
                    refusal.status,
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
                ) =>
            {
                Ok(refusal)
            }
            other => Err(other),
        }
    }
}

/// Whether the API refused because the signed-in user is banned.
fn is_banned(refusal: &Refusal) -> bool {
    refusal.status == StatusCode::FORBIDDEN
        && refusal.message() == common::ApiError::Banned.to_string()
}

/// The default: the API failing, shown as "try again" and logged; a
/// refusal the page did not expect counts as the API failing too.
impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Refused(refusal) if is_banned(&refusal) => PageError::Banned,
            ApiError::Unavailable(err) => PageError::Unavailable(err),
            ApiError::Refused(refusal) => PageError::Unavailable(anyhow::anyhow!(
                "an API refused the call with {}: {}",
                refusal.status,
                refusal.message()
            )),
        }
    }
}

/// Whether an API refusal means "sign in first".
pub(crate) fn needs_sign_in(refusal: &Refusal) -> bool {
    refusal.status == StatusCode::UNAUTHORIZED
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: StatusCode) -> ApiError {
        ApiError::Refused(Refusal::from_body(status, b"{}"))
    }

    fn unavailable() -> ApiError {
        ApiError::Unavailable(anyhow::anyhow!("connection refused"))
    }

    #[test]
    fn an_unexpected_refusal_or_a_failure_is_the_unavailable_page() {
        for err in [
            refused(StatusCode::UNAUTHORIZED),
            refused(StatusCode::NOT_FOUND),
            refused(StatusCode::BAD_REQUEST),
            unavailable(),
        ] {
            assert!(matches!(PageError::from(err), PageError::Unavailable(_)));
        }
    }

    #[test]
    fn a_call_that_needs_a_user_signs_in_and_comes_back() {
        assert!(matches!(
            refused(StatusCode::UNAUTHORIZED).sign_in_to("/orders"),
            PageError::SignIn { next } if next == "/orders"
        ));
        for err in [
            refused(StatusCode::FORBIDDEN),
            refused(StatusCode::NOT_FOUND),
            unavailable(),
        ] {
            assert!(matches!(
                err.sign_in_to("/orders"),
                PageError::Unavailable(_)
            ));
        }
    }

    #[test]
    fn a_call_about_ones_own_resource_maps_401_403_and_404_to_their_pages() {
        let here = "/orders/1";
        let mine = "Not yours.";
        assert!(matches!(
            refused(StatusCode::UNAUTHORIZED).owned_at(here, mine),
            PageError::SignIn { next } if next == here
        ));
        assert!(matches!(
            refused(StatusCode::FORBIDDEN).owned_at(here, mine),
            PageError::Forbidden(message) if message == mine
        ));
        assert!(matches!(
            refused(StatusCode::NOT_FOUND).owned_at(here, mine),
            PageError::NotFound
        ));
        assert!(matches!(
            refused(StatusCode::CONFLICT).owned_at(here, mine),
            PageError::Unavailable(_)
        ));
        assert!(matches!(
            unavailable().owned_at(here, mine),
            PageError::Unavailable(_)
        ));
    }

    #[test]
    fn only_refusals_without_a_page_of_their_own_are_shown_by_the_page() {
        for status in [StatusCode::BAD_REQUEST, StatusCode::CONFLICT] {
            assert!(matches!(refused(status).into_shown(), Ok(r) if r.status == status));
        }
        for status in [
            StatusCode::UNAUTHORIZED,
            StatusCode::FORBIDDEN,
            StatusCode::NOT_FOUND,
        ] {
            assert!(refused(status).into_shown().is_err());
        }
        assert!(matches!(
            unavailable().into_shown(),
            Err(ApiError::Unavailable(_))
        ));
    }

    #[test]
    fn refusals_are_told_apart_by_status() {
        assert!(refused(StatusCode::NOT_FOUND).is_refused_with(StatusCode::NOT_FOUND));
        assert!(!refused(StatusCode::BAD_REQUEST).is_refused_with(StatusCode::NOT_FOUND));
        assert!(!unavailable().is_refused_with(StatusCode::NOT_FOUND));
    }
}
